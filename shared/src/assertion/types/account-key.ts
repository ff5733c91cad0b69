/**
 * `account-key` and `account-key-request` (spec §4.2): the public key in the
 * body, its id in `public-key-sha3-384`, valid from `since` until `until`
 * (exclusive; no `until` means it never expires).
 */
import { Assertion, type AssertionParts, type AssertionTypeInfo } from '../assertion.js'
import { ACCOUNT_KEY_NAME_RE, HeaderCheckError, checkNotEmptyString, checkRfc3339Date, checkRfc3339DateWithDefault, checkStringMatches } from '../checks.js'
import { hasOwn, type HeaderMap } from '../grammar.js'
import { PublicKey } from '../../crypto/keys.js'
import { VaultError } from '../../errors.js'

export interface Validity {
  since: number
  /** undefined: never expires */
  until: number | undefined
}

export function checkSinceUntil(h: HeaderMap, what = 'header'): Validity {
  const since = checkRfc3339Date(h, 'since', what)
  const until = checkRfc3339DateWithDefault(h, 'until', undefined, what)
  if (until !== undefined && until < since) throw new HeaderCheckError(`'until' time cannot be before 'since' time`, 'until')
  return { since, until }
}

/** since <= t < until */
export function isValidAt(v: Validity, t: number): boolean {
  return t >= v.since && (v.until === undefined || t < v.until)
}

function checkPublicKeyBody(parts: AssertionParts): PublicKey {
  let key: PublicKey
  try {
    key = PublicKey.decode(parts.body)
  } catch (e) {
    if (e instanceof VaultError) throw new HeaderCheckError(e.message)
    throw e
  }
  const id = checkNotEmptyString(parts.headers, 'public-key-sha3-384')
  if (id !== key.id) throw new HeaderCheckError('public key does not match provided key id', 'public-key-sha3-384')
  return key
}

export class AccountKeyAssertion extends Assertion implements Validity {
  readonly since: number
  readonly until: number | undefined
  readonly publicKey: PublicKey

  constructor(type: AssertionTypeInfo, parts: AssertionParts) {
    super(type, parts)
    const h = parts.headers
    checkNotEmptyString(h, 'account-id')
    if (hasOwn(h, 'name')) checkStringMatches(h, 'name', ACCOUNT_KEY_NAME_RE)
    ;({ since: this.since, until: this.until } = checkSinceUntil(h))
    this.publicKey = checkPublicKeyBody(parts)
  }

  get accountId(): string {
    return this.headerString('account-id')
  }
  get name(): string {
    return this.headerString('name')
  }
  get publicKeyId(): string {
    return this.publicKey.id
  }
  isValidAt(t: number): boolean {
    return isValidAt(this, t)
  }
}

export class AccountKeyRequestAssertion extends Assertion implements Validity {
  readonly since: number
  readonly until: number | undefined
  readonly publicKey: PublicKey

  constructor(type: AssertionTypeInfo, parts: AssertionParts) {
    super(type, parts)
    const h = parts.headers
    checkNotEmptyString(h, 'account-id')
    checkStringMatches(h, 'name', ACCOUNT_KEY_NAME_RE)
    ;({ since: this.since, until: this.until } = checkSinceUntil(h))
    this.publicKey = checkPublicKeyBody(parts)
  }

  get accountId(): string {
    return this.headerString('account-id')
  }
  get name(): string {
    return this.headerString('name')
  }
}
