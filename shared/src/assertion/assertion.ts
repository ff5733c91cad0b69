/**
 * The Assertion base class and the type registry (snapd asserts/asserts.go).
 *
 * An Assertion keeps the exact bytes it was decoded from: `content` is what
 * the signature covers and is never re-serialised (spec §1.1). Headers are
 * exposed read-only; typed subclasses (account, account-key, model, serial,
 * serial-request, system-user, ...) add camelCase accessors.
 */
import { concatBytes, utf8Decode, utf8Encode } from '../crypto/bytes.js'
import type { HeaderMap, HeaderValue } from './grammar.js'
import { hasOwn } from './grammar.js'

export interface AssertionParts {
  headers: HeaderMap
  body: Uint8Array
  content: Uint8Array
  /** signature text as received (may end with one LF) */
  signature: Uint8Array
  format: number
  revision: number
}

export interface AssertionTypeInfo {
  name: string
  primaryKey: readonly string[]
  /** defaults of optional primary-key headers (a suffix of primaryKey) */
  optionalPrimaryKeyDefaults?: Readonly<Record<string, string>>
  /** no authority-id: self-signed requests */
  noAuthority?: boolean
  /** highest `format` this codec understands (snapd 2.57.6 values) */
  maxFormat: number
  /** has a `timestamp` checked against the signing key's validity */
  timestamped?: boolean
}

export class Assertion {
  readonly type: AssertionTypeInfo
  readonly headers: Readonly<HeaderMap>
  /** the body bytes (after the headers' LF LF; empty when there is none) */
  readonly body: Uint8Array
  /** the signed bytes: headers, and LF LF body when there is a body */
  readonly content: Uint8Array
  /** the signature text as received (may end with one LF) */
  readonly signature: Uint8Array
  readonly format: number
  readonly revision: number

  constructor(type: AssertionTypeInfo, parts: AssertionParts) {
    this.type = type
    this.headers = parts.headers
    this.body = parts.body
    this.content = parts.content
    this.signature = parts.signature
    this.format = parts.format
    this.revision = parts.revision
  }

  get typeName(): string {
    return this.type.name
  }

  /** The header value (do not mutate), or undefined. */
  header(name: string): HeaderValue | undefined {
    return hasOwn(this.headers, name) ? this.headers[name] : undefined
  }

  /** The header as a string, '' when absent or not a string (snapd's HeaderString). */
  headerString(name: string): string {
    const v = this.header(name)
    return typeof v === 'string' ? v : ''
  }

  get authorityId(): string {
    return this.headerString('authority-id')
  }

  get signKeyId(): string {
    return this.headerString('sign-key-sha3-384')
  }

  /** Primary-key values in primary-key order. */
  primaryKey(): string[] {
    return this.type.primaryKey.map((n) => this.headerString(n))
  }

  /** `type/pk1/pk2...`: unique per assertion kind and primary key. */
  get ref(): string {
    return [this.type.name, ...this.primaryKey()].join('/')
  }

  /**
   * The same assertion with another signature: a shallow copy keeping the
   * typed view's checked fields, without running the checks again (the
   * content is unchanged). For the encoder, which checks before signing.
   */
  withSignature(signature: Uint8Array): this {
    return Object.assign(Object.create(Object.getPrototypeOf(this) as object) as this, this, { signature })
  }

  /** The assertion text, exactly as snapd's Encode: content LF LF signature. */
  encode(): Uint8Array {
    return concatBytes([this.content, NLNL, this.signature])
  }

  /** `encode()` as text (assertions are UTF-8: decode refuses anything else). */
  text(): string {
    return utf8Decode(this.encode())
  }

  /** Human description for logs and CLI output: `serial brand-id=... model=... serial=...`. */
  describe(): string {
    let names: readonly string[] = this.type.primaryKey.filter((n) => n !== 'series')
    if (names.length === 0) names = ['brand-id', 'model', 'serial', 'request-id']
    const parts = names.filter((n) => this.headerString(n) !== '').map((n) => `${n}=${this.headerString(n)}`)
    if (this.type.name === 'account-key') parts.unshift(`account-id=${this.headerString('account-id')}`, `name=${this.headerString('name')}`)
    return parts.length ? `${this.type.name} ${parts.join(' ')}` : this.type.name
  }
}

export const NL = utf8Encode('\n')
export const NLNL = utf8Encode('\n\n')

/** snapd 2.57.6's assertion types with their primary keys (asserts.go). */
export const ASSERTION_TYPES: Readonly<Record<string, AssertionTypeInfo>> = Object.freeze({
  account: { name: 'account', primaryKey: ['account-id'], maxFormat: 0, timestamped: true },
  'account-key': { name: 'account-key', primaryKey: ['public-key-sha3-384'], maxFormat: 0 },
  repair: { name: 'repair', primaryKey: ['brand-id', 'repair-id'], maxFormat: 0, timestamped: true },
  model: { name: 'model', primaryKey: ['series', 'brand-id', 'model'], maxFormat: 0, timestamped: true },
  serial: { name: 'serial', primaryKey: ['brand-id', 'model', 'serial'], maxFormat: 0, timestamped: true },
  'base-declaration': { name: 'base-declaration', primaryKey: ['series'], maxFormat: 0, timestamped: true },
  'snap-declaration': { name: 'snap-declaration', primaryKey: ['series', 'snap-id'], maxFormat: 5, timestamped: true },
  'snap-build': { name: 'snap-build', primaryKey: ['snap-sha3-384'], maxFormat: 0, timestamped: true },
  'snap-revision': {
    name: 'snap-revision',
    primaryKey: ['snap-sha3-384', 'provenance'],
    optionalPrimaryKeyDefaults: { provenance: 'global-upload' },
    maxFormat: 0,
    timestamped: true,
  },
  'snap-developer': { name: 'snap-developer', primaryKey: ['snap-id', 'publisher-id'], maxFormat: 0 },
  'system-user': { name: 'system-user', primaryKey: ['brand-id', 'email'], maxFormat: 1 },
  validation: { name: 'validation', primaryKey: ['series', 'snap-id', 'approved-snap-id', 'approved-snap-revision'], maxFormat: 0, timestamped: true },
  'validation-set': { name: 'validation-set', primaryKey: ['series', 'account-id', 'name', 'sequence'], maxFormat: 0, timestamped: true },
  store: { name: 'store', primaryKey: ['store'], maxFormat: 0, timestamped: true },
  'authority-delegation': { name: 'authority-delegation', primaryKey: ['account-id', 'delegate-id'], maxFormat: 0 },
  preseed: { name: 'preseed', primaryKey: ['series', 'brand-id', 'model', 'system-label'], maxFormat: 0, timestamped: true },
  'device-session-request': { name: 'device-session-request', primaryKey: ['brand-id', 'model', 'serial'], noAuthority: true, maxFormat: 0, timestamped: true },
  'serial-request': { name: 'serial-request', primaryKey: [], noAuthority: true, maxFormat: 0 },
  'account-key-request': { name: 'account-key-request', primaryKey: ['public-key-sha3-384'], noAuthority: true, maxFormat: 0 },
})

export function assertionType(name: string): AssertionTypeInfo | undefined {
  return hasOwn(ASSERTION_TYPES, name) ? ASSERTION_TYPES[name] : undefined
}
