/**
 * What every PostgreSQL repository shares: the pool, the lifecycle, query
 * helpers, transactions, the audit chain and the error mapping.
 *
 * Atomicity comes from the database, never from this process: uniqueness is
 * enforced by primary keys and unique constraints, references by foreign
 * keys, and a violation (SQLSTATE 23505 / 23503) is mapped to its SV_* code
 * by constraint name. A write with an audit seal runs in one transaction
 * that locks the chain's head row (`audit_head ... FOR UPDATE`), so the
 * appends of every instance form one chain and each change commits with its
 * entry. Every write resolves after its COMMIT, which with the default
 * `synchronous_commit = on` means flushed to the WAL.
 */
import type { Pool, PoolClient, QueryResultRow } from 'pg'
import { VaultError, isVaultError, type ErrorCode } from '@sv/shared'
import { StoreLifecycle } from '../store-lifecycle.js'
import type { AuditEntry, AuditHead, AuditSeal } from '../records.js'
import { AUDIT_COLUMNS, auditParams, insertSql } from './rows.js'

export type Db = Pool | PoolClient

/** Unique and foreign-key constraints (migrations 001 to 003) and the code a violation means. */
const CONSTRAINTS: Record<string, { code: ErrorCode; message: string }> = {
  brands_pkey: { code: 'SV_BRAND_EXISTS', message: 'a brand with this id already exists' },
  signing_keys_pkey: { code: 'SV_KEY_EXISTS', message: 'a signing key with this id already exists' },
  models_pkey: { code: 'SV_MODEL_EXISTS', message: 'a model with this name already exists for the brand' },
  models_store_fkey: { code: 'SV_STORE_NOT_FOUND', message: 'no such store for the brand of the model' },
  consumed_request_ids_pkey: { code: 'SV_REQUEST_ID_USED', message: 'the request-id was already used' },
  serial_bindings_pkey: { code: 'SV_SERIAL_TAKEN', message: 'this serial is already bound' },
  serial_bindings_device_key_key: { code: 'SV_DEVICE_KEY_TAKEN', message: 'this device key is already bound to another serial of the model' },
  stores_pkey: { code: 'SV_STORE_EXISTS', message: 'a store with this id already exists' },
  stores_parent_fkey: { code: 'SV_STORE_NOT_FOUND', message: 'no such parent store for this brand' },
  stores_brand_fkey: { code: 'SV_BRAND_UNKNOWN', message: 'no such brand' },
  tokens_pkey: { code: 'SV_TOKEN_EXISTS', message: 'a token with this hash already exists' },
  people_pkey: { code: 'SV_PERSON_EXISTS', message: 'a person with this id already exists' },
  people_email_key: { code: 'SV_PERSON_EXISTS', message: 'a person with this e-mail already exists' },
  grants_person_fkey: { code: 'SV_PERSON_NOT_FOUND', message: 'no such person' },
  grants_store_fkey: { code: 'SV_STORE_NOT_FOUND', message: 'no such store' },
  pivot_rules_pkey: { code: 'SV_PIVOT_EXISTS', message: 'this pivot is already allowed' },
  pivot_rules_key: { code: 'SV_PIVOT_EXISTS', message: 'this pivot is already allowed' },
  pivot_requests_pkey: { code: 'SV_PIVOT_EXISTS', message: 'a pivot request with this request-id exists' },
  work_orders_pkey: { code: 'SV_WORK_ORDER_EXISTS', message: 'a work order with this id already exists' },
}

const UNAVAILABLE_NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN'])

/**
 * pg errors to store codes. Unique and foreign-key violations become the
 * SV_* code of their constraint; lost or refused connections, server
 * shutdown, too many clients, bad credentials or database, and transient
 * concurrency aborts (serialization failure, deadlock) become
 * SV_STORE_UNAVAILABLE. Anything else passes through (the transport reports
 * it as SV_INTERNAL).
 */
export function mapPgError(err: unknown): unknown {
  if (isVaultError(err)) return err
  const e = err as { code?: unknown; constraint?: unknown; message?: unknown } | null
  const code = typeof e?.code === 'string' ? e.code : ''
  if ((code === '23505' || code === '23503') && typeof e?.constraint === 'string') {
    const known = CONSTRAINTS[e.constraint]
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
  if (unavailable) return new VaultError('SV_STORE_UNAVAILABLE', 'PostgreSQL is not reachable', { cause: err, retryAfter: 1 })
  return err
}

export class PgContext {
  readonly life = new StoreLifecycle(mapPgError)
  pool: Pool | undefined

  run<T>(op: (db: Pool) => Promise<T>): Promise<T> {
    return this.life.run(() => op(this.pool!))
  }

  exec(sql: string, params: unknown[]): Promise<void> {
    return this.run(async (db) => {
      await db.query(sql, params)
    })
  }

  one<T>(sql: string, params: unknown[], map: (r: QueryResultRow) => T): Promise<T | undefined> {
    return this.run(async (db) => {
      const { rows } = await db.query(sql, params)
      return rows.length === 0 ? undefined : map(rows[0]!)
    })
  }

  all<T>(sql: string, params: unknown[], map: (r: QueryResultRow) => T): Promise<T[]> {
    return this.run(async (db) => (await db.query(sql, params)).rows.map(map))
  }

  /** Runs `fn` in one transaction on one pooled connection; any error rolls back. */
  transaction<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    return this.run(async (db) => {
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

  /**
   * `fn` and, with a seal, the audit entry completed from the locked head, in
   * one transaction (without a seal and with `single`, `fn` runs on the pool:
   * one statement needs no transaction).
   */
  audited<T>(audit: AuditSeal | undefined, fn: (c: Db) => Promise<T>, single = false): Promise<T> {
    if (!audit && single) return this.run((db) => fn(db))
    return this.transaction(async (c) => {
      const result = await fn(c)
      if (audit) await appendAudit(c, audit)
      return result
    })
  }
}

/** Locks the head, completes the entry, inserts it and moves the head (inside a transaction). */
export async function appendAudit(c: PoolClient, audit: AuditSeal): Promise<AuditEntry> {
  const { rows } = await c.query<{ seq: string; hash: string }>('SELECT seq, hash FROM audit_head WHERE one FOR UPDATE')
  const head: AuditHead = { seq: Number(rows[0]!.seq), hash: rows[0]!.hash }
  const entry = audit(head)
  if (entry.seq !== head.seq + 1 || entry.prevHash !== head.hash) {
    throw new TypeError(`audit seal made entry ${entry.seq} after ${entry.prevHash.slice(0, 8)}, expected ${head.seq + 1} after ${head.hash.slice(0, 8)}`)
  }
  await c.query(insertSql('audit_log', AUDIT_COLUMNS), auditParams(entry))
  await c.query('UPDATE audit_head SET seq = $1, hash = $2 WHERE one', [entry.seq, entry.hash])
  return entry
}

/** Bumps the stores version (inside the transaction of a store write). */
export async function bumpStoresVersion(c: Db): Promise<void> {
  await c.query('UPDATE stores_version SET version = version + 1 WHERE one')
}
