import type {
  AbstractBatchOperation,
  AbstractBatchOptions,
  AbstractSublevel,
  AbstractSublevelOptions,
} from 'abstract-level'
import { VaultError, isVaultError } from '@sv/shared'
import { KeyedMutex } from './keyed-mutex.js'
import {
  LAYOUT_VERSION,
  SUBLEVELS,
  lastComponent,
  padNumber,
  prefixRange,
  splitTupleKey,
  tupleKey,
} from './level-keys.js'
import { matchesLogQuery, normalizeLogQuery, toLogPage, type NormalizedLogQuery } from './log-query.js'
import { StoreLifecycle } from './store-lifecycle.js'
import type {
  BrandRecord,
  LogEntry,
  LogPage,
  LogQuery,
  ModelRecord,
  SerialBinding,
  SigningKeyRecord,
  StoreTraits,
  TokenRecord,
  VaultStore,
} from './store.js'

type Format = string | Buffer | Uint8Array
type Sub<V> = AbstractSublevel<any, Format, string, V>
type Op = AbstractBatchOperation<any, string, unknown>

/**
 * The part of an abstract-level database LevelStore uses. Any abstract-level
 * database fits (classic-level, memory-level, a sublevel of either). It is
 * spelled out because abstract-level's own class types are parameterised by
 * the concrete class (`hooks`, `sublevel().parent`), so `Level` and
 * `MemoryLevel` do not reliably type-check as a plain `AbstractLevel`.
 */
export interface LevelDatabase {
  open(): Promise<void>
  close(): Promise<void>
  sublevel<K, V>(name: string, options: AbstractSublevelOptions<K, V>): AbstractSublevel<any, Format, K, V>
  batch<K, V>(operations: Array<AbstractBatchOperation<any, K, V>>, options: AbstractBatchOptions<K, V>): Promise<void>
}

interface Sublevels {
  sys: Sub<string>
  brand: Sub<BrandRecord>
  key: Sub<SigningKeyRecord>
  keyByAccount: Sub<string>
  model: Sub<ModelRecord>
  modelByApiKey: Sub<string>
  requestId: Sub<number>
  requestIdByExpiry: Sub<string>
  serial: Sub<SerialBinding>
  serialByDeviceKey: Sub<string>
  sequence: Sub<number>
  log: Sub<LogEntry>
  logBySerial: Sub<string>
  logByModel: Sub<string>
  logByBrand: Sub<string>
  logByOutcome: Sub<string>
  token: Sub<TokenRecord>
  meta: Sub<string>
}

const JSON_SUBLEVELS = new Set<keyof Sublevels>(['brand', 'key', 'model', 'requestId', 'serial', 'sequence', 'log', 'token'])

/** Keys read per step when scanning the log. */
const SCAN_BATCH = 256

/** request-id uses held for the next batch at most; beyond, they are written unsynced at once */
const MAX_PENDING_USES = 1024

/**
 * VaultStore over any abstract-level database (classic-level on disk in
 * production, memory-level for fast tests). Key layout: level-keys.ts.
 *
 * The store owns the database it is given: open() opens it, close() closes it.
 *
 * Atomicity. LevelDB has no transactions, only atomic batches. Every
 * conditional write (createBrand, putSigningKey, createModel, updateModel,
 * consumeRequestId, bindSerial, releaseSerial, nextSerialNumber, and the
 * read-modify-writes of keys, tokens and meta) therefore reads, checks and
 * writes one batch while holding an in-process mutex on the keys it checks.
 * That is only sound with a single writer process, which classic-level
 * enforces: LevelDB's LOCK file makes a second process fail to open the same
 * directory (it gets SV_STORE_UNAVAILABLE here). Several vault processes
 * need PostgresStore (traits.multiProcess).
 *
 * Reads on the registration path use getSync: a LevelDB read of a small
 * record served from its caches takes microseconds on the calling thread,
 * less than the hand-off to libuv's pool and back that an async get costs
 * (measured in bench/vault.ts; see docs/benchmarks.md).
 *
 * Durability. Every write batch is written with `{ sync: true }` (fsync'd
 * before it resolves), except the deletions of purgeExpired, which are safe to
 * lose, and consumeRequestId, whose write rides in the next synced batch
 * (see there). A binding and its log entry are one batch.
 */
export class LevelStore implements VaultStore {
  readonly traits: StoreTraits = { multiProcess: false }
  readonly #db: LevelDatabase
  readonly #life = new StoreLifecycle(mapLevelError)
  readonly #mutex = new KeyedMutex()
  /** request-id uses not yet written, by id: they ride in the next batch (consumeRequestId) */
  readonly #pendingUses = new Map<string, Op[]>()
  #subs: Sublevels | undefined

  constructor(db: LevelDatabase) {
    this.#db = db
  }

  open(): Promise<void> {
    return this.#life.open(async () => {
      try {
        await this.#db.open()
      } catch (err) {
        const mapped = mapLevelError(err)
        if (isVaultError(mapped) && mapped.details?.reason === 'locked') throw mapped
        throw new VaultError('SV_STORE_UNAVAILABLE', 'cannot open the LevelDB database', { cause: err })
      }
      try {
        // Sublevels are closed for good with their parent, so each open makes new ones.
        const subs = createSublevels(this.#db)
        await checkLayout(subs.sys, (ops) => this.#write(ops))
        this.#subs = subs
      } catch (err) {
        await this.#db.close().catch(() => {})
        throw err
      }
    })
  }

  close(): Promise<void> {
    return this.#life.close(async () => {
      // request-id uses still waiting for a batch to ride in: written now
      if (this.#pendingUses.size > 0) await this.#write([]).catch(() => {})
      this.#pendingUses.clear()
      this.#subs = undefined
      await this.#db.close()
    })
  }

  ping(): Promise<void> {
    return this.#run(async (s) => {
      await s.sys.get('layout')
    })
  }

  // --- brands and keys -------------------------------------------------------------

  async createBrand(brand: BrandRecord): Promise<void> {
    requireStrings({ id: brand.id })
    return this.#locked([tupleKey('brand', brand.id)], async (s) => {
      if (await s.brand.has(brand.id)) {
        throw new VaultError('SV_BRAND_EXISTS', 'a brand with this id already exists', { details: { brandId: brand.id } })
      }
      await this.#write([put(s.brand, brand.id, brand)])
    })
  }

  getBrand(id: string): Promise<BrandRecord | undefined> {
    return this.#run((s) => s.brand.get(id))
  }

  listBrands(): Promise<BrandRecord[]> {
    return this.#run((s) => s.brand.values().all())
  }

  async putSigningKey(key: SigningKeyRecord): Promise<void> {
    requireStrings({ keyId: key.keyId, accountId: key.accountId })
    return this.#locked([tupleKey('key', key.keyId)], async (s) => {
      if (await s.key.has(key.keyId)) {
        throw new VaultError('SV_KEY_EXISTS', 'a signing key with this id already exists', { details: { keyId: key.keyId } })
      }
      await this.#write([put(s.key, key.keyId, key), put(s.keyByAccount, tupleKey(key.accountId, key.keyId), '')])
    })
  }

  getSigningKey(keyId: string): Promise<SigningKeyRecord | undefined> {
    return this.#run((s) => s.key.get(keyId))
  }

  listSigningKeys(accountId?: string): Promise<SigningKeyRecord[]> {
    return this.#run(async (s) => {
      if (accountId === undefined) return s.key.values().all()
      const ids = (await s.keyByAccount.keys(prefixRange(accountId)).all()).map(lastComponent)
      return defined(await s.key.getMany(ids))
    })
  }

  setSigningKeyEnabled(keyId: string, enabled: boolean): Promise<void> {
    return this.#locked([tupleKey('key', keyId)], async (s) => {
      const key = await s.key.get(keyId)
      if (key === undefined) throw new VaultError('SV_KEY_NOT_FOUND', 'no such signing key', { details: { keyId } })
      await this.#write([put(s.key, keyId, { ...key, enabled })])
    })
  }

  // --- models ------------------------------------------------------------------------

  async createModel(model: ModelRecord): Promise<void> {
    requireStrings({ brandId: model.brandId, name: model.name })
    const k = tupleKey(model.brandId, model.name)
    return this.#locked([tupleKey('model', k)], async (s) => {
      if (await s.model.has(k)) {
        throw new VaultError('SV_MODEL_EXISTS', 'a model with this name already exists for the brand', {
          details: { brandId: model.brandId, model: model.name },
        })
      }
      await this.#write([put(s.model, k, model), ...apiKeyIndexOps(s, model, 'put')])
    })
  }

  async updateModel(model: ModelRecord): Promise<void> {
    requireStrings({ brandId: model.brandId, name: model.name })
    const k = tupleKey(model.brandId, model.name)
    return this.#locked([tupleKey('model', k)], async (s) => {
      const old = await s.model.get(k)
      if (old === undefined) {
        throw new VaultError('SV_MODEL_UNKNOWN', 'no such model for this brand', {
          details: { brandId: model.brandId, model: model.name },
        })
      }
      // Index deletions first: a hash kept by the update is put back by the later op.
      await this.#write([...apiKeyIndexOps(s, old, 'del'), ...apiKeyIndexOps(s, model, 'put'), put(s.model, k, model)])
    })
  }

  getModel(brandId: string, name: string): Promise<ModelRecord | undefined> {
    return this.#run((s) => s.model.get(tupleKey(brandId, name)))
  }

  listModels(brandId?: string): Promise<ModelRecord[]> {
    return this.#run((s) => s.model.values(brandId === undefined ? {} : prefixRange(brandId)).all())
  }

  findModelsByApiKeyHash(hash: string): Promise<ModelRecord[]> {
    return this.#run(async (s) => {
      const keys = await s.modelByApiKey.keys(prefixRange(hash)).all()
      const modelKeys = keys.map((key) => {
        const [, brandId, name] = splitTupleKey(key)
        return tupleKey(brandId!, name!)
      })
      return defined(await s.model.getMany(modelKeys))
    })
  }

  // --- request ids ---------------------------------------------------------------------

  async consumeRequestId(id: string, expiresAt: number): Promise<void> {
    requireStrings({ id })
    requireTime('expiresAt', expiresAt)
    return this.#locked([tupleKey('request-id', id)], async (s) => {
      if (this.#pendingUses.has(id) || s.requestId.getSync(id) !== undefined) {
        throw new VaultError('SV_REQUEST_ID_USED', 'the request-id was already used')
      }
      // Not written on its own: the use rides in the next batch, the one that
      // binds a serial for this request or logs its refusal, and is durable
      // with it (until then this process refuses the id from #pendingUses).
      // A crash before that forgets the use of an id that obtained nothing.
      // One write and one fsync per registration instead of two.
      this.#pendingUses.set(id, [put(s.requestId, id, expiresAt), put(s.requestIdByExpiry, tupleKey(padNumber(expiresAt), id), '')])
      // bounded: uses with no write after them (identical retries) go out unsynced
      if (this.#pendingUses.size >= MAX_PENDING_USES) await this.#writeRiders({})
    })
  }

  async purgeExpired(now: number): Promise<number> {
    requireTime('now', now)
    return this.#run(async (s) => {
      // uses still waiting for a batch are written first, so that they are purged like the others
      if (this.#pendingUses.size > 0) await this.#writeRiders({})
      // Keys are (16-digit expiry, id): everything below the bare expiry `now` expired before it.
      const it = s.requestIdByExpiry.keys({ lt: tupleKey(padNumber(now)) })
      let purged = 0
      try {
        for (;;) {
          const keys = await it.nextv(SCAN_BATCH)
          if (keys.length === 0) break
          const ops: Op[] = []
          for (const key of keys) ops.push(del(s.requestIdByExpiry, key), del(s.requestId, lastComponent(key)))
          // Not synced: a purge lost in a crash is simply done again.
          await this.#db.batch<string, unknown>(ops, {})
          purged += keys.length
        }
      } finally {
        await it.close()
      }
      return purged
    })
  }

  // --- serials -------------------------------------------------------------------------

  getSerialBinding(brandId: string, model: string, serial: string): Promise<SerialBinding | undefined> {
    return this.#run(async (s) => s.serial.getSync(tupleKey(brandId, model, serial)))
  }

  getSerialBindingByDeviceKey(brandId: string, model: string, deviceKeyId: string): Promise<SerialBinding | undefined> {
    return this.#run(async (s) => {
      const serial = s.serialByDeviceKey.getSync(tupleKey(brandId, model, deviceKeyId))
      if (serial === undefined) return undefined
      // Two reads, no snapshot: a replacement in between may have moved the key.
      const found = s.serial.getSync(tupleKey(brandId, model, serial))
      return found?.deviceKeyId === deviceKeyId ? found : undefined
    })
  }

  async bindSerial(binding: SerialBinding, log: LogEntry, expectRevision: number): Promise<void> {
    const { brandId, model, serial, deviceKeyId } = binding
    requireStrings({ brandId, model, serial, deviceKeyId, 'log.id': log.id })
    if (!Number.isSafeInteger(expectRevision) || expectRevision < 0) {
      throw new TypeError('expectRevision must be a non-negative integer')
    }
    const serialKey = tupleKey(brandId, model, serial)
    const deviceKey = tupleKey(brandId, model, deviceKeyId)
    // Both uniqueness rules are checked under their own lock: two serials racing for
    // one device key contend on the device-key lock.
    const locks = [tupleKey('serial', serialKey), tupleKey('device-key', deviceKey)]
    return this.#locked(locks, async (s) => {
      const current = s.serial.getSync(serialKey)
      const owner = s.serialByDeviceKey.getSync(deviceKey)
      if (expectRevision === 0 ? current !== undefined : current?.revision !== expectRevision) {
        throw new VaultError('SV_SERIAL_TAKEN', 'this serial is already bound, or its binding changed', {
          details: { brandId, model, serial },
        })
      }
      if (owner !== undefined && owner !== serial) {
        throw new VaultError('SV_DEVICE_KEY_TAKEN', 'this device key is already bound to another serial of the model', {
          details: { brandId, model, serial: owner },
        })
      }
      const ops: Op[] = [put(s.serial, serialKey, binding), put(s.serialByDeviceKey, deviceKey, serial)]
      if (current !== undefined && current.deviceKeyId !== deviceKeyId) {
        ops.push(del(s.serialByDeviceKey, tupleKey(brandId, model, current.deviceKeyId)))
      }
      await this.#write([...ops, ...logOps(s, log)])
    })
  }

  releaseSerial(brandId: string, model: string, serial: string): Promise<void> {
    const serialKey = tupleKey(brandId, model, serial)
    return this.#locked([tupleKey('serial', serialKey)], async (s) => {
      const current = await s.serial.get(serialKey)
      if (current === undefined) {
        throw new VaultError('SV_SERIAL_NOT_FOUND', 'no serial binding for this brand, model and serial', {
          details: { brandId, model, serial },
        })
      }
      await this.#write([put(s.serial, serialKey, { ...current, released: true })])
    })
  }

  async nextSerialNumber(brandId: string, model: string, start: number): Promise<number> {
    requireStrings({ brandId, model })
    if (!Number.isSafeInteger(start) || start < 0) throw new TypeError('start must be a non-negative integer')
    const k = tupleKey(brandId, model)
    return this.#locked([tupleKey('sequence', k)], async (s) => {
      // A raised `start` (template changed) moves the sequence forward; it never goes back.
      const n = Math.max((await s.sequence.get(k)) ?? start, start)
      await this.#write([put(s.sequence, k, n + 1)])
      return n
    })
  }

  // --- signing log -----------------------------------------------------------------------

  async appendLog(entry: LogEntry): Promise<void> {
    requireStrings({ id: entry.id })
    return this.#run((s) => this.#write(logOps(s, entry)))
  }

  queryLog(query: LogQuery): Promise<LogPage> {
    return this.#run(async (s) => {
      const q = normalizeLogQuery(query)
      const matches: LogEntry[] = []
      // The scan ends (and closes its iterator) once one entry more than a page is found.
      for await (const entry of scanLog(q, Math.min(q.limit + 1, SCAN_BATCH), (fn) => fn(s))) {
        matches.push(entry)
        if (matches.length > q.limit) break
      }
      return toLogPage(matches, q.limit)
    })
  }

  async *exportLog(query: Omit<LogQuery, 'limit' | 'cursor'>): AsyncIterable<LogEntry> {
    const q = normalizeLogQuery({ ...query, limit: undefined, cursor: undefined })
    // Each step is its own store operation: close() waits for the step in flight, and
    // the step after it rejects with SV_STORE_NOT_OPEN.
    yield* scanLog(q, SCAN_BATCH, (fn) => this.#run(fn))
  }

  // --- admin tokens ------------------------------------------------------------------------

  async putToken(token: TokenRecord): Promise<void> {
    requireStrings({ hash: token.hash })
    return this.#locked([tupleKey('token', token.hash)], (s) => this.#write([put(s.token, token.hash, token)]))
  }

  getToken(hash: string): Promise<TokenRecord | undefined> {
    return this.#run((s) => s.token.get(hash))
  }

  listTokens(): Promise<TokenRecord[]> {
    return this.#run((s) => s.token.values().all())
  }

  deleteToken(hash: string): Promise<boolean> {
    return this.#locked([tupleKey('token', hash)], async (s) => {
      if (!(await s.token.has(hash))) return false
      await this.#write([del(s.token, hash)])
      return true
    })
  }

  // --- meta --------------------------------------------------------------------------------

  getMeta(name: string): Promise<string | undefined> {
    return this.#run((s) => s.meta.get(name))
  }

  async putMeta(name: string, value: string, onlyIfAbsent = false): Promise<boolean> {
    requireStrings({ name, value })
    return this.#locked([tupleKey('meta', name)], async (s) => {
      if (onlyIfAbsent && (await s.meta.has(name))) return false
      await this.#write([put(s.meta, name, value)])
      return true
    })
  }

  // --- internals -------------------------------------------------------------------------

  #run<T>(op: (s: Sublevels) => Promise<T>): Promise<T> {
    return this.#life.run(() => op(this.#subs!))
  }

  #locked<T>(keys: string[], op: (s: Sublevels) => Promise<T>): Promise<T> {
    return this.#run((s) => this.#mutex.run(keys, () => op(s)))
  }

  /** One atomic, fsync'd batch across sublevels, carrying the pending request-id uses. */
  #write(ops: Op[]): Promise<void> {
    // `sync` is a classic-level option the abstract typings do not know; memory-level ignores it.
    return this.#writeRiders({ sync: true } as AbstractBatchOptions<string, unknown>, ops)
  }

  async #writeRiders(options: AbstractBatchOptions<string, unknown>, ops: Op[] = []): Promise<void> {
    if (this.#pendingUses.size === 0) return this.#db.batch<string, unknown>(ops, options)
    const riders = [...this.#pendingUses]
    await this.#db.batch<string, unknown>([...riders.flatMap(([, r]) => r), ...ops], options)
    // written: forget them (a failed batch leaves them pending, to ride again)
    for (const [id, r] of riders) if (this.#pendingUses.get(id) === r) this.#pendingUses.delete(id)
  }
}

function createSublevels(db: LevelDatabase): Sublevels {
  const subs: Partial<Record<keyof Sublevels, Sub<unknown>>> = {}
  for (const [field, name] of Object.entries(SUBLEVELS) as Array<[keyof Sublevels, string]>) {
    subs[field] = db.sublevel<string, unknown>(name, {
      keyEncoding: 'utf8',
      valueEncoding: JSON_SUBLEVELS.has(field) ? 'json' : 'utf8',
    })
  }
  return subs as Sublevels
}

async function checkLayout(sys: Sub<string>, write: (ops: Op[]) => Promise<void>): Promise<void> {
  const layout = await sys.get('layout')
  if (layout === undefined) {
    await write([put(sys, 'layout', LAYOUT_VERSION)])
  } else if (layout !== LAYOUT_VERSION) {
    throw new VaultError('SV_STORE_UNAVAILABLE', 'the LevelDB data was written with another key layout', {
      details: { layout, expected: LAYOUT_VERSION },
    })
  }
}

function put<V>(sublevel: Sub<V>, key: string, value: V): Op {
  return { type: 'put', sublevel, key, value }
}

function del<V>(sublevel: Sub<V>, key: string): Op {
  return { type: 'del', sublevel, key }
}

function apiKeyIndexOps(s: Sublevels, model: ModelRecord, type: 'put' | 'del'): Op[] {
  return [...new Set(model.apiKeyHashes)].map((hash) => {
    const key = tupleKey(hash, model.brandId, model.name)
    return type === 'put' ? put(s.modelByApiKey, key, '') : del(s.modelByApiKey, key)
  })
}

/** The entry and its index keys; each index key ends with the log id (see level-keys.ts). */
function logOps(s: Sublevels, e: LogEntry): Op[] {
  const ops: Op[] = [put(s.log, tupleKey(e.id), e), put(s.logByOutcome, tupleKey(e.outcome, e.id), '')]
  if (e.serial !== undefined) ops.push(put(s.logBySerial, tupleKey(e.serial, e.id), ''))
  if (e.brandId !== undefined) {
    ops.push(put(s.logByBrand, tupleKey(e.brandId, e.id), ''))
    if (e.model !== undefined) ops.push(put(s.logByModel, tupleKey(e.brandId, e.model, e.id), ''))
  }
  return ops
}

/**
 * Picks the most selective index the query allows: serial, then brand+model,
 * then outcome, then brand, else the log itself. The other filters are
 * applied to the entries read.
 */
function planLogScan(s: Sublevels, q: NormalizedLogQuery): { index: Sub<string> | undefined; prefix: string[] } {
  if (q.serial !== undefined) return { index: s.logBySerial, prefix: [q.serial] }
  if (q.brandId !== undefined && q.model !== undefined) return { index: s.logByModel, prefix: [q.brandId, q.model] }
  if (q.outcome !== undefined) return { index: s.logByOutcome, prefix: [q.outcome] }
  if (q.brandId !== undefined) return { index: s.logByBrand, prefix: [q.brandId] }
  return { index: undefined, prefix: [] }
}

interface KeyRange {
  gt?: string
  gte?: string
  lt?: string
  reverse: boolean
}

/** Turns the id window of a query (time bounds and cursor) into a key range under `prefix`. */
function logKeyRange(prefix: string[], q: NormalizedLogQuery): KeyRange {
  const asc = q.order === 'asc'
  let lower: { id: string; inclusive: boolean } | undefined = q.idGte === undefined ? undefined : { id: q.idGte, inclusive: true }
  let upper = q.idLt
  if (q.after !== undefined) {
    if (asc && (lower === undefined || q.after >= lower.id)) lower = { id: q.after, inclusive: false }
    if (!asc && (upper === undefined || q.after < upper)) upper = q.after
  }
  const whole = prefix.length > 0 ? prefixRange(prefix[0]!, ...prefix.slice(1)) : undefined
  const range: KeyRange = { reverse: !asc }
  if (lower !== undefined) range[lower.inclusive ? 'gte' : 'gt'] = tupleKey(...prefix, lower.id)
  else if (whole !== undefined) range.gte = whole.gte
  if (upper !== undefined) range.lt = tupleKey(...prefix, upper)
  else if (whole !== undefined) range.lt = whole.lt
  return range
}

/**
 * Streams the matching entries in id order, reading `batch` keys per step, so
 * that neither a query nor an export holds more than one batch in memory.
 * `step` runs each read with the current sublevels.
 */
async function* scanLog(
  q: NormalizedLogQuery,
  batch: number,
  step: <T>(fn: (s: Sublevels) => Promise<T>) => Promise<T>,
): AsyncGenerator<LogEntry> {
  let read: (() => Promise<Array<LogEntry | undefined>>) | undefined
  let close: (() => Promise<void>) | undefined
  try {
    for (;;) {
      const entries = await step(async (s) => {
        if (read === undefined) {
          const { index, prefix } = planLogScan(s, q)
          const range = logKeyRange(prefix, q)
          if (index === undefined) {
            const it = s.log.values(range)
            close = () => it.close()
            read = () => it.nextv(batch)
          } else {
            const it = index.keys(range)
            close = () => it.close()
            read = async () => s.log.getMany((await it.nextv(batch)).map((k) => tupleKey(lastComponent(k))))
          }
        }
        return read()
      })
      if (entries.length === 0) return
      for (const e of entries) if (e !== undefined && matchesLogQuery(e, q)) yield e
    }
  } finally {
    await close?.().catch(() => {})
  }
}

function defined<T>(values: Array<T | undefined>): T[] {
  return values.filter((v): v is T => v !== undefined)
}

/** Key components must be strings: anything else is a programmer mistake (TypeError). */
function requireStrings(fields: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value !== 'string') throw new TypeError(`${name} must be a string`)
  }
}

function requireTime(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be epoch milliseconds`)
}

/** Level errors to store codes; VaultErrors and anything unexpected pass through. */
function mapLevelError(err: unknown): unknown {
  if (isVaultError(err)) return err
  const code = (err as { code?: unknown } | null)?.code
  const causeCode = ((err as { cause?: { code?: unknown } } | null)?.cause as { code?: unknown } | undefined)?.code
  if (code === 'LEVEL_LOCKED' || causeCode === 'LEVEL_LOCKED') {
    return new VaultError('SV_STORE_UNAVAILABLE', 'the LevelDB data directory is in use by another process (a running vault?): stop it, or use the admin API; several processes need the PostgreSQL store', {
      cause: err,
      details: { reason: 'locked' },
    })
  }
  switch (code) {
    case 'LEVEL_DATABASE_NOT_OPEN':
    case 'LEVEL_ITERATOR_NOT_OPEN':
    case 'LEVEL_BATCH_NOT_OPEN':
      return new VaultError('SV_STORE_NOT_OPEN', 'the LevelDB database is not open', { cause: err })
    case 'LEVEL_IO_ERROR':
    case 'LEVEL_LOCKED':
    case 'LEVEL_CONNECTION_LOST':
      return new VaultError('SV_STORE_UNAVAILABLE', 'the LevelDB database cannot be used', { cause: err })
    default:
      return err
  }
}
