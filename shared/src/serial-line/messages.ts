/**
 * The request/response layer over the serial-line link: what a unit asks the
 * station to relay to the vault, and the answer, one link message each.
 *
 *   message = header (UTF-8 JSON object, at most 4096 bytes) 0x0A body (bytes)
 *
 *   request  {"v":1,"id":N,"op":"request-id"|"serial","headers":{...}}   body: the serial-request stream (serial) or empty
 *   response {"v":1,"id":N,"status":S,"headers":{...}}                    body: what the vault answered
 *
 * `id` (a positive integer below 2^31, chosen by the unit) correlates a
 * response with its request; a unit ignores a response whose id is not
 * pending (a late answer to a call it gave up on). `status` and `headers`
 * are the vault's HTTP answer as the station received it (status 200 with
 * the request-id JSON, 200/201 with the assertion stream, 202 with
 * retry-after, an error status with the vault's error body), so the unit maps
 * them exactly as its HTTPS transport does. A station that cannot reach the
 * vault answers 503 with an SV_* error body. Request headers carry what the
 * unit would send over HTTPS (api-key, content-type); header names are lower
 * case, values strings.
 */
import { utf8Decode, utf8Encode } from '../crypto/bytes.js'

export const SERIAL_LINE_OPERATIONS = ['request-id', 'serial'] as const
export type SerialLineOperation = (typeof SERIAL_LINE_OPERATIONS)[number]
export const MAX_MESSAGE_HEADER = 4096

export interface SerialLineRequest {
  id: number
  op: SerialLineOperation
  headers: Record<string, string>
  body: Uint8Array
}

export interface SerialLineResponse {
  id: number
  status: number
  headers: Record<string, string>
  body: Uint8Array
}

function encode(header: Record<string, unknown>, body: Uint8Array): Uint8Array {
  const h = utf8Encode(JSON.stringify(header))
  if (h.length > MAX_MESSAGE_HEADER) throw new TypeError(`message header of ${h.length} bytes is above ${MAX_MESSAGE_HEADER}`)
  const out = new Uint8Array(h.length + 1 + body.length)
  out.set(h, 0)
  out[h.length] = 0x0a
  out.set(body, h.length + 1)
  return out
}

/** The header object and body of a message, or a reason it is not one. */
function split(msg: Uint8Array): { header: Record<string, unknown>; body: Uint8Array } | string {
  const end = msg.subarray(0, MAX_MESSAGE_HEADER + 1).indexOf(0x0a)
  if (end < 0) return 'no header line within 4096 bytes'
  let header: unknown
  try {
    header = JSON.parse(utf8Decode(msg.subarray(0, end)))
  } catch {
    return 'the header is not JSON'
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) return 'the header is not an object'
  const h = header as Record<string, unknown>
  if (h.v !== 1) return 'unsupported version'
  if (typeof h.id !== 'number' || !Number.isInteger(h.id) || h.id < 1 || h.id >= 2 ** 31) return 'bad id'
  return { header: h, body: msg.subarray(end + 1) }
}

function stringMap(v: unknown): Record<string, string> | undefined {
  if (v === undefined) return {}
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined
  const out: Record<string, string> = {}
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') return undefined
    out[k.toLowerCase()] = x
  }
  return out
}

export function encodeSerialLineRequest(r: SerialLineRequest): Uint8Array {
  return encode({ v: 1, id: r.id, op: r.op, headers: r.headers }, r.body)
}

export function encodeSerialLineResponse(r: SerialLineResponse): Uint8Array {
  return encode({ v: 1, id: r.id, status: r.status, headers: r.headers }, r.body)
}

/** Decodes a request; a string is the reason it is not a valid one. */
export function decodeSerialLineRequest(msg: Uint8Array): SerialLineRequest | string {
  const s = split(msg)
  if (typeof s === 'string') return s
  const op = s.header.op
  if (typeof op !== 'string' || !(SERIAL_LINE_OPERATIONS as readonly string[]).includes(op)) return 'unknown op'
  const headers = stringMap(s.header.headers)
  if (!headers) return 'bad headers'
  return { id: s.header.id as number, op: op as SerialLineOperation, headers, body: s.body }
}

/** Decodes a response; a string is the reason it is not a valid one. */
export function decodeSerialLineResponse(msg: Uint8Array): SerialLineResponse | string {
  const s = split(msg)
  if (typeof s === 'string') return s
  const status = s.header.status
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) return 'bad status'
  const headers = stringMap(s.header.headers)
  if (!headers) return 'bad headers'
  return { id: s.header.id as number, status, headers, body: s.body }
}
