import { VaultError } from '@sv/shared'
import { DEFAULT_LOG_LIMIT, MAX_LOG_LIMIT, optionalStringList } from './log-query.js'
import type { AuditEntry, AuditQuery } from './store.js'

/**
 * Validation and shared semantics of audit log queries, for every store.
 * Entries are ordered by `seq`; time bounds filter on `time`; the cursor
 * carries the last seq returned.
 */

export interface NormalizedAuditQuery {
  storeIds: string[] | undefined
  storeSet: ReadonlySet<string> | undefined
  brandId: string | undefined
  actorId: string | undefined
  action: string | undefined
  outcome: 'ok' | 'denied' | undefined
  from: number | undefined
  to: number | undefined
  /** exclusive: continue after this seq (in `order`) */
  after: number | undefined
  limit: number
  order: 'asc' | 'desc'
}

/**
 * Most entries one page may examine before it answers: a query whose filters
 * match little must not scan the whole log in one call. The page then holds
 * what matched so far and a cursor to go on from.
 */
export const AUDIT_SCAN_BUDGET = 20_000

function invalid(message: string, field: string): VaultError {
  return new VaultError('SV_REQUEST_INVALID', message, { details: { field } })
}

export function normalizeAuditQuery(query: AuditQuery): NormalizedAuditQuery {
  const q = query as unknown as Record<string, unknown>
  const str = (f: string): string | undefined => {
    const v = q[f]
    if (v === undefined) return undefined
    if (typeof v !== 'string') throw invalid(`${f} must be a string`, f)
    return v
  }
  const time = (f: string): number | undefined => {
    const v = q[f]
    if (v === undefined) return undefined
    if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`${f} must be epoch milliseconds`, f)
    return v
  }
  const outcome = q.outcome
  if (outcome !== undefined && outcome !== 'ok' && outcome !== 'denied') throw invalid("outcome must be 'ok' or 'denied'", 'outcome')
  const limit = q.limit ?? DEFAULT_LOG_LIMIT
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LOG_LIMIT) throw invalid(`limit must be an integer in 1..${MAX_LOG_LIMIT}`, 'limit')
  const order = q.order ?? 'asc'
  if (order !== 'asc' && order !== 'desc') throw invalid("order must be 'asc' or 'desc'", 'order')
  const cursor = str('cursor')
  const storeIds = optionalStringList(q, 'storeIds')
  return {
    storeIds,
    storeSet: storeIds === undefined ? undefined : new Set(storeIds),
    brandId: str('brandId'),
    actorId: str('actorId'),
    action: str('action'),
    outcome: outcome as 'ok' | 'denied' | undefined,
    from: time('from'),
    to: time('to'),
    after: cursor === undefined ? undefined : decodeAuditCursor(cursor),
    limit,
    order,
  }
}

export function matchesAuditQuery(e: AuditEntry, q: NormalizedAuditQuery): boolean {
  if (q.storeSet !== undefined && (e.storeId === undefined || !q.storeSet.has(e.storeId))) return false
  if (q.brandId !== undefined && e.brandId !== q.brandId) return false
  if (q.actorId !== undefined && e.actor.id !== q.actorId) return false
  if (q.action !== undefined && (q.action.endsWith('.') ? !e.action.startsWith(q.action) : e.action !== q.action)) return false
  if (q.outcome !== undefined && e.outcome !== q.outcome) return false
  if (q.from !== undefined && e.time < q.from) return false
  if (q.to !== undefined && e.time >= q.to) return false
  if (q.after !== undefined && (q.order === 'asc' ? e.seq <= q.after : e.seq >= q.after)) return false
  return true
}

const CURSOR_VERSION = 'a1:'

export function encodeAuditCursor(seq: number): string {
  return Buffer.from(`${CURSOR_VERSION}${seq}`, 'utf8').toString('base64url')
}

export function decodeAuditCursor(cursor: string): number {
  const text = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : ''
  const m = /^a1:(\d{1,15})$/.exec(text)
  if (!m) throw invalid('cursor is not one this vault returned', 'cursor')
  return Number(m[1])
}

/**
 * A page from up to `limit + 1` matches in order, or from fewer when the scan
 * budget ran out at `lastScanned` (then the cursor continues from there).
 */
export function toAuditPage(matches: AuditEntry[], limit: number, lastScanned?: number): { entries: AuditEntry[]; nextCursor?: string } {
  if (matches.length > limit) {
    const entries = matches.slice(0, limit)
    return { entries, nextCursor: encodeAuditCursor(entries[entries.length - 1]!.seq) }
  }
  if (lastScanned !== undefined) return { entries: matches, nextCursor: encodeAuditCursor(lastScanned) }
  return { entries: matches }
}
