/**
 * Typed header validators (snapd asserts/header_checks.go) with snapd's message
 * shapes. They throw HeaderCheckError; the assembler turns it into
 * SV_ASSERTION_INVALID with `details: { type, header }`.
 */
import { base64urlDecode } from '../crypto/bytes.js'
import { quote, hasOwn, type HeaderMap, type HeaderValue } from './grammar.js'

export class HeaderCheckError extends Error {
  readonly header: string | undefined
  constructor(message: string, header?: string) {
    super(message)
    this.name = 'HeaderCheckError'
    this.header = header
  }
}

export const ACCOUNT_ID_RE = /^(?:[a-z0-9A-Z]{32}|[-a-z0-9]{2,28})$/
export const MODEL_NAME_RE = /^[a-zA-Z0-9](?:-?[a-zA-Z0-9])*$/
export const ACCOUNT_KEY_NAME_RE = /^(?:[a-z0-9]+-?)*[a-z](?:-?[a-z0-9])*$/
export const SNAP_NAME_RE = /^(?:[a-z0-9]+-?)*[a-z](?:-?[a-z0-9])*$/
export const SNAP_ID_RE = /^[a-z0-9A-Z]{32}$/

export function checkExistsString(m: HeaderMap, name: string, what = 'header'): string {
  if (!hasOwn(m, name)) throw new HeaderCheckError(`${quote(name)} ${what} is mandatory`, name)
  const v = m[name]
  if (typeof v !== 'string') throw new HeaderCheckError(`${quote(name)} ${what} must be a string`, name)
  return v
}

export function checkNotEmptyString(m: HeaderMap, name: string, what = 'header'): string {
  const s = checkExistsString(m, name, what)
  if (s.length === 0) throw new HeaderCheckError(`${quote(name)} ${what} should not be empty`, name)
  return s
}

export function checkOptionalString(m: HeaderMap, name: string, what = 'header'): string {
  if (!hasOwn(m, name)) return ''
  const v = m[name]
  if (typeof v !== 'string') throw new HeaderCheckError(`${quote(name)} ${what} must be a string`, name)
  return v
}

export function checkPrimaryKey(m: HeaderMap, name: string): string {
  const v = checkNotEmptyString(m, name)
  if (v.includes('/')) throw new HeaderCheckError(`${quote(name)} primary key header cannot contain '/'`, name)
  return v
}

/** Go's strconv.Atoi range on 64-bit: values beyond ±2^63 are out of range. */
const INT_RE = /^[+-]?[0-9]+$/
const INT64_MAX = 9223372036854775807n

export function atoi(value: string, which: string, header?: string): number {
  if (!INT_RE.test(value)) throw new HeaderCheckError(`${which} is not an integer: ${value}`, header)
  const big = BigInt(value)
  if (big > INT64_MAX || big < -INT64_MAX - 1n) throw new HeaderCheckError(`${which} is out of range: ${value}`, header)
  if (value.startsWith('0') && value !== '0') throw new HeaderCheckError(`${which} has invalid prefix zeros: ${value}`, header)
  // Beyond 2^53 the number loses precision; such revisions/lengths are refused elsewhere by limits.
  return Number(big)
}

export function checkIntWithDefault(m: HeaderMap, name: string, defl: number): number {
  if (!hasOwn(m, name)) return defl
  const v = m[name]
  if (typeof v !== 'string') throw new HeaderCheckError(`${quote(name)} header is not an integer: ${describeValue(v)}`, name)
  return atoi(v, `${quote(name)} header`, name)
}

export function checkInt(m: HeaderMap, name: string, what = 'header'): number {
  const s = checkNotEmptyString(m, name, what)
  return atoi(s, `${quote(name)} ${what}`, name)
}

function describeValue(v: HeaderValue | undefined): string {
  return JSON.stringify(v)?.slice(0, 100) ?? 'undefined'
}

const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|([+-])(\d{2}):(\d{2}))$/

/** A parsed RFC 3339 time: epoch milliseconds (sub-millisecond digits truncated). */
export function parseRfc3339(s: string): number | undefined {
  const m = RFC3339_RE.exec(s)
  if (!m) return undefined
  const [year, month, day, hour, min, sec] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number]
  if (month < 1 || month > 12 || hour > 23 || min > 59 || sec > 59) return undefined
  const dim = new Date(Date.UTC(year, month, 0)).getUTCDate()
  if (day < 1 || day > dim) return undefined
  let offset = 0
  if (m[8] !== 'Z') {
    const oh = Number(m[10])
    const om = Number(m[11])
    if (oh > 23 || om > 59) return undefined
    offset = (m[9] === '-' ? -1 : 1) * (oh * 60 + om) * 60000
  }
  const frac = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0
  const d = new Date(0)
  d.setUTCFullYear(year, month - 1, day)
  d.setUTCHours(hour, min, sec, frac)
  return d.getTime() - offset
}

export function checkRfc3339Date(m: HeaderMap, name: string, what = 'header'): number {
  const s = checkNotEmptyString(m, name, what)
  const t = parseRfc3339(s)
  if (t === undefined) throw new HeaderCheckError(`${quote(name)} ${what} is not a RFC3339 date: ${quote(s)}`, name)
  return t
}

export function checkRfc3339DateWithDefault(m: HeaderMap, name: string, defl: number | undefined, what = 'header'): number | undefined {
  if (!hasOwn(m, name)) return defl
  const v = m[name]
  if (typeof v !== 'string') throw new HeaderCheckError(`${quote(name)} ${what} must be a string`, name)
  const t = parseRfc3339(v)
  if (t === undefined) throw new HeaderCheckError(`${quote(name)} ${what} is not a RFC3339 date: ${quote(v)}`, name)
  return t
}

/** Formats epoch ms as snapd writes timestamps: RFC 3339, UTC, whole seconds. */
export function formatRfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')
}

export function checkDigest(m: HeaderMap, name: string, size: number): Uint8Array {
  const s = checkNotEmptyString(m, name)
  const b = base64urlDecode(s)
  if (b === undefined) throw new HeaderCheckError(`${quote(name)} header cannot be decoded: illegal base64 data`, name)
  if (b.length !== size) throw new HeaderCheckError(`${quote(name)} header does not have the expected bit length: ${b.length * 8}`, name)
  return b
}

export function checkStringMatches(m: HeaderMap, name: string, re: RegExp, what = 'header'): string {
  const s = checkNotEmptyString(m, name, what)
  if (!re.test(s)) throw new HeaderCheckError(`${quote(name)} ${what} contains invalid characters: ${quote(s)}`, name)
  return s
}

export function checkStringListInMap(m: HeaderMap, name: string, what: string, re?: RegExp): string[] {
  if (!hasOwn(m, name)) return []
  const v = m[name]
  if (!Array.isArray(v)) throw new HeaderCheckError(`${what} must be a list of strings`, name)
  return v.map((e) => {
    if (typeof e !== 'string') throw new HeaderCheckError(`${what} must be a list of strings`, name)
    if (re && !re.test(e)) throw new HeaderCheckError(`${what} contains an invalid element: ${quote(e)}`, name)
    return e
  })
}

export function checkStringList(m: HeaderMap, name: string, re?: RegExp): string[] {
  return checkStringListInMap(m, name, `${quote(name)} header`, re)
}

export function checkOptionalBool(m: HeaderMap, name: string): boolean {
  if (!hasOwn(m, name)) return false
  const v = m[name]
  if (v !== 'true' && v !== 'false') throw new HeaderCheckError(`${quote(name)} header must be 'true' or 'false'`, name)
  return v === 'true'
}

export function checkModelName(m: HeaderMap): string {
  const s = checkStringMatches(m, 'model', MODEL_NAME_RE)
  if (s.toLowerCase() !== s) throw new HeaderCheckError(`"model" header cannot contain uppercase letters`, 'model')
  return s
}
