/**
 * VaultStore: the one narrow storage interface of the vault. Two backends
 * implement it (LevelStore, the embedded default, and PostgresStore for
 * several instances) and both pass test/conformance/store-suite.ts.
 *
 * Contract for every implementation:
 * - A missing record reads as `undefined`, never as an error.
 * - Every method called before `open()` resolved, or after `close()` was
 *   called, rejects with `SV_STORE_NOT_OPEN`. A backend that cannot be reached
 *   rejects with `SV_STORE_UNAVAILABLE` (503, the caller may retry).
 * - Uniqueness is the store's job, not the caller's: the conditional writes
 *   below (`createBrand`, `createModel`, `consumeRequestId`, `bindSerial`,
 *   `nextSerialNumber`) are atomic, so that two concurrent callers, or two
 *   vault processes on one PostgreSQL, never both win.
 * - Every write resolves only once it is durable (fsync'd for LevelDB,
 *   committed for PostgreSQL): the vault answers a device only after the
 *   signing log entry for that answer is on disk.
 * - Records are plain JSON-serialisable objects; times are epoch milliseconds.
 *   The store never sees a private key in clear: `SigningKeyRecord.sealed` is
 *   the AES-256-GCM envelope made by the key store.
 */

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
  /** The brand key that signs this model's serials (and the model assertion). */
  signingKeyId: string
  /** sha256 hex of each API key accepted for this model. API keys are never stored in clear. */
  apiKeyHashes: string[]
  serialPolicy: SerialPolicy
  duplicatePolicy: DuplicatePolicy
  /** Header tree of the model assertion, as given by the admin (without type/authority/sign-key). */
  modelHeaders: Record<string, unknown>
  /** The signed model assertion (text), re-signed when the headers or the key change. */
  modelAssertion: string
  /** Revision of the model assertion. */
  revision: number
  createdAt: number
  updatedAt: number
}

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
}

export type LogOutcome = 'issued' | 'reissued' | 'retried' | 'refused'

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
}

export interface LogQuery {
  brandId?: string
  model?: string
  serial?: string
  outcome?: LogOutcome
  /** inclusive lower bound, epoch ms (of the id's timestamp, see LogEntry.id) */
  from?: number
  /** exclusive upper bound, epoch ms */
  to?: number
  /** page size, 1..1000 (default 100); otherwise SV_REQUEST_INVALID */
  limit?: number
  /** opaque cursor from a previous page (SV_REQUEST_INVALID if it is not one) */
  cursor?: string
  /** default 'asc' (oldest first) */
  order?: 'asc' | 'desc'
}

export interface LogPage {
  entries: LogEntry[]
  /** present when more entries match */
  nextCursor?: string
}

export interface TokenRecord {
  /** sha256 hex of the bearer token; the token itself is shown once and never stored. */
  hash: string
  name: string
  /** Roles are a list so the later store roles (Store Administrator, Publisher, ...) fit in. */
  roles: string[]
  createdAt: number
}

export interface StoreTraits {
  /** Uniqueness holds across processes (true for PostgreSQL, false for LevelDB). */
  multiProcess: boolean
}

export interface VaultStore {
  readonly traits: StoreTraits

  /** Opens the backend and runs migrations. Idempotent. */
  open(): Promise<void>
  /** Closes the backend; pending operations finish first. Idempotent. */
  close(): Promise<void>
  /** Cheap round trip to the backend, for /v1/ready. Rejects with SV_STORE_UNAVAILABLE. */
  ping(): Promise<void>

  // --- brands and keys ---------------------------------------------------------
  /** Rejects with SV_BRAND_EXISTS when the id is taken. */
  createBrand(brand: BrandRecord): Promise<void>
  getBrand(id: string): Promise<BrandRecord | undefined>
  listBrands(): Promise<BrandRecord[]>

  /** Rejects with SV_KEY_EXISTS when the key id is taken. */
  putSigningKey(key: SigningKeyRecord): Promise<void>
  getSigningKey(keyId: string): Promise<SigningKeyRecord | undefined>
  /** Keys of one account, or all keys when accountId is undefined. */
  listSigningKeys(accountId?: string): Promise<SigningKeyRecord[]>
  /** Rejects with SV_KEY_NOT_FOUND. */
  setSigningKeyEnabled(keyId: string, enabled: boolean): Promise<void>

  // --- models ----------------------------------------------------------------------
  /** Rejects with SV_MODEL_EXISTS. */
  createModel(model: ModelRecord): Promise<void>
  /** Replaces an existing model; rejects with SV_MODEL_UNKNOWN when it does not exist. */
  updateModel(model: ModelRecord): Promise<void>
  getModel(brandId: string, name: string): Promise<ModelRecord | undefined>
  listModels(brandId?: string): Promise<ModelRecord[]>
  /** Models that accept the API key with this sha256 hex hash. */
  findModelsByApiKeyHash(hash: string): Promise<ModelRecord[]>

  // --- request ids -------------------------------------------------------------------
  /**
   * Marks a request-id as used, atomically: exactly one of several concurrent
   * calls with the same id resolves; the others reject with SV_REQUEST_ID_USED.
   * `expiresAt` lets the store forget the id once it could no longer be valid
   * (see `purgeExpired`). Issuing request-ids needs no store (they are
   * MAC-protected tokens, see services/request-ids.ts).
   * Durability: at the latest with the next durable write of this store (the
   * binding or refusal log entry that follows it); a crash before that may
   * forget the use of a request-id that obtained nothing.
   */
  consumeRequestId(id: string, expiresAt: number): Promise<void>
  /** Deletes consumed request-ids whose expiry is before `now`. Returns how many. */
  purgeExpired(now: number): Promise<number>

  // --- serials -----------------------------------------------------------------------
  getSerialBinding(brandId: string, model: string, serial: string): Promise<SerialBinding | undefined>
  getSerialBindingByDeviceKey(brandId: string, model: string, deviceKeyId: string): Promise<SerialBinding | undefined>
  /**
   * Records an issuance and its log entry atomically (one LevelDB batch, one
   * PostgreSQL transaction), durable before it resolves.
   *
   * Compare-and-set on the current binding of (brandId, model, serial):
   * - `expectRevision` 0 means "no binding exists yet": when one exists the call
   *   rejects with SV_SERIAL_TAKEN;
   * - otherwise the existing binding must have exactly that revision (a
   *   reissue or a released serial), else SV_SERIAL_TAKEN.
   * The device key must not be bound to another serial of the same model:
   * otherwise SV_DEVICE_KEY_TAKEN. Replacing a binding frees its old device key.
   */
  bindSerial(binding: SerialBinding, log: LogEntry, expectRevision: number): Promise<void>
  /** Admin: allow the next registration of this serial with a new key. Rejects with SV_SERIAL_NOT_FOUND. */
  releaseSerial(brandId: string, model: string, serial: string): Promise<void>
  /**
   * Next number of a model's assigned-serial sequence, starting at `start`.
   * Atomic and durable: a number is returned at most once, ever, even across
   * restarts and instances (gaps are allowed, reuse is not).
   */
  nextSerialNumber(brandId: string, model: string, start: number): Promise<number>

  // --- signing log ----------------------------------------------------------------------
  /** Appends one entry, durable before it resolves. */
  appendLog(entry: LogEntry): Promise<void>
  /** Entries matching every given filter, ordered by id. */
  queryLog(query: LogQuery): Promise<LogPage>
  /** The same selection as queryLog without paging, streamed in id order. */
  exportLog(query: Omit<LogQuery, 'limit' | 'cursor'>): AsyncIterable<LogEntry>

  // --- admin tokens --------------------------------------------------------------------
  putToken(token: TokenRecord): Promise<void>
  getToken(hash: string): Promise<TokenRecord | undefined>
  listTokens(): Promise<TokenRecord[]>
  deleteToken(hash: string): Promise<boolean>

  // --- small settings (root authority id, instance metadata) ------------------------------
  getMeta(name: string): Promise<string | undefined>
  /** Sets a value and resolves true; with `onlyIfAbsent`, leaves an existing value alone and resolves false. */
  putMeta(name: string, value: string, onlyIfAbsent?: boolean): Promise<boolean>
}
