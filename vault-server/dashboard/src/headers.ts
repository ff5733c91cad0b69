/** Model headers as the person types them (YAML or JSON), and as a model assertion carries them. */
import { parse, stringify } from 'yaml'
import type { HeaderValueWire } from './wire.ts'

/** Headers the vault sets itself (model-service.ts MANAGED), and the timestamp it stamps. */
const MANAGED = new Set(['type', 'authority-id', 'brand-id', 'model', 'series', 'sign-key-sha3-384', 'body-length', 'revision', 'store', 'timestamp'])

export const DEFAULT_HEADERS = `display-name: My Device
architecture: arm64
base: core22
grade: signed
snaps:
  - name: pi
    id: YbGa9O3dAXl88YLI6Y1bGG74pwBxZyKg
    type: gadget
    default-channel: 22/stable
  - name: pi-kernel
    id: jeIuP6tfFrvAdic8DMWqHmoaoukAPNbJ
    type: kernel
    default-channel: 22/stable
`

function check(v: unknown, path: string): HeaderValueWire {
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return v.map((x, i) => check(x, `${path}[${i}]`))
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, check(x, `${path}.${k}`)]))
  throw new Error(`${path}: a header value is a string, a list or a map (got ${v === null ? 'an empty value' : typeof v})`)
}

/** Parses headers typed as YAML or JSON (every scalar a string); throws with a readable message. */
export function parseHeaders(text: string): Record<string, HeaderValueWire> | undefined {
  if (!text.trim()) return undefined
  let v: unknown
  try {
    // failsafe: every scalar stays a string, as assertion headers are
    v = text.trim().startsWith('{') ? JSON.parse(text) : parse(text, { schema: 'failsafe' })
  } catch (e) {
    throw new Error(`not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`)
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('the headers are a map of header names to values')
  return check(v, 'headers') as Record<string, HeaderValueWire>
}

/** The headers a person sets, read back from a signed model assertion (best effort: its header block as YAML). */
export function headersOfAssertion(assertion: string): string {
  const head = assertion.split(/\n\n/)[0] ?? ''
  try {
    const v = parse(head, { schema: 'failsafe' }) as Record<string, unknown>
    const kept = Object.fromEntries(Object.entries(v).filter(([k]) => !MANAGED.has(k)))
    return stringify(kept)
  } catch {
    return ''
  }
}
