/**
 * The cost of deciding "who may do what, where", measured on a vault-sized
 * tree: 1,000 stores (10 brands, each a base store with product and
 * ecosystem sub-stores up to 4 deep) and 10,000 grants (1,000 people, 10
 * grants each, a third of them inheritable).
 *
 * 1. `authorize(principal, permission, scope)` itself, the check every admin
 *    call makes, over (person, store, permission) triples where the store is
 *    one the person holds a role in, one below such a store, or any: median and
 *    p99 per call (goal: median under 50 µs), and the share allowed / hidden
 *    / forbidden so the sample is not all one branch;
 * 2. the whole per-request decision as the admin API makes it on a real
 *    LevelDB in a temp dir: authenticate a personal token (token, person,
 *    grants read from the store), read the store-tree version, authorize;
 * 3. listing what a person can see (`canSee` over all 1,000 stores), what
 *    GET /v1/admin/stores does.
 *
 *   npm run bench -- permissions [--checks N] [--requests N]
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { VaultError } from '@sv/shared'
import { LevelStore } from '../vault-server/src/store/level-store.js'
import { AccessService, StoreTree, type PersonPrincipal } from '../vault-server/src/services/admin/access.js'
import { ALL_STORE_PERMISSIONS } from '../vault-server/src/services/admin/permissions.js'
import { ROLES, type GrantRecord, type StoreRecord } from '../vault-server/src/store/store.js'
import { arg, median, percentile, report, type BenchResult, type Metric } from './lib.js'

/** A deterministic pseudo-random stream (the same tree and sample every run). */
function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

function buildTree(): StoreRecord[] {
  const stores: StoreRecord[] = []
  const now = Date.now()
  for (let b = 0; b < 10; b++) {
    const brandId = `brand-${b}`
    const base: StoreRecord = { id: brandId, brandId, kind: 'base', displayName: brandId, requirePivotReview: false, createdAt: now, updatedAt: now }
    stores.push(base)
    // 99 sub-stores per brand: 9 children of the base, each with 10 below them, some of those with more
    let made = 0
    const add = (parent: string, depth: number): void => {
      if (made >= 99 || depth > 4) return
      const id = `${brandId}-s${made++}`
      stores.push({ id, brandId, kind: made % 3 === 0 ? 'ecosystem' : 'product', parentId: parent, displayName: id, requirePivotReview: false, createdAt: now, updatedAt: now })
      for (let c = 0; c < (depth < 2 ? 10 : 1) && made < 99; c++) add(id, depth + 1)
    }
    for (let c = 0; c < 9; c++) add(brandId, 1)
  }
  return stores
}

export async function permissionsBench(argv: string[]): Promise<BenchResult> {
  const checks = Number(arg(argv, '--checks', '200000'))
  const requests = Number(arg(argv, '--requests', '5000'))
  const rnd = prng(42)
  const stores = buildTree()
  const tree = new StoreTree(stores, 1)
  const people = Array.from({ length: 1000 }, (_, i) => `prs_bench${String(i).padStart(16, '0')}`)
  const grants: GrantRecord[] = []
  for (const personId of people) {
    const mine = new Set<string>()
    while (mine.size < 10) mine.add(stores[Math.floor(rnd() * stores.length)]!.id)
    for (const storeId of mine) grants.push({ personId, storeId, role: ROLES[Math.floor(rnd() * ROLES.length)]!, inheritable: rnd() < 1 / 3, grantedBy: 'bench', createdAt: 0 })
  }

  // 1. authorize() itself
  const dir = await mkdtemp(join(tmpdir(), 'sv-bench-perm-'))
  const store = new LevelStore(new Level(join(dir, 'db')))
  await store.open()
  const access = new AccessService({ store, masterKey: randomBytes(32) })
  const principals: PersonPrincipal[] = people.map((id) => ({
    kind: 'person',
    person: { id, email: `${id}@bench.example`, disabled: false, identities: [], createdAt: 0, updatedAt: 0 },
    grants: new Map(grants.filter((g) => g.personId === id).map((g) => [g.storeId, g])),
    via: { kind: 'session', session: { hash: id, personId: id, providerId: 'bench', createdAt: 0, expiresAt: Infinity, idleExpiresAt: Infinity } },
  }))
  const notFound = () => new VaultError('SV_STORE_NOT_FOUND', 'no such store')
  // The sample mixes the three kinds of scope an admin call meets: a store the
  // person holds a role in (40 %), a store below one of those, reached through
  // the tree walk (30 %), and any store of the vault (30 %, mostly hidden).
  const byId = new Map(stores.map((s) => [s.id, s]))
  const children = new Map<string, StoreRecord[]>()
  for (const s of stores) if (s.parentId) children.set(s.parentId, [...(children.get(s.parentId) ?? []), s])
  const below = (id: string): StoreRecord | undefined => {
    let at = children.get(id)
    let found: StoreRecord | undefined
    while (at && at.length > 0) {
      found = at[Math.floor(rnd() * at.length)]!
      if (rnd() < 0.5) break
      at = children.get(found.id)
    }
    return found
  }
  const pick = (p: PersonPrincipal): StoreRecord => {
    const r = rnd()
    const held = [...p.grants.keys()]
    const mine = byId.get(held[Math.floor(rnd() * held.length)]!)!
    if (r < 0.4) return mine
    if (r < 0.7) return below(mine.id) ?? mine
    return stores[Math.floor(rnd() * stores.length)]!
  }
  const sample = Array.from({ length: checks }, () => {
    const p = principals[Math.floor(rnd() * principals.length)]!
    return { p, s: pick(p), perm: ALL_STORE_PERMISSIONS[Math.floor(rnd() * ALL_STORE_PERMISSIONS.length)]! }
  })
  const outcomes = { allowed: 0, hidden: 0, forbidden: 0 }
  const decide = (x: (typeof sample)[number]): void => {
    try {
      access.authorize(x.p, tree, x.perm, x.s, notFound)
      outcomes.allowed++
    } catch (e) {
      if ((e as VaultError).code === 'SV_FORBIDDEN') outcomes.forbidden++
      else outcomes.hidden++
    }
  }
  for (let i = 0; i < Math.min(20_000, checks); i++) decide(sample[i]!) // JIT warm-up
  outcomes.allowed = outcomes.hidden = outcomes.forbidden = 0
  // timed in batches of 100 (one call is below the timer's resolution): per-call = batch / 100
  const perCall: number[] = []
  for (let i = 0; i + 100 <= sample.length; i += 100) {
    const t0 = process.hrtime.bigint()
    for (let j = i; j < i + 100; j++) decide(sample[j]!)
    perCall.push(Number(process.hrtime.bigint() - t0) / 100 / 1000)
  }

  // 3. what a person can see, over the whole tree
  const listMs: number[] = []
  for (let i = 0; i < 200; i++) {
    const p = principals[i % principals.length]!
    const t0 = process.hrtime.bigint()
    let n = 0
    for (const s of stores) if (access.canSee(p, tree, s.id)) n++
    listMs.push(Number(process.hrtime.bigint() - t0) / 1e6)
    if (n < 0) throw new Error('unreachable')
  }

  // 2. the whole decision on LevelDB: authenticate a personal token, the tree, authorize
  const now = Date.now()
  for (const s of stores) {
    if (s.kind === 'base') await store.brands.createBrand({ id: s.brandId, displayName: s.brandId, origin: 'vault-root', accountAssertion: 'x', createdAt: now }, s)
  }
  for (const s of stores) if (s.kind !== 'base') await store.stores.create(s)
  const tokens: string[] = []
  for (const p of principals) {
    await store.people.create(p.person)
    for (const g of p.grants.values()) await store.grants.put(g)
    const token = `svpt_${randomBytes(32).toString('base64url')}`
    tokens.push(token)
    await store.tokens.put({ hash: createHash('sha256').update(token).digest('hex'), kind: 'personal', name: 'bench', roles: [], personId: p.person.id, permissions: ['*'], expiresAt: now + 86_400_000, createdAt: now, lastUsedAt: now })
  }
  const requestUs: number[] = []
  for (let i = 0; i < requests; i++) {
    const token = tokens[Math.floor(rnd() * tokens.length)]!
    const s = pick(principals[tokens.indexOf(token)]!)
    const perm = ALL_STORE_PERMISSIONS[Math.floor(rnd() * ALL_STORE_PERMISSIONS.length)]!
    const t0 = process.hrtime.bigint()
    const p = await access.authenticate({ authorization: `Bearer ${token}`, method: 'GET' })
    const t = await access.tree()
    try {
      access.authorize(p, t, perm, t.get(s.id)!, notFound)
    } catch {
      // refusals are decisions too
    }
    requestUs.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  await store.close()
  await rm(dir, { recursive: true, force: true })

  const total = outcomes.allowed + outcomes.hidden + outcomes.forbidden
  const metrics: Metric[] = [
    { metric: `authorize(): median per check (${stores.length} stores, ${grants.length} grants; goal < 50)`, value: median(perCall), unit: 'µs', goal: { max: 50 } },
    { metric: 'authorize(): p99 per check', value: percentile(perCall, 99), unit: 'µs' },
    { metric: 'sample: allowed', value: (outcomes.allowed / total) * 100, unit: '%' },
    { metric: 'sample: hidden (no role in the store: 404)', value: (outcomes.hidden / total) * 100, unit: '%' },
    { metric: 'sample: forbidden (a role, not the permission: 403)', value: (outcomes.forbidden / total) * 100, unit: '%' },
    { metric: 'a whole decision on LevelDB (token, person, grants, tree version, authorize): median', value: median(requestUs), unit: 'µs' },
    { metric: 'a whole decision on LevelDB: p99', value: percentile(requestUs, 99), unit: 'µs' },
    { metric: `canSee over all ${stores.length} stores (GET /v1/admin/stores): median`, value: median(listMs), unit: 'ms' },
  ]
  return report('permissions', metrics, { stores: stores.length, grants: grants.length, people: people.length, checks, requests })
}
