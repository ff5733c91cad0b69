/**
 * Signing log export formats: JSON lines and CSV (RFC 4180, one header row,
 * columns LOG_CSV_COLUMNS of the wire protocol). Both stream entry by entry.
 */
import { LOG_CSV_COLUMNS } from '@sv/shared'
import type { LogEntry } from '../store/store.js'

export const CSV_COLUMNS = LOG_CSV_COLUMNS

function csvField(v: unknown): string {
  if (v === undefined || v === null) return ''
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v)
  // Values are exported as they are (a key id may start with "-"); fields
  // with a quote, comma or line break are quoted.
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s
}

export function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`
}

export function csvRow(e: LogEntry): string {
  return `${CSV_COLUMNS.map((c) => csvField(c === 'time' ? new Date(e.time).toISOString() : e[c])).join(',')}\r\n`
}

export function jsonLine(e: unknown): string {
  const x = e as { time?: unknown }
  return `${JSON.stringify(typeof x.time === 'number' ? { ...x, time: new Date(x.time).toISOString() } : x)}\n`
}
