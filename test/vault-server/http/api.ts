/**
 * Small helpers for the vault API tests: the error-answer assertion every
 * rejection goes through, admin API calls, the signing log (all pages),
 * Prometheus text and a serial answer's parts.
 */
import type { ExecutionContext } from 'ava'
import { decodeStream, type Assertion, type ErrorBody, type LogEntryWire, type SerialAssertion } from '@sv/shared'
import { endpoint, httpRequest, jsonOf, type HttpResult } from '../../helpers/device.js'

/**
 * Asserts an error answer: the status, Content-Type exactly application/json
 * (snapd shows the message only then, spec §5.8), the SV_* code, a message,
 * Retry-After on 503, and optionally a subset of `details`.
 */
export function assertError(t: ExecutionContext, r: HttpResult, status: number, code: string, details?: Record<string, unknown>): ErrorBody {
  t.is(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.body.toString('utf8').slice(0, 300)}`)
  t.is(r.headers['content-type'], 'application/json')
  const b = jsonOf<ErrorBody>(r)
  t.is(b.code, code as ErrorBody['code'])
  t.is(typeof b.message, 'string')
  t.true(b.message.length > 0)
  if (status === 503) t.regex(String(r.headers['retry-after']), /^[1-9]\d*$/, 'a 503 carries Retry-After')
  if (details && Object.keys(details).length > 0) t.like(b.details ?? {}, details)
  return b
}

export interface AdminTarget {
  url: string
  adminToken: string
}

/** A call to the admin API (`path` relative to /v1/, e.g. 'admin/models'). */
export function admin(v: AdminTarget, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult> {
  return httpRequest(endpoint(v.url, path), {
    method,
    headers: { authorization: `Bearer ${v.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    timeoutMs: 120_000,
  })
}

export async function adminJson<T = Record<string, unknown>>(v: AdminTarget, method: string, path: string, body?: unknown): Promise<T> {
  const r = await admin(v, method, path, body)
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body.toString('utf8').slice(0, 500)}`)
  return jsonOf<T>(r)
}

/** The signing log entry as the admin API answers it (the wire schema of shared/src/protocol/admin.ts). */
export type WireLogEntry = LogEntryWire

/** Every log entry matching `query` (URLSearchParams syntax, without cursor), following nextCursor. */
export async function logEntries(v: AdminTarget, query: Record<string, string> = {}): Promise<WireLogEntry[]> {
  const out: WireLogEntry[] = []
  let cursor: string | undefined
  for (let page = 0; page < 1000; page++) {
    const q = new URLSearchParams({ limit: '1000', ...query, ...(cursor ? { cursor } : {}) })
    const p = await adminJson<{ entries: WireLogEntry[]; nextCursor?: string }>(v, 'GET', `admin/log?${q}`)
    out.push(...p.entries)
    cursor = p.nextCursor
    if (!cursor) return out
  }
  throw new Error('logEntries: more than 1000 pages')
}

/** The value of one Prometheus sample, matched on the given labels (0 when absent). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0
  let found = false
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[l[1]!] = l[2]!
    if (Object.entries(labels).every(([k, val]) => have[k] === val)) {
      total += Number(m[3])
      found = true
    }
  }
  return found ? total : 0
}

/** A 200 answer of /v1/serial: the serial and the rest of the stream (account-key, account). */
export function serialOf(r: HttpResult): { serial: SerialAssertion; rest: Assertion[] } {
  if (r.status !== 200) throw new Error(`expected a serial, got ${r.status}: ${r.body.toString('utf8').slice(0, 300)}`)
  const [serial, ...rest] = decodeStream(r.body)
  if (serial?.typeName !== 'serial') throw new Error(`first assertion is ${serial?.typeName}`)
  return { serial: serial as SerialAssertion, rest }
}
