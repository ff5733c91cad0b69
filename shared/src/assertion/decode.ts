/**
 * Decoding: bytes -> Assertion (snapd asserts.Decode and asserts.Decoder).
 *
 * A single assertion splits at the *last* LF LF (everything after is the
 * signature; header values can never contain an empty line but the body may),
 * then at the *first* LF LF inside the content (headers | body). A stream is
 * read assertion by assertion: headers up to LF LF, then exactly body-length
 * bytes, then the signature up to the next LF LF or the end; exactly one blank
 * line separates assertions (spec §1.5).
 *
 * Every failure is a VaultError: SV_ASSERTION_INVALID (details: type, header,
 * index in the stream) or SV_ASSERTION_TOO_LARGE. Nothing else is thrown for
 * any input (the fuzz test in test/shared/assertion/fuzz.test.ts holds us to it).
 */
import { VaultError } from '../errors.js'
import { copyBytes, indexOfBytes, isUtf8, lastIndexOfBytes, utf8DecodeStrict, utf8Encode } from '../crypto/bytes.js'
import { Assertion, NLNL, assertionType, type AssertionParts, type AssertionTypeInfo } from './assertion.js'
import { HeaderCheckError, checkDigest, checkIntWithDefault, checkNotEmptyString, checkPrimaryKey } from './checks.js'
import { hasOwn, parseHeaders, quote, type HeaderMap } from './grammar.js'
import { AccountAssertion } from './types/account.js'
import { AccountKeyAssertion, AccountKeyRequestAssertion } from './types/account-key.js'
import { ModelAssertion } from './types/model.js'
import { DeviceSessionRequestAssertion, SerialAssertion, SerialRequestAssertion } from './types/serial.js'
import { SystemUserAssertion } from './types/system-user.js'

export const MAX_HEADERS_SIZE = 128 * 1024
export const MAX_BODY_SIZE = 2 * 1024 * 1024
export const MAX_SIGNATURE_SIZE = 128 * 1024

type AssertionClass = new (type: AssertionTypeInfo, parts: AssertionParts) => Assertion

/** Typed views; other known types decode to the base class with the common checks. */
const CLASSES: Record<string, AssertionClass> = {
  account: AccountAssertion,
  'account-key': AccountKeyAssertion,
  'account-key-request': AccountKeyRequestAssertion,
  model: ModelAssertion,
  serial: SerialAssertion,
  'serial-request': SerialRequestAssertion,
  'device-session-request': DeviceSessionRequestAssertion,
  'system-user': SystemUserAssertion,
}

function invalid(message: string, details: Record<string, unknown>): VaultError {
  return new VaultError('SV_ASSERTION_INVALID', message, { details })
}

/**
 * Runs snapd's `assemble`: the common header checks, then the type's own.
 * `headers` must come from parseHeaders of `content`'s header part.
 */
export function assemble(headers: HeaderMap, body: Uint8Array, content: Uint8Array, signature: Uint8Array): Assertion {
  let typeName: string | undefined
  try {
    const length = checkIntWithDefault(headers, 'body-length', 0)
    if (length !== body.length) throw new HeaderCheckError(`assertion body length and declared body-length don't match: ${body.length} != ${length}`, 'body-length')
    if (!isUtf8(body)) throw new HeaderCheckError('assertion body is not utf8')
    checkDigest(headers, 'sign-key-sha3-384', 48)
    typeName = checkNotEmptyString(headers, 'type')
    const type = assertionType(typeName)
    if (!type) throw new HeaderCheckError(`unknown assertion type: ${quote(typeName)}`, 'type')
    if (!type.noAuthority) {
      checkNotEmptyString(headers, 'authority-id')
      if (hasOwn(headers, 'signatory-id')) checkNotEmptyString(headers, 'signatory-id')
    } else {
      if (hasOwn(headers, 'authority-id')) throw new HeaderCheckError(`${quote(type.name)} assertion cannot have authority-id set`, 'authority-id')
      if (hasOwn(headers, 'signatory-id')) throw new HeaderCheckError(`${quote(type.name)} assertion cannot have signatory-id set`, 'signatory-id')
    }
    const format = checkIntWithDefault(headers, 'format', 0)
    if (format < 0) throw new HeaderCheckError(`format should be positive: ${format}`, 'format')
    for (const pk of type.primaryKey) {
      const defl = type.optionalPrimaryKeyDefaults?.[pk]
      if (!hasOwn(headers, pk) && defl !== undefined) headers[pk] = defl
      checkPrimaryKey(headers, pk)
    }
    const revision = checkIntWithDefault(headers, 'revision', 0)
    if (revision < 0) throw new HeaderCheckError(`revision should be positive: ${revision}`, 'revision')
    if (signature.length === 0) throw new HeaderCheckError('empty assertion signature')
    const Cls = CLASSES[type.name] ?? Assertion
    return new Cls(type, { headers, body, content, signature, format, revision })
  } catch (e) {
    if (e instanceof HeaderCheckError) {
      const details: Record<string, unknown> = { reason: e.message }
      if (typeName !== undefined) details.type = typeName
      if (e.header !== undefined) details.header = e.header
      const known = typeName !== undefined && assertionType(typeName) !== undefined
      throw invalid(known ? `assertion ${typeName}: ${e.message}` : `assertion: ${e.message}`, details)
    }
    throw e
  }
}

function parseHead(head: Uint8Array): HeaderMap {
  const text = utf8DecodeStrict(head)
  if (text === undefined) throw invalid('parsing assertion headers: header is not utf8', { reason: 'header is not utf8' })
  return parseHeaders(text)
}

const EMPTY = new Uint8Array(0)

/**
 * Decodes one assertion (snapd's asserts.Decode: no size limits beyond the
 * caller's). Throws SV_ASSERTION_INVALID.
 */
export function decodeAssertion(data: Uint8Array | string): Assertion {
  const buf = typeof data === 'string' ? utf8Encode(data) : copyBytes(data)
  // snapd's Decode has no size limits; ours has the stream decoder's, so no
  // caller can be made to parse megabytes of headers.
  if (buf.length > MAX_HEADERS_SIZE + MAX_BODY_SIZE + MAX_SIGNATURE_SIZE + 4) throw tooLarge('assertion', MAX_HEADERS_SIZE + MAX_BODY_SIZE + MAX_SIGNATURE_SIZE)
  const split = lastIndexOfBytes(buf, NLNL)
  if (split === -1) throw invalid('assertion content/signature separator not found', { reason: 'no content/signature separator' })
  const content = buf.subarray(0, split)
  const signature = buf.subarray(split + 2)
  if (signature.length > MAX_SIGNATURE_SIZE) throw tooLarge('signature', MAX_SIGNATURE_SIZE)
  const hb = indexOfBytes(content, NLNL)
  const head = hb === -1 ? content : content.subarray(0, hb)
  const body = hb === -1 ? EMPTY : content.subarray(hb + 2)
  if (head.length > MAX_HEADERS_SIZE) throw tooLarge('headers', MAX_HEADERS_SIZE)
  if (body.length > MAX_BODY_SIZE) throw tooLarge('body', MAX_BODY_SIZE)
  return assemble(parseHead(head), body, content, signature)
}

function tooLarge(what: string, limit: number): VaultError {
  return new VaultError('SV_ASSERTION_TOO_LARGE', `assertion ${what} larger than ${limit} bytes`, { details: { reason: `${what} larger than ${limit} bytes`, limit } })
}

export interface StreamLimits {
  maxHeadersSize?: number
  maxBodySize?: number
  maxSignatureSize?: number
  /** most assertions accepted in one stream (default unlimited) */
  maxAssertions?: number
}

/**
 * Decodes a whole stream held in memory (HTTP and MQTT bodies are bounded
 * before they get here). Throws on the first bad assertion with
 * `details.index` (1-based); `decodeStreamPartial` returns what decoded first.
 */
export function decodeStream(data: Uint8Array | string, limits: StreamLimits = {}): Assertion[] {
  const r = decodeStreamPartial(data, limits)
  if (r.error) throw r.error
  return r.assertions
}

export interface PartialStream {
  assertions: Assertion[]
  error?: VaultError
}

export function decodeStreamPartial(data: Uint8Array | string, limits: StreamLimits = {}): PartialStream {
  const buf = typeof data === 'string' ? utf8Encode(data) : copyBytes(data)
  const dec = new StreamCursor(buf, limits)
  const assertions: Assertion[] = []
  const max = limits.maxAssertions ?? Infinity
  for (;;) {
    let a: Assertion | undefined
    try {
      a = dec.next()
    } catch (e) {
      if (e instanceof VaultError) {
        e.details && (e.details.index = assertions.length + 1)
        return { assertions, error: e }
      }
      throw e
    }
    if (!a) return { assertions }
    assertions.push(a)
    if (assertions.length > max) {
      return { assertions, error: new VaultError('SV_ASSERTION_TOO_LARGE', `stream has more than ${max} assertions`, { details: { reason: 'too many assertions', index: assertions.length } }) }
    }
  }
}

/** snapd's Decoder over an in-memory buffer. */
class StreamCursor {
  #buf: Uint8Array
  #pos = 0
  readonly #maxHeaders: number
  readonly #maxBody: number
  readonly #maxSig: number

  constructor(buf: Uint8Array, limits: StreamLimits) {
    this.#buf = buf
    this.#maxHeaders = limits.maxHeadersSize ?? MAX_HEADERS_SIZE
    this.#maxBody = limits.maxBodySize ?? MAX_BODY_SIZE
    this.#maxSig = limits.maxSignatureSize ?? MAX_SIGNATURE_SIZE
  }

  /** Reads up to and including the next LF LF, or to the end. `found` says which. */
  #readUntil(max: number, what: string): { chunk: Uint8Array; found: boolean } {
    const start = this.#pos
    const i = indexOfBytes(this.#buf, NLNL, start)
    const end = i === -1 ? this.#buf.length : i + 2
    if (end - start > max) {
      throw new VaultError('SV_ASSERTION_TOO_LARGE', `error reading assertion ${what}: maximum size exceeded while looking for delimiter "\\n\\n"`, {
        details: { reason: `${what} larger than ${max} bytes`, limit: max },
      })
    }
    this.#pos = end
    return { chunk: this.#buf.subarray(start, end), found: i !== -1 }
  }

  next(): Assertion | undefined {
    if (this.#pos >= this.#buf.length) return undefined
    const headStart = this.#pos
    const h = this.#readUntil(this.#maxHeaders, 'headers')
    if (!h.found) throw invalid('unexpected EOF', { reason: 'unexpected EOF in headers' })
    const headLen = h.chunk.length - 2
    const headers = parseHead(h.chunk.subarray(0, headLen))
    let length: number
    try {
      length = checkIntWithDefault(headers, 'body-length', 0)
    } catch (e) {
      if (e instanceof HeaderCheckError) throw invalid(`assertion: ${e.message}`, { reason: e.message, header: 'body-length' })
      throw e
    }
    if (length > this.#maxBody) {
      throw new VaultError('SV_ASSERTION_TOO_LARGE', `assertion body length ${length} exceeds maximum body size`, { details: { reason: 'body too large', header: 'body-length', limit: this.#maxBody } })
    }
    if (length > 0) {
      if (this.#pos + length > this.#buf.length) throw invalid('unexpected EOF', { reason: 'unexpected EOF in body' })
      this.#pos += length
    }
    // As snapd: the content is headers LF LF body, unless no separate
    // signature chunk follows, in which case it is cut back to the headers.
    let contentEnd = this.#pos
    const endOfBody = this.#readUntil(this.#maxSig, 'trailer')
    let sig: Uint8Array
    if (endOfBody.chunk.length === 2 && endOfBody.found) {
      sig = this.#readUntil(this.#maxSig, 'signature').chunk
    } else {
      if (length > 0) throw invalid('missing content/signature separator', { reason: 'missing content/signature separator' })
      sig = endOfBody.chunk
      contentEnd = headStart + headLen
    }
    // a trailing LF LF on the signature is normalised to a single LF
    if (sig.length >= 2 && sig[sig.length - 1] === 10 && sig[sig.length - 2] === 10) sig = sig.subarray(0, sig.length - 1)
    const content = this.#buf.subarray(headStart, contentEnd)
    const body = length > 0 ? content.subarray(headLen + 2) : EMPTY
    return assemble(headers, body, content, sig)
  }
}
