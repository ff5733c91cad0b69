/**
 * The admin API's wire protocol: request bodies and answers as zod schemas,
 * with their TypeScript types inferred. The vault's routes parse with the
 * request schemas; the CLI, the dashboard and the tests read answers with
 * the answer types (and can parse with the schemas). docs/openapi.yaml
 * describes the same shapes for HTTP clients.
 *
 * Times on the wire are ISO 8601 strings (UTC). Secrets appear only in the
 * answer that creates them (`apiKeys`, `token`), never again.
 */
import { z } from 'zod'
import { VaultError } from '../errors.js'

// --- shared pieces ---------------------------------------------------------------------

export type HeaderValueWire = string | HeaderValueWire[] | { [k: string]: HeaderValueWire }
export const HeaderValueSchema: z.ZodType<HeaderValueWire> = z.lazy(() => z.union([z.string().max(65536), z.array(HeaderValueSchema).max(1000), z.record(z.string().max(128), HeaderValueSchema)]))

export const ROLE_IDS = ['admin', 'publisher', 'collaborator', 'reviewer', 'viewer'] as const
export const RoleSchema = z.enum(ROLE_IDS)
export type RoleId = z.infer<typeof RoleSchema>

/** A store id: it is the model assertion's `store` header. */
export const STORE_ID_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?$/
const storeId = z.string().regex(STORE_ID_PATTERN, 'a store id is 1-64 of A-Z a-z 0-9 and inner -')
const email = z.string().max(254).regex(/^[^\s@<>()[\]\\,;:"]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$/, 'an e-mail address')
const reason = z.string().min(1).max(500)
const pem = z.string().min(1).max(64 * 1024)
const assertionText = z.string().min(1).max(256 * 1024)
const modelName = z.string().min(1).max(128)

/**
 * Parses a request body with `schema`; SV_REQUEST_INVALID with every issue
 * (`details.issues`, one "path: message" each) otherwise.
 */
export function parseRequest<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body)
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`)
    throw new VaultError('SV_REQUEST_INVALID', `invalid request: ${issues.join('; ')}`, { details: { issues } })
  }
  return r.data
}

// --- requests --------------------------------------------------------------------------------

/** `rootId`: the account id of the vault-held root when this brand is the first and the root is made now (ignored once a root exists). */
export const CreateBrandRequest = z.object({ id: z.string().min(2).max(32), displayName: z.string().min(1).max(200), storeId: storeId.optional(), rootId: z.string().min(2).max(32).optional() }).strict()
export const ImportBrandRequest = z
  .object({
    pem,
    account: assertionText,
    accountKey: assertionText,
    trusted: z.array(assertionText).max(16).optional(),
    chain: z.array(assertionText).max(16).optional(),
    skipChainCheck: z.boolean().optional(),
    storeId: storeId.optional(),
  })
  .strict()
/** Another key of an existing brand: its PEM and the account-key its store issued. */
export const ImportKeyRequest = z.object({ pem, accountKey: assertionText, trusted: z.array(assertionText).max(16).optional(), chain: z.array(assertionText).max(16).optional(), skipChainCheck: z.boolean().optional() }).strict()
export const NewKeyRequest = z.object({ name: z.string().min(1).max(64) }).strict()
/** Disabling needs a reason; enabling may give one. */
export const KeyStateRequest = z.object({ reason: reason.optional() }).strict()
export const AcknowledgeAlertRequest = z.object({ note: z.string().min(1).max(500).optional() }).strict()

const partner = z.object({ name: z.string().min(1).max(200), relation: z.enum(['reseller', 'subsidiary', 'business-partner', 'other']) }).strict()
export const CreateStoreRequest = z
  .object({ id: storeId, parent: storeId, kind: z.enum(['product', 'ecosystem']), displayName: z.string().min(1).max(200), partner: partner.optional(), requirePivotReview: z.boolean().optional() })
  .strict()
  .refine((s) => s.kind === 'ecosystem' || s.partner === undefined, { message: 'only ecosystem stores have a partner', path: ['partner'] })
export const UpdateStoreRequest = z.object({ displayName: z.string().min(1).max(200).optional(), partner: partner.nullable().optional(), requirePivotReview: z.boolean().optional() }).strict()

export const SetMemberRequest = z.object({ role: RoleSchema, inheritable: z.boolean().optional(), displayName: z.string().min(1).max(200).optional() }).strict()

const serialPolicy = z.string().max(200)
export const CreateModelRequest = z
  .object({
    brandId: z.string().min(1).max(64),
    name: modelName,
    storeId: storeId.optional(),
    signingKeyId: z.string().length(64).optional(),
    apiKeys: z.array(z.string().max(256)).max(32).optional(),
    serialPolicy: serialPolicy.optional(),
    duplicates: z.enum(['refuse', 'reissue']).optional(),
    requireWorkOrder: z.boolean().optional(),
    headers: z.record(z.string().max(128), HeaderValueSchema).optional(),
  })
  .strict()
export const UpdateModelRequest = z
  .object({
    signingKeyId: z.string().length(64).optional(),
    addApiKeys: z.array(z.string().max(256)).max(32).optional(),
    removeApiKeyHashes: z.array(z.string().length(64)).max(32).optional(),
    serialPolicy: serialPolicy.optional(),
    duplicates: z.enum(['refuse', 'reissue']).optional(),
    requireWorkOrder: z.boolean().optional(),
    headers: z.record(z.string().max(128), HeaderValueSchema).optional(),
  })
  .strict()
export const MoveModelRequest = z.object({ storeId }).strict()
export const AddApiKeyRequest = z.object({ apiKey: z.string().max(256).optional() }).strict()

/** A personal token: a subset of the caller's permissions ('*' for all of them) and stores, expiring in 1 to 365 days. */
export const CreateTokenRequest = z
  .object({ name: z.string().min(1).max(100), permissions: z.array(z.string().max(64)).min(1).max(64), stores: z.array(storeId).min(1).max(1000).optional(), expiresInDays: z.number().int().min(1).max(365) })
  .strict()

export const AllowPivotRequest = z.object({ fromModel: modelName, toModel: modelName, serial: z.string().min(1).max(128).optional() }).strict()
export const DecidePivotRequest = z.object({ reason: reason.optional() }).strict()

/** The serials a work order allows: a list, a range PREFIX + start..end at a fixed width, or the model's assign template. */
export const WorkOrderSerialsSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('list'), serials: z.array(z.string().min(1).max(128)).min(1).max(1_000_000) }).strict(),
  z.object({ kind: z.literal('range'), prefix: z.string().max(100), start: z.number().int().min(0), end: z.number().int().min(0), width: z.number().int().min(1).max(20) }).strict(),
  z.object({ kind: z.literal('assign') }).strict(),
])
const wireTime = z.union([z.string().min(1).max(64), z.number().int().min(0)])
/** A work order for a model of the store; times are ISO 8601 (or epoch ms); notBefore defaults to now. */
export const OpenWorkOrderRequest = z
  .object({
    model: modelName,
    plannedQuantity: z.number().int().min(1).max(10_000_000),
    serials: WorkOrderSerialsSchema,
    stations: z.array(z.string().min(1).max(128)).max(1000).optional(),
    notBefore: wireTime.optional(),
    notAfter: wireTime,
  })
  .strict()
export const CloseWorkOrderRequest = z.object({ reason: reason.optional() }).strict()
export type OpenWorkOrderRequest = z.infer<typeof OpenWorkOrderRequest>

export type CreateBrandRequest = z.infer<typeof CreateBrandRequest>
export type ImportBrandRequest = z.infer<typeof ImportBrandRequest>
export type ImportKeyRequest = z.infer<typeof ImportKeyRequest>
export type CreateStoreRequest = z.infer<typeof CreateStoreRequest>
export type UpdateStoreRequest = z.infer<typeof UpdateStoreRequest>
export type SetMemberRequest = z.infer<typeof SetMemberRequest>
export type CreateModelRequest = z.infer<typeof CreateModelRequest>
export type UpdateModelRequest = z.infer<typeof UpdateModelRequest>
export type CreateTokenRequest = z.infer<typeof CreateTokenRequest>
export type AllowPivotRequest = z.infer<typeof AllowPivotRequest>

// --- answers ----------------------------------------------------------------------------------

const time = z.string()

export const LOG_OUTCOME_IDS = ['issued', 'reissued', 'retried', 'pivoted', 'refused'] as const

/** One signing log entry on the wire (JSON answers, JSON lines export). */
export const LogEntryWire = z.object({
  id: z.string(),
  time,
  outcome: z.enum(LOG_OUTCOME_IDS),
  code: z.string().optional(),
  brandId: z.string().optional(),
  model: z.string().optional(),
  storeId: z.string().optional(),
  serial: z.string().optional(),
  deviceKeyId: z.string().optional(),
  revision: z.number().optional(),
  clientAddress: z.string().optional(),
  requestId: z.string().optional(),
  transport: z.string().optional(),
  timings: z.record(z.string(), z.number()).optional(),
  message: z.string().optional(),
  fromModel: z.string().optional(),
  workOrderId: z.string().optional(),
})
export type LogEntryWire = z.infer<typeof LogEntryWire>

/** A clone alert: a refusal with SV_SERIAL_TAKEN (the same serial offered with another device key), and its acknowledgement. */
export const AlertWire = z.object({
  id: z.string(),
  time,
  storeId: z.string().optional(),
  brandId: z.string().optional(),
  model: z.string().optional(),
  serial: z.string().optional(),
  deviceKeyId: z.string().optional(),
  transport: z.string().optional(),
  clientAddress: z.string().optional(),
  acknowledged: z.object({ by: z.string(), at: time, note: z.string().optional() }).optional(),
})
export type AlertWire = z.infer<typeof AlertWire>

/** The columns of the CSV export, in order (one header row, RFC 4180). */
export const LOG_CSV_COLUMNS = ['id', 'time', 'outcome', 'code', 'brandId', 'model', 'storeId', 'serial', 'deviceKeyId', 'revision', 'clientAddress', 'requestId', 'transport', 'message', 'fromModel', 'timings', 'workOrderId'] as const

export const LogPageWire = z.object({ entries: z.array(LogEntryWire), nextCursor: z.string().optional() })
export type LogPageWire = z.infer<typeof LogPageWire>

export const AuditEntryWire = z.object({
  seq: z.number(),
  time,
  actor: z.object({ kind: z.string(), id: z.string(), email: z.string().optional(), tokenId: z.string().optional(), name: z.string().optional() }),
  source: z.object({ ip: z.string().optional(), userAgent: z.string().optional(), transport: z.string().optional() }).optional(),
  action: z.string(),
  outcome: z.enum(['ok', 'denied']),
  code: z.string().optional(),
  brandId: z.string().optional(),
  storeId: z.string().optional(),
  target: z.object({ type: z.string(), id: z.string() }).optional(),
  before: z.unknown().optional(),
  after: z.unknown().optional(),
  requestId: z.string().optional(),
  prevHash: z.string(),
  hash: z.string(),
  mac: z.string(),
})
export type AuditEntryWire = z.infer<typeof AuditEntryWire>
export const AuditPageWire = z.object({ entries: z.array(AuditEntryWire), nextCursor: z.string().optional() })

export const AuditReportWire = z.object({
  ok: z.boolean(),
  entries: z.number(),
  head: z.object({ seq: z.number(), hash: z.string() }),
  problems: z.array(z.object({ seq: z.number(), kind: z.string(), detail: z.string() })),
  macChecked: z.boolean(),
})
export type AuditReportWire = z.infer<typeof AuditReportWire>

export const StoreWire = z.object({
  id: z.string(),
  brandId: z.string(),
  kind: z.enum(['base', 'product', 'ecosystem']),
  parentId: z.string().optional(),
  displayName: z.string(),
  partner: partner.optional(),
  requirePivotReview: z.boolean(),
  createdAt: time,
  updatedAt: time,
  /** the caller's roles here (own and inherited) */
  roles: z.array(RoleSchema).optional(),
})
export type StoreWire = z.infer<typeof StoreWire>

export const ModelWire = z.object({
  brandId: z.string(),
  name: z.string(),
  storeId: z.string(),
  signingKeyId: z.string(),
  apiKeyHashes: z.array(z.string()),
  serialPolicy: z.union([z.object({ kind: z.literal('device') }), z.object({ kind: z.literal('assign'), template: z.string(), start: z.number() })]),
  duplicatePolicy: z.enum(['refuse', 'reissue']),
  /** registrations need an open work order */
  requireWorkOrder: z.boolean(),
  revision: z.number(),
  modelAssertion: z.string(),
  /** false for a model migrated from before stores whose signed assertion does not name its store yet (re-sign it with an update) */
  assertionNamesStore: z.boolean(),
  createdAt: time,
  updatedAt: time,
})
export type ModelWire = z.infer<typeof ModelWire>

export const WorkOrderWire = z.object({
  id: z.string(),
  brandId: z.string(),
  model: z.string(),
  storeId: z.string(),
  plannedQuantity: z.number(),
  serials: WorkOrderSerialsSchema,
  stations: z.array(z.string()).optional(),
  notBefore: time,
  notAfter: time,
  status: z.enum(['open', 'closed', 'exhausted']),
  provisioned: z.number(),
  createdBy: z.string(),
  createdAt: time,
  closedAt: time.optional(),
  closedBy: z.string().optional(),
  reason: z.string().optional(),
})
export type WorkOrderWire = z.infer<typeof WorkOrderWire>

/**
 * A work order's reconciliation, from its signing log entries: `provisioned`
 * serials issued under it (first issuance or reissue), `retried` identical
 * retries, `duplicates` clone attempts of its serials (SV_SERIAL_TAKEN,
 * SV_DEVICE_KEY_TAKEN), `refused` every other refusal that concerned it
 * (`refusedByCode` has both kinds), `outstanding` the allowed serials not yet
 * provisioned (listed for list and range orders, a count for assign orders),
 * `remaining` planned minus provisioned.
 */
export const WorkOrderReportWire = z.object({
  workOrder: WorkOrderWire,
  planned: z.number(),
  provisioned: z.number(),
  reissued: z.number(),
  retried: z.number(),
  refused: z.number(),
  duplicates: z.number(),
  refusedByCode: z.record(z.string(), z.number()),
  remaining: z.number(),
  outstanding: z.object({ count: z.number(), serials: z.array(z.string()).optional() }),
  provisionedSerials: z.array(z.string()),
  generatedAt: time,
})
export type WorkOrderReportWire = z.infer<typeof WorkOrderReportWire>

export const KeyWire = z.object({
  keyId: z.string(),
  accountId: z.string(),
  purpose: z.enum(['brand', 'root']),
  name: z.string(),
  bits: z.number(),
  enabled: z.boolean(),
  reason: z.string().optional(),
  changedAt: time.optional(),
  createdAt: time,
  /** brand keys: the models that sign with it */
  models: z.array(z.string()).optional(),
  accountKeyAssertion: z.string().optional(),
})
export type KeyWire = z.infer<typeof KeyWire>

export const MemberWire = z.object({ personId: z.string(), email: z.string(), displayName: z.string().optional(), role: RoleSchema, inheritable: z.boolean(), grantedBy: z.string(), createdAt: time, lastLoginAt: time.optional() })
export type MemberWire = z.infer<typeof MemberWire>

export const TokenWire = z.object({
  id: z.string(),
  kind: z.enum(['admin', 'personal']),
  name: z.string(),
  personId: z.string().optional(),
  email: z.string().optional(),
  permissions: z.array(z.string()).optional(),
  stores: z.array(z.string()).optional(),
  roles: z.array(z.string()).optional(),
  createdAt: time,
  expiresAt: time.optional(),
  revokedAt: time.optional(),
  lastUsedAt: time.optional(),
})
export type TokenWire = z.infer<typeof TokenWire>

export const PivotRuleWire = z.object({ id: z.string(), brandId: z.string(), fromModel: z.string(), toModel: z.string(), storeId: z.string(), serial: z.string().optional(), createdBy: z.string(), createdAt: time })
export const PivotRequestWire = z.object({
  requestId: z.string(),
  brandId: z.string(),
  fromModel: z.string(),
  toModel: z.string(),
  storeId: z.string(),
  serial: z.string(),
  deviceKeyId: z.string(),
  status: z.enum(['pending', 'accepted', 'rejected']),
  createdAt: time,
  decidedAt: time.optional(),
  decidedBy: z.string().optional(),
  reason: z.string().optional(),
})

export type PivotRuleWire = z.infer<typeof PivotRuleWire>
export type PivotRequestWire = z.infer<typeof PivotRequestWire>

export const MeWire = z.object({
  kind: z.enum(['operator', 'person']),
  via: z.enum(['admin-token', 'session', 'personal-token']),
  person: z.object({ id: z.string(), email: z.string(), displayName: z.string().optional() }).optional(),
  token: z.object({ id: z.string(), name: z.string(), permissions: z.array(z.string()).optional(), stores: z.array(z.string()).optional(), expiresAt: time.optional() }).optional(),
  /** stores the caller can see, with the roles and permissions held there */
  stores: z.array(z.object({ id: z.string(), brandId: z.string(), kind: z.string(), roles: z.array(RoleSchema), permissions: z.array(z.string()) })),
  /** session logins: the CSRF token to send as X-CSRF-Token on state-changing calls */
  csrfToken: z.string().optional(),
})
export type MeWire = z.infer<typeof MeWire>
