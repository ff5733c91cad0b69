import type {
  AuditEntry,
  BrandRecord,
  GrantRecord,
  LogEntry,
  LogOutcome,
  LoginTransactionRecord,
  ModelRecord,
  PersonRecord,
  PivotRequest,
  PivotRule,
  SerialBinding,
  SessionRecord,
  SigningKeyRecord,
  StoreRecord,
  TokenRecord,
  WorkOrderRecord,
} from '../records.js'

/**
 * Row <-> record mapping of PostgresStore. Column order in each `*_COLUMNS`
 * list matches the parameter order of the matching `*Params` function.
 * bigint columns arrive as strings from pg and are turned back into numbers
 * (epoch milliseconds and sequence numbers stay far below 2^53). NULL reads
 * back as an absent field.
 */

type Row = Record<string, unknown>

const num = (v: unknown): number => Number(v)
const opt = <T>(v: T | undefined): T | null => (v === undefined ? null : v)
/** Copies `column` into `out[field]` when it is not NULL, through `map`. */
function optional<T extends object>(out: T, r: Row, pairs: ReadonlyArray<readonly [keyof T, string, ((v: unknown) => unknown)?]>): T {
  for (const [field, column, map] of pairs) {
    const v = r[column]
    if (v !== null && v !== undefined) (out as Row)[field as string] = map ? map(v) : v
  }
  return out
}

export const BRAND_COLUMNS = ['id', 'display_name', 'origin', 'account_assertion', 'created_at']

export function brandParams(b: BrandRecord): unknown[] {
  return [b.id, b.displayName, b.origin, b.accountAssertion, b.createdAt]
}

export function brandFromRow(r: Row): BrandRecord {
  return {
    id: r.id as string,
    displayName: r.display_name as string,
    origin: r.origin as BrandRecord['origin'],
    accountAssertion: r.account_assertion as string,
    createdAt: num(r.created_at),
  }
}

export const KEY_COLUMNS = ['key_id', 'account_id', 'purpose', 'name', 'bits', 'account_key_assertion', 'enabled', 'sealed', 'created_at', 'reason', 'changed_at']

export function keyParams(k: SigningKeyRecord): unknown[] {
  return [k.keyId, k.accountId, k.purpose, k.name, k.bits, k.accountKeyAssertion, k.enabled, JSON.stringify(k.sealed), k.createdAt, opt(k.reason), opt(k.changedAt)]
}

export function keyFromRow(r: Row): SigningKeyRecord {
  const k: SigningKeyRecord = {
    keyId: r.key_id as string,
    accountId: r.account_id as string,
    purpose: r.purpose as SigningKeyRecord['purpose'],
    name: r.name as string,
    bits: r.bits as number,
    accountKeyAssertion: r.account_key_assertion as string,
    enabled: r.enabled as boolean,
    sealed: r.sealed as SigningKeyRecord['sealed'],
    createdAt: num(r.created_at),
  }
  return optional(k, r, [
    ['reason', 'reason'],
    ['changedAt', 'changed_at', num],
  ])
}

export const MODEL_COLUMNS = [
  'brand_id',
  'name',
  'signing_key_id',
  'api_key_hashes',
  'serial_policy',
  'duplicate_policy',
  'model_headers',
  'model_assertion',
  'revision',
  'created_at',
  'updated_at',
  'store_id',
  'require_work_order',
]

export function modelParams(m: ModelRecord): unknown[] {
  return [
    m.brandId,
    m.name,
    m.signingKeyId,
    m.apiKeyHashes,
    JSON.stringify(m.serialPolicy),
    m.duplicatePolicy,
    JSON.stringify(m.modelHeaders),
    m.modelAssertion,
    m.revision,
    m.createdAt,
    m.updatedAt,
    m.storeId,
    m.requireWorkOrder === true,
  ]
}

export function modelFromRow(r: Row): ModelRecord {
  const m: ModelRecord = {
    brandId: r.brand_id as string,
    name: r.name as string,
    storeId: r.store_id as string,
    signingKeyId: r.signing_key_id as string,
    apiKeyHashes: r.api_key_hashes as string[],
    serialPolicy: r.serial_policy as ModelRecord['serialPolicy'],
    duplicatePolicy: r.duplicate_policy as ModelRecord['duplicatePolicy'],
    modelHeaders: r.model_headers as ModelRecord['modelHeaders'],
    modelAssertion: r.model_assertion as string,
    revision: r.revision as number,
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  }
  // false reads back absent, as the record spells it
  if (r.require_work_order === true) m.requireWorkOrder = true
  return m
}

export const STORE_COLUMNS = ['id', 'brand_id', 'kind', 'parent_id', 'display_name', 'partner', 'require_pivot_review', 'created_at', 'updated_at']

export function storeParams(s: StoreRecord): unknown[] {
  return [s.id, s.brandId, s.kind, opt(s.parentId), s.displayName, s.partner === undefined ? null : JSON.stringify(s.partner), s.requirePivotReview, s.createdAt, s.updatedAt]
}

export function storeFromRow(r: Row): StoreRecord {
  const s: StoreRecord = {
    id: r.id as string,
    brandId: r.brand_id as string,
    kind: r.kind as StoreRecord['kind'],
    displayName: r.display_name as string,
    requirePivotReview: r.require_pivot_review as boolean,
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  }
  return optional(s, r, [
    ['parentId', 'parent_id'],
    ['partner', 'partner'],
  ])
}

export const BINDING_COLUMNS = ['brand_id', 'model', 'serial', 'device_key_id', 'revision', 'serial_assertion', 'request_id', 'issued_at', 'released', 'pivoted_to', 'pivoted_from', 'work_order_id']

export function bindingParams(b: SerialBinding): unknown[] {
  return [b.brandId, b.model, b.serial, b.deviceKeyId, b.revision, b.serialAssertion, b.requestId, b.issuedAt, b.released, b.pivotedTo === undefined ? null : JSON.stringify(b.pivotedTo), opt(b.pivotedFrom), opt(b.workOrderId)]
}

export function bindingFromRow(r: Row): SerialBinding {
  const b: SerialBinding = {
    brandId: r.brand_id as string,
    model: r.model as string,
    serial: r.serial as string,
    deviceKeyId: r.device_key_id as string,
    revision: r.revision as number,
    serialAssertion: r.serial_assertion as string,
    requestId: r.request_id as string,
    issuedAt: num(r.issued_at),
    released: r.released as boolean,
  }
  return optional(b, r, [
    ['pivotedTo', 'pivoted_to'],
    ['pivotedFrom', 'pivoted_from'],
    ['workOrderId', 'work_order_id'],
  ])
}

/** Optional LogEntry fields and their columns; NULL reads back as an absent field. */
const LOG_OPTIONAL = [
  ['code', 'code'],
  ['brandId', 'brand_id'],
  ['model', 'model'],
  ['serial', 'serial'],
  ['deviceKeyId', 'device_key_id'],
  ['revision', 'revision'],
  ['clientAddress', 'client_address'],
  ['requestId', 'request_id'],
  ['transport', 'transport'],
  ['timings', 'timings'],
  ['message', 'message'],
  ['storeId', 'store_id'],
  ['fromModel', 'from_model'],
  ['workOrderId', 'work_order_id'],
] as const satisfies ReadonlyArray<readonly [keyof LogEntry, string]>

export const LOG_COLUMNS = ['id', 'logged_at', 'outcome', ...LOG_OPTIONAL.map(([, column]) => column)]

export function logParams(e: LogEntry): unknown[] {
  return [
    e.id,
    e.time,
    e.outcome,
    ...LOG_OPTIONAL.map(([field]) => {
      const v = e[field]
      if (v === undefined) return null
      return field === 'timings' ? JSON.stringify(v) : v
    }),
  ]
}

export function logFromRow(r: Row): LogEntry {
  const e: LogEntry = { id: r.id as string, time: num(r.logged_at), outcome: r.outcome as LogOutcome }
  for (const [field, column] of LOG_OPTIONAL) {
    const v = r[column]
    if (v !== null && v !== undefined) (e as unknown as Row)[field] = v
  }
  return e
}

export const TOKEN_COLUMNS = ['hash', 'name', 'roles', 'created_at', 'kind', 'person_id', 'permissions', 'stores', 'expires_at', 'revoked_at', 'revoked_by', 'last_used_at']

export function tokenParams(t: TokenRecord): unknown[] {
  return [t.hash, t.name, t.roles, t.createdAt, t.kind, opt(t.personId), opt(t.permissions), opt(t.stores), opt(t.expiresAt), opt(t.revokedAt), opt(t.revokedBy), opt(t.lastUsedAt)]
}

export function tokenFromRow(r: Row): TokenRecord {
  const t: TokenRecord = { hash: r.hash as string, kind: r.kind as TokenRecord['kind'], name: r.name as string, roles: r.roles as string[], createdAt: num(r.created_at) }
  return optional(t, r, [
    ['personId', 'person_id'],
    ['permissions', 'permissions'],
    ['stores', 'stores'],
    ['expiresAt', 'expires_at', num],
    ['revokedAt', 'revoked_at', num],
    ['revokedBy', 'revoked_by'],
    ['lastUsedAt', 'last_used_at', num],
  ])
}

export const PERSON_COLUMNS = ['id', 'email', 'display_name', 'disabled', 'identities', 'created_at', 'updated_at', 'last_login_at']

export function personParams(p: PersonRecord): unknown[] {
  return [p.id, p.email, opt(p.displayName), p.disabled, JSON.stringify(p.identities), p.createdAt, p.updatedAt, opt(p.lastLoginAt)]
}

export function personFromRow(r: Row): PersonRecord {
  const p: PersonRecord = { id: r.id as string, email: r.email as string, disabled: r.disabled as boolean, identities: r.identities as PersonRecord['identities'], createdAt: num(r.created_at), updatedAt: num(r.updated_at) }
  return optional(p, r, [
    ['displayName', 'display_name'],
    ['lastLoginAt', 'last_login_at', num],
  ])
}

export const GRANT_COLUMNS = ['person_id', 'store_id', 'role', 'inheritable', 'granted_by', 'created_at']

export function grantParams(g: GrantRecord): unknown[] {
  return [g.personId, g.storeId, g.role, g.inheritable, g.grantedBy, g.createdAt]
}

export function grantFromRow(r: Row): GrantRecord {
  return { personId: r.person_id as string, storeId: r.store_id as string, role: r.role as GrantRecord['role'], inheritable: r.inheritable as boolean, grantedBy: r.granted_by as string, createdAt: num(r.created_at) }
}

export const SESSION_COLUMNS = ['hash', 'person_id', 'provider_id', 'created_at', 'expires_at', 'idle_expires_at', 'ip', 'user_agent']

export function sessionParams(s: SessionRecord): unknown[] {
  return [s.hash, s.personId, s.providerId, s.createdAt, s.expiresAt, s.idleExpiresAt, opt(s.ip), opt(s.userAgent)]
}

export function sessionFromRow(r: Row): SessionRecord {
  const s: SessionRecord = { hash: r.hash as string, personId: r.person_id as string, providerId: r.provider_id as string, createdAt: num(r.created_at), expiresAt: num(r.expires_at), idleExpiresAt: num(r.idle_expires_at) }
  return optional(s, r, [
    ['ip', 'ip'],
    ['userAgent', 'user_agent'],
  ])
}

export const LOGIN_TX_COLUMNS = ['id', 'provider_id', 'state', 'nonce', 'code_verifier', 'return_to', 'created_at', 'expires_at']

export function loginTxParams(t: LoginTransactionRecord): unknown[] {
  return [t.id, t.providerId, t.state, t.nonce, t.codeVerifier, opt(t.returnTo), t.createdAt, t.expiresAt]
}

export function loginTxFromRow(r: Row): LoginTransactionRecord {
  const t: LoginTransactionRecord = { id: r.id as string, providerId: r.provider_id as string, state: r.state as string, nonce: r.nonce as string, codeVerifier: r.code_verifier as string, createdAt: num(r.created_at), expiresAt: num(r.expires_at) }
  return optional(t, r, [['returnTo', 'return_to']])
}

export const AUDIT_COLUMNS = ['seq', 'logged_at', 'action', 'outcome', 'brand_id', 'store_id', 'actor_id', 'entry']

export function auditParams(e: AuditEntry): unknown[] {
  return [e.seq, e.time, e.action, e.outcome, opt(e.brandId), opt(e.storeId), e.actor.id, JSON.stringify(e)]
}

export function auditFromRow(r: Row): AuditEntry {
  return r.entry as AuditEntry
}

export const PIVOT_RULE_COLUMNS = ['id', 'brand_id', 'from_model', 'to_model', 'store_id', 'serial', 'created_by', 'created_at']

export function pivotRuleParams(p: PivotRule): unknown[] {
  return [p.id, p.brandId, p.fromModel, p.toModel, p.storeId, p.serial ?? '', p.createdBy, p.createdAt]
}

export function pivotRuleFromRow(r: Row): PivotRule {
  const p: PivotRule = { id: r.id as string, brandId: r.brand_id as string, fromModel: r.from_model as string, toModel: r.to_model as string, storeId: r.store_id as string, createdBy: r.created_by as string, createdAt: num(r.created_at) }
  if (r.serial !== '') p.serial = r.serial as string
  return p
}

export const PIVOT_REQUEST_COLUMNS = ['request_id', 'brand_id', 'from_model', 'to_model', 'store_id', 'serial', 'device_key_id', 'status', 'created_at', 'decided_at', 'decided_by', 'reason']

export function pivotRequestParams(p: PivotRequest): unknown[] {
  return [p.requestId, p.brandId, p.fromModel, p.toModel, p.storeId, p.serial, p.deviceKeyId, p.status, p.createdAt, opt(p.decidedAt), opt(p.decidedBy), opt(p.reason)]
}

export function pivotRequestFromRow(r: Row): PivotRequest {
  const p: PivotRequest = {
    requestId: r.request_id as string,
    brandId: r.brand_id as string,
    fromModel: r.from_model as string,
    toModel: r.to_model as string,
    storeId: r.store_id as string,
    serial: r.serial as string,
    deviceKeyId: r.device_key_id as string,
    status: r.status as PivotRequest['status'],
    createdAt: num(r.created_at),
  }
  return optional(p, r, [
    ['decidedAt', 'decided_at', num],
    ['decidedBy', 'decided_by'],
    ['reason', 'reason'],
  ])
}

export const WORK_ORDER_COLUMNS = [
  'id',
  'brand_id',
  'model',
  'store_id',
  'planned_quantity',
  'serials',
  'stations',
  'not_before',
  'not_after',
  'status',
  'provisioned',
  'created_by',
  'created_at',
  'updated_at',
  'closed_at',
  'closed_by',
  'reason',
]

export function workOrderParams(o: WorkOrderRecord): unknown[] {
  return [
    o.id,
    o.brandId,
    o.model,
    o.storeId,
    o.plannedQuantity,
    JSON.stringify(o.serials),
    opt(o.stations),
    o.notBefore,
    o.notAfter,
    o.status,
    o.provisioned,
    o.createdBy,
    o.createdAt,
    o.updatedAt,
    opt(o.closedAt),
    opt(o.closedBy),
    opt(o.reason),
  ]
}

export function workOrderFromRow(r: Row): WorkOrderRecord {
  const o: WorkOrderRecord = {
    id: r.id as string,
    brandId: r.brand_id as string,
    model: r.model as string,
    storeId: r.store_id as string,
    plannedQuantity: num(r.planned_quantity),
    serials: r.serials as WorkOrderRecord['serials'],
    notBefore: num(r.not_before),
    notAfter: num(r.not_after),
    status: r.status as WorkOrderRecord['status'],
    provisioned: num(r.provisioned),
    createdBy: r.created_by as string,
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  }
  return optional(o, r, [
    ['stations', 'stations'],
    ['closedAt', 'closed_at', num],
    ['closedBy', 'closed_by'],
    ['reason', 'reason'],
  ])
}

/** `INSERT INTO table (cols) VALUES ($1, ...)` for one row of `columns`. */
export function insertSql(table: string, columns: readonly string[]): string {
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`
}

/** `UPDATE table SET col = $n, ... WHERE key1 = $1 AND ...` replacing every non-key column of a `*Params` row. */
export function updateSql(table: string, columns: readonly string[], keyCount: number, extraWhere = ''): string {
  const sets = columns.slice(keyCount).map((c, i) => `${c} = $${i + keyCount + 1}`)
  const where = columns.slice(0, keyCount).map((c, i) => `${c} = $${i + 1}`)
  return `UPDATE ${table} SET ${sets.join(', ')} WHERE ${where.join(' AND ')}${extraWhere}`
}
