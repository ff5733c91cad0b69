import type { AuditEntry, AuditHead, AuditSeal } from '../records.js'
import type { AuditPage, AuditQuery, AuditRepository } from '../store.js'
import { AUDIT_SCAN_BUDGET, matchesAuditQuery, normalizeAuditQuery, toAuditPage, type NormalizedAuditQuery } from '../audit-query.js'
import { type LevelContext, type Sublevels, SCAN_BATCH } from './context.js'
import { lastComponent, padNumber, prefixRange, tupleKey } from './layout.js'

type Step = <T>(fn: (s: Sublevels) => Promise<T>) => Promise<T>

interface Range {
  gt?: string
  gte?: string
  lt?: string
  reverse: boolean
}

/** The seq window of a query (the cursor) as a key range under `prefix`. */
function seqRange(prefix: string[], q: NormalizedAuditQuery): Range {
  const range: Range = { reverse: q.order === 'desc' }
  const whole = prefix.length > 0 ? prefixRange(prefix[0]!, ...prefix.slice(1)) : undefined
  if (q.after !== undefined && q.order === 'asc') range.gt = tupleKey(...prefix, padNumber(q.after))
  else if (whole) range.gte = whole.gte
  if (q.after !== undefined && q.order === 'desc') range.lt = tupleKey(...prefix, padNumber(q.after))
  else if (whole) range.lt = whole.lt
  return range
}

/**
 * Entries in seq order with their seq, from the store index (merged over the
 * stores asked for) or the log itself. Yields [entry or undefined when it
 * does not match, seq] so callers can count what they scanned.
 */
async function* scanAudit(q: NormalizedAuditQuery, batch: number, step: Step): AsyncGenerator<[AuditEntry | undefined, number]> {
  const asc = q.order === 'asc'
  const its: Array<{ it: { nextv(n: number): Promise<string[]>; close(): Promise<void> }; buf: string[]; done: boolean }> = []
  let logIt: { nextv(n: number): Promise<AuditEntry[]>; close(): Promise<void> } | undefined
  let started = false
  try {
    for (;;) {
      const rows = await step(async (s) => {
        if (!started) {
          started = true
          if (q.storeIds === undefined) logIt = s.audit.values(seqRange([], q))
          else for (const id of q.storeIds) its.push({ it: s.auditByStore.keys(seqRange([id], q)), buf: [], done: false })
        }
        if (logIt) return (await logIt.nextv(batch)) as AuditEntry[]
        const seqs: string[] = []
        while (seqs.length < batch) {
          let best: (typeof its)[number] | undefined
          for (const x of its) {
            if (x.buf.length === 0 && !x.done) {
              x.buf = (await x.it.nextv(batch)).map(lastComponent)
              if (x.buf.length === 0) x.done = true
            }
            if (x.buf.length > 0 && (best === undefined || (asc ? x.buf[0]! < best.buf[0]! : x.buf[0]! > best.buf[0]!))) best = x
          }
          if (!best) break
          seqs.push(best.buf.shift()!)
        }
        return ((await s.audit.getMany(seqs)) as Array<AuditEntry | undefined>).filter((e): e is AuditEntry => e !== undefined)
      })
      if (rows.length === 0) return
      for (const e of rows) yield [matchesAuditQuery(e, q) ? e : undefined, e.seq]
    }
  } finally {
    await logIt?.close().catch(() => {})
    for (const x of its) await x.it.close().catch(() => {})
  }
}

export class LevelAudit implements AuditRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  head(): Promise<AuditHead> {
    return this.#c.run(async () => ({ ...this.#c.auditHead }))
  }

  append(seal: AuditSeal): Promise<AuditEntry> {
    return this.#c.locked([], async (s) => (await this.#c.commit(s, [], seal))!, true)
  }

  query(query: AuditQuery): Promise<AuditPage> {
    return this.#c.run(async (s) => {
      const q = normalizeAuditQuery(query)
      const matches: AuditEntry[] = []
      let scanned = 0
      let last: number | undefined
      for await (const [e, seq] of scanAudit(q, Math.min(q.limit + 1, SCAN_BATCH), (fn) => fn(s))) {
        last = seq
        if (e) matches.push(e)
        if (matches.length > q.limit) break
        if (++scanned >= AUDIT_SCAN_BUDGET) return toAuditPage(matches, q.limit, last)
      }
      return toAuditPage(matches, q.limit)
    })
  }

  async *export(query: Omit<AuditQuery, 'limit' | 'cursor'>): AsyncIterable<AuditEntry> {
    const q = normalizeAuditQuery({ ...query, limit: undefined, cursor: undefined })
    for await (const [e] of scanAudit(q, SCAN_BATCH, (fn) => this.#c.run(fn))) if (e) yield e
  }
}
