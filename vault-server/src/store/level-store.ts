/**
 * VaultStore over any abstract-level database (classic-level on disk in
 * production, memory-level for fast tests): one repository per aggregate in
 * store/level/, sharing one LevelContext (mutex, atomic write path, audit
 * chain head). Key layout: store/level/layout.ts; layout migrations:
 * store/level/migrations.ts.
 *
 * The store owns the database it is given: open() opens it (and migrates an
 * older layout), close() closes it.
 *
 * Reads on the registration path use getSync: a LevelDB read of a small
 * record served from its caches takes microseconds on the calling thread,
 * less than the hand-off to libuv's pool and back that an async get costs
 * (measured in bench/vault.ts; see docs/benchmarks.md).
 *
 * Durability. Every write batch is written with `{ sync: true }` (fsync'd
 * before it resolves), except the deletions of purges, last-used and
 * idle-expiry stamps, which are safe to lose, and consumeRequestId, whose
 * write rides in the next synced batch. A binding and its log entry are one
 * batch; a change and its audit entry are one batch.
 */
import { GENESIS_HASH, type AuditHead } from './records.js'
import type { StoreTraits, VaultStore } from './store.js'
import { LevelContext, createSublevels, levelOpenError, type LevelDatabase } from './level/context.js'
import { LevelKeys } from './level/keys.js'
import { LevelBrands } from './level/brands.js'
import { LevelStores } from './level/stores.js'
import { LevelRegistrations } from './level/registrations.js'
import { LevelSigningLog } from './level/signing-log.js'
import { LevelGrants, LevelPeople } from './level/people.js'
import { LevelTokens } from './level/tokens.js'
import { LevelSessions } from './level/sessions.js'
import { LevelAudit } from './level/audit.js'
import { LevelPivots } from './level/pivots.js'
import { LevelMeta } from './level/meta.js'
import { LevelWorkOrders } from './level/work-orders.js'
import { migrateLayout } from './level/migrations.js'

export type { LevelDatabase } from './level/context.js'

export interface LevelStoreOptions {
  /** Told when open() migrated the data from an older layout. */
  onMigrated?: (from: number, to: number) => void
  now?: () => number
}

export class LevelStore implements VaultStore {
  readonly traits: StoreTraits = { multiProcess: false }
  readonly #c: LevelContext
  readonly #options: LevelStoreOptions

  readonly keys: LevelKeys
  readonly brands: LevelBrands
  readonly stores: LevelStores
  readonly registrations: LevelRegistrations
  readonly signingLog: LevelSigningLog
  readonly people: LevelPeople
  readonly grants: LevelGrants
  readonly tokens: LevelTokens
  readonly sessions: LevelSessions
  readonly audit: LevelAudit
  readonly pivots: LevelPivots
  readonly workOrders: LevelWorkOrders
  readonly meta: LevelMeta

  constructor(db: LevelDatabase, options: LevelStoreOptions = {}) {
    this.#c = new LevelContext(db)
    this.#options = options
    this.keys = new LevelKeys(this.#c)
    this.brands = new LevelBrands(this.#c)
    this.stores = new LevelStores(this.#c)
    this.registrations = new LevelRegistrations(this.#c)
    this.signingLog = new LevelSigningLog(this.#c)
    this.people = new LevelPeople(this.#c)
    this.grants = new LevelGrants(this.#c)
    this.tokens = new LevelTokens(this.#c)
    this.sessions = new LevelSessions(this.#c)
    this.audit = new LevelAudit(this.#c)
    this.pivots = new LevelPivots(this.#c)
    this.workOrders = new LevelWorkOrders(this.#c)
    this.meta = new LevelMeta(this.#c)
  }

  open(): Promise<void> {
    const c = this.#c
    return c.life.open(async () => {
      try {
        await c.db.open()
      } catch (err) {
        throw levelOpenError(err, (c.db as { location?: unknown }).location as string | undefined)
      }
      try {
        // Sublevels are closed for good with their parent, so each open makes new ones.
        const subs = createSublevels(c.db)
        const found = await migrateLayout(subs, (ops) => c.write(ops), (this.#options.now ?? Date.now)())
        if (found !== undefined && found < 2) this.#options.onMigrated?.(found, 2)
        const head = (await subs.sys.get('audit-head')) as string | undefined
        c.auditHead = head === undefined ? { seq: 0, hash: GENESIS_HASH } : (JSON.parse(head) as AuditHead)
        c.storesVersion = Number((await subs.sys.get('stores-version')) ?? 0)
        c.subs = subs
      } catch (err) {
        await c.db.close().catch(() => {})
        throw err
      }
    })
  }

  close(): Promise<void> {
    const c = this.#c
    return c.life.close(async () => {
      // request-id uses still waiting for a batch to ride in: written now
      if (c.pendingUses.size > 0) await c.write([]).catch(() => {})
      c.pendingUses.clear()
      c.subs = undefined
      await c.db.close()
    })
  }

  ping(): Promise<void> {
    return this.#c.run(async (s) => {
      await s.sys.get('layout')
    })
  }
}
