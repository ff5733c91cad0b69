import type {
  BrandRecord,
  LogEntry,
  LogOutcome,
  ModelRecord,
  SerialBinding,
  SigningKeyRecord,
  TokenRecord,
} from '../store.js'

/**
 * Row <-> record mapping of PostgresStore. Column order in each `*_COLUMNS`
 * list matches the parameter order of the matching `*Params` function.
 * bigint columns arrive as strings from pg and are turned back into numbers
 * (epoch milliseconds and sequence numbers stay far below 2^53).
 */

type Row = Record<string, unknown>

const num = (v: unknown): number => Number(v)

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

export const KEY_COLUMNS = [
  'key_id',
  'account_id',
  'purpose',
  'name',
  'bits',
  'account_key_assertion',
  'enabled',
  'sealed',
  'created_at',
]

export function keyParams(k: SigningKeyRecord): unknown[] {
  return [k.keyId, k.accountId, k.purpose, k.name, k.bits, k.accountKeyAssertion, k.enabled, JSON.stringify(k.sealed), k.createdAt]
}

export function keyFromRow(r: Row): SigningKeyRecord {
  return {
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
  ]
}

export function modelFromRow(r: Row): ModelRecord {
  return {
    brandId: r.brand_id as string,
    name: r.name as string,
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
}

export const BINDING_COLUMNS = [
  'brand_id',
  'model',
  'serial',
  'device_key_id',
  'revision',
  'serial_assertion',
  'request_id',
  'issued_at',
  'released',
]

export function bindingParams(b: SerialBinding): unknown[] {
  return [b.brandId, b.model, b.serial, b.deviceKeyId, b.revision, b.serialAssertion, b.requestId, b.issuedAt, b.released]
}

export function bindingFromRow(r: Row): SerialBinding {
  return {
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

export const TOKEN_COLUMNS = ['hash', 'name', 'roles', 'created_at']

export function tokenParams(t: TokenRecord): unknown[] {
  return [t.hash, t.name, t.roles, t.createdAt]
}

export function tokenFromRow(r: Row): TokenRecord {
  return { hash: r.hash as string, name: r.name as string, roles: r.roles as string[], createdAt: num(r.created_at) }
}

/** `INSERT INTO table (cols) VALUES ($1, ...)` for one row of `columns`. */
export function insertSql(table: string, columns: readonly string[]): string {
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`
}
