/**
 * Key layout of LevelStore: one sublevel per record kind and one per index.
 *
 * Composite keys are tuples joined with `\x00`. Inside a component `\x01` is
 * escaped as `\x01\x02` and `\x00` as `\x01\x01`, so the encoding preserves
 * tuple order: keys sort bytewise exactly as (component, component, ...) sorts
 * component by component, the same order PostgreSQL gives with COLLATE "C".
 * A tuple prefix P matches the key range [P + SEP, P + SEP_NEXT), and no key of
 * a longer first component (`ab` when P is `a`) falls in it.
 *
 * Sublevels and their keys (values are JSON records unless noted). Layout 2
 * added everything marked (2); migrations.ts brings layout-1 data up.
 *
 * | sublevel                 | key                                   | value                     |
 * |--------------------------|---------------------------------------|---------------------------|
 * | `sys`                    | `layout`, `audit-head`, `stores-version` | text (JSON for the head) |
 * | `brand`                  | brandId                               | BrandRecord               |
 * | `key`                    | keyId                                 | SigningKeyRecord          |
 * | `key-by-account`         | (accountId, keyId)                    | '' (index)                |
 * | `model`                  | (brandId, name)                       | ModelRecord               |
 * | `model-by-api-key`       | (apiKeyHash, brandId, name)           | '' (index)                |
 * | `model-by-store` (2)     | (storeId, brandId, name)              | '' (index)                |
 * | `store` (2)              | storeId                               | StoreRecord               |
 * | `store-by-brand` (2)     | (brandId, storeId)                    | '' (index)                |
 * | `request-id`             | request-id                            | expiresAt (number)        |
 * | `request-id-by-expiry`   | (expiresAt as 16 digits, request-id)  | '' (index)                |
 * | `serial`                 | (brandId, model, serial)              | SerialBinding             |
 * | `serial-by-device-key`   | (brandId, model, deviceKeyId)         | serial (text)             |
 * | `sequence`               | (brandId, model)                      | next number (number)      |
 * | `log`                    | log id                                | LogEntry                  |
 * | `log-by-serial`          | (serial, log id)                      | '' (index)                |
 * | `log-by-model`           | (brandId, model, log id)              | '' (index)                |
 * | `log-by-brand`           | (brandId, log id)                     | '' (index)                |
 * | `log-by-outcome`         | (outcome, log id)                     | '' (index)                |
 * | `log-by-store` (2)       | (storeId, log id)                     | '' (index)                |
 * | `log-by-device-key` (2)  | (deviceKeyId, log id)                 | '' (index)                |
 * | `token`                  | token hash                            | TokenRecord               |
 * | `token-by-person` (2)    | (personId, token hash)                | '' (index)                |
 * | `person` (2)             | personId                              | PersonRecord              |
 * | `person-by-email` (2)    | email                                 | personId (text)           |
 * | `grant` (2)              | (personId, storeId)                   | GrantRecord               |
 * | `grant-by-store` (2)     | (storeId, personId)                   | '' (index)                |
 * | `session` (2)            | session hash                          | SessionRecord             |
 * | `session-by-person` (2)  | (personId, session hash)              | '' (index)                |
 * | `session-by-expiry` (2)  | (expiresAt 16 digits, hash)           | '' (index)                |
 * | `login-tx` (2)           | transaction id                        | LoginTransactionRecord    |
 * | `login-tx-by-expiry` (2) | (expiresAt 16 digits, id)             | '' (index)                |
 * | `audit` (2)              | seq as 16 digits                      | AuditEntry                |
 * | `audit-by-store` (2)     | (storeId, seq 16 digits)              | '' (index)                |
 * | `pivot-rule` (2)         | rule id                               | PivotRule                 |
 * | `pivot-rule-by-key` (2)  | (brandId, fromModel, toModel, serial or '') | rule id (text)      |
 * | `pivot-request` (2)      | request-id                            | PivotRequest              |
 * | `pivot-request-by-store` (2) | (storeId, createdAt 16 digits, request-id) | '' (index)       |
 * | `work-order`             | work order id                         | WorkOrderRecord           |
 * | `work-order-by-model`    | (brandId, model, work order id)       | '' (index)                |
 * | `meta`                   | name                                  | value (text)              |
 *
 * The work order sublevels came after layout 2 without a layout step: they
 * start empty, and older records lack no field they need.
 *
 * Every log index key ends with the log id, so one range scan of an index
 * yields ids in log order, and the time filters of a query become bounds on
 * that last component (the id starts with its timestamp, see log-id.ts).
 */

/** The layout this code writes. Older layouts are migrated at open (migrations.ts); newer ones are refused. */
export const LAYOUT_VERSION = 2

export const SUBLEVELS = {
  sys: 'sys',
  brand: 'brand',
  key: 'key',
  keyByAccount: 'key-by-account',
  model: 'model',
  modelByApiKey: 'model-by-api-key',
  modelByStore: 'model-by-store',
  store: 'store',
  storeByBrand: 'store-by-brand',
  requestId: 'request-id',
  requestIdByExpiry: 'request-id-by-expiry',
  serial: 'serial',
  serialByDeviceKey: 'serial-by-device-key',
  sequence: 'sequence',
  log: 'log',
  logBySerial: 'log-by-serial',
  logByModel: 'log-by-model',
  logByBrand: 'log-by-brand',
  logByOutcome: 'log-by-outcome',
  logByStore: 'log-by-store',
  logByDeviceKey: 'log-by-device-key',
  token: 'token',
  tokenByPerson: 'token-by-person',
  person: 'person',
  personByEmail: 'person-by-email',
  grant: 'grant',
  grantByStore: 'grant-by-store',
  session: 'session',
  sessionByPerson: 'session-by-person',
  sessionByExpiry: 'session-by-expiry',
  loginTx: 'login-tx',
  loginTxByExpiry: 'login-tx-by-expiry',
  audit: 'audit',
  auditByStore: 'audit-by-store',
  pivotRule: 'pivot-rule',
  pivotRuleByKey: 'pivot-rule-by-key',
  pivotRequest: 'pivot-request',
  pivotRequestByStore: 'pivot-request-by-store',
  workOrder: 'work-order',
  workOrderByModel: 'work-order-by-model',
  meta: 'meta',
} as const

export type SublevelName = keyof typeof SUBLEVELS

/** Sublevels whose values are JSON (the others hold text). */
export const JSON_SUBLEVELS: ReadonlySet<SublevelName> = new Set<SublevelName>([
  'brand',
  'key',
  'model',
  'store',
  'requestId',
  'serial',
  'sequence',
  'log',
  'token',
  'person',
  'grant',
  'session',
  'loginTx',
  'audit',
  'pivotRule',
  'pivotRequest',
  'workOrder',
])

const SEP = '\x00'
const SEP_NEXT = '\x01'

function escapeComponent(s: string): string {
  return s.replace(/[\x00\x01]/g, (c) => (c === '\x00' ? '\x01\x01' : '\x01\x02'))
}

function unescapeComponent(s: string): string {
  return s.replace(/\x01([\x01\x02])/g, (_, c: string) => (c === '\x01' ? '\x00' : '\x01'))
}

/** Encodes a tuple key. */
export function tupleKey(...parts: string[]): string {
  return parts.map(escapeComponent).join(SEP)
}

/** Decodes a tuple key into its components. */
export function splitTupleKey(key: string): string[] {
  return key.split(SEP).map(unescapeComponent)
}

/** The last component of a tuple key (the log id of a log index key). */
export function lastComponent(key: string): string {
  const i = key.lastIndexOf(SEP)
  return unescapeComponent(i < 0 ? key : key.slice(i + 1))
}

/** Range options matching every key that starts with the given tuple prefix. */
export function prefixRange(first: string, ...rest: string[]): { gte: string; lt: string } {
  const p = tupleKey(first, ...rest)
  return { gte: p + SEP, lt: p + SEP_NEXT }
}

/** Fixed-width decimal for numeric key components (expiry times, sequence numbers), so they sort as numbers. */
export function padNumber(n: number): string {
  return String(Math.max(0, Math.floor(n))).padStart(16, '0')
}
