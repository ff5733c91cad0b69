/**
 * Who is calling and what they may do: GET /v1/admin/me (grants per store,
 * the CSRF token), GET /v1/admin/roles (the permission table), the store tree
 * (GET /v1/admin/stores) and the selected store. Edit controls render only
 * where `can(store, permission)` holds.
 */
import { computed, effect, signal } from '@preact/signals'
import { ApiError, bearerToken, csrfToken, get, api, sessionProblem } from './api.ts'
import type { MeWire, RolesTable, StoreWire } from './wire.ts'

export const me = signal<MeWire | undefined>(undefined)
export const rolesTable = signal<RolesTable | undefined>(undefined)
export const stores = signal<StoreWire[]>([])
/** 'unknown' until the first /me answers */
export const authState = signal<'unknown' | 'anonymous' | 'in'>('unknown')

const STORE_KEY = 'sv.dashboard.store'
function initialStore(): string | undefined {
  const q = new URLSearchParams(location.search).get('store')
  if (q) return q
  try {
    return localStorage.getItem(STORE_KEY) ?? undefined
  } catch {
    return undefined
  }
}
export const selectedStoreId = signal<string | undefined>(initialStore())
effect(() => {
  const s = selectedStoreId.value
  try {
    if (s) localStorage.setItem(STORE_KEY, s)
  } catch {
    /* storage unavailable */
  }
})

export interface StoreNode {
  store: StoreWire
  depth: number
  children: StoreNode[]
}

/** The visible stores as a tree (a store whose parent is invisible is a root), depth-first. */
export const storeTree = computed<StoreNode[]>(() => {
  const all = stores.value
  const ids = new Set(all.map((s) => s.id))
  const byParent = new Map<string | undefined, StoreWire[]>()
  for (const s of all) {
    const p = s.parentId !== undefined && ids.has(s.parentId) ? s.parentId : undefined
    byParent.set(p, [...(byParent.get(p) ?? []), s])
  }
  const rank = { base: 0, product: 1, ecosystem: 2 } as const
  const build = (parent: string | undefined, depth: number): StoreNode[] =>
    (byParent.get(parent) ?? [])
      .sort((a, b) => a.brandId.localeCompare(b.brandId) || rank[a.kind] - rank[b.kind] || a.id.localeCompare(b.id))
      .map((store) => ({ store, depth, children: build(store.id, depth + 1) }))
  return build(undefined, 0)
})

/** The tree flattened in display order. */
export const storeList = computed<StoreNode[]>(() => {
  const out: StoreNode[] = []
  const walk = (ns: StoreNode[]) => ns.forEach((n) => (out.push(n), walk(n.children)))
  walk(storeTree.value)
  return out
})

export const selectedStore = computed<StoreWire | undefined>(() => {
  const id = selectedStoreId.value
  return stores.value.find((s) => s.id === id) ?? storeList.value[0]?.store
})

export const isOperator = computed(() => me.value?.kind === 'operator')

/** The stores above `id`, nearest first. */
export function ancestors(id: string): StoreWire[] {
  const byId = new Map(stores.value.map((s) => [s.id, s]))
  const out: StoreWire[] = []
  let s = byId.get(id)
  while (s?.parentId !== undefined && !out.some((x) => x.id === s!.parentId)) {
    const p = byId.get(s.parentId)
    if (!p) break
    out.push(p)
    s = p
  }
  return out
}

/**
 * The permissions the caller holds in a store. The operator holds all of
 * them. A person: /me lists, per visible store, the roles held there (their
 * own grant and the inheritable grants of the stores above, docs/roles.md)
 * and the permissions they give (narrowed by a personal token); when /me
 * gives only roles, the permission table of /roles turns them into
 * permissions. A store /me does not list is invisible: no permission.
 */
export function permissionsIn(storeId: string | undefined): Set<string> {
  const m = me.value
  if (!m || !storeId) return new Set()
  const table = rolesTable.value
  if (m.kind === 'operator') return new Set([...Object.keys(table?.storePermissions ?? {}), ...Object.keys(table?.vaultPermissions ?? {}), '*'])
  const entry = m.stores.find((s) => s.id === storeId)
  if (!entry) return new Set()
  if (Array.isArray(entry.permissions)) return new Set(entry.permissions)
  const out = new Set<string>()
  for (const r of entry.roles) for (const p of table?.roles[r]?.permissions ?? []) out.add(p)
  return out
}

export function can(storeId: string | undefined, permission: string): boolean {
  const p = permissionsIn(storeId)
  return p.has('*') || p.has(permission)
}

/** The caller's roles in a store (own and inherited), for display. */
export function rolesIn(storeId: string): string[] {
  return me.value?.stores.find((s) => s.id === storeId)?.roles ?? []
}

/** The brand's base store of a store. */
export function baseStoreOf(storeId: string | undefined): StoreWire | undefined {
  const s = stores.value.find((x) => x.id === storeId)
  if (!s) return undefined
  return s.kind === 'base' ? s : (ancestors(s.id).find((a) => a.kind === 'base') ?? stores.value.find((x) => x.brandId === s.brandId && x.kind === 'base'))
}

/** The store tree and, when asked, what the caller holds in each store (after a store was created or a role changed). */
export async function refreshStores(withMe = true): Promise<void> {
  const [r, m] = await Promise.all([get<{ stores: StoreWire[] }>('/stores'), withMe ? get<MeWire>('/me') : Promise.resolve(undefined)])
  if (m) {
    if (m.csrfToken) csrfToken.value = m.csrfToken
    me.value = m
  }
  stores.value = r.stores
  if (!selectedStoreId.value || !r.stores.some((s) => s.id === selectedStoreId.value)) {
    selectedStoreId.value = storeList.value[0]?.store.id
  }
}

/** Loads /me, /roles and the stores; anonymous on a 401 (resolves with that refusal). */
export async function loadSession(): Promise<ApiError | undefined> {
  try {
    const m = await get<MeWire>('/me')
    csrfToken.value = m.csrfToken
    const [roles] = await Promise.all([get<RolesTable>('/roles').catch(() => undefined)])
    rolesTable.value = roles
    me.value = m
    await refreshStores(false).catch(() => undefined)
    sessionProblem.value = undefined
    authState.value = 'in'
    return undefined
  } catch (e) {
    const first = authState.peek() === 'unknown'
    me.value = undefined
    authState.value = 'anonymous'
    // not logged in yet on a first visit: no "session expired" message
    if (first && !bearerToken.peek()) sessionProblem.value = undefined
    if (!(e instanceof ApiError) || e.status !== 401) throw e
    return e
  }
}

export async function logout(): Promise<void> {
  try {
    if (me.value?.via === 'session') await api('POST', '/v1/auth/logout')
  } finally {
    bearerToken.value = undefined
    csrfToken.value = undefined
    me.value = undefined
    stores.value = []
    sessionProblem.value = undefined
    authState.value = 'anonymous'
  }
}

// a 401 anywhere: back to the login page, with the message
effect(() => {
  if (sessionProblem.value && authState.peek() === 'in') {
    me.value = undefined
    csrfToken.value = undefined
    bearerToken.value = undefined
    authState.value = 'anonymous'
  }
})
