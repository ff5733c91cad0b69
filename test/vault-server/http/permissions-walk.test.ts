/**
 * The whole permission table, walked over real HTTP: every admin route x each
 * of the five roles x the store the role is held in, relative to the store the
 * route acts in (own, parent, parent with an inheritable grant, child,
 * sibling, unrelated brand) x the caller kind (session cookie, scoped
 * personal token, expired token, revoked token, device api-key, no
 * credential), plus the operator's admin token. Every cell must get what the
 * table says: allowed (the operation succeeds), 403 SV_FORBIDDEN naming the
 * permission and the store, 404 as for a target that does not exist, or 401
 * SV_UNAUTHENTICATED.
 *
 * The expectations are this file's own: a literal copy of the table
 * (EXPECTED_ROLES) and of each route's permission (ROUTES), each held to the
 * code's (ROLE_PERMISSIONS, the app's route list) so a change there must be
 * made here too, on purpose. The outcome of a cell is computed from these
 * literals and the store tree, never from the vault's own decision code.
 */
import test, { type ExecutionContext } from 'ava'
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import { formatRfc3339, loadPrivateKeyPem, signAssertion } from '@sv/shared'
import { PI_MODEL_HEADERS, startTestVault, type TestVault } from '../../helpers/vault.js'
import { endpoint, generateDeviceKeys, httpRequest, jsonOf, registerDevice, type HttpResult } from '../../helpers/device.js'
import { ROLE_PERMISSIONS } from '../../../vault-server/src/services/admin/permissions.js'
import { ADMIN_ROUTES } from '../../../vault-server/src/http/routes/admin.js'
import type { Role } from '../../../vault-server/src/store/store.js'
import { adminJson } from './api.js'

const ROLES: Role[] = ['admin', 'publisher', 'collaborator', 'reviewer', 'viewer']

/** The table, copied by hand from the brand's commissioning guide as services/admin/permissions.ts encodes it. */
const EXPECTED_ROLES: Record<Role, string[]> = {
  admin: [
    'store.read', 'store.manage', 'member.read', 'member.manage', 'token.manage', 'key.read', 'key.manage', 'model.read', 'model.manage', 'model.download', 'apikey.manage',
    'serial.read', 'serial.release', 'log.read', 'log.export', 'metrics.read', 'system-user.sign', 'pivot.read', 'pivot.manage', 'pivot.review', 'audit.read', 'alert.acknowledge',
    'workorder.read', 'workorder.manage',
  ],
  publisher: ['store.read', 'model.read', 'model.download', 'metrics.read'],
  collaborator: ['store.read'],
  reviewer: ['store.read', 'model.read', 'serial.read', 'serial.release', 'log.read', 'pivot.read', 'pivot.review', 'alert.acknowledge', 'workorder.read'],
  viewer: ['store.read', 'model.read', 'model.download', 'serial.read', 'log.read', 'log.export', 'metrics.read', 'workorder.read'],
}

/** What the scoped personal tokens carry: read permissions only (so write cells differ from the session's). */
const TOKEN_PERMISSIONS = ['store.read', 'member.read', 'key.read', 'model.read', 'model.download', 'serial.read', 'log.read', 'log.export', 'metrics.read', 'pivot.read', 'audit.read', 'workorder.read']

// The tree: walk-brand (base) -> p-store -> p-child, and walk-brand -> p-sibling; acme-brand is another brand.
const BASE = 'walk-brand'
const T = 'p-store'
const PARENT: Record<string, string | undefined> = { 'walk-brand': undefined, 'p-store': BASE, 'p-child': T, 'p-sibling': BASE, 'acme-brand': undefined }
const BRAND_OF: Record<string, string> = { 'walk-brand': BASE, 'p-store': BASE, 'p-child': BASE, 'p-sibling': BASE, 'acme-brand': 'acme-brand' }

/** Where a person's one grant is held. */
const PLACEMENTS = [
  { id: 'base', store: BASE, inheritable: false },
  { id: 'base-inh', store: BASE, inheritable: true },
  { id: 'own', store: T, inheritable: false },
  { id: 'child', store: 'p-child', inheritable: false },
  { id: 'sibling', store: 'p-sibling', inheritable: false },
  { id: 'other-brand', store: 'acme-brand', inheritable: false },
] as const

type Target = 'store' | 'base' | 'vault' | 'self' | 'list'

interface Walk {
  v: TestVault
  op: { url: string; adminToken: string }
  n: number
  /** a key of the brand to import: a new RSA key and its account-key signed by the vault root */
  newKey: () => Promise<{ pem: string; accountKey: string }>
  spareKey: string
  model: { brand: string; a: string; b: string; serial: string }
  /** a clone alert in the walk's store (WALK-1 offered with a second key) */
  alertId: string
}

interface RouteCase {
  method: string
  /** express path, as the app lists it */
  spec: string
  permission: string
  target: Target
  path: (w: Walk) => string | Promise<string>
  body?: (w: Walk) => unknown | Promise<unknown>
  /** business answers that still mean "allowed" (authorization passed) */
  okCodes?: string[]
  /** the 404 code of the route's target */
  notFound?: string
  /** 'list' routes: whether the answer shows the walk's target */
  shows?: (body: Record<string, unknown>) => boolean
  /** only sessions may (a personal token cannot make a personal token) */
  sessionOnly?: boolean
  /** a stream that does not end (server-sent events): judged on its status and headers */
  stream?: boolean
}

const n = (w: Walk) => ++w.n
/** A fresh open work order for walk-a in the walk's store (made by the operator). */
const workOrder = async (w: Walk): Promise<string> =>
  (await adminJson<{ workOrder: { id: string } }>(w.op, 'POST', `admin/stores/${T}/work-orders`, { model: 'walk-a', plannedQuantity: 1, serials: { kind: 'list', serials: [`WO-${n(w)}`] }, notAfter: Date.now() + 86_400_000 })).workOrder.id
const ROUTES: RouteCase[] = [
  { method: 'GET', spec: '/me', permission: 'self', target: 'self', path: () => 'admin/me' },
  { method: 'GET', spec: '/roles', permission: 'self', target: 'self', path: () => 'admin/roles' },
  { method: 'GET', spec: '/brands', permission: 'store.read', target: 'list', path: () => 'admin/brands', shows: (b) => (b.brands as Array<{ id: string }>).some((x) => x.id === BASE) },
  { method: 'POST', spec: '/brands', permission: 'brand.create', target: 'vault', path: () => 'admin/brands', body: (w) => ({ id: `walk-new-${n(w)}`, displayName: 'New' }) },
  { method: 'POST', spec: '/brands/import', permission: 'brand.create', target: 'vault', path: () => 'admin/brands/import', body: async (w) => ({ ...(await w.newKey()), account: 'x' }), okCodes: ['SV_ASSERTION_INVALID'] },
  { method: 'GET', spec: '/brands/:brand/keys', permission: 'key.read', target: 'base', path: () => `admin/brands/${BASE}/keys`, notFound: 'SV_BRAND_UNKNOWN' },
  { method: 'POST', spec: '/brands/:brand/keys', permission: 'key.manage', target: 'base', path: () => `admin/brands/${BASE}/keys`, body: (w) => ({ name: `k${n(w)}` }), notFound: 'SV_BRAND_UNKNOWN' },
  { method: 'POST', spec: '/brands/:brand/keys/import', permission: 'key.manage', target: 'base', path: () => `admin/brands/${BASE}/keys/import`, body: (w) => w.newKey(), notFound: 'SV_BRAND_UNKNOWN' },
  { method: 'GET', spec: '/keys', permission: 'key.read', target: 'list', path: () => 'admin/keys', shows: (b) => (b.keys as Array<{ accountId: string }>).some((k) => k.accountId === BASE) },
  { method: 'POST', spec: '/keys/:keyId/enable', permission: 'key.manage', target: 'base', path: (w) => `admin/keys/${w.spareKey}/enable`, body: () => ({ reason: 'walk' }), notFound: 'SV_KEY_NOT_FOUND' },
  { method: 'POST', spec: '/keys/:keyId/disable', permission: 'key.manage', target: 'base', path: (w) => `admin/keys/${w.spareKey}/disable`, body: () => ({ reason: 'walk' }), notFound: 'SV_KEY_NOT_FOUND' },
  { method: 'GET', spec: '/trust', permission: 'model.download', target: 'base', path: () => `admin/trust?brand=${BASE}`, notFound: 'SV_BRAND_UNKNOWN' },
  { method: 'GET', spec: '/stores', permission: 'store.read', target: 'list', path: () => 'admin/stores', shows: (b) => (b.stores as Array<{ id: string }>).some((s) => s.id === T) },
  { method: 'POST', spec: '/stores', permission: 'store.manage', target: 'store', path: () => 'admin/stores', body: (w) => ({ id: `walk-sub-${n(w)}`, parent: T, kind: 'product', displayName: 'Sub' }), notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'GET', spec: '/stores/:store', permission: 'store.read', target: 'store', path: () => `admin/stores/${T}`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'PATCH', spec: '/stores/:store', permission: 'store.manage', target: 'store', path: () => `admin/stores/${T}`, body: () => ({ displayName: 'P store' }), notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'GET', spec: '/stores/:store/members', permission: 'member.read', target: 'store', path: () => `admin/stores/${T}/members`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'PUT', spec: '/stores/:store/members/:email', permission: 'member.manage', target: 'store', path: () => `admin/stores/${T}/members/victim@walk.example`, body: () => ({ role: 'viewer' }), notFound: 'SV_STORE_NOT_FOUND' },
  {
    method: 'DELETE',
    spec: '/stores/:store/members/:email',
    permission: 'member.manage',
    target: 'store',
    path: async (w) => {
      await adminJson(w.op, 'PUT', `admin/stores/${T}/members/victim@walk.example`, { role: 'viewer' })
      return `admin/stores/${T}/members/victim@walk.example`
    },
    notFound: 'SV_STORE_NOT_FOUND',
  },
  { method: 'GET', spec: '/stores/:store/tokens', permission: 'token.manage', target: 'store', path: () => `admin/stores/${T}/tokens`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'GET', spec: '/people', permission: 'people.read', target: 'vault', path: () => 'admin/people' },
  { method: 'GET', spec: '/tokens', permission: 'self', target: 'self', path: () => 'admin/tokens' },
  { method: 'POST', spec: '/tokens', permission: 'self', target: 'self', path: () => 'admin/tokens', body: () => ({ name: 'walk', permissions: ['store.read'], expiresInDays: 1 }), sessionOnly: true },
  { method: 'DELETE', spec: '/tokens/:id', permission: 'self', target: 'self', path: () => 'admin/tokens/SELF', okCodes: [] },
  { method: 'GET', spec: '/models', permission: 'model.read', target: 'list', path: () => 'admin/models', shows: (b) => (b.models as Array<{ name: string }>).some((m) => m.name === 'walk-a') },
  { method: 'POST', spec: '/models', permission: 'model.manage', target: 'store', path: () => 'admin/models', body: (w) => ({ brandId: BASE, name: `walk-m${n(w)}`, storeId: T, headers: PI_MODEL_HEADERS }), notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'GET', spec: '/models/:brand/:model', permission: 'model.read', target: 'store', path: () => `admin/models/${BASE}/walk-a`, notFound: 'SV_MODEL_UNKNOWN' },
  { method: 'PATCH', spec: '/models/:brand/:model', permission: 'model.manage', target: 'store', path: () => `admin/models/${BASE}/walk-b`, body: () => ({ duplicates: 'refuse' }), notFound: 'SV_MODEL_UNKNOWN' },
  { method: 'POST', spec: '/models/:brand/:model/move', permission: 'model.manage', target: 'store', path: () => `admin/models/${BASE}/walk-b/move`, body: () => ({ storeId: T }), notFound: 'SV_MODEL_UNKNOWN' },
  { method: 'GET', spec: '/models/:brand/:model/assertion', permission: 'model.download', target: 'store', path: () => `admin/models/${BASE}/walk-a/assertion`, notFound: 'SV_MODEL_UNKNOWN' },
  { method: 'POST', spec: '/models/:brand/:model/api-keys', permission: 'apikey.manage', target: 'store', path: () => `admin/models/${BASE}/walk-b/api-keys`, body: () => ({}), notFound: 'SV_MODEL_UNKNOWN' },
  {
    method: 'DELETE',
    spec: '/models/:brand/:model/api-keys/:hash',
    permission: 'apikey.manage',
    target: 'store',
    path: async (w) => {
      const key = `walk-key-${randomBytes(8).toString('hex')}`
      await adminJson(w.op, 'PATCH', `admin/models/${BASE}/walk-b`, { addApiKeys: [key] })
      return `admin/models/${BASE}/walk-b/api-keys/${createHash('sha256').update(key).digest('hex')}`
    },
    notFound: 'SV_MODEL_UNKNOWN',
  },
  { method: 'GET', spec: '/serials/:brand/:model/:serial', permission: 'serial.read', target: 'store', path: (w) => `admin/serials/${BASE}/walk-a/${w.model.serial}`, notFound: 'SV_MODEL_UNKNOWN' },
  { method: 'POST', spec: '/serials/:brand/:model/:serial/release', permission: 'serial.release', target: 'store', path: (w) => `admin/serials/${BASE}/walk-a/${w.model.serial}/release`, notFound: 'SV_MODEL_UNKNOWN' },
  { method: 'GET', spec: '/log', permission: 'log.read', target: 'store', path: () => `admin/log?store=${T}`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'GET', spec: '/log/export', permission: 'log.export', target: 'store', path: () => `admin/log/export?store=${T}&format=csv`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'GET', spec: '/live', permission: 'log.read', target: 'store', path: () => `admin/live?store=${T}`, notFound: 'SV_STORE_NOT_FOUND', stream: true },
  { method: 'GET', spec: '/alerts', permission: 'log.read', target: 'store', path: () => `admin/alerts?store=${T}`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'POST', spec: '/alerts/:id/acknowledge', permission: 'alert.acknowledge', target: 'store', path: (w) => `admin/alerts/${w.alertId}/acknowledge`, body: () => ({ note: 'walk' }), notFound: 'SV_ALERT_NOT_FOUND' },
  { method: 'GET', spec: '/stores/:store/metrics', permission: 'metrics.read', target: 'store', path: () => `admin/stores/${T}/metrics`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'GET', spec: '/stores/:store/pivots', permission: 'pivot.read', target: 'store', path: () => `admin/stores/${T}/pivots`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'POST', spec: '/stores/:store/pivots', permission: 'pivot.manage', target: 'store', path: () => `admin/stores/${T}/pivots`, body: (w) => ({ fromModel: 'walk-a', toModel: 'walk-b', serial: `SN-${n(w)}` }), notFound: 'SV_STORE_NOT_FOUND' },
  {
    method: 'DELETE',
    spec: '/stores/:store/pivots/:id',
    permission: 'pivot.manage',
    target: 'store',
    path: async (w) => {
      const r = await adminJson<{ pivot: { id: string } }>(w.op, 'POST', `admin/stores/${T}/pivots`, { fromModel: 'walk-a', toModel: 'walk-b', serial: `SN-D${n(w)}` })
      return `admin/stores/${T}/pivots/${r.pivot.id}`
    },
    notFound: 'SV_STORE_NOT_FOUND',
  },
  { method: 'GET', spec: '/stores/:store/pivot-requests', permission: 'pivot.read', target: 'store', path: () => `admin/stores/${T}/pivot-requests`, notFound: 'SV_STORE_NOT_FOUND' },
  ...(['accept', 'reject'] as const).map(
    (action): RouteCase => ({
      method: 'POST',
      spec: `/stores/:store/pivot-requests/:requestId/${action}`,
      permission: 'pivot.review',
      target: 'store',
      path: async (w) => {
        const requestId = `walk-req-${n(w)}`
        await w.v.vault.store.pivots.createRequest({ requestId, brandId: BASE, fromModel: 'walk-a', toModel: 'walk-b', storeId: T, serial: 'X', deviceKeyId: 'dk', status: 'pending', createdAt: Date.now() })
        return `admin/stores/${T}/pivot-requests/${requestId}/${action}`
      },
      notFound: 'SV_STORE_NOT_FOUND',
    }),
  ),
  {
    method: 'POST',
    spec: '/stores/:store/system-users',
    permission: 'system-user.sign',
    target: 'store',
    path: () => `admin/stores/${T}/system-users`,
    body: (w) => ({ email: `u${n(w)}@walk.example`, username: 'walk', sshKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDpj1cC9IJ0e0kZxNq7p8tsGQ3Cq5fJ3w9c1Dq8jv1Zx walk@example'], models: ['walk-a'] }),
    notFound: 'SV_STORE_NOT_FOUND',
  },
  { method: 'GET', spec: '/stores/:store/work-orders', permission: 'workorder.read', target: 'store', path: () => `admin/stores/${T}/work-orders`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'POST', spec: '/stores/:store/work-orders', permission: 'workorder.manage', target: 'store', path: () => `admin/stores/${T}/work-orders`, body: (w) => ({ model: 'walk-a', plannedQuantity: 1, serials: { kind: 'list', serials: [`WO-${n(w)}`] }, notAfter: Date.now() + 86_400_000 }), notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'GET', spec: '/stores/:store/work-orders/:id', permission: 'workorder.read', target: 'store', path: async (w) => `admin/stores/${T}/work-orders/${await workOrder(w)}`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'POST', spec: '/stores/:store/work-orders/:id/close', permission: 'workorder.manage', target: 'store', path: async (w) => `admin/stores/${T}/work-orders/${await workOrder(w)}/close`, body: () => ({ reason: 'walk' }), notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'GET', spec: '/stores/:store/work-orders/:id/report', permission: 'workorder.read', target: 'store', path: async (w) => `admin/stores/${T}/work-orders/${await workOrder(w)}/report`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'GET', spec: '/audit', permission: 'audit.read', target: 'store', path: () => `admin/audit?store=${T}`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'GET', spec: '/audit/export', permission: 'audit.read', target: 'store', path: () => `admin/audit/export?store=${T}`, notFound: 'SV_STORE_NOT_FOUND' },
  { method: 'GET', spec: '/audit/verify', permission: 'audit.verify', target: 'vault', path: () => 'admin/audit/verify' },
]

type Outcome = 'allowed' | 'forbidden' | 'hidden' | 'unauthenticated'

interface Person {
  email: string
  role: Role
  placement: (typeof PLACEMENTS)[number]
  cookie: string
  csrf: string
  token: string
  tokenIds: string[]
}

function isAncestor(a: string, b: string): boolean {
  for (let s = PARENT[b]; s !== undefined; s = PARENT[s]) if (s === a) return true
  return false
}

/** This file's own account of the table for one cell. */
function expected(route: RouteCase, p: Person | undefined, kind: 'session' | 'token'): Outcome {
  if (!p) return 'allowed'
  if (route.target === 'self' || route.target === 'list') return route.sessionOnly && kind === 'token' ? 'forbidden' : 'allowed'
  if (route.target === 'vault') return 'forbidden'
  const x = route.target === 'base' ? BASE : T
  const g = p.placement.store
  let reach = g === x || (p.placement.inheritable && isAncestor(g, x))
  if (kind === 'token' && g !== x) reach = false // the token names its one store
  if (!reach) return 'hidden'
  const perms = new Set(EXPECTED_ROLES[p.role].filter((perm) => kind === 'session' || TOKEN_PERMISSIONS.includes(perm)))
  return perms.has(route.permission) ? 'allowed' : 'forbidden'
}

/** What a list route should show the caller (the walk's target, or not). */
function expectedShows(route: RouteCase, p: Person | undefined, kind: 'session' | 'token'): boolean {
  if (!p) return true
  const g = p.placement.store
  const perm = route.permission
  const x = route.spec === '/keys' ? BASE : T
  if (route.spec === '/brands') return BRAND_OF[g] === BASE
  let reach = g === x || (p.placement.inheritable && isAncestor(g, x))
  if (kind === 'token' && g !== x) reach = false
  if (route.spec === '/stores') return reach
  return reach && EXPECTED_ROLES[p.role].includes(perm) && (kind === 'session' || TOKEN_PERMISSIONS.includes(perm))
}

function classify(route: RouteCase, r: HttpResult): { outcome: Outcome | 'other'; detail: string } {
  const text = r.body.toString('utf8').slice(0, 300)
  let code = ''
  let details: Record<string, unknown> = {}
  if (r.headers['content-type'] === 'application/json' && r.status >= 400) {
    const b = jsonOf<{ code: string; details?: Record<string, unknown> }>(r)
    code = b.code
    details = b.details ?? {}
  }
  if (r.status >= 200 && r.status < 300) return { outcome: 'allowed', detail: `${r.status}` }
  if (route.okCodes?.includes(code)) return { outcome: 'allowed', detail: code }
  if (r.status === 401 && code === 'SV_UNAUTHENTICATED') return { outcome: 'unauthenticated', detail: code }
  if (r.status === 403 && code === 'SV_FORBIDDEN') {
    const named = route.target === 'self' || details.permission === route.permission || details.permission === 'token.create'
    return { outcome: named ? 'forbidden' : 'other', detail: `${code} ${JSON.stringify(details)}` }
  }
  if (r.status === 404 && code === route.notFound) return { outcome: 'hidden', detail: code }
  return { outcome: 'other', detail: `${r.status} ${text}` }
}

async function setup(t: ExecutionContext): Promise<{ w: Walk; people: Person[]; bad: Record<string, Record<string, string>> }> {
  const v = await startTestVault(t, { store: 'memory', workers: 2, keyBits: 2048 })
  const op = { url: v.url, adminToken: v.adminToken }
  await adminJson(op, 'POST', 'admin/brands', { id: BASE, displayName: 'Walk Brand' })
  await adminJson(op, 'POST', 'admin/stores', { id: T, parent: BASE, kind: 'product', displayName: 'P' })
  await adminJson(op, 'POST', 'admin/stores', { id: 'p-child', parent: T, kind: 'product', displayName: 'Child' })
  await adminJson(op, 'POST', 'admin/stores', { id: 'p-sibling', parent: BASE, kind: 'ecosystem', displayName: 'Sibling', partner: { name: 'Partner', relation: 'reseller' } })
  for (const m of ['walk-a', 'walk-b']) await adminJson(op, 'POST', 'admin/models', { brandId: BASE, name: m, storeId: T, apiKeys: [v.apiKey], headers: PI_MODEL_HEADERS })
  const spare = await adminJson<{ key: { keyId: string } }>(op, 'POST', `admin/brands/${BASE}/keys`, { name: 'spare' })
  const [device, clone] = await generateDeviceKeys(2)
  const reg = await registerDevice(v.url, v.apiKey, { key: device!, brandId: BASE, model: 'walk-a', serial: 'WALK-1' })
  t.is(reg.status, 200)
  t.is((await registerDevice(v.url, v.apiKey, { key: clone!, brandId: BASE, model: 'walk-a', serial: 'WALK-1' })).status, 409)
  const alerts = await adminJson<{ alerts: Array<{ id: string; serial: string }> }>(op, 'GET', `admin/alerts?store=${T}`)
  t.is(alerts.alerts.length, 1)

  // keys to import: account-keys signed by the vault root, as the brand's store would issue them
  const rootId = (await v.vault.services.brands.rootId())!
  const rootKey = (await v.vault.keys.listKeys(rootId)).find((k) => k.purpose === 'root')!
  const rootSigner = await v.vault.keys.signer(rootKey.keyId)
  let imported = 0
  const newKey = async (): Promise<{ pem: string; accountKey: string }> => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }) as string
    const pub = loadPrivateKeyPem(pem).publicKey
    const ak = await signAssertion('account-key', { 'authority-id': rootId, 'account-id': BASE, name: `imported-${imported++}`, 'public-key-sha3-384': pub.id, since: formatRfc3339(Date.now() - 86_400_000) }, pub.encode(), rootSigner)
    return { pem, accountKey: ak.text() }
  }

  const store = v.vault.store
  const people: Person[] = []
  const now = Date.now()
  for (const placement of PLACEMENTS) {
    for (const role of ROLES) {
      const email = `${role}.${placement.id}@walk.example`
      await adminJson(op, 'PUT', `admin/stores/${placement.store}/members/${email}`, { role, inheritable: placement.inheritable })
      const person = (await store.people.getByEmail(email))!
      // a session as a login makes it (the login itself: test/vault-server/auth/login.test.ts)
      const cookie = randomBytes(32).toString('base64url')
      const hash = createHash('sha256').update(cookie).digest('hex')
      await store.sessions.create({ hash, personId: person.id, providerId: 'walk', createdAt: now, expiresAt: now + 3_600_000, idleExpiresAt: now + 3_600_000 })
      const token = `svpt_${randomBytes(32).toString('base64url')}`
      await store.tokens.put({ hash: createHash('sha256').update(token).digest('hex'), kind: 'personal', name: 'scoped', roles: [], personId: person.id, permissions: TOKEN_PERMISSIONS, stores: [placement.store], expiresAt: now + 86_400_000, createdAt: now })
      people.push({ email, role, placement, cookie, csrf: v.vault.services.admin.core.d.access.csrfToken(hash), token, tokenIds: [] })
    }
  }
  // the credentials that never get in, from a person who otherwise could do everything
  const adminPerson = people.find((p) => p.role === 'admin' && p.placement.id === 'own')!
  const admin = (await store.people.getByEmail(adminPerson.email))!
  const expired = `svpt_${randomBytes(32).toString('base64url')}`
  const revoked = `svpt_${randomBytes(32).toString('base64url')}`
  const hashOf = (s: string) => createHash('sha256').update(s).digest('hex')
  await store.tokens.put({ hash: hashOf(expired), kind: 'personal', name: 'expired', roles: [], personId: admin.id, permissions: ['*'], expiresAt: now - 1000, createdAt: now - 10_000 })
  await store.tokens.put({ hash: hashOf(revoked), kind: 'personal', name: 'revoked', roles: [], personId: admin.id, permissions: ['*'], expiresAt: now + 86_400_000, createdAt: now, revokedAt: now })
  const bad = {
    'expired token': { authorization: `Bearer ${expired}` },
    'revoked token': { authorization: `Bearer ${revoked}` },
    'device api-key': { 'api-key': v.apiKey },
    'no credential': {},
  }
  return { w: { v, op, n: 0, newKey, spareKey: spare.key.keyId, model: { brand: BASE, a: 'walk-a', b: 'walk-b', serial: 'WALK-1' }, alertId: alerts.alerts[0]!.id }, people, bad }
}

test('permissions: every admin route x role x store scope x caller kind gets exactly what the table says', async (t) => {
  t.timeout(900_000)
  // the literal table and route list here are the code's
  t.deepEqual(Object.fromEntries(ROLES.map((r) => [r, [...ROLE_PERMISSIONS[r]].sort()])), Object.fromEntries(ROLES.map((r) => [r, [...EXPECTED_ROLES[r]].sort()])))
  const { w, people, bad } = await setup(t)
  t.deepEqual(
    ADMIN_ROUTES.map((r) => `${r.method.toUpperCase()} ${r.path} ${r.permission}`).sort(),
    ROUTES.map((r) => `${r.method} ${r.spec} ${r.permission}`).sort(),
    'the walk covers every admin route, with the permission the route documents',
  )

  const counts: Record<string, number> = { allowed: 0, forbidden: 0, hidden: 0, unauthenticated: 0 }
  const wrong: string[] = []
  let cases = 0
  const call = async (route: RouteCase, headers: Record<string, string>, p?: Person, kind: 'session' | 'token' = 'session'): Promise<{ outcome: Outcome | 'other'; detail: string; body?: Record<string, unknown> }> => {
    let path = await route.path(w)
    if (path.endsWith('/SELF')) {
      // a token of the caller's own to revoke (the operator: an admin token made for it)
      const ownToken = `svpt_${randomBytes(32).toString('base64url')}`
      const hash = createHash('sha256').update(ownToken).digest('hex')
      const person = p ? await w.v.vault.store.people.getByEmail(p.email) : undefined
      await w.v.vault.store.tokens.put(person ? { hash, kind: 'personal', name: 'own', roles: [], personId: person.id, permissions: ['*'], expiresAt: Date.now() + 86_400_000, createdAt: Date.now() } : { hash, kind: 'admin', name: 'own', roles: ['admin'], createdAt: Date.now() })
      path = path.replace('SELF', hash.slice(0, 12))
    }
    const body = await route.body?.(w)
    const r = await httpRequest(endpoint(w.v.url, path), {
      method: route.method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      timeoutMs: 120_000,
      ...(route.stream ? { headOnly: true } : {}),
    })
    const c = classify(route, r)
    return { ...c, ...(c.outcome === 'allowed' && r.headers['content-type'] === 'application/json' ? { body: jsonOf(r) } : {}) }
  }
  const judge = (label: string, route: RouteCase, want: Outcome, got: { outcome: Outcome | 'other'; detail: string; body?: Record<string, unknown> }, shows?: boolean) => {
    cases++
    counts[want]!++
    if (got.outcome !== want) wrong.push(`${route.method} ${route.spec} [${label}]: expected ${want}, got ${got.outcome} (${got.detail})`)
    else if (route.shows && shows !== undefined && got.body && route.shows(got.body) !== shows) wrong.push(`${route.method} ${route.spec} [${label}]: the list ${shows ? 'lacks' : 'shows'} the target`)
  }

  for (const route of ROUTES) {
    // personal tokens belong to people: the operator's token makes none
    judge('operator', route, route.sessionOnly ? 'forbidden' : 'allowed', await call(route, { authorization: `Bearer ${w.v.adminToken}` }), true)
    for (const [kind, headers] of Object.entries(bad)) judge(kind, route, 'unauthenticated', await call(route, headers))
    for (const p of people) {
      const session = { cookie: `sv_session=${p.cookie}`, 'x-csrf-token': p.csrf }
      judge(`${p.role} in ${p.placement.id}, session`, route, expected(route, p, 'session'), await call(route, session, p, 'session'), expectedShows(route, p, 'session'))
      judge(`${p.role} in ${p.placement.id}, scoped token`, route, expected(route, p, 'token'), await call(route, { authorization: `Bearer ${p.token}` }, p, 'token'), expectedShows(route, p, 'token'))
    }
  }
  const tableCells = ROLES.length * new Set(Object.values(EXPECTED_ROLES).flat().concat(ROUTES.map((r) => r.permission).filter((x) => x !== 'self'))).size
  t.log(`permission table: ${tableCells} cells (${ROLES.length} roles x ${tableCells / ROLES.length} permissions); walk: ${ROUTES.length} routes, ${cases} cases: ${JSON.stringify(counts)}`)
  t.deepEqual(wrong, [])
  t.true(counts.allowed! > 100 && counts.forbidden! > 100 && counts.hidden! > 100 && counts.unauthenticated! > 100)
})

test('permissions: a state-changing call with a session cookie needs its CSRF token; a forged one is refused and nothing changes', async (t) => {
  const { w, people } = await setup(t)
  const p = people.find((x) => x.role === 'admin' && x.placement.id === 'own')!
  const path = `admin/stores/${T}`
  for (const csrf of [undefined, 'forged', people.find((x) => x !== p)!.csrf]) {
    const r = await httpRequest(endpoint(w.v.url, path), { method: 'PATCH', headers: { cookie: `sv_session=${p.cookie}`, 'content-type': 'application/json', ...(csrf ? { 'x-csrf-token': csrf } : {}) }, body: JSON.stringify({ displayName: 'forged' }) })
    t.is(r.status, 403)
    t.is(jsonOf<{ code: string }>(r).code, 'SV_CSRF_INVALID')
  }
  t.is((await adminJson<{ store: { displayName: string } }>(w.op, 'GET', path)).store.displayName, 'P')
  // GET needs none
  t.is((await httpRequest(endpoint(w.v.url, path), { headers: { cookie: `sv_session=${p.cookie}` } })).status, 200)
})
