/**
 * The serial-request body: free text (spec §4.4) that Canonical's vault reads
 * as YAML for `serial:` (spec §6.4 step 9), and in which the device agent puts
 * its step timings under `telemetry:`. Read best effort and bounded: a body
 * that does not parse gives nothing, never an error.
 *
 * Two readers, one meaning: the flat shape the device agent writes (top-level
 * `key: value` lines, `telemetry:` with indented `name: number` lines) is read
 * line by line without the YAML parser (it is on every registration); any
 * other shape, or anything YAML would read differently, goes through the YAML
 * parser. test/vault-server/services/request-body.test.ts holds both to the
 * same answers.
 */
import { utf8Decode } from '@sv/shared'
import { parse as parseYaml } from 'yaml'

export interface RequestBodyFacts {
  serial?: string
  timings?: Record<string, number>
}

const MAX_BODY_YAML = 16 * 1024
const MAX_TIMINGS = 32

/**
 * `serial:` and agent telemetry from a serial-request body (YAML), best effort
 * and bounded. The flat shape the device agent writes (top-level `key: value`
 * lines, `telemetry:` with indented `name: number` lines) is read line by
 * line; anything else goes through the YAML parser.
 */
export function readRequestBody(body: Uint8Array): RequestBodyFacts {
  if (body.length === 0 || body.length > MAX_BODY_YAML) return {}
  const text = utf8Decode(body)
  return readFlatBody(text) ?? readYamlBody(text)
}

const FLAT_TOP = /^([a-z][a-z0-9-]{0,40}):(?: ("(?:[^"\\]|\\.)*"|[^'"{}[\]&*!|>%@`#]*))?$/
/** a scalar YAML reads as a plain string: no indicator first, no ': ' or ' #' inside */
const PLAIN_SCALAR = /^(?![-?:,[\]{}#&*!|>'"%@`\s])(?:(?!: | #)[^\t])*(?<![\s:])$/
const FLAT_NESTED = /^ {2}([a-z][a-z0-9-]{0,40}): (.*)$/
const YAML_WORDS = /^(?:true|false|null|yes|no|on|off|y|n)$/i
const PLAIN_NUMBER = /^-?(?:0|[1-9]\d{0,15})(?:\.\d{1,9})?$/

/** The agent's flat YAML, or undefined when the body is anything else. */
function readFlatBody(text: string): { serial?: string; timings?: Record<string, number> } | undefined {
  const out: { serial?: string; timings?: Record<string, number> } = {}
  let section: string | undefined
  for (const line of text.split('\n')) {
    if (line === '') continue
    const nested = FLAT_NESTED.exec(line)
    if (nested) {
      if (section === undefined) return undefined
      if (section === 'telemetry') {
        if (!PLAIN_NUMBER.test(nested[2]!)) return undefined
        out.timings ??= {}
        if (Object.keys(out.timings).length < MAX_TIMINGS) out.timings[nested[1]!] = Number(nested[2])
      } else if (jsonString(nested[2]!) === undefined && !PLAIN_SCALAR.test(nested[2]!)) {
        return undefined
      }
      continue
    }
    const top = FLAT_TOP.exec(line)
    if (!top) return undefined
    const value = top[2]
    // anything YAML would read differently goes to the parser
    if (value !== undefined && (value.includes(': ') || value.startsWith('- ') || value.endsWith(':'))) return undefined
    section = value === undefined || value === '' ? top[1] : undefined
    if (top[1] === 'serial') {
      // a JSON-quoted string (valid YAML, same meaning: what the device agent
      // writes), or a plain serial YAML reads as the same string: a letter
      // first, no keyword
      const quoted = value === undefined ? undefined : jsonString(value)
      if (quoted !== undefined) out.serial = quoted
      else if (value !== undefined && /^[A-Za-z][A-Za-z0-9._:-]*$/.test(value) && !YAML_WORDS.test(value)) out.serial = value
      else return undefined
    }
  }
  return out
}

/** The value of a JSON string literal (also a YAML double-quoted scalar), or undefined. */
function jsonString(v: string): string | undefined {
  if (v.length < 2 || v[0] !== '"' || v[v.length - 1] !== '"') return undefined
  try {
    const s = JSON.parse(v) as unknown
    return typeof s === 'string' ? s : undefined
  } catch {
    return undefined
  }
}

function readYamlBody(text: string): { serial?: string; timings?: Record<string, number> } {
  let doc: unknown
  try {
    doc = parseYaml(text, { maxAliasCount: 10, prettyErrors: false })
  } catch {
    return {}
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return {}
  const out: { serial?: string; timings?: Record<string, number> } = {}
  const d = doc as Record<string, unknown>
  if (typeof d.serial === 'string' || typeof d.serial === 'number') out.serial = String(d.serial)
  const t = d.telemetry
  if (t !== null && typeof t === 'object' && !Array.isArray(t)) {
    const timings: Record<string, number> = {}
    for (const [k, v] of Object.entries(t).slice(0, MAX_TIMINGS)) {
      if (typeof v === 'number' && Number.isFinite(v) && /^[a-z][a-z0-9-]{0,40}$/.test(k)) timings[k] = v
    }
    if (Object.keys(timings).length > 0) out.timings = timings
  }
  return out
}

