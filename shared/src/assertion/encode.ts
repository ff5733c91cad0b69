/**
 * Encoding and signing (snapd assembleAndSign): canonical header order, sign,
 * then decode our own output so what we return is exactly what any decoder
 * (snapd's included) will see.
 *
 * Header order, which makes our bytes identical to snapd's (spec §1.3):
 *   type, format (>0), authority-id, signatory-id (if different), revision (>0),
 *   primary-key headers in primary-key order (optional ones at their default
 *   omitted), every other header sorted bytewise, body-length (>0),
 *   sign-key-sha3-384.
 */
import { VaultError } from '../errors.js'
import { concatBytes, copyBytes, indexOfBytes, isUtf8, utf8Decode, utf8Encode } from '../crypto/bytes.js'
import { Assertion, NL, NLNL, assertionType, type AssertionTypeInfo } from './assertion.js'
import { HeaderCheckError, checkIntWithDefault, checkPrimaryKey } from './checks.js'
import { appendEntry, byteOrder, checkHeaderValue, hasOwn, newHeaderMap, parseHeaders, type HeaderMap, type HeaderValue } from './grammar.js'
import { assemble } from './decode.js'
import { signContent } from '../crypto/signature.js'
import type { AssertionSigner } from '../crypto/signer.js'

/** Header input: strings, lists and maps of strings (undefined entries are dropped). */
export type HeadersInput = Record<string, HeaderValue | undefined>

export interface SignOptions {
  /** signature creation time, Unix seconds (default now) */
  creationTime?: number
}

const META = new Set(['type', 'format', 'authority-id', 'signatory-id', 'revision', 'body-length', 'sign-key-sha3-384'])

function fail(type: string, message: string, header?: string): never {
  const details: Record<string, unknown> = { type, reason: message }
  if (header !== undefined) details.header = header
  throw new VaultError('SV_ASSERTION_INVALID', `cannot sign ${type} assertion: ${message}`, { details })
}

/**
 * Builds the signed content (headers, and LF LF body when there is a body) in
 * snapd's canonical order. `signKeyId` is written last. Throws
 * SV_ASSERTION_INVALID for values the grammar cannot carry.
 */
export function formatContent(type: AssertionTypeInfo, input: HeadersInput, body: Uint8Array, signKeyId: string): { content: Uint8Array; headers: HeaderMap } {
  const h = newHeaderMap()
  for (const [k, v] of Object.entries(input)) {
    if (v === undefined) continue
    try {
      checkHeaderValue(k, v)
    } catch (e) {
      if (e instanceof VaultError) fail(type.name, e.message, k)
      throw e
    }
    if (!/^[a-z](?:-?[a-z0-9])*$/.test(k)) fail(type.name, `invalid header name: ${JSON.stringify(k)}`, k)
    h[k] = v
  }
  h.type = type.name
  h['body-length'] = String(body.length)
  h['sign-key-sha3-384'] = signKeyId
  try {
    if (!type.noAuthority) {
      if (typeof h['authority-id'] !== 'string' || h['authority-id'] === '') throw new HeaderCheckError('"authority-id" header is mandatory', 'authority-id')
    } else if (hasOwn(h, 'authority-id') || hasOwn(h, 'signatory-id')) {
      throw new HeaderCheckError(`"${type.name}" assertion cannot have authority-id set`, 'authority-id')
    }
    const format = checkIntWithDefault(h, 'format', 0)
    if (format < 0) throw new HeaderCheckError(`format should be positive: ${format}`, 'format')
    if (format > type.maxFormat) throw new HeaderCheckError(`format ${format} higher than max supported format ${type.maxFormat}`, 'format')
    const revision = checkIntWithDefault(h, 'revision', 0)
    if (revision < 0) throw new HeaderCheckError(`revision should be positive: ${revision}`, 'revision')
    if (!isUtf8(body)) throw new HeaderCheckError('assertion body is not utf8')

    const out: string[] = [`type: ${type.name}`]
    const written = new Set(META)
    if (format > 0) appendEntry(out, 'format:', h.format, 0)
    else delete h.format
    if (!type.noAuthority) {
      appendEntry(out, 'authority-id:', h['authority-id'], 0)
      if (hasOwn(h, 'signatory-id') && h['signatory-id'] !== h['authority-id']) appendEntry(out, 'signatory-id:', h['signatory-id'], 0)
    }
    if (revision > 0) appendEntry(out, 'revision:', h.revision, 0)
    else delete h.revision
    for (const pk of type.primaryKey) {
      const defl = type.optionalPrimaryKeyDefaults?.[pk]
      written.add(pk)
      if (!hasOwn(h, pk) && defl !== undefined) continue
      const value = checkPrimaryKey(h, pk)
      if (value !== defl) appendEntry(out, `${pk}:`, value, 0)
    }
    for (const k of Object.keys(h).sort(byteOrder)) {
      if (!written.has(k)) appendEntry(out, `${k}:`, h[k], 0)
    }
    if (body.length > 0) appendEntry(out, 'body-length:', h['body-length'], 0)
    else delete h['body-length']
    appendEntry(out, 'sign-key-sha3-384:', signKeyId, 0)
    const head = utf8Encode(out.join(''))
    const content = body.length > 0 ? concatBytes([head, NLNL, body]) : head
    return { content, headers: h }
  } catch (e) {
    if (e instanceof HeaderCheckError) fail(type.name, e.message, e.header)
    throw e
  }
}

/**
 * Signs an assertion of `typeName` with `signer`. `type`, `body-length` and
 * `sign-key-sha3-384` are set here (anything given for them is replaced).
 * The result has passed the type's own checks (a model with no gadget, a
 * serial whose device-key-sha3-384 does not match, ... are refused with
 * SV_ASSERTION_INVALID before any signing happens).
 */
export async function signAssertion(typeName: string, headers: HeadersInput, body: Uint8Array | string | undefined, signer: AssertionSigner, options: SignOptions = {}): Promise<Assertion> {
  const type = assertionType(typeName)
  if (!type) throw new VaultError('SV_ASSERTION_INVALID', `unknown assertion type: ${JSON.stringify(typeName)}`, { details: { type: typeName, header: 'type' } })
  const b = body === undefined ? EMPTY : typeof body === 'string' ? utf8Encode(body) : copyBytes(body)
  const { content } = formatContent(type, { ...headers, type: undefined, 'body-length': undefined, 'sign-key-sha3-384': undefined }, b, signer.publicKey.id)
  // Decode our own output: the type checks run on exactly the bytes we sign.
  const parsed = reparse(content)
  const checked = assemble(parsed.headers, parsed.body, content, PLACEHOLDER_SIGNATURE)
  const signature = await signContent(content, signer, options.creationTime)
  return checked.withSignature(utf8Encode(`${signature}\n`))
}

const EMPTY = new Uint8Array(0)
const PLACEHOLDER_SIGNATURE = utf8Encode('placeholder')

function reparse(content: Uint8Array): { headers: HeaderMap; body: Uint8Array } {
  const i = indexOfBytes(content, NLNL)
  const head = i === -1 ? content : content.subarray(0, i)
  const body = i === -1 ? EMPTY : content.subarray(i + 2)
  return { headers: parseHeaders(utf8Decode(head)), body }
}

/**
 * Encodes assertions as a stream exactly as snapd's asserts.Encoder: each
 * `content LF LF signature`, an LF added when the signature does not end with
 * one, and one LF (the blank line) before the next assertion.
 */
export function encodeStream(assertions: Iterable<Assertion>): Uint8Array {
  const parts: Uint8Array[] = []
  let first = true
  for (const a of assertions) {
    if (!first) parts.push(NL)
    first = false
    parts.push(a.content, NLNL, a.signature)
    if (a.signature[a.signature.length - 1] !== 10) parts.push(NL)
  }
  return concatBytes(parts)
}
