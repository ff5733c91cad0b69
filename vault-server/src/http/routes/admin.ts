/**
 * The admin API under /v1/admin, for ops staff and the CLI. Bearer tokens
 * (made by `vault-server init` / `vault-server token create`); a token has
 * roles, and for now every admin route needs the `admin` role (the store
 * roles — Store Administrator, Publisher, Collaborator, Reviewer, Viewer —
 * map onto these routes later).
 */
import { Router, type NextFunction, type Request, type Response } from 'express'
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { VaultError, type HeaderValue } from '@sv/shared'
import type { AppDeps } from '../../app.js'
import { readJson } from '../body.js'
import { sendJson } from '../respond.js'
import type { LogQuery, ModelRecord } from '../../store/store.js'
import { parseSerialPolicyFlag } from '../../services/serial-template.js'
import { csvHeader, csvRow, jsonLine } from '../../services/log-format.js'

function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body)
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`)
    throw new VaultError('SV_REQUEST_INVALID', `invalid request: ${issues.join('; ')}`, { details: { issues } })
  }
  return r.data
}

const headerValue: z.ZodType<HeaderValue> = z.lazy(() => z.union([z.string(), z.array(headerValue), z.record(z.string(), headerValue)]))
const policy = z.string().max(200)

const CreateBrand = z.object({ id: z.string().min(2).max(32), displayName: z.string().min(1).max(200) }).strict()
const ImportBrand = z
  .object({
    pem: z.string().min(1).max(64 * 1024),
    account: z.string().min(1).max(64 * 1024),
    accountKey: z.string().min(1).max(64 * 1024),
    trusted: z.array(z.string().max(256 * 1024)).max(16).optional(),
    chain: z.array(z.string().max(256 * 1024)).max(16).optional(),
    skipChainCheck: z.boolean().optional(),
  })
  .strict()
const CreateModel = z
  .object({
    brandId: z.string().min(1),
    name: z.string().min(1).max(128),
    signingKeyId: z.string().length(64).optional(),
    apiKeys: z.array(z.string()).max(32).optional(),
    serialPolicy: policy.optional(),
    duplicates: z.enum(['refuse', 'reissue']).optional(),
    headers: z.record(z.string(), headerValue).optional(),
  })
  .strict()
const UpdateModel = z
  .object({
    signingKeyId: z.string().length(64).optional(),
    addApiKeys: z.array(z.string()).max(32).optional(),
    removeApiKeyHashes: z.array(z.string().length(64)).max(32).optional(),
    serialPolicy: policy.optional(),
    duplicates: z.enum(['refuse', 'reissue']).optional(),
    headers: z.record(z.string(), headerValue).optional(),
  })
  .strict()
const NewKey = z.object({ name: z.string().min(1).max(64) }).strict()

/** What the admin API shows of a model: never the API keys themselves. */
function modelView(m: ModelRecord): Record<string, unknown> {
  return {
    brandId: m.brandId,
    name: m.name,
    signingKeyId: m.signingKeyId,
    apiKeyHashes: m.apiKeyHashes,
    serialPolicy: m.serialPolicy,
    duplicatePolicy: m.duplicatePolicy,
    revision: m.revision,
    modelAssertion: m.modelAssertion,
    createdAt: new Date(m.createdAt).toISOString(),
    updatedAt: new Date(m.updatedAt).toISOString(),
  }
}

function logQuery(q: Request['query']): LogQuery {
  const str = (k: string): string | undefined => {
    const v = q[k]
    if (v === undefined) return undefined
    if (typeof v !== 'string' || v.length > 512) throw new VaultError('SV_REQUEST_INVALID', `query parameter ${k} must be given once`, { details: { field: k } })
    return v
  }
  const time = (k: string): number | undefined => {
    const v = str(k)
    if (v === undefined) return undefined
    const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v)
    if (!Number.isFinite(t)) throw new VaultError('SV_REQUEST_INVALID', `${k} must be an ISO 8601 time or epoch milliseconds`, { details: { field: k } })
    return t
  }
  const out: LogQuery = {}
  const brand = str('brand')
  const model = str('model')
  const serial = str('serial')
  const outcome = str('outcome')
  const cursor = str('cursor')
  const order = str('order')
  const limit = str('limit')
  const from = time('from')
  const to = time('to')
  if (brand) out.brandId = brand
  if (model) out.model = model
  if (serial) out.serial = serial
  if (outcome) {
    if (!['issued', 'reissued', 'retried', 'refused'].includes(outcome)) throw new VaultError('SV_REQUEST_INVALID', 'outcome must be issued, reissued, retried or refused', { details: { field: 'outcome' } })
    out.outcome = outcome as LogQuery['outcome']
  }
  if (cursor) out.cursor = cursor
  if (order) {
    if (order !== 'asc' && order !== 'desc') throw new VaultError('SV_REQUEST_INVALID', 'order must be asc or desc', { details: { field: 'order' } })
    out.order = order
  }
  if (limit) {
    if (!/^\d{1,4}$/.test(limit)) throw new VaultError('SV_REQUEST_INVALID', 'limit must be 1..1000', { details: { field: 'limit' } })
    out.limit = Number(limit)
  }
  if (from !== undefined) out.from = from
  if (to !== undefined) out.to = to
  return out
}

export function adminRoutes(deps: AppDeps): Router {
  const r = Router()
  const { services, store, config } = deps
  const body = (req: Request) => readJson(req, config.limits.adminBodyBytes)

  r.use('/v1/admin', async (req: Request, _res: Response, next: NextFunction) => {
    const auth = req.headers.authorization
    const m = typeof auth === 'string' ? /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(auth) : null
    if (!m) {
      if (auth === undefined) return next(new VaultError('SV_AUTH_REQUIRED', 'admin routes need "Authorization: Bearer <token>"'))
      return next(new VaultError('SV_AUTH_INVALID', 'the Authorization header is not "Bearer <token>" with a well-formed token'))
    }
    const token = await store.getToken(createHash('sha256').update(m[1]!).digest('hex'))
    if (!token) return next(new VaultError('SV_AUTH_INVALID', 'the bearer token is not valid'))
    if (!token.roles.includes('admin')) return next(new VaultError('SV_FORBIDDEN', 'this token may not use the admin API', { details: { roles: token.roles } }))
    ;(req as Request & { svActor?: string }).svActor = token.name
    next()
  })

  r.get('/v1/admin/brands', async (_req, res) => sendJson(res, 200, { brands: (await services.brands.listBrands()).map((b) => ({ ...b, createdAt: new Date(b.createdAt).toISOString() })) }))
  r.post('/v1/admin/brands', async (req, res) => {
    const b = parse(CreateBrand, await body(req))
    const { brand, key } = await services.brands.createBrand(b)
    services.signing.invalidate()
    sendJson(res, 201, { brand: { ...brand, createdAt: new Date(brand.createdAt).toISOString() }, key: { keyId: key.keyId, name: key.name, bits: key.bits } })
  })
  r.post('/v1/admin/brands/import', async (req, res) => {
    const b = parse(ImportBrand, await body(req))
    const input: Parameters<typeof services.brands.importBrand>[0] = { pem: b.pem, account: b.account, accountKey: b.accountKey }
    if (b.trusted) input.trusted = b.trusted
    if (b.chain) input.chain = b.chain
    if (b.skipChainCheck) input.skipChainCheck = true
    const { brand, key } = await services.brands.importBrand(input)
    services.signing.invalidate()
    sendJson(res, 201, { brand: { id: brand.id, displayName: brand.displayName, origin: brand.origin }, key: { keyId: key.keyId, name: key.name, bits: key.bits } })
  })
  r.post('/v1/admin/brands/:brand/keys', async (req, res) => {
    const b = parse(NewKey, await body(req))
    const key = await services.brands.addBrandKey(req.params.brand!, b.name)
    sendJson(res, 201, { key: { keyId: key.keyId, name: key.name, bits: key.bits, accountKeyAssertion: key.accountKeyAssertion } })
  })
  r.get('/v1/admin/keys', async (req, res) => {
    const account = typeof req.query.account === 'string' ? req.query.account : undefined
    const keys = await services.keys.listKeys(account)
    sendJson(res, 200, { keys: keys.map((k) => ({ keyId: k.keyId, accountId: k.accountId, purpose: k.purpose, name: k.name, bits: k.bits, enabled: k.enabled, createdAt: new Date(k.createdAt).toISOString() })) })
  })
  for (const [action, enabled] of [['enable', true], ['disable', false]] as const) {
    r.post(`/v1/admin/keys/:keyId/${action}`, async (req, res) => {
      await services.keys.setEnabled(req.params.keyId!, enabled)
      services.signing.invalidate()
      sendJson(res, 200, { keyId: req.params.keyId, enabled })
    })
  }

  r.get('/v1/admin/models', async (req, res) => {
    const brand = typeof req.query.brand === 'string' ? req.query.brand : undefined
    sendJson(res, 200, { models: (await services.models.list(brand)).map(modelView) })
  })
  r.post('/v1/admin/models', async (req, res) => {
    const b = parse(CreateModel, await body(req))
    const { model, apiKeys } = await services.models.create({
      brandId: b.brandId,
      name: b.name,
      ...(b.signingKeyId ? { signingKeyId: b.signingKeyId } : {}),
      ...(b.apiKeys ? { apiKeys: b.apiKeys } : {}),
      ...(b.serialPolicy ? { serialPolicy: parseSerialPolicyFlag(b.serialPolicy) } : {}),
      ...(b.duplicates ? { duplicatePolicy: b.duplicates } : {}),
      ...(b.headers ? { headers: b.headers } : {}),
    })
    sendJson(res, 201, { model: modelView(model), apiKeys })
  })
  r.get('/v1/admin/models/:brand/:model', async (req, res) => sendJson(res, 200, { model: modelView(await services.models.get(req.params.brand!, req.params.model!)) }))
  r.patch('/v1/admin/models/:brand/:model', async (req, res) => {
    const b = parse(UpdateModel, await body(req))
    const { model, apiKeys } = await services.models.update(req.params.brand!, req.params.model!, {
      ...(b.signingKeyId ? { signingKeyId: b.signingKeyId } : {}),
      ...(b.addApiKeys ? { addApiKeys: b.addApiKeys } : {}),
      ...(b.removeApiKeyHashes ? { removeApiKeyHashes: b.removeApiKeyHashes } : {}),
      ...(b.serialPolicy ? { serialPolicy: parseSerialPolicyFlag(b.serialPolicy) } : {}),
      ...(b.duplicates ? { duplicatePolicy: b.duplicates } : {}),
      ...(b.headers ? { headers: b.headers } : {}),
    })
    services.signing.invalidate()
    sendJson(res, 200, { model: modelView(model), apiKeys })
  })

  r.get('/v1/admin/serials/:brand/:model/:serial', async (req, res) => {
    const b = await store.getSerialBinding(req.params.brand!, req.params.model!, req.params.serial!)
    if (!b) throw new VaultError('SV_SERIAL_NOT_FOUND', 'no such serial binding', { details: { serial: req.params.serial } })
    sendJson(res, 200, { binding: { ...b, issuedAt: new Date(b.issuedAt).toISOString() } })
  })
  r.post('/v1/admin/serials/:brand/:model/:serial/release', async (req, res) => {
    await store.releaseSerial(req.params.brand!, req.params.model!, req.params.serial!)
    sendJson(res, 200, { released: true })
  })

  r.get('/v1/admin/log', async (req, res) => {
    const page = await store.queryLog(logQuery(req.query))
    sendJson(res, 200, { entries: page.entries.map((e) => ({ ...e, time: new Date(e.time).toISOString() })), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) })
  })
  r.get('/v1/admin/log/export', async (req, res) => {
    const format = req.query.format === 'csv' ? 'csv' : req.query.format === undefined || req.query.format === 'jsonl' ? 'jsonl' : undefined
    if (!format) throw new VaultError('SV_REQUEST_INVALID', 'format must be jsonl or csv', { details: { field: 'format' } })
    const { cursor: _c, limit: _l, ...q } = logQuery(req.query)
    res.status(200).set('Content-Type', format === 'csv' ? 'text/csv' : 'application/x-ndjson')
    res.set('Content-Disposition', `attachment; filename="signing-log.${format === 'csv' ? 'csv' : 'jsonl'}"`)
    if (format === 'csv') res.write(csvHeader())
    for await (const e of store.exportLog(q)) {
      const ok = res.write(format === 'csv' ? csvRow(e) : jsonLine(e))
      if (!ok) await new Promise<void>((resolve) => res.once('drain', resolve))
      if (res.destroyed) return
    }
    res.end()
  })

  r.get('/v1/admin/trust', async (req, res) => {
    const brand = typeof req.query.brand === 'string' ? req.query.brand : undefined
    res.status(200).set('Content-Type', 'application/x.ubuntu.assertion').end(await services.brands.trustExport(brand))
  })

  return r
}
