/**
 * VaultStore on PostgreSQL, for one or several vault instances sharing a
 * database (traits.multiProcess): one repository per aggregate in
 * store/postgres/, sharing one PgContext (pool, transactions, audit chain,
 * error mapping; see its header for the atomicity rules).
 *
 * Connection failures reject with SV_STORE_UNAVAILABLE (503, retry). A failure
 * while COMMIT is in flight is ambiguous, as with any database: the caller's
 * retry then meets the committed row (for example SV_SERIAL_TAKEN).
 */
import pg from 'pg'
import type { StoreTraits, VaultStore } from './store.js'
import { isSchemaName, migrate } from './postgres/migrate.js'
import { PgContext, mapPgError } from './postgres/context.js'
import { PgBrands, PgKeys, PgStores } from './postgres/catalog.js'
import { PgRegistrations, PgSigningLog } from './postgres/registrations.js'
import { PgGrants, PgPeople, PgSessions, PgTokens } from './postgres/people.js'
import { PgAudit, PgMeta, PgPivots } from './postgres/audit.js'
import { PgWorkOrders } from './postgres/work-orders.js'

export { mapPgError }

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
  /** Told when open() migrated the schema from an older version. */
  onMigrated?: (from: number, to: number) => void
}

export class PostgresStore implements VaultStore {
  readonly traits: StoreTraits = { multiProcess: true }
  readonly #options: Required<Omit<PostgresStoreOptions, 'onMigrated'>> & Pick<PostgresStoreOptions, 'onMigrated'>
  readonly #c = new PgContext()

  readonly keys = new PgKeys(this.#c)
  readonly brands = new PgBrands(this.#c)
  readonly stores = new PgStores(this.#c)
  readonly registrations = new PgRegistrations(this.#c)
  readonly signingLog = new PgSigningLog(this.#c)
  readonly people = new PgPeople(this.#c)
  readonly grants = new PgGrants(this.#c)
  readonly tokens = new PgTokens(this.#c)
  readonly sessions = new PgSessions(this.#c)
  readonly audit = new PgAudit(this.#c)
  readonly pivots = new PgPivots(this.#c)
  readonly workOrders = new PgWorkOrders(this.#c)
  readonly meta = new PgMeta(this.#c)

  constructor(options: PostgresStoreOptions) {
    const schema = options.schema ?? 'public'
    if (typeof options.connectionString !== 'string' || options.connectionString === '') throw new TypeError('connectionString is required')
    if (!isSchemaName(schema)) throw new TypeError(`schema must be a lowercase SQL identifier, got ${JSON.stringify(schema)}`)
    const max = options.max ?? 10
    if (!Number.isInteger(max) || max < 1) throw new TypeError('max must be a positive integer')
    this.#options = {
      connectionString: options.connectionString,
      schema,
      max,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5000,
      applicationName: options.applicationName ?? 'serial-vault',
      onMigrated: options.onMigrated,
    }
  }

  open(): Promise<void> {
    return this.#c.life.open(async () => {
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
        const { from, to } = await migrate(pool, o.schema)
        if (from > 0 && from < to) o.onMigrated?.(from, to)
      } catch (err) {
        await pool.end().catch(() => {})
        throw err
      }
      this.#c.pool = pool
    })
  }

  close(): Promise<void> {
    return this.#c.life.close(async () => {
      const pool = this.#c.pool
      this.#c.pool = undefined
      await pool?.end()
    })
  }

  ping(): Promise<void> {
    return this.#c.run(async (db) => {
      await db.query('SELECT 1')
    })
  }
}
