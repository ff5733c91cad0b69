/**
 * The records the vault stores, one group per aggregate. Plain
 * JSON-serialisable objects; times are epoch milliseconds; optional fields
 * are absent rather than null. The store never sees a private key in clear
 * (`SigningKeyRecord.sealed` is the AES-256-GCM envelope made by the key
 * store), a bearer token, an API key or a session cookie (only their sha256
 * hashes), or a password.
 */

// --- brands, keys and models -------------------------------------------------------

/** A brand account: the `account` assertion that devices and snapd trust. */
export interface BrandRecord {
  /** account-id, e.g. `acme-brand`. */
  id: string
  displayName: string
  /** How the brand came in: imported from a store, or issued by the vault-held root. */
  origin: 'imported' | 'vault-root'
  /** The encoded `account` assertion (text). */
  accountAssertion: string
  createdAt: number
}

/** An RSA key held by the vault, sealed at rest. */
export interface SigningKeyRecord {
  /** sha3-384 key id (64 chars, base64url), the `sign-key-sha3-384` it signs with. */
  keyId: string
  /** The account this key signs for (a brand id, or the root authority id). */
  accountId: string
  /** `brand` keys sign models and serials; the `root` key signs account and account-key assertions. */
  purpose: 'brand' | 'root'
  /** account-key `name` header. */
  name: string
  bits: number
  /** The encoded `account-key` assertion for this key (text). */
  accountKeyAssertion: string
  enabled: boolean
  /** Why the key was last disabled (or enabled), as given by the admin. */
  reason?: string
  /** When `enabled` last changed. */
  changedAt?: number
  /** Opaque envelope from the key store (AES-256-GCM under the master key); never a clear key. */
  sealed: SealedKey
  createdAt: number
}

export interface SealedKey {
  /** Envelope format version and algorithm, e.g. `sv1:A256GCM`. */
  alg: string
  /** Which master key sealed it (first 16 hex chars of sha256 of the master key). */
  kid: string
  /** base64 fields. */
  iv: string
  tag: string
  data: string
}

export type SerialPolicy =
  | { kind: 'device' }
  /** Vault-assigned serials: `template` has one `{n}` or `{n:W}` placeholder (zero-padded to W digits). */
  | { kind: 'assign'; template: string; start: number }

export type DuplicatePolicy = 'refuse' | 'reissue'

export interface ModelRecord {
  brandId: string
  /** model name (lowercase, snapd's model regex). */
  name: string
  /** The store the model belongs to (exactly one); its model assertion's `store` header names it. */
  storeId: string
  /** The brand key that signs this model's serials (and the model assertion). */
  signingKeyId: string
  /** sha256 hex of each API key accepted for this model. API keys are never stored in clear. */
  apiKeyHashes: string[]
  serialPolicy: SerialPolicy
  duplicatePolicy: DuplicatePolicy
  /** Header tree of the model assertion, as given by the admin (without type/authority/sign-key). */
  modelHeaders: Record<string, unknown>
  /** The signed model assertion (text), re-signed when the headers, the key or the store change. */
  modelAssertion: string
  /** Revision of the model assertion. */
  revision: number
  /** Registrations are refused unless an open work order of the model allows them (absent: false). */
  requireWorkOrder?: boolean
  createdAt: number
  updatedAt: number
}

// --- stores ---------------------------------------------------------------------------------

export type StoreKind = 'base' | 'product' | 'ecosystem'

export type PartnerRelation = 'reseller' | 'subsidiary' | 'business-partner' | 'other'

/**
 * A store of a brand. Each brand has one base store; Store Administrators add
 * product stores (a product line or specific models) and ecosystem stores
 * (run on behalf of a partner, with the partner's own people) under it or
 * under each other: a tree per brand, at most MAX_STORE_DEPTH deep.
 */
export interface StoreRecord {
  /** Unique across the vault: it is the model assertion's `store` header. */
  id: string
  brandId: string
  kind: StoreKind
  /** Absent exactly for the base store. */
  parentId?: string
  displayName: string
  /** Ecosystem stores: the partner they are run for. */
  partner?: { name: string; relation: PartnerRelation }
  /** Pivots (remodels) into this store's models wait for a Reviewer's decision. */
  requirePivotReview: boolean
  createdAt: number
  updatedAt: number
}

/** Base store at depth 0; deeper sub-stores are refused. */
export const MAX_STORE_DEPTH = 8

// --- registrations --------------------------------------------------------------------------

/** The current binding of one serial number to one device key. */
export interface SerialBinding {
  brandId: string
  model: string
  serial: string
  /** sha3-384 id of the device key. */
  deviceKeyId: string
  /** serial assertion revision (first issuance is 1, as Canonical's vault does). */
  revision: number
  /** The signed serial assertion (text) as returned to the device, byte for byte. */
  serialAssertion: string
  /** request-id that obtained this binding. */
  requestId: string
  issuedAt: number
  /** Set by an admin: the next registration of this serial may use another key. */
  released: boolean
  /** Set when the device pivoted (remodelled) to another model of the brand. */
  pivotedTo?: { model: string; at: number }
  /** Set on a binding made by a pivot: the model the device came from. */
  pivotedFrom?: string
  /** The work order the serial was issued under. */
  workOrderId?: string
}

export type LogOutcome = 'issued' | 'reissued' | 'retried' | 'pivoted' | 'refused'

export const LOG_OUTCOMES: readonly LogOutcome[] = ['issued', 'reissued', 'retried', 'pivoted', 'refused']

/** One signing log entry: every issuance and every refusal. */
export interface LogEntry {
  /**
   * Time-ordered unique id (sortable as a string); assigned by the caller as
   * `createLogId(time)` (store/log-id.ts). Its fixed-width timestamp prefix is
   * what `LogQuery.from`/`to` filter on.
   */
  id: string
  time: number
  outcome: LogOutcome
  /** `SV_*` code for refusals; undefined for issuances. */
  code?: string
  brandId?: string
  model?: string
  /** The model's store when the entry was written (entries stay where they were made when a model moves). */
  storeId?: string
  serial?: string
  deviceKeyId?: string
  revision?: number
  clientAddress?: string
  /** request-id from the serial-request, when there was one. */
  requestId?: string
  /** Transport: 'https' or 'mqtt'. */
  transport?: string
  /** Step timings reported by the device agent, in ms. */
  timings?: Record<string, number>
  /** Short human text for refusals. */
  message?: string
  /** Pivots: the model the device came from. */
  fromModel?: string
  /** The work order the registration was issued under, or the one a refusal concerns. */
  workOrderId?: string
}

// --- people, grants, tokens, sessions ---------------------------------------------------------

/** The five roles a person can hold in a store (the brand's commissioning guide). */
export type Role = 'admin' | 'publisher' | 'collaborator' | 'reviewer' | 'viewer'

export const ROLES: readonly Role[] = ['admin', 'publisher', 'collaborator', 'reviewer', 'viewer']

/** Someone who logs in through OpenID Connect, identified by e-mail. */
export interface PersonRecord {
  /** `prs_` + 20 random base32 characters; never reused. */
  id: string
  /** Lowercase, unique. */
  email: string
  displayName?: string
  disabled: boolean
  /** The provider accounts this person logged in with (learned at first login). */
  identities: PersonIdentity[]
  createdAt: number
  updatedAt: number
  lastLoginAt?: number
}

export interface PersonIdentity {
  providerId: string
  issuer: string
  subject: string
}

/**
 * One role of one person in one store. At most one grant per (person, store):
 * a change of role replaces it. An inheritable grant also holds in every store
 * below; otherwise it holds in this store only.
 */
export interface GrantRecord {
  personId: string
  storeId: string
  role: Role
  inheritable: boolean
  /** Actor label of who granted it. */
  grantedBy: string
  createdAt: number
}

/**
 * A bearer token. `admin` tokens are the operator's break-glass credential,
 * made only by the CLI on the vault host, and may do everything. `personal`
 * tokens belong to a person, expire, and carry a subset of that person's
 * permissions and stores.
 */
export interface TokenRecord {
  /** sha256 hex of the bearer token; the token itself is shown once and never stored. */
  hash: string
  kind: 'admin' | 'personal'
  name: string
  /** admin tokens: their roles (['admin']). Personal tokens: []. */
  roles: string[]
  personId?: string
  /** personal: permission names this token may use ('*' for all of the person's), never more than the person holds. */
  permissions?: string[]
  /** personal: store ids this token may act in; absent = every store of the person. */
  stores?: string[]
  /** personal: required. */
  expiresAt?: number
  revokedAt?: number
  revokedBy?: string
  createdAt: number
  lastUsedAt?: number
}

/** The public id of a token: the first 12 hex characters of its hash. */
export function tokenId(hash: string): string {
  return hash.slice(0, 12)
}

/** A logged-in browser session (the cookie holds the secret; this is its hash). */
export interface SessionRecord {
  hash: string
  personId: string
  providerId: string
  createdAt: number
  /** absolute expiry */
  expiresAt: number
  /** sliding: the session ends when it is not used until then */
  idleExpiresAt: number
  ip?: string
  userAgent?: string
}

/** An OpenID Connect login in progress (state, nonce, PKCE verifier); used once. */
export interface LoginTransactionRecord {
  id: string
  providerId: string
  state: string
  nonce: string
  codeVerifier: string
  returnTo?: string
  createdAt: number
  expiresAt: number
}

// --- audit ----------------------------------------------------------------------------------------

export type AuditActorKind = 'person' | 'personal-token' | 'admin-token' | 'cli' | 'device' | 'system'

export interface AuditActor {
  kind: AuditActorKind
  /** person id, token id, device key id, or a name for cli/system */
  id: string
  email?: string
  tokenId?: string
  name?: string
}

/**
 * One audit log entry. Entries form a hash chain: `hash` = sha256 over the
 * previous entry's hash and this entry's canonical JSON (without hash and
 * mac), `mac` = HMAC-SHA256 of `hash` under a key derived from the master key
 * (services/audit.ts). `seq` counts from 1 without gaps.
 */
export interface AuditEntry {
  seq: number
  time: number
  actor: AuditActor
  source?: { ip?: string; userAgent?: string; transport?: string }
  /** dotted, past tense: `store.created`, `grant.changed`, `model.moved`, ... */
  action: string
  outcome: 'ok' | 'denied'
  /** denied: the SV_* code answered */
  code?: string
  brandId?: string
  storeId?: string
  target?: { type: string; id: string }
  /** what changed: the record before and after (secrets removed) */
  before?: unknown
  after?: unknown
  requestId?: string
  prevHash: string
  hash: string
  mac: string
}

export interface AuditHead {
  /** 0 before the first entry */
  seq: number
  /** GENESIS_HASH before the first entry */
  hash: string
}

export const GENESIS_HASH = '0'.repeat(64)

/**
 * Completes an audit entry from the current head of the chain. Stores call it
 * while they hold the chain (a lock, a row lock), in the same atomic write as
 * the change it describes, so a change and its audit entry are never apart.
 * It must be synchronous and pure.
 */
export type AuditSeal = (head: AuditHead) => AuditEntry

// --- pivots -----------------------------------------------------------------------------------------

/**
 * A pivot (remodel) allow-list entry: devices of `fromModel` (all serials, or
 * one) may move to `toModel` of the same brand, whose store is `storeId`.
 */
export interface PivotRule {
  /** `pvr_` + random */
  id: string
  brandId: string
  fromModel: string
  toModel: string
  storeId: string
  /** absent: every serial of fromModel */
  serial?: string
  createdBy: string
  createdAt: number
}

export type PivotRequestStatus = 'pending' | 'accepted' | 'rejected'

/** A pivot waiting for (or decided by) a Reviewer, when the target store requires review. */
export interface PivotRequest {
  /** The serial-request's request-id: the device polls with the same request. */
  requestId: string
  brandId: string
  fromModel: string
  toModel: string
  storeId: string
  serial: string
  deviceKeyId: string
  status: PivotRequestStatus
  createdAt: number
  decidedAt?: number
  decidedBy?: string
  reason?: string
}

// --- work orders ------------------------------------------------------------------------------------

/**
 * The serials a work order allows: an explicit list; a range `prefix` +
 * `start..end` (inclusive) zero-padded to `width` digits (`GW-` 1..3 width 4:
 * GW-0001, GW-0002, GW-0003); or whatever the model's assign template draws
 * (models with an `assign` serial policy only).
 */
export type WorkOrderSerials =
  | { kind: 'list'; serials: string[] }
  | { kind: 'range'; prefix: string; start: number; end: number; width: number }
  | { kind: 'assign' }

/** `open` accepts registrations; `closed` by an admin; `exhausted` when `provisioned` reached `plannedQuantity`. */
export type WorkOrderStatus = 'open' | 'closed' | 'exhausted'

export const WORK_ORDER_STATUSES: readonly WorkOrderStatus[] = ['open', 'closed', 'exhausted']

/**
 * A work order: a batch of devices of one model a factory may provision,
 * within a validity window. `provisioned` counts the serials first bound
 * under it, in the same atomic write as each binding (RegistrationRepository.bind).
 */
export interface WorkOrderRecord {
  /** `wo_` + random */
  id: string
  brandId: string
  model: string
  /** the model's store when the order was opened (where it is listed and managed) */
  storeId: string
  plannedQuantity: number
  serials: WorkOrderSerials
  /** station ids allowed to relay for this order (stations come later, issue 10 item 3); absent: any */
  stations?: string[]
  /** epoch ms, inclusive */
  notBefore: number
  /** epoch ms, exclusive */
  notAfter: number
  status: WorkOrderStatus
  provisioned: number
  /** actor label of who opened it */
  createdBy: string
  createdAt: number
  updatedAt: number
  /** when it was closed or exhausted */
  closedAt?: number
  /** actor label of who closed it (absent when exhausted) */
  closedBy?: string
  /** why an admin closed it */
  reason?: string
}
