/**
 * The audit log: every admin action (who, from where, which store, what
 * changed before and after, the request id), logins, refused admin writes and
 * pivots, in one append-only hash chain.
 *
 *   hash = sha256( prevHash "\n" canonical-JSON(entry without hash and mac) )
 *   mac  = HMAC-SHA256( key derived from the master key, hash )
 *
 * Canonical JSON sorts object keys at every level and leaves out undefined,
 * so an entry hashes the same after any storage round trip. The hash chain
 * shows a changed, removed or reordered entry to anyone holding the log; the
 * mac shows a chain recomputed by someone without the master key (a
 * database-level edit that rehashes everything after the change). The chain's
 * head is stored apart from the entries, so removing the newest entries shows
 * too.
 *
 * Secrets never enter an entry: records pass through `auditView` first (no
 * sealed keys, no token or API key hashes, no passwords).
 */
import { createHash, createHmac, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto'
import { Buffer } from 'node:buffer'
import { GENESIS_HASH, type AuditActor, type AuditEntry, type AuditHead, type AuditSeal } from '../../store/store.js'

/** What the caller says of an action; the service adds time, seq, chain and mac. */
export interface AuditDraft {
  actor: AuditActor
  source?: { ip?: string; userAgent?: string; transport?: string }
  action: string
  outcome?: 'ok' | 'denied'
  code?: string
  brandId?: string
  storeId?: string
  target?: { type: string; id: string }
  before?: unknown
  after?: unknown
  requestId?: string
}

export type AuditProblemKind = 'changed' | 'mac' | 'removed' | 'reordered' | 'truncated' | 'extra'

export interface AuditProblem {
  seq: number
  kind: AuditProblemKind
  detail: string
}

export interface AuditReport {
  ok: boolean
  /** entries read */
  entries: number
  /** the stored head */
  head: AuditHead
  /** the first problems found (at most 100) */
  problems: AuditProblem[]
  /** false when no master key was at hand to check the macs */
  macChecked: boolean
}

/** JSON with sorted keys at every level, undefined left out: the bytes that are hashed. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null'
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`
  const keys = Object.keys(v as object)
    .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
    .sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`
}

export function entryHash(prevHash: string, entry: Omit<AuditEntry, 'hash' | 'mac'>): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(entry)).digest('hex')
}

export class AuditService {
  readonly #key: Buffer | undefined
  readonly #now: () => number

  /** Without a master key, entries can be verified for the chain but not for the mac (and none can be sealed). */
  constructor(options: { masterKey?: Buffer | KeyObject; now?: () => number }) {
    this.#key = options.masterKey === undefined ? undefined : Buffer.from(hkdfSync('sha256', options.masterKey, Buffer.alloc(0), 'serial-vault audit v1', 32))
    this.#now = options.now ?? Date.now
  }

  #mac(hash: string): string {
    if (!this.#key) throw new TypeError('the audit service has no master key: it cannot seal entries')
    return createHmac('sha256', this.#key).update(hash).digest('hex')
  }

  /** The seal of one entry: the store completes it from the chain's head, in the write of the change. */
  seal(draft: AuditDraft): AuditSeal {
    const time = this.#now()
    return (head) => {
      const body: Omit<AuditEntry, 'hash' | 'mac'> = { ...stripUndefined(draft), outcome: draft.outcome ?? 'ok', seq: head.seq + 1, time, prevHash: head.hash } as Omit<AuditEntry, 'hash' | 'mac'>
      const hash = entryHash(head.hash, body)
      return { ...body, hash, mac: this.#mac(hash) }
    }
  }

  /** Walks the whole chain in seq order and reports every kind of tampering it finds. */
  async verify(entries: AsyncIterable<AuditEntry>, head: AuditHead): Promise<AuditReport> {
    const problems: AuditProblem[] = []
    const add = (p: AuditProblem): void => {
      if (problems.length < 100) problems.push(p)
    }
    let prev: AuditHead = { seq: 0, hash: GENESIS_HASH }
    let n = 0
    for await (const e of entries) {
      n++
      const { hash, mac, ...body } = e
      if (e.seq !== prev.seq + 1) add({ seq: e.seq, kind: e.seq > prev.seq + 1 ? 'removed' : 'reordered', detail: `entry ${e.seq} follows ${prev.seq}` })
      else if (e.prevHash !== prev.hash) add({ seq: e.seq, kind: 'reordered', detail: `entry ${e.seq} does not follow the entry before it (prevHash differs)` })
      if (entryHash(e.prevHash, body) !== hash) add({ seq: e.seq, kind: 'changed', detail: `entry ${e.seq} does not hash to its hash: its content changed` })
      else if (this.#key) {
        const want = Buffer.from(this.#mac(hash))
        const got = Buffer.from(typeof mac === 'string' ? mac : '')
        if (got.length !== want.length || !timingSafeEqual(got, want)) add({ seq: e.seq, kind: 'mac', detail: `entry ${e.seq} has a mac this vault did not make: the chain was rewritten` })
      }
      prev = { seq: e.seq, hash }
    }
    if (head.seq > prev.seq) add({ seq: prev.seq + 1, kind: 'truncated', detail: `the head is entry ${head.seq}, the log ends at ${prev.seq}` })
    else if (head.seq < prev.seq) add({ seq: head.seq + 1, kind: 'extra', detail: `the log goes on past the head (${head.seq}) to ${prev.seq}` })
    else if (head.hash !== prev.hash) add({ seq: head.seq, kind: 'changed', detail: 'the last entry is not the one the head names' })
    return { ok: problems.length === 0, entries: n, head, problems, macChecked: this.#key !== undefined }
  }
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

/**
 * What of a record goes into the audit log: never key material, hashes of
 * bearer tokens, API keys or sessions, or passwords.
 */
export function auditView(kind: 'model' | 'key' | 'token' | 'store' | 'grant' | 'person' | 'brand' | 'binding' | 'pivot-rule', record: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (record === undefined) return undefined
  const r = { ...record }
  switch (kind) {
    case 'model':
      r.apiKeys = Array.isArray(r.apiKeyHashes) ? r.apiKeyHashes.length : 0
      delete r.apiKeyHashes
      delete r.modelAssertion
      break
    case 'key':
      delete r.sealed
      delete r.accountKeyAssertion
      break
    case 'token':
      r.id = typeof r.hash === 'string' ? r.hash.slice(0, 12) : undefined
      delete r.hash
      break
    case 'brand':
      delete r.accountAssertion
      break
    case 'binding':
      delete r.serialAssertion
      break
    default:
  }
  return r
}
