import type { LogEntry } from '../records.js'
import type { LogPage, LogQuery, SigningLogRepository } from '../store.js'
import { matchesLogQuery, normalizeLogQuery, toLogPage, type NormalizedLogQuery } from '../log-query.js'
import { type LevelContext, type Op, type Sub, type Sublevels, SCAN_BATCH, put, requireStrings } from './context.js'
import { lastComponent, prefixRange, tupleKey } from './layout.js'

/** The entry and its index keys; each index key ends with the log id (see layout.ts). */
export function logOps(s: Sublevels, e: LogEntry): Op[] {
  const ops: Op[] = [put(s.log, tupleKey(e.id), e), put(s.logByOutcome, tupleKey(e.outcome, e.id), '')]
  ops.push(...logIndexOps(s, e))
  return ops
}

/** The index keys of an entry besides the outcome index (layout 2 added store and device key). */
export function logIndexOps(s: Sublevels, e: LogEntry): Op[] {
  const ops: Op[] = []
  if (e.serial !== undefined) ops.push(put(s.logBySerial, tupleKey(e.serial, e.id), ''))
  if (e.brandId !== undefined) {
    ops.push(put(s.logByBrand, tupleKey(e.brandId, e.id), ''))
    if (e.model !== undefined) ops.push(put(s.logByModel, tupleKey(e.brandId, e.model, e.id), ''))
  }
  if (e.storeId !== undefined) ops.push(put(s.logByStore, tupleKey(e.storeId, e.id), ''))
  if (e.deviceKeyId !== undefined) ops.push(put(s.logByDeviceKey, tupleKey(e.deviceKeyId, e.id), ''))
  return ops
}

interface Source {
  index: Sub<string>
  prefix: string[]
}

/**
 * Picks the most selective index the query allows: serial, device key,
 * brand+model, stores (one range per store, merged), outcome, brand, else the
 * log itself. The other filters are applied to the entries read.
 */
function planLogScan(s: Sublevels, q: NormalizedLogQuery): Source[] | undefined {
  if (q.serial !== undefined) return [{ index: s.logBySerial, prefix: [q.serial] }]
  if (q.deviceKeyId !== undefined) return [{ index: s.logByDeviceKey, prefix: [q.deviceKeyId] }]
  if (q.brandId !== undefined && q.model !== undefined) return [{ index: s.logByModel, prefix: [q.brandId, q.model] }]
  if (q.storeIds !== undefined) return q.storeIds.map((id) => ({ index: s.logByStore, prefix: [id] }))
  if (q.outcome !== undefined) return [{ index: s.logByOutcome, prefix: [q.outcome] }]
  if (q.brandId !== undefined) return [{ index: s.logByBrand, prefix: [q.brandId] }]
  return undefined
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

type Step = <T>(fn: (s: Sublevels) => Promise<T>) => Promise<T>

/** One index range as a stream of log ids, read `batch` keys at a time. */
class IdStream {
  readonly #it: { nextv(n: number): Promise<string[]>; close(): Promise<void> }
  #buf: string[] = []
  #pos = 0
  #done = false

  constructor(s: Sublevels, source: Source, q: NormalizedLogQuery) {
    this.#it = source.index.keys(logKeyRange(source.prefix, q))
  }

  /** The next id without taking it, or undefined at the end (reads a batch when needed). */
  async peek(batch: number): Promise<string | undefined> {
    if (this.#pos >= this.#buf.length && !this.#done) {
      this.#buf = (await this.#it.nextv(batch)).map(lastComponent)
      this.#pos = 0
      if (this.#buf.length === 0) this.#done = true
    }
    return this.#pos < this.#buf.length ? this.#buf[this.#pos] : undefined
  }

  take(): void {
    this.#pos++
  }

  close(): Promise<void> {
    return this.#it.close()
  }
}

/**
 * Streams the matching entries in id order, reading `batch` keys per step, so
 * that neither a query nor an export holds more than a batch per source in
 * memory. Several sources (a store and its sub-stores) are merged by id.
 * `step` runs each read with the current sublevels.
 */
async function* scanLog(q: NormalizedLogQuery, batch: number, step: Step): AsyncGenerator<LogEntry> {
  const asc = q.order === 'asc'
  let streams: IdStream[] | undefined
  let logIt: { nextv(n: number): Promise<LogEntry[]>; close(): Promise<void> } | undefined
  try {
    for (;;) {
      const entries = await step(async (s) => {
        if (streams === undefined && logIt === undefined) {
          const sources = planLogScan(s, q)
          if (sources === undefined) logIt = s.log.values(logKeyRange([], q))
          else streams = sources.map((src) => new IdStream(s, src, q))
        }
        if (logIt !== undefined) return logIt.nextv(batch)
        const ids: string[] = []
        while (ids.length < batch) {
          let best: IdStream | undefined
          let bestId: string | undefined
          for (const st of streams!) {
            const id = await st.peek(batch)
            if (id !== undefined && (bestId === undefined || (asc ? id < bestId : id > bestId))) {
              best = st
              bestId = id
            }
          }
          if (best === undefined) break
          best.take()
          if (ids[ids.length - 1] !== bestId) ids.push(bestId!)
        }
        return (await s.log.getMany(ids.map((id) => tupleKey(id)))) as Array<LogEntry | undefined>
      })
      if (entries.length === 0) return
      for (const e of entries) if (e !== undefined && matchesLogQuery(e, q)) yield e
    }
  } finally {
    await logIt?.close().catch(() => {})
    for (const st of streams ?? []) await st.close().catch(() => {})
  }
}

export class LevelSigningLog implements SigningLogRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  append(entry: LogEntry): Promise<void> {
    requireStrings({ id: entry.id })
    return this.#c.run((s) => this.#c.write(logOps(s, entry)))
  }

  query(query: LogQuery): Promise<LogPage> {
    return this.#c.run(async (s) => {
      const q = normalizeLogQuery(query)
      const matches: LogEntry[] = []
      // The scan ends (and closes its iterators) once one entry more than a page is found.
      for await (const entry of scanLog(q, Math.min(q.limit + 1, SCAN_BATCH), (fn) => fn(s))) {
        matches.push(entry)
        if (matches.length > q.limit) break
      }
      return toLogPage(matches, q.limit)
    })
  }

  async *export(query: Omit<LogQuery, 'limit' | 'cursor'>): AsyncIterable<LogEntry> {
    const q = normalizeLogQuery({ ...query, limit: undefined, cursor: undefined })
    // Each step is its own store operation: close() waits for the step in flight, and
    // the step after it rejects with SV_STORE_NOT_OPEN.
    yield* scanLog(q, SCAN_BATCH, (fn) => this.#c.run(fn))
  }
}
