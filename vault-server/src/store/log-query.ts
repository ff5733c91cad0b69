import { VaultError } from '@sv/shared'
import { logIdTimeBound } from './log-id.js'
import { LOG_OUTCOMES, type LogEntry, type LogOutcome, type LogQuery } from './store.js'

/**
 * Validation and shared semantics of signing log queries, used by every
 * store so that paging and filtering mean the same thing on each backend.
 */

export const DEFAULT_LOG_LIMIT = 100
export const MAX_LOG_LIMIT = 1000

const OUTCOMES = LOG_OUTCOMES

/** Most stores one query may name (a store's view of the log, with its sub-stores). */
export const MAX_QUERY_STORES = 1000

/** A validated query: filters, the id window it may touch, page size and order. */
export interface NormalizedLogQuery {
  brandId: string | undefined
  model: string | undefined
  /** sorted, without duplicates */
  storeIds: string[] | undefined
  storeSet: ReadonlySet<string> | undefined
  serial: string | undefined
  deviceKeyId: string | undefined
  outcome: LogOutcome | undefined
  /** Inclusive lower id bound from `from` (ids start with their time, see log-id.ts). */
  idGte: string | undefined
  /** Exclusive upper id bound from `to`. */
  idLt: string | undefined
  /** Exclusive: continue after this id (in `order`), from the cursor. */
  after: string | undefined
  limit: number
  order: 'asc' | 'desc'
}

function invalid(message: string, field: string): VaultError {
  return new VaultError('SV_REQUEST_INVALID', message, { details: { field } })
}

function optionalString(q: Record<string, unknown>, field: string): string | undefined {
  const v = q[field]
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw invalid(`${field} must be a string`, field)
  return v
}

/** A list of store ids: 1..MAX_QUERY_STORES strings, returned sorted and unique. */
export function optionalStringList(q: Record<string, unknown>, field: string): string[] | undefined {
  const v = q[field]
  if (v === undefined) return undefined
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_QUERY_STORES || !v.every((x) => typeof x === 'string')) {
    throw invalid(`${field} must be a list of 1 to ${MAX_QUERY_STORES} strings`, field)
  }
  return [...new Set(v as string[])].sort()
}

function optionalTime(q: Record<string, unknown>, field: string): number | undefined {
  const v = q[field]
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`${field} must be epoch milliseconds`, field)
  return v
}

/**
 * Checks a query and resolves its defaults. A malformed field, limit outside
 * 1..1000 or a cursor this module did not make rejects with SV_REQUEST_INVALID
 * (they come from admin API parameters).
 */
export function normalizeLogQuery(query: LogQuery): NormalizedLogQuery {
  const q = query as unknown as Record<string, unknown>
  const outcome = q.outcome
  if (outcome !== undefined && !OUTCOMES.includes(outcome as LogOutcome)) {
    throw invalid('outcome must be one of ' + OUTCOMES.join(', '), 'outcome')
  }
  const limit = q.limit ?? DEFAULT_LOG_LIMIT
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LOG_LIMIT) {
    throw invalid(`limit must be an integer in 1..${MAX_LOG_LIMIT}`, 'limit')
  }
  const order = q.order ?? 'asc'
  if (order !== 'asc' && order !== 'desc') throw invalid("order must be 'asc' or 'desc'", 'order')
  const from = optionalTime(q, 'from')
  const to = optionalTime(q, 'to')
  const cursor = optionalString(q, 'cursor')
  const storeIds = optionalStringList(q, 'storeIds')
  return {
    brandId: optionalString(q, 'brandId'),
    model: optionalString(q, 'model'),
    storeIds,
    storeSet: storeIds === undefined ? undefined : new Set(storeIds),
    serial: optionalString(q, 'serial'),
    deviceKeyId: optionalString(q, 'deviceKeyId'),
    outcome: outcome as LogOutcome | undefined,
    idGte: from === undefined ? undefined : logIdTimeBound(from),
    idLt: to === undefined ? undefined : logIdTimeBound(to),
    after: cursor === undefined ? undefined : decodeLogCursor(cursor),
    limit,
    order,
  }
}

/** Whether an entry passes every filter of the query (the id window included). */
export function matchesLogQuery(e: LogEntry, q: NormalizedLogQuery): boolean {
  if (q.brandId !== undefined && e.brandId !== q.brandId) return false
  if (q.model !== undefined && e.model !== q.model) return false
  if (q.storeIds !== undefined && (e.storeId === undefined || !q.storeSet!.has(e.storeId))) return false
  if (q.serial !== undefined && e.serial !== q.serial) return false
  if (q.deviceKeyId !== undefined && e.deviceKeyId !== q.deviceKeyId) return false
  if (q.outcome !== undefined && e.outcome !== q.outcome) return false
  if (q.idGte !== undefined && e.id < q.idGte) return false
  if (q.idLt !== undefined && e.id >= q.idLt) return false
  if (q.after !== undefined && (q.order === 'asc' ? e.id <= q.after : e.id >= q.after)) return false
  return true
}

const CURSOR_VERSION = 'c1:'

/** The cursor is opaque to callers: a versioned, base64url wrapper around the last id returned. */
export function encodeLogCursor(lastId: string): string {
  return Buffer.from(CURSOR_VERSION + lastId, 'utf8').toString('base64url')
}

export function decodeLogCursor(cursor: string, field = 'cursor'): string {
  const text = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : ''
  if (!text.startsWith(CURSOR_VERSION) || text.length === CURSOR_VERSION.length) {
    throw invalid('cursor is not one this vault returned', field)
  }
  return text.slice(CURSOR_VERSION.length)
}

/**
 * Builds a page from up to `limit + 1` matching entries in order: the extra
 * entry only proves that more match.
 */
export function toLogPage(matches: LogEntry[], limit: number): { entries: LogEntry[]; nextCursor?: string } {
  if (matches.length <= limit) return { entries: matches }
  const entries = matches.slice(0, limit)
  return { entries, nextCursor: encodeLogCursor(entries[entries.length - 1]!.id) }
}
