/**
 * The header grammar of snapd assertions (spec §1.2, snapd asserts/headers.go),
 * documented here once.
 *
 *   entry      = name ":" ( " " scalar | LF multiline )
 *   name       = [a-z] ( "-"? [a-z0-9] )*          (map keys use the same rule)
 *   multiline  = list | map | text                  (decided by the first following line)
 *     list     = ( B+2 spaces "-" ( " " scalar | LF nested ) )+
 *     map      = ( B+2 spaces key ":" ( " " scalar | LF nested ) )+   keys sorted when encoding
 *     text     = ( B+4 spaces line )+               joined with LF, prefix stripped
 *
 * B is the indentation of the enclosing entry (0 at top level; a list item's
 * content sits at B+2, so its maps are at B+4 and its text at B+6). Scalars are
 * always strings: no numbers or booleans in the grammar. A value is never
 * trimmed. Empty lists and maps are omitted when encoding, so they never
 * appear in the text.
 *
 * Parsed headers and maps are null-prototype objects in the order received, so
 * that names such as "constructor" are just names.
 */
import { VaultError } from '../errors.js'

export type HeaderValue = string | HeaderValue[] | HeaderMap
export interface HeaderMap {
  [key: string]: HeaderValue
}
export type Headers = HeaderMap

export const HEADER_NAME_RE = /^[a-z](?:-?[a-z0-9])*$/

/** deepest nesting of lists and maps accepted */
export const MAX_NESTING = 64

const COMMON_PREFIX = '  '
const MULTILINE_PREFIX = '    '
const LIST_PREFIX = '  -'

function grammarError(message: string, header?: string): VaultError {
  const details: Record<string, unknown> = { reason: message }
  if (header !== undefined) details.header = header
  return new VaultError('SV_ASSERTION_INVALID', `parsing assertion headers: ${message}`, { details })
}

/** JSON-style quoting close to Go's %q for messages (bounded). */
export function quote(s: string): string {
  return JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}...` : s)
}

export function newHeaderMap(): HeaderMap {
  return Object.create(null) as HeaderMap
}

export function hasOwn(m: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(m, key)
}

/**
 * The lines of a header block (as split('\n') gives them), split on demand:
 * a block refused early costs only the lines read. (Splitting 2 MiB of short
 * lines up front took 25-100 ms before the first one was even looked at;
 * found by bench/fuzz-decoder.ts.)
 */
class Lines {
  readonly #text: string
  readonly #lines: string[] = []
  #pos = 0

  constructor(text: string) {
    this.#text = text
  }

  has(i: number): boolean {
    this.#fill(i)
    return i < this.#lines.length
  }

  /** line i; call only when has(i) */
  get(i: number): string {
    this.#fill(i)
    return this.#lines[i]!
  }

  #fill(i: number): void {
    while (this.#lines.length <= i && this.#pos <= this.#text.length) {
      const nl = this.#text.indexOf('\n', this.#pos)
      const end = nl === -1 ? this.#text.length : nl
      this.#lines.push(this.#text.slice(this.#pos, end))
      this.#pos = end + 1
    }
  }
}

/**
 * Parses a header block (no trailing LF). Throws SV_ASSERTION_INVALID with
 * `details.header` naming the top-level header at fault when known.
 */
export function parseHeaders(head: string): Headers {
  const headers = newHeaderMap()
  const lines = new Lines(head)
  let i = 0
  while (lines.has(i)) {
    const entry = lines.get(i)
    const colon = entry.indexOf(':')
    if (colon === -1) throw grammarError(`header entry missing ':' separator: ${quote(entry)}`)
    const name = entry.slice(0, colon)
    if (!HEADER_NAME_RE.test(name)) throw grammarError(`invalid header name: ${quote(name)}`)
    let value: HeaderValue
    try {
      ;[value, i] = parseEntry(colon + 1, i, lines, 0)
    } catch (e) {
      if (e instanceof VaultError && e.details && e.details.header === undefined) e.details.header = name
      throw e
    }
    if (hasOwn(headers, name)) throw grammarError(`repeated header: ${quote(name)}`, name)
    headers[name] = value
  }
  return headers
}

function parseEntry(consumed: number, first: number, lines: Lines, baseIndent: number): [HeaderValue, number] {
  // Each nesting level indents by two; real assertions nest a few levels.
  // The bound keeps a crafted input from exhausting the stack.
  if (baseIndent > MAX_NESTING * 2) throw grammarError('header value nested too deeply')
  const entry = lines.get(first)
  const i = first + 1
  if (consumed === entry.length) {
    const basePrefix = ' '.repeat(baseIndent) + COMMON_PREFIX
    if (lines.has(i) && lines.get(i).startsWith(basePrefix)) {
      const rest = lines.get(i).slice(basePrefix.length)
      if (rest.startsWith('-')) return parseList(i, lines, baseIndent)
      if (rest.length > 0 && rest[0] !== ' ') return parseMap(i, lines, baseIndent)
    }
    return parseMultilineText(i, lines, baseIndent)
  }
  if (entry[consumed] !== ' ') {
    throw grammarError(`header entry should have a space or newline (for multiline) before value: ${quote(entry)}`)
  }
  return [entry.slice(consumed + 1), i]
}

function parseMultilineText(first: number, lines: Lines, baseIndent: number): [string, number] {
  const prefix = ' '.repeat(baseIndent) + MULTILINE_PREFIX
  let j = first
  while (lines.has(j) && lines.get(j).startsWith(prefix)) j++
  if (j === first) {
    const cur = lines.has(first) ? quote(lines.get(first)) : 'EOF'
    throw grammarError(`expected ${prefix.length} chars nesting prefix after multiline introduction ${quote(lines.get(first - 1))}: ${cur}`)
  }
  const parts: string[] = []
  for (let k = first; k < j; k++) parts.push(lines.get(k).slice(prefix.length))
  return [parts.join('\n'), j]
}

function parseList(first: number, lines: Lines, baseIndent: number): [HeaderValue[], number] {
  const lst: HeaderValue[] = []
  const prefix = ' '.repeat(baseIndent) + LIST_PREFIX
  let j = first
  while (lines.has(j)) {
    if (!lines.get(j).startsWith(prefix)) return [lst, j]
    let v: HeaderValue
    ;[v, j] = parseEntry(prefix.length, j, lines, baseIndent + LIST_PREFIX.length - 1)
    lst.push(v)
  }
  return [lst, j]
}

function parseMap(first: number, lines: Lines, baseIndent: number): [HeaderMap, number] {
  const m = newHeaderMap()
  const prefix = ' '.repeat(baseIndent) + COMMON_PREFIX
  let j = first
  while (lines.has(j)) {
    if (!lines.get(j).startsWith(prefix)) return [m, j]
    const entry = lines.get(j).slice(prefix.length)
    const colon = entry.indexOf(':')
    if (colon === -1) throw grammarError(`map entry missing ':' separator: ${quote(entry)}`)
    const key = entry.slice(0, colon)
    if (!HEADER_NAME_RE.test(key)) throw grammarError(`invalid map entry key: ${quote(key)}`)
    let v: HeaderValue
    ;[v, j] = parseEntry(prefix.length + colon + 1, j, lines, prefix.length)
    if (hasOwn(m, key)) throw grammarError(`repeated map entry: ${quote(key)}`)
    m[key] = v
  }
  return [m, j]
}

/**
 * Checks that a value is a string or nested lists/maps of strings, with valid
 * map keys. Throws SV_ASSERTION_INVALID naming the header.
 */
export function checkHeaderValue(name: string, v: unknown, depth = 0): asserts v is HeaderValue {
  if (depth > 32) throw new VaultError('SV_ASSERTION_INVALID', `header ${quote(name)}: nested too deeply`, { details: { header: name } })
  if (typeof v === 'string') return
  if (Array.isArray(v)) {
    for (const e of v) checkHeaderValue(name, e, depth + 1)
    return
  }
  if (v !== null && typeof v === 'object') {
    for (const [k, e] of Object.entries(v)) {
      if (!HEADER_NAME_RE.test(k)) throw new VaultError('SV_ASSERTION_INVALID', `header ${quote(name)}: invalid map entry key: ${quote(k)}`, { details: { header: name } })
      checkHeaderValue(name, e, depth + 1)
    }
    return
  }
  throw new VaultError('SV_ASSERTION_INVALID', `header ${quote(name)}: header values must be strings or nested lists or maps with strings as the only scalars`, {
    details: { header: name },
  })
}

/**
 * Appends one entry exactly as snapd's appendEntry does: `intro` is "name:" or
 * a list/map prefix, values with LF become indented text, empty lists and maps
 * (and undefined) are omitted.
 */
export function appendEntry(out: string[], intro: string, v: HeaderValue | undefined, baseIndent: number): void {
  if (v === undefined) return
  if (typeof v === 'string') {
    if (v.includes('\n')) {
      const pfx = ' '.repeat(baseIndent) + MULTILINE_PREFIX
      out.push(`\n${intro}\n${pfx}${v.replaceAll('\n', `\n${pfx}`)}`)
    } else {
      out.push(`\n${intro} ${v}`)
    }
    return
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return
    out.push(`\n${intro}`)
    const pfx = ' '.repeat(baseIndent) + LIST_PREFIX
    for (const e of v) appendEntry(out, pfx, e, baseIndent + LIST_PREFIX.length - 1)
    return
  }
  const keys = Object.keys(v).sort(byteOrder)
  if (keys.length === 0) return
  out.push(`\n${intro}`)
  const pfx = ' '.repeat(baseIndent) + COMMON_PREFIX
  for (const k of keys) appendEntry(out, `${pfx}${k}:`, v[k], pfx.length)
}

/** Go's sort.Strings order (bytewise; names here are ASCII). */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
