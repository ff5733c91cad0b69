/**
 * What every LevelDB repository shares: the database and its sublevels, the
 * lifecycle, the in-process mutex that stands in for transactions, the one
 * write path (atomic, fsync'd batches carrying the pending request-id uses)
 * and the head of the audit chain.
 *
 * Atomicity. LevelDB has no transactions, only atomic batches. Every
 * conditional write therefore reads, checks and writes one batch while
 * holding an in-process mutex on the keys it checks (`locked`). That is only
 * sound with a single writer process, which classic-level enforces: LevelDB's
 * LOCK file makes a second process fail to open the same directory (it gets
 * SV_STORE_LOCKED). Several vault processes need PostgresStore.
 *
 * Audit. A write with an audit seal also holds AUDIT_LOCK, completes the
 * entry from the cached head (authoritative: one writer process), and writes
 * the entry with the change in the same batch; the cached head moves only
 * once that batch is durable.
 */
import type { AbstractBatchOperation, AbstractBatchOptions, AbstractSublevel, AbstractSublevelOptions } from 'abstract-level'
import { isVaultError, VaultError } from '@sv/shared'
import { KeyedMutex } from '../keyed-mutex.js'
import { StoreLifecycle } from '../store-lifecycle.js'
import { GENESIS_HASH, type AuditEntry, type AuditHead, type AuditSeal } from '../records.js'
import { JSON_SUBLEVELS, SUBLEVELS, padNumber, tupleKey, type SublevelName } from './layout.js'

export type Format = string | Buffer | Uint8Array
export type Sub<V> = AbstractSublevel<any, Format, string, V>
export type Op = AbstractBatchOperation<any, string, unknown>

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

export type Sublevels = { [K in SublevelName]: Sub<any> }

/** Keys read per step when scanning. */
export const SCAN_BATCH = 256

/** The mutex key every audited write holds. */
export const AUDIT_LOCK = tupleKey('audit-head')

/**
 * The mutex key every store write (createBrand, stores.create/update) holds:
 * the version is read, bumped and written under it, so two concurrent store
 * writes never write the same version (a cache that read the version between
 * them would otherwise miss the second one).
 */
export const STORES_LOCK = tupleKey('stores-version')

export function createSublevels(db: LevelDatabase): Sublevels {
  const subs: Partial<Sublevels> = {}
  for (const [field, name] of Object.entries(SUBLEVELS) as Array<[SublevelName, string]>) {
    subs[field] = db.sublevel<string, unknown>(name, {
      keyEncoding: 'utf8',
      valueEncoding: JSON_SUBLEVELS.has(field) ? 'json' : 'utf8',
    })
  }
  return subs as Sublevels
}

export function put<V>(sublevel: Sub<V>, key: string, value: V): Op {
  return { type: 'put', sublevel, key, value }
}

export function del<V>(sublevel: Sub<V>, key: string): Op {
  return { type: 'del', sublevel, key }
}

export function defined<T>(values: Array<T | undefined>): T[] {
  return values.filter((v): v is T => v !== undefined)
}

/** Key components must be strings: anything else is a programmer mistake (TypeError). */
export function requireStrings(fields: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value !== 'string') throw new TypeError(`${name} must be a string`)
  }
}

export function requireTime(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be epoch milliseconds`)
}

/** request-id uses held for the next batch at most; beyond, they are written unsynced at once */
const MAX_PENDING_USES = 1024

export class LevelContext {
  readonly db: LevelDatabase
  readonly life: StoreLifecycle
  readonly mutex = new KeyedMutex()
  /** request-id uses not yet written, by id: they ride in the next batch (RegistrationRepository.consumeRequestId) */
  readonly pendingUses = new Map<string, Op[]>()
  subs: Sublevels | undefined
  /** the audit chain's head, read at open */
  auditHead: AuditHead = { seq: 0, hash: GENESIS_HASH }
  /** StoreRepository.version(), read at open; bumped by the batch of every store write */
  storesVersion = 0

  constructor(db: LevelDatabase) {
    this.db = db
    this.life = new StoreLifecycle(mapLevelError)
  }

  run<T>(op: (s: Sublevels) => Promise<T>): Promise<T> {
    return this.life.run(() => op(this.subs!))
  }

  /** Runs `op` holding the mutex on `keys` (and on the audit chain when `audited`). */
  locked<T>(keys: string[], op: (s: Sublevels) => Promise<T>, audited = false): Promise<T> {
    return this.run((s) => this.mutex.run(audited ? [...keys, AUDIT_LOCK] : keys, () => op(s)))
  }

  /** One atomic, fsync'd batch across sublevels, carrying the pending request-id uses. */
  write(ops: Op[]): Promise<void> {
    // `sync` is a classic-level option the abstract typings do not know; memory-level ignores it.
    return this.writeRiders({ sync: true } as AbstractBatchOptions<string, unknown>, ops)
  }

  async writeRiders(options: AbstractBatchOptions<string, unknown>, ops: Op[] = []): Promise<void> {
    if (this.pendingUses.size === 0) return this.db.batch<string, unknown>(ops, options)
    const riders = [...this.pendingUses]
    await this.db.batch<string, unknown>([...riders.flatMap(([, r]) => r), ...ops], options)
    // written: forget them (a failed batch leaves them pending, to ride again)
    for (const [id, r] of riders) if (this.pendingUses.get(id) === r) this.pendingUses.delete(id)
  }

  /** Holds a request-id use for the next batch; past the bound, pending uses go out unsynced now. */
  async holdUse(id: string, ops: Op[]): Promise<void> {
    this.pendingUses.set(id, ops)
    if (this.pendingUses.size >= MAX_PENDING_USES) await this.writeRiders({})
  }

  /**
   * The op that bumps the stores version in a batch, and the bump to apply
   * once it is written. The caller holds STORES_LOCK.
   */
  storesVersionOp(s: Sublevels): { op: Op; apply: () => void } {
    const next = this.storesVersion + 1
    return { op: put(s.sys, 'stores-version', String(next)), apply: () => void (this.storesVersion = Math.max(this.storesVersion, next)) }
  }

  /**
   * Writes `ops` and, with a seal, the audit entry completed from the head, in
   * one batch. The caller holds AUDIT_LOCK when `audit` is given (locked(..., true)).
   */
  async commit(s: Sublevels, ops: Op[], audit?: AuditSeal): Promise<AuditEntry | undefined> {
    if (!audit) {
      await this.write(ops)
      return undefined
    }
    const head = this.auditHead
    const entry = audit(head)
    if (entry.seq !== head.seq + 1 || entry.prevHash !== head.hash) {
      throw new TypeError(`audit seal made entry ${entry.seq} after ${entry.prevHash.slice(0, 8)}, expected ${head.seq + 1} after ${head.hash.slice(0, 8)}`)
    }
    const next: AuditHead = { seq: entry.seq, hash: entry.hash }
    const auditOps: Op[] = [put(s.audit, padNumber(entry.seq), entry), put(s.sys, 'audit-head', JSON.stringify(next))]
    if (entry.storeId !== undefined) auditOps.push(put(s.auditByStore, tupleKey(entry.storeId, padNumber(entry.seq)), ''))
    await this.write([...ops, ...auditOps])
    this.auditHead = next
    return entry
  }
}

/** Level errors to store codes; VaultErrors and anything unexpected pass through. */
export function mapLevelError(err: unknown): unknown {
  if (isVaultError(err)) return err
  const code = (err as { code?: unknown } | null)?.code
  const causeCode = ((err as { cause?: { code?: unknown } } | null)?.cause as { code?: unknown } | undefined)?.code
  if (code === 'LEVEL_LOCKED' || causeCode === 'LEVEL_LOCKED') {
    return new VaultError('SV_STORE_LOCKED', 'the LevelDB data directory is in use by another process (a running vault?): stop it, or use --url against it; several processes need the PostgreSQL store', {
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

/**
 * Why a LevelDB database did not open, as a typed error naming the directory
 * (`location`) and LevelDB's own cause. Only a lock held by another process
 * is SV_STORE_LOCKED; damaged or missing files (LEVEL_CORRUPTION, an
 * LEVEL_IO_ERROR such as a table the manifest lists being gone) and a path
 * that cannot be a database directory (EEXIST, ENOTDIR, EACCES) are
 * SV_STORE_CORRUPT: none of these heals with a retry, so the command exits 2
 * instead of 3 (issue 13). Anything else stays SV_STORE_UNAVAILABLE.
 */
export function levelOpenError(err: unknown, location: string | undefined): VaultError {
  const mapped = mapLevelError(err)
  if (isVaultError(mapped) && mapped.code === 'SV_STORE_LOCKED') {
    return new VaultError('SV_STORE_LOCKED', `${mapped.message}${location ? ` (${location})` : ''}`, { cause: err, details: { ...mapped.details, ...(location ? { path: location } : {}) } })
  }
  const cause = ((err as { cause?: unknown } | null)?.cause ?? err) as { code?: unknown; message?: unknown } | null
  const causeCode = typeof cause?.code === 'string' ? cause.code : undefined
  const causeText = typeof cause?.message === 'string' ? cause.message.split('\n')[0]!.slice(0, 300) : String(cause)
  const where = location ?? 'the LevelDB database'
  const details = { ...(location ? { path: location } : {}), cause: causeText }
  if (causeCode === 'LEVEL_CORRUPTION' || causeCode === 'LEVEL_IO_ERROR' || (causeCode !== undefined && /^E[A-Z]+$/.test(causeCode))) {
    const reason = causeCode === 'LEVEL_CORRUPTION' ? 'corruption' : causeCode === 'LEVEL_IO_ERROR' ? 'io' : causeCode
    return new VaultError('SV_STORE_CORRUPT', `cannot open the LevelDB database in ${where}: ${causeText} (restore it from a backup, or move it away to start afresh)`, { cause: err, details: { ...details, reason } })
  }
  return new VaultError('SV_STORE_UNAVAILABLE', `cannot open the LevelDB database in ${where}: ${causeText}`, { cause: err, details })
}
