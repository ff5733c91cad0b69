/**
 * VaultStore: the vault's storage, one repository per aggregate. Two
 * backends implement it (LevelStore, the embedded default, and PostgresStore
 * for several instances) and both pass test/conformance/store-suite.ts, one
 * group per repository.
 *
 * Contract for every implementation and every repository:
 * - A missing record reads as `undefined`, never as an error.
 * - Every method called before `open()` resolved, or after `close()` was
 *   called, rejects with `SV_STORE_NOT_OPEN`. A backend that cannot be reached
 *   rejects with `SV_STORE_UNAVAILABLE` (503, the caller may retry).
 * - Uniqueness is the store's job, not the caller's: the conditional writes
 *   below are atomic, so that two concurrent callers, or two vault processes
 *   on one PostgreSQL, never both win.
 * - Every write resolves only once it is durable (fsync'd for LevelDB,
 *   committed for PostgreSQL): the vault answers only after the signing log
 *   entry or audit entry for that answer is on disk.
 * - A write that takes an `audit` seal writes the change and its audit entry
 *   atomically (one LevelDB batch, one PostgreSQL transaction): a change is
 *   never without its entry, nor an entry without its change. The seal is
 *   called with the chain's head while the store holds the chain, so entries
 *   from several writers (and instances) form one chain without gaps.
 * - Records are plain JSON-serialisable objects; times are epoch milliseconds.
 */
import type {
  AuditEntry,
  AuditHead,
  AuditSeal,
  BrandRecord,
  GrantRecord,
  LogEntry,
  LogOutcome,
  LoginTransactionRecord,
  ModelRecord,
  PersonRecord,
  PivotRequest,
  PivotRequestStatus,
  PivotRule,
  SerialBinding,
  SessionRecord,
  SigningKeyRecord,
  StoreRecord,
  TokenRecord,
  WorkOrderRecord,
  WorkOrderStatus,
} from './records.js'

export type * from './records.js'
export { GENESIS_HASH, LOG_OUTCOMES, MAX_STORE_DEPTH, ROLES, WORK_ORDER_STATUSES, tokenId } from './records.js'

export interface StoreTraits {
  /** Uniqueness holds across processes (true for PostgreSQL, false for LevelDB). */
  multiProcess: boolean
}

// --- queries -------------------------------------------------------------------------------

export interface LogQuery {
  brandId?: string
  model?: string
  /** entries written in any of these stores (a store's view of the log) */
  storeIds?: string[]
  serial?: string
  deviceKeyId?: string
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
  /** present when more entries may match */
  nextCursor?: string
}

export interface AuditQuery {
  storeIds?: string[]
  brandId?: string
  /** actor id (person id, token id, ...) */
  actorId?: string
  /** an action, or a prefix ending in '.' (`grant.`) */
  action?: string
  outcome?: 'ok' | 'denied'
  from?: number
  to?: number
  /** page size, 1..1000 (default 100) */
  limit?: number
  cursor?: string
  order?: 'asc' | 'desc'
}

export interface AuditPage {
  entries: AuditEntry[]
  nextCursor?: string
}

// --- repositories ----------------------------------------------------------------------------

export interface SigningKeyRepository {
  /** Rejects with SV_KEY_EXISTS when the key id is taken. */
  put(key: SigningKeyRecord, audit?: AuditSeal): Promise<void>
  get(keyId: string): Promise<SigningKeyRecord | undefined>
  /** Keys of one account, or all keys when accountId is undefined, ordered by key id. */
  list(accountId?: string): Promise<SigningKeyRecord[]>
  /** Sets `enabled` (and `reason`, `changedAt`); resolves with the new record. SV_KEY_NOT_FOUND. */
  setEnabled(keyId: string, change: { enabled: boolean; reason?: string; at: number }, audit?: AuditSeal): Promise<SigningKeyRecord>
}

/** Brands (each with its base store) and their models. */
export interface BrandRepository {
  /**
   * Creates a brand and its base store together. SV_BRAND_EXISTS when the id
   * is taken, SV_STORE_EXISTS when the base store's id is.
   */
  createBrand(brand: BrandRecord, baseStore: StoreRecord, audit?: AuditSeal): Promise<void>
  getBrand(id: string): Promise<BrandRecord | undefined>
  /** Ordered by id. */
  listBrands(): Promise<BrandRecord[]>

  /** SV_MODEL_EXISTS; SV_STORE_NOT_FOUND when its store does not exist or is of another brand. */
  createModel(model: ModelRecord, audit?: AuditSeal): Promise<void>
  /**
   * Replaces an existing model (its store may change: a move).
   * SV_MODEL_UNKNOWN when it does not exist, SV_STORE_NOT_FOUND as for createModel.
   */
  updateModel(model: ModelRecord, audit?: AuditSeal): Promise<void>
  getModel(brandId: string, name: string): Promise<ModelRecord | undefined>
  /** Ordered by brand, then name. */
  listModels(filter?: { brandId?: string; storeId?: string }): Promise<ModelRecord[]>
  /** Models that accept the API key with this sha256 hex hash. */
  findModelsByApiKeyHash(hash: string): Promise<ModelRecord[]>
}

export interface StoreRepository {
  /**
   * Creates a sub-store (base stores come with their brand, createBrand).
   * SV_STORE_EXISTS when the id is taken; SV_STORE_NOT_FOUND when the parent
   * does not exist or is of another brand.
   */
  create(store: StoreRecord, audit?: AuditSeal): Promise<void>
  /** Replaces a store's display name, partner and review flag (never its id, brand, kind or parent). SV_STORE_NOT_FOUND. */
  update(store: StoreRecord, audit?: AuditSeal): Promise<void>
  get(id: string): Promise<StoreRecord | undefined>
  /** Ordered by id. */
  list(filter?: { brandId?: string }): Promise<StoreRecord[]>
  /** Grows with every create and update (any instance): callers cache the tree until it changes. */
  version(): Promise<number>
}

/** Request-ids, serial bindings and assigned-serial sequences: what a registration writes. */
export interface RegistrationRepository {
  /**
   * Marks a request-id as used, atomically: exactly one of several concurrent
   * calls with the same id resolves; the others reject with SV_REQUEST_ID_USED.
   * `expiresAt` lets the store forget the id once it could no longer be valid
   * (see `purgeExpired`). Issuing request-ids needs no store (they are
   * MAC-protected tokens, see services/registration/request-ids.ts).
   * Durability: at the latest with the next durable write of this store (the
   * binding or refusal log entry that follows it); a crash before that may
   * forget the use of a request-id that obtained nothing.
   */
  consumeRequestId(id: string, expiresAt: number): Promise<void>
  /** Deletes consumed request-ids whose expiry is before `now`. Returns how many. */
  purgeExpired(now: number): Promise<number>

  getBinding(brandId: string, model: string, serial: string): Promise<SerialBinding | undefined>
  getBindingByDeviceKey(brandId: string, model: string, deviceKeyId: string): Promise<SerialBinding | undefined>
  /**
   * Records an issuance and its signing log entry atomically (one LevelDB
   * batch, one PostgreSQL transaction), durable before it resolves.
   *
   * Compare-and-set on the current binding of (brandId, model, serial):
   * - `expectRevision` 0 means "no binding exists yet": when one exists the call
   *   rejects with SV_SERIAL_TAKEN;
   * - otherwise the existing binding must have exactly that revision (a
   *   reissue or a released serial), else SV_SERIAL_TAKEN.
   * The device key must not be bound to another serial of the same model:
   * otherwise SV_DEVICE_KEY_TAKEN. Replacing a binding frees its old device key.
   *
   * `pivot` (a remodel) also marks the binding the device came from as
   * pivoted, in the same write; it must still be bound to the same device key
   * (else SV_SERIAL_TAKEN).
   *
   * `workOrder` issues under a work order, in the same write: the order must
   * exist (SV_WORK_ORDER_NOT_FOUND) and be open (SV_WORK_ORDER_CLOSED, or
   * SV_WORK_ORDER_EXHAUSTED once `provisioned` reached `plannedQuantity`);
   * with `count`, its `provisioned` grows by one and the order becomes
   * `exhausted` when it reaches `plannedQuantity`. Concurrent binds (and
   * instances) never count past `plannedQuantity`: the check and the count
   * are atomic with the binding (a row lock in PostgreSQL, the order's mutex
   * in LevelDB).
   */
  bind(binding: SerialBinding, log: LogEntry, expectRevision: number, options?: { pivotFrom?: { model: string }; audit?: AuditSeal; workOrder?: { id: string; count: boolean } }): Promise<void>
  /** Admin: allow the next registration of this serial with a new key. SV_SERIAL_NOT_FOUND. Resolves with the new binding. */
  release(brandId: string, model: string, serial: string, audit?: AuditSeal): Promise<SerialBinding>
  /**
   * Next number of a model's assigned-serial sequence, starting at `start`.
   * Atomic and durable: a number is returned at most once, ever, even across
   * restarts and instances (gaps are allowed, reuse is not).
   */
  nextSerialNumber(brandId: string, model: string, start: number): Promise<number>
}

export interface SigningLogRepository {
  /** Appends one entry, durable before it resolves. */
  append(entry: LogEntry): Promise<void>
  /** Entries matching every given filter, ordered by id. */
  query(query: LogQuery): Promise<LogPage>
  /** The same selection as query without paging, streamed in id order. */
  export(query: Omit<LogQuery, 'limit' | 'cursor'>): AsyncIterable<LogEntry>
}

export interface PeopleRepository {
  /** SV_PERSON_EXISTS when the id or the e-mail is taken. */
  create(person: PersonRecord, audit?: AuditSeal): Promise<void>
  /** Replaces a person (same id and e-mail). SV_PERSON_NOT_FOUND. */
  update(person: PersonRecord, audit?: AuditSeal): Promise<void>
  get(id: string): Promise<PersonRecord | undefined>
  /** By e-mail, compared lowercase. */
  getByEmail(email: string): Promise<PersonRecord | undefined>
  /** Ordered by e-mail. */
  list(): Promise<PersonRecord[]>
}

export interface GrantRepository {
  /** Creates or replaces the grant of (personId, storeId). SV_PERSON_NOT_FOUND / SV_STORE_NOT_FOUND. */
  put(grant: GrantRecord, audit?: AuditSeal): Promise<void>
  /** Resolves with the removed grant, or undefined when there was none (no audit entry then). */
  delete(personId: string, storeId: string, audit?: AuditSeal): Promise<GrantRecord | undefined>
  /** Ordered by store id. */
  listForPerson(personId: string): Promise<GrantRecord[]>
  /** Ordered by person id. */
  listForStore(storeId: string): Promise<GrantRecord[]>
}

export interface TokenRepository {
  /** Stores a new token. SV_TOKEN_EXISTS when the hash is taken. */
  put(token: TokenRecord, audit?: AuditSeal): Promise<void>
  get(hash: string): Promise<TokenRecord | undefined>
  /** Ordered by hash; `personId` narrows to one person's tokens. */
  list(filter?: { personId?: string; kind?: TokenRecord['kind'] }): Promise<TokenRecord[]>
  /** Marks a token revoked (kept for the record). SV_TOKEN_NOT_FOUND. Resolves with the revoked record. */
  revoke(hash: string, change: { at: number; by: string }, audit?: AuditSeal): Promise<TokenRecord>
  /** Records a use; best effort, not audited. */
  touch(hash: string, at: number): Promise<void>
}

export interface SessionRepository {
  create(session: SessionRecord): Promise<void>
  get(hash: string): Promise<SessionRecord | undefined>
  /** Moves the idle expiry forward; SV_SESSION_INVALID when the session is gone. */
  touch(hash: string, idleExpiresAt: number): Promise<void>
  /** Resolves true when a session was deleted. */
  delete(hash: string): Promise<boolean>
  /** Ends every session of a person (their access changed, or they were disabled). Resolves with how many. */
  deleteForPerson(personId: string): Promise<number>
  putLoginTransaction(tx: LoginTransactionRecord): Promise<void>
  /** Atomic get-and-delete: a transaction is used once, across instances too. */
  takeLoginTransaction(id: string): Promise<LoginTransactionRecord | undefined>
  /** Deletes sessions and login transactions that ended before `now`. Returns how many. */
  purgeExpired(now: number): Promise<number>
}

export interface AuditRepository {
  /** The chain's last entry (seq 0 and GENESIS_HASH when empty). */
  head(): Promise<AuditHead>
  /** Appends an entry that goes with no other change (logins, refusals). Resolves with it. */
  append(seal: AuditSeal): Promise<AuditEntry>
  /** Entries matching every given filter, ordered by seq. */
  query(query: AuditQuery): Promise<AuditPage>
  /** The same selection as query without paging, streamed in seq order. */
  export(query: Omit<AuditQuery, 'limit' | 'cursor'>): AsyncIterable<AuditEntry>
}

export interface PivotRepository {
  /** SV_PIVOT_EXISTS when a rule for the same brand, models and serial exists. */
  putRule(rule: PivotRule, audit?: AuditSeal): Promise<void>
  /** Resolves with the removed rule, or undefined. */
  deleteRule(id: string, audit?: AuditSeal): Promise<PivotRule | undefined>
  getRule(id: string): Promise<PivotRule | undefined>
  /** Rules of a brand, optionally from one model or into one store; ordered by id. */
  listRules(filter: { brandId?: string; fromModel?: string; storeId?: string }): Promise<PivotRule[]>
  /** Stores a new pending request. SV_PIVOT_EXISTS when one exists for this request-id. */
  createRequest(request: PivotRequest): Promise<void>
  getRequest(requestId: string): Promise<PivotRequest | undefined>
  /**
   * Decides a pending request: compare-and-set from `pending`; SV_PIVOT_NOT_FOUND
   * when there is none, SV_PIVOT_DECIDED when it was decided already.
   */
  decideRequest(requestId: string, decision: { status: Exclude<PivotRequestStatus, 'pending'>; at: number; by: string; reason?: string }, audit?: AuditSeal): Promise<PivotRequest>
  /** Requests into one store, newest first, optionally of one status; at most `limit` (default 100, max 1000). */
  listRequests(filter: { storeId: string; status?: PivotRequestStatus; limit?: number }): Promise<PivotRequest[]>
}

export interface WorkOrderRepository {
  /** SV_WORK_ORDER_EXISTS when the id is taken. */
  create(order: WorkOrderRecord, audit?: AuditSeal): Promise<void>
  get(id: string): Promise<WorkOrderRecord | undefined>
  /** Orders matching every given filter, ordered by id. */
  list(filter?: { brandId?: string; model?: string; storeId?: string; status?: WorkOrderStatus }): Promise<WorkOrderRecord[]>
  /**
   * Closes an open order (status `closed`, `closedAt`, `closedBy`, `reason`);
   * resolves with the new record. SV_WORK_ORDER_NOT_FOUND; SV_WORK_ORDER_CLOSED
   * when it is not open (closed or exhausted already). Compare-and-set against
   * bind: a registration counted before the close stays counted, none after.
   */
  close(id: string, change: { at: number; by: string; reason?: string }, audit?: AuditSeal): Promise<WorkOrderRecord>
}

/** Small settings (root authority id, root account assertion). */
export interface MetaRepository {
  get(name: string): Promise<string | undefined>
  /** Sets a value and resolves true; with `onlyIfAbsent`, leaves an existing value alone and resolves false. */
  put(name: string, value: string, onlyIfAbsent?: boolean): Promise<boolean>
}

export interface VaultStore {
  readonly traits: StoreTraits

  /** Opens the backend and brings its layout up to date (migrations). Idempotent. */
  open(): Promise<void>
  /** Closes the backend; pending operations finish first. Idempotent. */
  close(): Promise<void>
  /** Cheap round trip to the backend, for /v1/ready. Rejects with SV_STORE_UNAVAILABLE. */
  ping(): Promise<void>

  readonly keys: SigningKeyRepository
  readonly brands: BrandRepository
  readonly stores: StoreRepository
  readonly registrations: RegistrationRepository
  readonly signingLog: SigningLogRepository
  readonly people: PeopleRepository
  readonly grants: GrantRepository
  readonly tokens: TokenRepository
  readonly sessions: SessionRepository
  readonly audit: AuditRepository
  readonly pivots: PivotRepository
  readonly workOrders: WorkOrderRepository
  readonly meta: MetaRepository
}
