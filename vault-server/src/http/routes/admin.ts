/**
 * The admin API under /v1/admin: for people (a login session or a personal
 * token), the operator (an admin token) and the CLI. Each route parses its
 * input (the schemas of shared/src/protocol/admin.ts), calls one operation
 * of the admin service, and answers. Who may call what is decided there
 * (services/admin/permissions.ts); `permission` below only documents it, for
 * docs/openapi.yaml and `vault-server roles`.
 */
import { Router, type Request, type Response } from 'express'
import { parse as parseCookie } from 'cookie'
import type { z } from 'zod'
import { AdminWire, SystemUserRequestSchema, VaultError, parseRequest } from '@sv/shared'
import type { AppDeps } from '../../app.js'
import { readJson, readOptionalJson } from '../body.js'
import { reqId, sendJson } from '../respond.js'
import { csvHeader, csvRow, jsonLine } from '../../services/log-format.js'
import type { Credentials, Principal } from '../../services/admin/access.js'
import type { AdminService, RequestContext } from '../../services/admin/admin-service.js'
import type { ScopedAuditQuery, ScopedLogQuery } from '../../services/admin/log-ops.js'
import { permissionTable } from '../../services/admin/permissions.js'
import { workOrderReportCsv } from '../../services/admin/work-order-ops.js'

/** The session cookie's name (set by the login routes, http/routes/auth.ts). */
export const SESSION_COOKIE = 'sv_session'

export interface AdminRouteSpec {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete'
  /** express path, under /v1/admin */
  path: string
  /** the permission the operation asks, or 'self' (any authenticated caller, on their own things) */
  permission: string
  summary: string
}

type Call = { p: Principal; ctx: RequestContext; req: Request; res: Response; s: AdminService; body: () => Promise<unknown>; optionalBody: () => Promise<unknown>; creds: Credentials }
type Handler = (c: Call) => Promise<{ status: number; body: unknown } | undefined>

/** Every admin route, with the permission its operation asks (docs, openapi test, roles command). */
export const ADMIN_ROUTES: AdminRouteSpec[] = []

function query(req: Request, k: string): string | undefined {
  const v = req.query[k]
  if (v === undefined) return undefined
  if (typeof v !== 'string' || v.length > 512) throw new VaultError('SV_REQUEST_INVALID', `query parameter ${k} must be given once`, { details: { field: k } })
  return v
}

function time(req: Request, k: string): number | undefined {
  const v = query(req, k)
  if (v === undefined) return undefined
  const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v)
  if (!Number.isFinite(t)) throw new VaultError('SV_REQUEST_INVALID', `${k} must be an ISO 8601 time or epoch milliseconds`, { details: { field: k } })
  return t
}

function flag(req: Request, k: string): boolean | undefined {
  const v = query(req, k)
  if (v === undefined) return undefined
  if (v !== 'true' && v !== 'false') throw new VaultError('SV_REQUEST_INVALID', `${k} must be true or false`, { details: { field: k } })
  return v === 'true'
}

function limit(req: Request): number | undefined {
  const v = query(req, 'limit')
  if (v === undefined) return undefined
  if (!/^\d{1,4}$/.test(v)) throw new VaultError('SV_REQUEST_INVALID', 'limit must be 1..1000', { details: { field: 'limit' } })
  return Number(v)
}

function order(req: Request): 'asc' | 'desc' | undefined {
  const v = query(req, 'order')
  if (v !== undefined && v !== 'asc' && v !== 'desc') throw new VaultError('SV_REQUEST_INVALID', 'order must be asc or desc', { details: { field: 'order' } })
  return v
}

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

function logQuery(req: Request): ScopedLogQuery {
  const outcome = query(req, 'outcome')
  if (outcome !== undefined && !(AdminWire.LOG_OUTCOME_IDS as readonly string[]).includes(outcome)) throw new VaultError('SV_REQUEST_INVALID', `outcome must be one of ${AdminWire.LOG_OUTCOME_IDS.join(', ')}`, { details: { field: 'outcome' } })
  return defined({
    store: query(req, 'store'),
    subtree: flag(req, 'subtree'),
    brandId: query(req, 'brand'),
    model: query(req, 'model'),
    serial: query(req, 'serial'),
    deviceKeyId: query(req, 'deviceKey'),
    outcome: outcome as ScopedLogQuery['outcome'],
    from: time(req, 'from'),
    to: time(req, 'to'),
    limit: limit(req),
    cursor: query(req, 'cursor'),
    order: order(req),
  })
}

function auditQuery(req: Request): ScopedAuditQuery {
  const outcome = query(req, 'outcome')
  if (outcome !== undefined && outcome !== 'ok' && outcome !== 'denied') throw new VaultError('SV_REQUEST_INVALID', 'outcome must be ok or denied', { details: { field: 'outcome' } })
  return defined({
    store: query(req, 'store'),
    subtree: flag(req, 'subtree'),
    brandId: query(req, 'brand'),
    actorId: query(req, 'actor'),
    action: query(req, 'action'),
    outcome: outcome as ScopedAuditQuery['outcome'],
    from: time(req, 'from'),
    to: time(req, 'to'),
    limit: limit(req),
    cursor: query(req, 'cursor'),
    order: order(req),
  })
}

/** Streams JSON lines or CSV to the response, minding back-pressure and a client that went away. */
async function stream<T>(res: Response, items: AsyncIterable<T>, format: 'jsonl' | 'csv', name: string, csv?: { header: string; row: (x: T) => string }): Promise<undefined> {
  res.status(200).setHeader('Content-Type', format === 'csv' ? 'text/csv' : 'application/x-ndjson')
  res.setHeader('Content-Disposition', `attachment; filename="${name}.${format}"`)
  if (format === 'csv') res.write(csv!.header)
  for await (const x of items) {
    const ok = res.write(format === 'csv' ? csv!.row(x) : jsonLine(x))
    if (!ok) await new Promise<void>((resolve) => res.once('drain', resolve))
    if (res.destroyed) return undefined
  }
  res.end()
  return undefined
}

function exportFormat(req: Request, allowCsv: boolean): 'jsonl' | 'csv' {
  const f = query(req, 'format') ?? 'jsonl'
  if (f === 'jsonl' || (allowCsv && f === 'csv')) return f
  throw new VaultError('SV_REQUEST_INVALID', allowCsv ? 'format must be jsonl or csv' : 'format must be jsonl', { details: { field: 'format' } })
}

const ok = (body: unknown, status = 200) => ({ status, body })
const param = (req: Request, k: string): string => req.params[k] as string

/** The body each route takes (docs/openapi.yaml is generated from these and ADMIN_ROUTES). */
export const ADMIN_REQUEST_SCHEMAS: Record<string, z.ZodType> = {
  'post /brands': AdminWire.CreateBrandRequest,
  'post /brands/import': AdminWire.ImportBrandRequest,
  'post /brands/:brand/keys': AdminWire.NewKeyRequest,
  'post /brands/:brand/keys/import': AdminWire.ImportKeyRequest,
  'post /keys/:keyId/enable': AdminWire.KeyStateRequest,
  'post /keys/:keyId/disable': AdminWire.KeyStateRequest,
  'post /stores': AdminWire.CreateStoreRequest,
  'patch /stores/:store': AdminWire.UpdateStoreRequest,
  'put /stores/:store/members/:email': AdminWire.SetMemberRequest,
  'post /tokens': AdminWire.CreateTokenRequest,
  'post /models': AdminWire.CreateModelRequest,
  'patch /models/:brand/:model': AdminWire.UpdateModelRequest,
  'post /models/:brand/:model/move': AdminWire.MoveModelRequest,
  'post /models/:brand/:model/api-keys': AdminWire.AddApiKeyRequest,
  'post /stores/:store/pivots': AdminWire.AllowPivotRequest,
  'post /stores/:store/work-orders': AdminWire.OpenWorkOrderRequest,
  'post /stores/:store/work-orders/:id/close': AdminWire.CloseWorkOrderRequest,
  'post /alerts/:id/acknowledge': AdminWire.AcknowledgeAlertRequest,
  'post /stores/:store/system-users': SystemUserRequestSchema,
  'post /stores/:store/pivot-requests/:requestId/accept': AdminWire.DecidePivotRequest,
  'post /stores/:store/pivot-requests/:requestId/reject': AdminWire.DecidePivotRequest,
}

const LOG_PARAMS = ['store', 'subtree', 'brand', 'model', 'serial', 'deviceKey', 'outcome', 'from', 'to', 'limit', 'cursor', 'order']
const AUDIT_PARAMS = ['store', 'subtree', 'brand', 'actor', 'action', 'outcome', 'from', 'to', 'limit', 'cursor', 'order']
/** The query parameters each route reads. */
export const ADMIN_QUERY_PARAMS: Record<string, string[]> = {
  'get /keys': ['brand'],
  'get /trust': ['brand'],
  'get /stores': ['brand'],
  'get /models': ['brand', 'store'],
  'post /models': ['dryRun'],
  'get /live': ['store', 'subtree'],
  'get /alerts': ['store', 'subtree', 'state'],
  'get /log': LOG_PARAMS,
  'get /log/export': [...LOG_PARAMS.filter((p) => p !== 'limit' && p !== 'cursor'), 'format'],
  'get /stores/:store/metrics': ['from', 'to', 'subtree'],
  'get /stores/:store/pivot-requests': ['status', 'limit'],
  'get /stores/:store/work-orders': ['model', 'status'],
  'get /stores/:store/work-orders/:id/report': ['format'],
  'get /audit': AUDIT_PARAMS,
  'get /audit/export': [...AUDIT_PARAMS.filter((p) => p !== 'limit' && p !== 'cursor'), 'format'],
}

interface RouteDef extends AdminRouteSpec {
  handler: Handler
}

const TABLE: RouteDef[] = []
function route(method: AdminRouteSpec['method'], path: string, permission: string, summary: string, handler: Handler): void {
  TABLE.push({ method, path, permission, summary, handler })
  ADMIN_ROUTES.push({ method, path, permission, summary })
}


  // --- the caller ---------------------------------------------------------------------
  route('get', '/me', 'self', 'who is calling, and what they hold in each store', async ({ s, body, optionalBody, p }) => ok(await s.people.me(p, s.csrfToken(p))))
  route('get', '/roles', 'self', 'the permission table (permission x role)', async ({ s }) => ok({ ...permissionTable(), routes: ADMIN_ROUTES }))

  // --- brands and keys ------------------------------------------------------------------
  route('get', '/brands', 'store.read', 'brands the caller can see a store of', async ({ s, body, optionalBody, p }) => ok({ brands: await s.catalog.listBrands(p) }))
  route('post', '/brands', 'brand.create', 'a new brand under the vault root, with its key and base store', async ({ s, body, optionalBody, p, ctx, req }) => ok(await s.catalog.createBrand(p, ctx, parseRequest(AdminWire.CreateBrandRequest, await body())), 201))
  route('post', '/brands/import', 'brand.create', 'import a store-registered brand: key, account, account-key', async ({ s, body, optionalBody, p, ctx, req }) => ok(await s.catalog.importBrand(p, ctx, parseRequest(AdminWire.ImportBrandRequest, await body())), 201))
  route('get', '/brands/:brand/keys', 'key.read', "the brand's signing keys, with their account-key assertions and the models using each", async ({ s, body, optionalBody, p, ctx, req }) => ok({ keys: await s.catalog.listKeys(p, ctx, param(req, 'brand')) }))
  route('post', '/brands/:brand/keys', 'key.manage', 'generate another key of a vault-root brand (rotation)', async ({ s, body, optionalBody, p, ctx, req }) => ok({ key: await s.catalog.generateKey(p, ctx, param(req, 'brand'), parseRequest(AdminWire.NewKeyRequest, await body()).name) }, 201))
  route('post', '/brands/:brand/keys/import', 'key.manage', 'import another key of the brand with its account-key', async ({ s, body, optionalBody, p, ctx, req }) => ok({ key: await s.catalog.importKey(p, ctx, param(req, 'brand'), parseRequest(AdminWire.ImportKeyRequest, await body())) }, 201))
  route('get', '/keys', 'key.read', 'every signing key the caller may read, with its account-key assertion and the models using it', async ({ s, body, optionalBody, p, ctx, req }) => ok({ keys: await s.catalog.listKeys(p, ctx, query(req, 'brand')) }))
  for (const [action, enabled] of [['enable', true], ['disable', false]] as const) {
    route('post', `/keys/:keyId/${action}`, 'key.manage', `${action} a signing key (with a reason${enabled ? '' : ', required'})`, async ({ s, body, optionalBody, p, ctx, req }) => {
      const b = parseRequest(AdminWire.KeyStateRequest, await optionalBody())
      return ok({ key: await s.catalog.setKeyEnabled(p, ctx, param(req, 'keyId'), enabled, b.reason) })
    })
  }
  route('get', '/trust', 'model.download', 'trust anchors (and a brand\'s chain) for device images', async ({ s, body, optionalBody, p, ctx, req, res }) => {
    res.status(200).setHeader('Content-Type', 'application/x.ubuntu.assertion')
    res.end(await s.catalog.trustExport(p, ctx, query(req, 'brand')))
    return undefined
  })

  // --- stores and people -------------------------------------------------------------------
  route('get', '/stores', 'store.read', 'stores the caller can see', async ({ s, body, optionalBody, p, req }) => ok({ stores: await s.people.listStores(p, defined({ brandId: query(req, 'brand') })) }))
  route('post', '/stores', 'store.manage', 'a product or ecosystem sub-store (store.manage in the parent)', async ({ s, body, optionalBody, p, ctx, req }) => ok({ store: await s.people.createStore(p, ctx, parseRequest(AdminWire.CreateStoreRequest, await body())) }, 201))
  route('get', '/stores/:store', 'store.read', 'one store', async ({ s, body, optionalBody, p, ctx, req }) => ok({ store: await s.people.getStore(p, ctx, param(req, 'store')) }))
  route('patch', '/stores/:store', 'store.manage', "change a store's name, partner or review setting", async ({ s, body, optionalBody, p, ctx, req }) => ok({ store: await s.people.updateStore(p, ctx, param(req, 'store'), parseRequest(AdminWire.UpdateStoreRequest, await body())) }))
  route('get', '/stores/:store/members', 'member.read', "the store's people and roles", async ({ s, body, optionalBody, p, ctx, req }) => ok({ members: await s.people.listMembers(p, ctx, param(req, 'store')) }))
  route('put', '/stores/:store/members/:email', 'member.manage', 'invite a person or change their role in the store', async ({ s, body, optionalBody, p, ctx, req }) => ok({ member: await s.people.setMember(p, ctx, param(req, 'store'), param(req, 'email'), parseRequest(AdminWire.SetMemberRequest, await body())) }))
  route('delete', '/stores/:store/members/:email', 'member.manage', "remove a person's role in the store", async ({ s, body, optionalBody, p, ctx, req }) => ok(await s.people.removeMember(p, ctx, param(req, 'store'), param(req, 'email'))))
  route('get', '/stores/:store/tokens', 'token.manage', "personal tokens of the store's people", async ({ s, body, optionalBody, p, ctx, req }) => ok({ tokens: await s.people.listStoreTokens(p, ctx, param(req, 'store')) }))
  route('get', '/people', 'people.read', 'every person of the vault', async ({ s, body, optionalBody, p, ctx }) => ok({ people: await s.people.listPeople(p, ctx) }))

  // --- personal tokens -------------------------------------------------------------------------
  route('get', '/tokens', 'self', "the caller's own tokens", async ({ s, body, optionalBody, p }) => ok({ tokens: await s.people.listTokens(p) }))
  route('post', '/tokens', 'self', 'a personal token (a subset of your permissions and stores; shown once)', async ({ s, body, optionalBody, p, ctx, req }) => ok(await s.people.createToken(p, ctx, parseRequest(AdminWire.CreateTokenRequest, await body())), 201))
  route('delete', '/tokens/:id', 'self', 'revoke a token: your own, or (token.manage) one of your store\'s people', async ({ s, body, optionalBody, p, ctx, req }) => ok({ token: await s.people.revokeToken(p, ctx, param(req, 'id')) }))

  // --- models ---------------------------------------------------------------------------------------
  route('get', '/models', 'model.read', 'models the caller may read (filters: brand, store)', async ({ s, body, optionalBody, p, ctx, req }) => ok({ models: await s.catalog.listModels(p, ctx, defined({ brandId: query(req, 'brand'), storeId: query(req, 'store') })) }))
  route('post', '/models', 'model.manage', 'a model and its signed model assertion (API key shown once); ?dryRun=true checks it and stores nothing', async ({ s, body, p, ctx, req }) => {
    const dryRun = flag(req, 'dryRun') === true
    const out = await s.catalog.createModel(p, ctx, parseRequest(AdminWire.CreateModelRequest, await body()), { dryRun })
    return dryRun ? ok({ valid: true, model: out.model }) : ok(out, 201)
  })
  route('get', '/models/:brand/:model', 'model.read', 'one model', async ({ s, body, optionalBody, p, ctx, req }) => ok({ model: await s.catalog.getModel(p, ctx, param(req, 'brand'), param(req, 'model')) }))
  route('patch', '/models/:brand/:model', 'model.manage', 'change a model (re-signs its assertion when headers or key change)', async ({ s, body, optionalBody, p, ctx, req }) => ok(await s.catalog.updateModel(p, ctx, param(req, 'brand'), param(req, 'model'), parseRequest(AdminWire.UpdateModelRequest, await body()))))
  route('post', '/models/:brand/:model/move', 'model.manage', 'move a model to another store of its brand (model.manage in both)', async ({ s, body, optionalBody, p, ctx, req }) => ok({ model: await s.catalog.moveModel(p, ctx, param(req, 'brand'), param(req, 'model'), parseRequest(AdminWire.MoveModelRequest, await body()).storeId) }))
  route('get', '/models/:brand/:model/assertion', 'model.download', 'account, account-key and model assertion, to build images', async ({ s, body, optionalBody, p, ctx, req, res }) => {
    const stream = await s.catalog.modelAssertions(p, ctx, param(req, 'brand'), param(req, 'model'))
    res.status(200).setHeader('Content-Type', 'application/x.ubuntu.assertion')
    res.setHeader('Content-Disposition', `attachment; filename="${param(req, 'brand')}-${param(req, 'model')}.assert"`)
    res.end(stream)
    return undefined
  })
  route('post', '/models/:brand/:model/api-keys', 'apikey.manage', 'a new API key for the model (shown once)', async ({ s, body, optionalBody, p, ctx, req }) => ok(await s.catalog.addApiKey(p, ctx, param(req, 'brand'), param(req, 'model'), parseRequest(AdminWire.AddApiKeyRequest, await optionalBody()).apiKey), 201))
  route('delete', '/models/:brand/:model/api-keys/:hash', 'apikey.manage', 'remove an API key (by its sha256)', async ({ s, body, optionalBody, p, ctx, req }) => ok({ model: await s.catalog.removeApiKey(p, ctx, param(req, 'brand'), param(req, 'model'), param(req, 'hash')) }))

  // --- serials and the signing log ----------------------------------------------------------------------
  route('get', '/serials/:brand/:model/:serial', 'serial.read', 'the binding of a serial', async ({ s, body, optionalBody, p, ctx, req }) => {
    const b = await s.catalog.getSerial(p, ctx, param(req, 'brand'), param(req, 'model'), param(req, 'serial'))
    const { issuedAtIso, ...binding } = b
    return ok({ binding: { ...binding, issuedAt: issuedAtIso } })
  })
  route('post', '/serials/:brand/:model/:serial/release', 'serial.release', 'let the serial register again with a new device key', async ({ s, body, optionalBody, p, ctx, req }) => {
    await s.catalog.releaseSerial(p, ctx, param(req, 'brand'), param(req, 'model'), param(req, 'serial'))
    return ok({ released: true })
  })
  route('get', '/log', 'log.read', 'the signing log of a store (filters, cursor paging)', async ({ s, body, optionalBody, p, ctx, req }) => ok(await s.logs.queryLog(p, ctx, logQuery(req))))
  route('get', '/log/export', 'log.export', 'the signing log of a store, streamed (jsonl or csv)', async ({ s, body, optionalBody, p, ctx, req, res }) => {
    const format = exportFormat(req, true)
    const { cursor: _c, limit: _l, ...q } = logQuery(req)
    return stream(res, await s.logs.exportLog(p, ctx, q), format, 'signing-log', { header: csvHeader(), row: csvRow })
  })
  // --- the Live page: provisioning as it happens, clone alerts -------------------------------------------
  route('get', '/live', 'log.read', "server-sent events of the store's provisioning (hello, entry, alert, ack, gap, end)", async ({ s, p, ctx, req, res, creds }) => {
    const q = defined({ store: query(req, 'store'), subtree: flag(req, 'subtree') })
    // every 30 s: the session or token still holds, and so does log.read in the store
    // (watching is not activity: the session's idle time runs on)
    const revalidate = () => s.authenticate({ ...creds, method: 'GET', touch: false }).then(
      (again) => s.live.stillAllowed(again, ctx, q),
      (e: unknown) => !(e instanceof VaultError && e.status < 500),
    )
    await s.live.openLive(p, ctx, q, res, revalidate)
    return undefined
  })
  route('get', '/alerts', 'log.read', 'clone alerts of the store (a serial offered with another device key), last 7 days', async ({ s, p, ctx, req }) => {
    const state = query(req, 'state')
    if (state !== undefined && state !== 'open' && state !== 'all') throw new VaultError('SV_REQUEST_INVALID', 'state must be open or all', { details: { field: 'state' } })
    return ok({ alerts: await s.live.listAlerts(p, ctx, defined({ store: query(req, 'store'), subtree: flag(req, 'subtree'), state })) })
  })
  route('post', '/alerts/:id/acknowledge', 'alert.acknowledge', 'acknowledge a clone alert (with an optional note)', async ({ s, optionalBody, p, ctx, req }) => ok({ alert: await s.live.acknowledgeAlert(p, ctx, param(req, 'id'), parseRequest(AdminWire.AcknowledgeAlertRequest, await optionalBody()).note) }))
  route('get', '/stores/:store/metrics', 'metrics.read', "the store's registration figures per model (from, to, subtree)", async ({ s, body, optionalBody, p, ctx, req }) => ok(await s.logs.storeMetrics(p, ctx, param(req, 'store'), defined({ from: time(req, 'from'), to: time(req, 'to'), subtree: flag(req, 'subtree') }))))

  // --- pivots ---------------------------------------------------------------------------------------------
  route('get', '/stores/:store/pivots', 'pivot.read', 'pivot rules into and out of the store', async ({ s, body, optionalBody, p, ctx, req }) => ok({ pivots: await s.logs.listPivots(p, ctx, param(req, 'store')) }))
  route('post', '/stores/:store/pivots', 'pivot.manage', 'allow devices of a model to move to a model of this store (pivot.manage in both stores)', async ({ s, body, optionalBody, p, ctx, req }) => ok({ pivot: await s.logs.allowPivot(p, ctx, param(req, 'store'), parseRequest(AdminWire.AllowPivotRequest, await body())) }, 201))
  route('delete', '/stores/:store/pivots/:id', 'pivot.manage', 'remove a pivot rule', async ({ s, body, optionalBody, p, ctx, req }) => ok(await s.logs.removePivot(p, ctx, param(req, 'store'), param(req, 'id'))))
  route('get', '/stores/:store/pivot-requests', 'pivot.read', 'pivots waiting for (or decided by) a reviewer', async ({ s, body, optionalBody, p, ctx, req }) => {
    const status = query(req, 'status')
    if (status !== undefined && !['pending', 'accepted', 'rejected'].includes(status)) throw new VaultError('SV_REQUEST_INVALID', 'status must be pending, accepted or rejected', { details: { field: 'status' } })
    return ok({ requests: await s.logs.listPivotRequests(p, ctx, param(req, 'store'), status as 'pending' | undefined, limit(req)) })
  })
  for (const [action, accept] of [['accept', true], ['reject', false]] as const) {
    route('post', `/stores/:store/pivot-requests/:requestId/${action}`, 'pivot.review', `${action} a pivot waiting for review`, async ({ s, body, optionalBody, p, ctx, req }) => ok({ request: await s.logs.decidePivot(p, ctx, param(req, 'store'), param(req, 'requestId'), accept, parseRequest(AdminWire.DecidePivotRequest, await optionalBody()).reason) }))
  }

  // --- work orders ----------------------------------------------------------------------------------------
  route('get', '/stores/:store/work-orders', 'workorder.read', "the store's work orders (model, status)", async ({ s, p, ctx, req }) => {
    const status = query(req, 'status')
    if (status !== undefined && !['open', 'closed', 'exhausted'].includes(status)) throw new VaultError('SV_REQUEST_INVALID', 'status must be open, closed or exhausted', { details: { field: 'status' } })
    return ok({ workOrders: await s.workOrders.list(p, ctx, param(req, 'store'), defined({ model: query(req, 'model'), status: status as 'open' | undefined })) })
  })
  route('post', '/stores/:store/work-orders', 'workorder.manage', 'open a work order for a model of the store: planned quantity, serials (list, range or assign), stations, validity window', async ({ s, body, p, ctx, req }) =>
    ok({ workOrder: await s.workOrders.open(p, ctx, param(req, 'store'), parseRequest(AdminWire.OpenWorkOrderRequest, await body())) }, 201),
  )
  route('get', '/stores/:store/work-orders/:id', 'workorder.read', 'one work order', async ({ s, p, ctx, req }) => ok({ workOrder: await s.workOrders.get(p, ctx, param(req, 'store'), param(req, 'id')) }))
  route('post', '/stores/:store/work-orders/:id/close', 'workorder.manage', 'close an open work order (its report stays)', async ({ s, optionalBody, p, ctx, req }) =>
    ok({ workOrder: await s.workOrders.close(p, ctx, param(req, 'store'), param(req, 'id'), parseRequest(AdminWire.CloseWorkOrderRequest, await optionalBody()).reason) }),
  )
  route('get', '/stores/:store/work-orders/:id/report', 'workorder.read', 'the reconciliation of a work order: planned, provisioned, refused, retried, duplicates, outstanding (format=json or csv)', async ({ s, p, ctx, req, res }) => {
    const format = query(req, 'format') ?? 'json'
    if (format !== 'json' && format !== 'csv') throw new VaultError('SV_REQUEST_INVALID', 'format must be json or csv', { details: { field: 'format' } })
    const report = await s.workOrders.report(p, ctx, param(req, 'store'), param(req, 'id'))
    if (format === 'json') return ok(report)
    res.status(200).setHeader('Content-Type', 'text/csv')
    res.setHeader('Content-Disposition', `attachment; filename="work-order-${report.workOrder.id}.csv"`)
    res.end(workOrderReportCsv(report))
    return undefined
  })

  // --- system users --------------------------------------------------------------------------------------
  route('post', '/stores/:store/system-users', 'system-user.sign', 'sign a system-user assertion for models of the store (the password is hashed, never kept)', async ({ s, body, optionalBody, p, ctx, req }) =>
    ok(await s.catalog.signSystemUser(p, ctx, param(req, 'store'), await body()), 201),
  )

  // --- audit ------------------------------------------------------------------------------------------------
  route('get', '/audit', 'audit.read', 'the audit log of a store (filters, cursor paging)', async ({ s, body, optionalBody, p, ctx, req }) => ok(await s.logs.queryAudit(p, ctx, auditQuery(req))))
  route('get', '/audit/export', 'audit.read', 'the audit log of a store, streamed (jsonl)', async ({ s, body, optionalBody, p, ctx, req, res }) => {
    exportFormat(req, false)
    const { cursor: _c, limit: _l, ...q } = auditQuery(req)
    return stream(res, await s.logs.exportAudit(p, ctx, q), 'jsonl', 'audit-log')
  })
  route('get', '/audit/verify', 'audit.verify', 'check the whole audit hash chain', async ({ s, body, optionalBody, p, ctx }) => ok(await s.logs.verifyAudit(p, ctx)))


/** The admin routes on an express router, each: authenticate, parse, call, answer. */
export function adminRoutes(deps: AppDeps): Router {
  const r = Router()
  const { admin } = deps.services
  const limit = deps.config.limits.adminBodyBytes
  for (const def of TABLE) {
    r[def.method](`/v1/admin${def.path}`, async (req: Request, res: Response) => {
      const cookies = typeof req.headers.cookie === 'string' && req.headers.cookie.length < 8192 ? parseCookie(req.headers.cookie) : {}
      const csrf = req.headers['x-csrf-token']
      const creds: Credentials = {
        ...(typeof req.headers.authorization === 'string' ? { authorization: req.headers.authorization } : {}),
        ...(cookies[SESSION_COOKIE] !== undefined ? { session: cookies[SESSION_COOKIE] } : {}),
        ...(typeof csrf === 'string' ? { csrf } : {}),
        method: req.method,
      }
      const p = await admin.authenticate(creds)
      ;(req as Request & { svActor?: string }).svActor = p.kind === 'operator' ? `token:${p.token.name}` : p.person.email
      const ctx: RequestContext = { requestId: reqId(req), transport: 'https', ...(req.socket.remoteAddress ? { ip: req.socket.remoteAddress } : {}), ...(typeof req.headers['user-agent'] === 'string' ? { userAgent: req.headers['user-agent'] } : {}) }
      const out = await def.handler({ p, ctx, req, res, s: admin, body: () => readJson(req, limit), optionalBody: async () => (await readOptionalJson(req, limit)) ?? {}, creds })
      if (out) sendJson(res, out.status, out.body)
    })
  }
  return r
}
