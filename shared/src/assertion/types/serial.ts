/**
 * `serial`, `serial-request` and `device-session-request` (spec §4.4–4.6).
 * Unknown extra headers are accepted and ignored, as snapd does, for forward
 * compatibility; they remain part of the signed content.
 */
import { Assertion, type AssertionParts, type AssertionTypeInfo } from '../assertion.js'
import { ACCOUNT_ID_RE, HeaderCheckError, checkModelName, checkNotEmptyString, checkOptionalString, checkRfc3339Date, checkStringMatches } from '../checks.js'
import { PublicKey } from '../../crypto/keys.js'
import { VaultError } from '../../errors.js'

function decodeDeviceKey(text: string): PublicKey {
  try {
    return PublicKey.decode(text)
  } catch (e) {
    if (e instanceof VaultError) throw new HeaderCheckError(e.message, 'device-key')
    throw e
  }
}

export class SerialAssertion extends Assertion {
  readonly timestamp: number
  readonly deviceKey: PublicKey

  constructor(type: AssertionTypeInfo, parts: AssertionParts) {
    super(type, parts)
    const h = parts.headers
    checkStringMatches(h, 'brand-id', ACCOUNT_ID_RE)
    checkModelName(h)
    this.deviceKey = decodeDeviceKey(checkNotEmptyString(h, 'device-key'))
    const keyId = checkNotEmptyString(h, 'device-key-sha3-384')
    if (keyId !== this.deviceKey.id) throw new HeaderCheckError('device key does not match provided key id', 'device-key-sha3-384')
    this.timestamp = checkRfc3339Date(h, 'timestamp')
  }

  get brandId(): string {
    return this.headerString('brand-id')
  }
  get model(): string {
    return this.headerString('model')
  }
  get serial(): string {
    return this.headerString('serial')
  }
  get deviceKeyId(): string {
    return this.deviceKey.id
  }
}

export class SerialRequestAssertion extends Assertion {
  readonly deviceKey: PublicKey

  constructor(type: AssertionTypeInfo, parts: AssertionParts) {
    super(type, parts)
    const h = parts.headers
    checkNotEmptyString(h, 'brand-id')
    checkModelName(h)
    checkNotEmptyString(h, 'request-id')
    checkOptionalString(h, 'serial')
    this.deviceKey = decodeDeviceKey(checkNotEmptyString(h, 'device-key'))
    if (this.deviceKey.id !== this.signKeyId) throw new HeaderCheckError('device key does not match included signing key id', 'sign-key-sha3-384')
  }

  get brandId(): string {
    return this.headerString('brand-id')
  }
  get model(): string {
    return this.headerString('model')
  }
  /** proposed serial ('' when none) */
  get serial(): string {
    return this.headerString('serial')
  }
  get requestId(): string {
    return this.headerString('request-id')
  }
}

export class DeviceSessionRequestAssertion extends Assertion {
  readonly timestamp: number

  constructor(type: AssertionTypeInfo, parts: AssertionParts) {
    super(type, parts)
    checkModelName(parts.headers)
    checkNotEmptyString(parts.headers, 'nonce')
    this.timestamp = checkRfc3339Date(parts.headers, 'timestamp')
  }

  get brandId(): string {
    return this.headerString('brand-id')
  }
  get model(): string {
    return this.headerString('model')
  }
  get serial(): string {
    return this.headerString('serial')
  }
  get nonce(): string {
    return this.headerString('nonce')
  }
}
