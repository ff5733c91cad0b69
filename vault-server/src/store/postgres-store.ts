import pg from 'pg'
import type { Pool, PoolClient, QueryResultRow } from 'pg'
import { VaultError, isVaultError } from '@sv/shared'
import { normalizeLogQuery, toLogPage, type NormalizedLogQuery } from './log-query.js'
import { isSchemaName, migrate } from './postgres/migrate.js'
import {
  BINDING_COLUMNS,
  BRAND_COLUMNS,
  KEY_COLUMNS,
  LOG_COLUMNS,
  MODEL_COLUMNS,
  TOKEN_COLUMNS,
  bindingFromRow,
  bindingParams,
  brandFromRow,
  brandParams,
  insertSql,
  keyFromRow,
  keyParams,
  logFromRow,
  logParams,
  modelFromRow,
  modelParams,
  tokenFromRow,
  tokenParams,
} from './postgres/rows.js'
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

export interface PostgresStoreOptions {
  /** `postgres://user@host:port/db`; never logged (it may hold a password). */
  connectionString: string
  /** Schema holding the tables, created if missing (default `public`). Lowercase SQL identifier. */
  schema?: string
  /** Pool size (default 10). */
  max?: number
  /** How long to wait for a connection before SV_STORE_UNAVAILABLE, in ms (default 5000). */
  connectionTimeoutMillis?: number
  /** `application_name` shown in pg_stat_activity (default `serial-vault`). */
  applicationName?: string
}

/** Rows read per step by exportLog. */
const EXPORT_BATCH = 500

/** Unique constraints (see migrations/001-initial.ts) and the code a violation means. */
const UNIQUE_VIOLATIONS: Record<string, { code: 'SV_BRAND_EXISTS' | 'SV_KEY_EXISTS' | 'SV_MODEL_EXISTS' | 'SV_REQUEST_ID_USED' | 'SV_SERIAL_TAKEN' | 'SV_DEVICE_KEY_TAKEN'; message: string }> = {
  brands_pkey: { code: 'SV_BRAND_EXISTS', message: 'a brand with this id already exists' },
  signing_keys_pkey: { code: 'SV_KEY_EXISTS', message: 'a signing key with this id already exists' },
  models_pkey: { code: 'SV_MODEL_EXISTS', message: 'a model with this name already exists for the brand' },
  consumed_request_ids_pkey: { code: 'SV_REQUEST_ID_USED', message: 'the request-id was already used' },
  serial_bindings_pkey: { code: 'SV_SERIAL_TAKEN', message: 'this serial is already bound' },
  serial_bindings_device_key_key: {
    code: 'SV_DEVICE_KEY_TAKEN',
    message: 'this device key is already bound to another serial of the model',
  },
}

/**
 * VaultStore on PostgreSQL, for one or several vault instances sharing a
 * database (traits.multiProcess).
 *
 * Atomicity comes from the database, never from this process: uniqueness is
 * enforced by primary keys and the UNIQUE (brand, model, device key)
 * constraint, a violation (SQLSTATE 23505) is mapped to its SV_* code by
 * constraint name, sequences advance with one INSERT ... ON CONFLICT DO
 * UPDATE ... RETURNING, and bindSerial is one transaction (compare-and-set
 * on the binding revision, then the log insert). Every write resolves after
 * its COMMIT (autocommit for single statements), which with the default
 * `synchronous_commit = on` means flushed to the WAL.
 *
 * Connection failures reject with SV_STORE_UNAVAILABLE (503, retry). A failure
 * while COMMIT is in flight is ambiguous, as with any database: the caller's
 * retry then meets the committed row (for example SV_SERIAL_TAKEN).
 */
export class PostgresStore implements VaultStore {
  readonly traits: StoreTraits = { multiProcess: true }
  readonly #options: Required<PostgresStoreOptions>
  readonly #life = new StoreLifecycle(mapPgError)
  #pool: Pool | undefined

  constructor(options: PostgresStoreOptions) {
    const schema = options.schema ?? 'public'
    if (typeof options.connectionString !== 'string' || options.connectionString === '') {
      throw new TypeError('connectionString is required')
    }
    if (!isSchemaName(schema)) throw new TypeError(`schema must be a lowercase SQL identifier, got ${JSON.stringify(schema)}`)
    const max = options.max ?? 10
    if (!Number.isInteger(max) || max < 1) throw new TypeError('max must be a positive integer')
    this.#options = {
      connectionString: options.connectionString,
      schema,
      max,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5000,
      applicationName: options.applicationName ?? 'serial-vault',
    }
  }

  open(): Promise<void> {
    return this.#life.open(async () => {
      const o = this.#options
      const pool = new pg.Pool({
        connectionString: o.connectionString,
        max: o.max,
        connectionTimeoutMillis: o.connectionTimeoutMillis,
        application_name: o.applicationName,
        // Every connection works in the store's schema (validated identifier, no escaping needed).
        options: `-c search_path=${o.schema}`,
      })
      // An idle client that loses its connection is dropped by the pool; the error
      // must be handled here or it would crash the process. The next query that
      // cannot get a connection reports SV_STORE_UNAVAILABLE.
      pool.on('error', () => {})
      try {
        await migrate(pool, o.schema)
      } catch (err) {
        await pool.end().catch(() => {})
        throw err
      }
      this.#pool = pool
    })
  }

  close(): Promise<void> {
    return this.#life.close(async () => {
      const pool = this.#pool
      this.#pool = undefined
      await pool?.end()
    })
  }

  ping(): Promise<void> {
    return this.#run(async (db) => {
      await db.query('SELECT 1')
    })
  }

  // --- brands and keys -------------------------------------------------------------

  createBrand(brand: BrandRecord): Promise<void> {
    return this.#exec(insertSql('brands', BRAND_COLUMNS), brandParams(brand))
  }

  getBrand(id: string): Promise<BrandRecord | undefined> {
    return this.#one('SELECT * FROM brands WHERE id = $1', [id], brandFromRow)
  }

  listBrands(): Promise<BrandRecord[]> {
    return this.#all('SELECT * FROM brands ORDER BY id', [], brandFromRow)
  }

  putSigningKey(key: SigningKeyRecord): Promise<void> {
    return this.#exec(insertSql('signing_keys', KEY_COLUMNS), keyParams(key))
  }

  getSigningKey(keyId: string): Promise<SigningKeyRecord | undefined> {
    return this.#one('SELECT * FROM signing_keys WHERE key_id = $1', [keyId], keyFromRow)
  }

  listSigningKeys(accountId?: string): Promise<SigningKeyRecord[]> {
    return accountId === undefined
      ? this.#all('SELECT * FROM signing_keys ORDER BY key_id', [], keyFromRow)
      : this.#all('SELECT * FROM signing_keys WHERE account_id = $1 ORDER BY key_id', [accountId], keyFromRow)
  }

  setSigningKeyEnabled(keyId: string, enabled: boolean): Promise<void> {
    return this.#run(async (db) => {
      const r = await db.query('UPDATE signing_keys SET enabled = $2 WHERE key_id = $1', [keyId, enabled])
      if (r.rowCount === 0) throw new VaultError('SV_KEY_NOT_FOUND', 'no such signing key', { details: { keyId } })
    })
  }

  // --- models ------------------------------------------------------------------------

  createModel(model: ModelRecord): Promise<void> {
    return this.#exec(insertSql('models', MODEL_COLUMNS), modelParams(model))
  }

  updateModel(model: ModelRecord): Promise<void> {
    return this.#run(async (db) => {
      const sets = MODEL_COLUMNS.slice(2).map((c, i) => `${c} = $${i + 3}`)
      const r = await db.query(`UPDATE models SET ${sets.join(', ')} WHERE brand_id = $1 AND name = $2`, modelParams(model))
      if (r.rowCount === 0) {
        throw new VaultError('SV_MODEL_UNKNOWN', 'no such model for this brand', {
          details: { brandId: model.brandId, model: model.name },
        })
      }
    })
  }

  getModel(brandId: string, name: string): Promise<ModelRecord | undefined> {
    return this.#one('SELECT * FROM models WHERE brand_id = $1 AND name = $2', [brandId, name], modelFromRow)
  }

  listModels(brandId?: string): Promise<ModelRecord[]> {
    return brandId === undefined
      ? this.#all('SELECT * FROM models ORDER BY brand_id, name', [], modelFromRow)
      : this.#all('SELECT * FROM models WHERE brand_id = $1 ORDER BY name', [brandId], modelFromRow)
  }

  findModelsByApiKeyHash(hash: string): Promise<ModelRecord[]> {
    // `@>` on the GIN index models_api_key_hashes_idx.
    return this.#all('SELECT * FROM models WHERE api_key_hashes @> ARRAY[$1::text] ORDER BY brand_id, name', [hash], modelFromRow)
  }

  // --- request ids ---------------------------------------------------------------------

  consumeRequestId(id: string, expiresAt: number): Promise<void> {
    return this.#exec('INSERT INTO consumed_request_ids (id, expires_at) VALUES ($1, $2)', [id, expiresAt])
  }

  purgeExpired(now: number): Promise<number> {
    return this.#run(async (db) => {
      const r = await db.query('DELETE FROM consumed_request_ids WHERE expires_at < $1', [now])
      return r.rowCount ?? 0
    })
  }

  // --- serials -------------------------------------------------------------------------

  getSerialBinding(brandId: string, model: string, serial: string): Promise<SerialBinding | undefined> {
    return this.#one(
      'SELECT * FROM serial_bindings WHERE brand_id = $1 AND model = $2 AND serial = $3',
      [brandId, model, serial],
      bindingFromRow,
    )
  }

  getSerialBindingByDeviceKey(brandId: string, model: string, deviceKeyId: string): Promise<SerialBinding | undefined> {
    return this.#one(
      'SELECT * FROM serial_bindings WHERE brand_id = $1 AND model = $2 AND device_key_id = $3',
      [brandId, model, deviceKeyId],
      bindingFromRow,
    )
  }

  async bindSerial(binding: SerialBinding, log: LogEntry, expectRevision: number): Promise<void> {
    if (!Number.isSafeInteger(expectRevision) || expectRevision < 0) {
      throw new TypeError('expectRevision must be a non-negative integer')
    }
    return this.#transaction(async (c) => {
      if (expectRevision === 0) {
        // Conflicts surface as 23505 on serial_bindings_pkey or serial_bindings_device_key_key.
        await c.query(insertSql('serial_bindings', BINDING_COLUMNS), bindingParams(binding))
      } else {
        // Replacing the row's device_key_id frees the old key by itself. A concurrent
        // replacement makes this UPDATE wait, re-check the revision and match nothing.
        const sets = BINDING_COLUMNS.slice(3).map((col, i) => `${col} = $${i + 4}`)
        const r = await c.query(
          `UPDATE serial_bindings SET ${sets.join(', ')}
           WHERE brand_id = $1 AND model = $2 AND serial = $3 AND revision = $${BINDING_COLUMNS.length + 1}`,
          [...bindingParams(binding), expectRevision],
        )
        if (r.rowCount === 0) {
          throw new VaultError('SV_SERIAL_TAKEN', 'this serial is not bound, or its binding changed', {
            details: { brandId: binding.brandId, model: binding.model, serial: binding.serial },
          })
        }
      }
      await c.query(insertSql('signing_log', LOG_COLUMNS), logParams(log))
    })
  }

  releaseSerial(brandId: string, model: string, serial: string): Promise<void> {
    return this.#run(async (db) => {
      const r = await db.query(
        'UPDATE serial_bindings SET released = true WHERE brand_id = $1 AND model = $2 AND serial = $3',
        [brandId, model, serial],
      )
      if (r.rowCount === 0) {
        throw new VaultError('SV_SERIAL_NOT_FOUND', 'no serial binding for this brand, model and serial', {
          details: { brandId, model, serial },
        })
      }
    })
  }

  async nextSerialNumber(brandId: string, model: string, start: number): Promise<number> {
    if (!Number.isSafeInteger(start) || start < 0) throw new TypeError('start must be a non-negative integer')
    return this.#run(async (db) => {
      // One statement: the row lock of ON CONFLICT DO UPDATE serialises concurrent callers,
      // across instances too. A raised start moves the sequence forward, never back.
      const r = await db.query<{ n: string }>(
        `INSERT INTO serial_sequences AS s (brand_id, model, next_number) VALUES ($1, $2, $3::bigint + 1)
         ON CONFLICT (brand_id, model) DO UPDATE SET next_number = GREATEST(s.next_number, $3::bigint) + 1
         RETURNING s.next_number - 1 AS n`,
        [brandId, model, start],
      )
      return Number(r.rows[0]!.n)
    })
  }

  // --- signing log -----------------------------------------------------------------------

  appendLog(entry: LogEntry): Promise<void> {
    return this.#exec(insertSql('signing_log', LOG_COLUMNS), logParams(entry))
  }

  queryLog(query: LogQuery): Promise<LogPage> {
    return this.#run(async (db) => {
      const q = normalizeLogQuery(query)
      const rows = await selectLog(db, q, q.after, q.limit + 1)
      return toLogPage(rows, q.limit)
    })
  }

  async *exportLog(query: Omit<LogQuery, 'limit' | 'cursor'>): AsyncIterable<LogEntry> {
    const q = normalizeLogQuery({ ...query, limit: undefined, cursor: undefined })
    // Keyset pagination: each batch is its own short query continuing after the last
    // id, so no transaction or cursor stays open while the consumer is slow.
    let after: string | undefined
    for (;;) {
      const batch = await this.#run((db) => selectLog(db, q, after, EXPORT_BATCH))
      yield* batch
      if (batch.length < EXPORT_BATCH) return
      after = batch[batch.length - 1]!.id
    }
  }

  // --- admin tokens ------------------------------------------------------------------------

  putToken(token: TokenRecord): Promise<void> {
    return this.#exec(
      `${insertSql('admin_tokens', TOKEN_COLUMNS)}
       ON CONFLICT (hash) DO UPDATE SET name = EXCLUDED.name, roles = EXCLUDED.roles, created_at = EXCLUDED.created_at`,
      tokenParams(token),
    )
  }

  getToken(hash: string): Promise<TokenRecord | undefined> {
    return this.#one('SELECT * FROM admin_tokens WHERE hash = $1', [hash], tokenFromRow)
  }

  listTokens(): Promise<TokenRecord[]> {
    return this.#all('SELECT * FROM admin_tokens ORDER BY hash', [], tokenFromRow)
  }

  deleteToken(hash: string): Promise<boolean> {
    return this.#run(async (db) => ((await db.query('DELETE FROM admin_tokens WHERE hash = $1', [hash])).rowCount ?? 0) > 0)
  }

  // --- meta --------------------------------------------------------------------------------

  getMeta(name: string): Promise<string | undefined> {
    return this.#one('SELECT value FROM meta WHERE name = $1', [name], (r) => r.value as string)
  }

  putMeta(name: string, value: string, onlyIfAbsent = false): Promise<boolean> {
    const conflict = onlyIfAbsent ? 'DO NOTHING' : 'DO UPDATE SET value = EXCLUDED.value'
    return this.#run(async (db) => {
      const r = await db.query(`INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) ${conflict}`, [name, value])
      return r.rowCount === 1
    })
  }

  // --- internals -------------------------------------------------------------------------

  #run<T>(op: (db: Pool) => Promise<T>): Promise<T> {
    return this.#life.run(() => op(this.#pool!))
  }

  #exec(sql: string, params: unknown[]): Promise<void> {
    return this.#run(async (db) => {
      await db.query(sql, params)
    })
  }

  #one<T>(sql: string, params: unknown[], map: (r: QueryResultRow) => T): Promise<T | undefined> {
    return this.#run(async (db) => {
      const { rows } = await db.query(sql, params)
      return rows.length === 0 ? undefined : map(rows[0]!)
    })
  }

  #all<T>(sql: string, params: unknown[], map: (r: QueryResultRow) => T): Promise<T[]> {
    return this.#run(async (db) => (await db.query(sql, params)).rows.map(map))
  }

  /** Runs `fn` in one transaction on one pooled connection; any error rolls back. */
  #transaction<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return this.#run(async (db) => {
      const c = await db.connect()
      let broken = false
      try {
        await c.query('BEGIN')
        const result = await fn(c)
        await c.query('COMMIT')
        return result
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {
          broken = true
        })
        throw err
      } finally {
        // A connection that could not roll back is destroyed, not reused.
        c.release(broken)
      }
    })
  }
}

/**
 * One page of the log: the filters as a WHERE clause, ordered by id, with the
 * cursor as a keyset bound. The indexes of migration 001 each end with id,
 * so PostgreSQL can serve a filter and the order from one index.
 */
async function selectLog(db: Pool, q: NormalizedLogQuery, after: string | undefined, limit: number): Promise<LogEntry[]> {
  const where: string[] = []
  const params: unknown[] = []
  const add = (sql: string, value: unknown): void => {
    params.push(value)
    where.push(sql.replace('?', `$${params.length}`))
  }
  if (q.brandId !== undefined) add('brand_id = ?', q.brandId)
  if (q.model !== undefined) add('model = ?', q.model)
  if (q.serial !== undefined) add('serial = ?', q.serial)
  if (q.outcome !== undefined) add('outcome = ?', q.outcome)
  if (q.idGte !== undefined) add('id >= ?', q.idGte)
  if (q.idLt !== undefined) add('id < ?', q.idLt)
  if (after !== undefined) add(q.order === 'asc' ? 'id > ?' : 'id < ?', after)
  params.push(limit)
  const sql = `SELECT * FROM signing_log ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''}
               ORDER BY id ${q.order === 'asc' ? 'ASC' : 'DESC'} LIMIT $${params.length}`
  return (await db.query(sql, params)).rows.map(logFromRow)
}

const UNAVAILABLE_NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN'])

/**
 * pg errors to store codes. Unique violations become the SV_* code of their
 * constraint; lost or refused connections, server shutdown, too many clients,
 * bad credentials or database, and transient concurrency aborts (serialization
 * failure, deadlock) become SV_STORE_UNAVAILABLE. Anything else passes through
 * (the transport reports it as SV_INTERNAL).
 */
export function mapPgError(err: unknown): unknown {
  if (isVaultError(err)) return err
  const e = err as { code?: unknown; constraint?: unknown; message?: unknown } | null
  const code = typeof e?.code === 'string' ? e.code : ''
  if (code === '23505' && typeof e?.constraint === 'string') {
    const known = UNIQUE_VIOLATIONS[e.constraint]
    if (known) return new VaultError(known.code, known.message, { cause: err })
  }
  const message = typeof e?.message === 'string' ? e.message : ''
  const unavailable =
    UNAVAILABLE_NET_CODES.has(code) ||
    code.startsWith('08') || // connection exception
    code.startsWith('28') || // invalid authorization
    code === '3D000' || // database does not exist
    ['57P01', '57P02', '57P03', '53300', '40001', '40P01'].includes(code) ||
    /Connection terminated|timeout exceeded when trying to connect|connection error/i.test(message)
  if (unavailable) {
    return new VaultError('SV_STORE_UNAVAILABLE', 'PostgreSQL is not reachable', { cause: err, retryAfter: 1 })
  }
  return err
}

