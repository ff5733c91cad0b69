/**
 * Public keys as snapd encodes them (spec §2): base64( 0x01 || OpenPGP v4
 * RSA public-key packet ), creation time fixed at 2016-01-01T00:00:00Z, and
 * the key id = base64url-nopad( SHA3-384( 0x01 || canonical packet ) ).
 *
 * snapd throws away the received packet and rebuilds a canonical one from
 * (n, e) before computing ids, so a key with another timestamp, an old-format
 * header or padded MPIs still decodes but to the canonical id. We do the same:
 * every PublicKey is canonical, whatever bytes it came from.
 */
import { VaultError } from '../errors.js'
import { base64urlEncode, bitLength, concatBytes, copyBytes, readUint16be, stripLeadingZeros, uint16be } from './bytes.js'
import { decodeV1, encodeV1 } from './v1.js'
import { digest } from './platform.js'
import { decodePem } from './pem.js'
import { pkcs8ToPkcs1, rsaPublicFromPkcs1Private, rsaPublicFromPkcs1Public, rsaPublicFromSpki, type RsaPublicNumbers } from './der.js'
import { readPacket, writePacketHeader } from './packet.js'

/** 2016-01-01T00:00:00Z, snapd's v1FixedTimestamp. */
export const V1_FIXED_TIMESTAMP = 1451606400

const TAG_PUBLIC_KEY = 6

function keyError(reason: string, message = `cannot decode public key: ${reason}`): VaultError {
  return new VaultError('SV_KEY_INVALID', message, { details: { reason } })
}

function mpi(value: Uint8Array): Uint8Array {
  const v = stripLeadingZeros(value)
  return concatBytes([uint16be(bitLength(v)), v])
}

/** version 4, creation time 2016-01-01 (V1_FIXED_TIMESTAMP), algorithm 1 (RSA) */
const KEY_PACKET_HEAD = new Uint8Array([4, 0x56, 0x85, 0xc1, 0x80, 1])
const VERSION_1 = new Uint8Array([1])

const DECODE_CACHE_MAX = 1024
const decodeCache = new Map<string, PublicKey>()

export class PublicKey {
  /** modulus without leading zeros */
  readonly n: Uint8Array
  /** exponent without leading zeros */
  readonly e: Uint8Array
  /** 0x01 || canonical public-key packet */
  readonly v1: Uint8Array
  /** sha3-384 key id, 64 chars base64url */
  readonly id: string
  #encoded: string | undefined

  private constructor(n: Uint8Array, e: Uint8Array) {
    this.n = n
    this.e = e
    const body = concatBytes([KEY_PACKET_HEAD, mpi(n), mpi(e)])
    this.v1 = concatBytes([VERSION_1, writePacketHeader(TAG_PUBLIC_KEY, body.length), body])
    this.id = base64urlEncode(digest('sha3-384', this.v1))
  }

  /** Modulus size in bits. */
  get bits(): number {
    return bitLength(this.n)
  }

  /** snapd's text form: base64 of `v1`, wrapped at 76 columns (the device-key header and account-key body). */
  encode(): string {
    this.#encoded ??= encodeV1(this.v1.subarray(1))
    return this.#encoded
  }

  /** JWK for WebCrypto import. */
  toJwk(): { kty: 'RSA'; n: string; e: string } {
    return { kty: 'RSA', n: base64urlEncode(this.n), e: base64urlEncode(this.e) }
  }

  equals(other: PublicKey): boolean {
    return this.id === other.id
  }

  /** From RSA numbers. Rejects exponents longer than 3 bytes, as x/crypto does. */
  static fromRsa(numbers: RsaPublicNumbers): PublicKey {
    const n = copyBytes(stripLeadingZeros(numbers.n))
    const e = copyBytes(stripLeadingZeros(numbers.e))
    if (n.length === 0 || e.length === 0) throw keyError('zero modulus or exponent')
    if (e.length > 3) throw keyError('large public exponent')
    if ((n[n.length - 1]! & 1) === 0) throw keyError('even modulus')
    return new PublicKey(n, e)
  }

  /**
   * Decodes snapd's v1 text (device-key header, account-key body). Accepts what
   * snapd accepts: old or new packet headers, any creation time, RSA algorithms
   * 1, 2 and 3; then canonicalises.
   */
  static decode(text: string | Uint8Array): PublicKey {
    // A device key is decoded several times per registration (request,
    // serial); recently seen texts come from a small cache.
    const cacheKey = typeof text === 'string' ? text : undefined
    if (cacheKey !== undefined) {
      const hit = decodeCache.get(cacheKey)
      if (hit) return hit
    }
    const key = PublicKey.#decode(text)
    if (cacheKey !== undefined) {
      if (decodeCache.size >= DECODE_CACHE_MAX) decodeCache.delete(decodeCache.keys().next().value!)
      decodeCache.set(cacheKey, key)
    }
    return key
  }

  static #decode(text: string | Uint8Array): PublicKey {
    const data = decodeV1(text, 'public key')
    const pkt = readPacket(data, 'public key')
    if (pkt.tag !== TAG_PUBLIC_KEY) throw keyError(`expected public key, got packet tag ${pkt.tag}`, `expected public key, got instead packet tag ${pkt.tag}`)
    const b = pkt.body
    if (b.length < 6) throw keyError('short public key packet')
    if (b[0] !== 4) throw keyError(`unsupported public key version ${b[0]}`)
    const algo = b[5]!
    if (algo !== 1 && algo !== 2 && algo !== 3) throw keyError(`expected RSA public key, got algorithm ${algo}`, `expected RSA public key, got instead algorithm ${algo}`)
    let off = 6
    const readMpi = (): Uint8Array => {
      if (off + 2 > b.length) throw keyError('short public key packet')
      const bits = readUint16be(b, off)
      const len = (bits + 7) >> 3
      off += 2
      if (off + len > b.length) throw keyError('short public key packet')
      const v = b.subarray(off, off + len)
      off += len
      return v
    }
    const n = readMpi()
    const e = readMpi()
    if (off !== b.length) throw keyError('public key packet has trailing data')
    return PublicKey.fromRsa({ n, e })
  }

  /**
   * From a PEM text: SPKI `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY`, or a private key
   * (`RSA PRIVATE KEY` / `PRIVATE KEY`), whose public half is taken.
   */
  static fromPem(pem: string): PublicKey {
    const { label, der } = decodePem(pem)
    switch (label) {
      case 'PUBLIC KEY':
        return PublicKey.fromRsa(rsaPublicFromSpki(der))
      case 'RSA PUBLIC KEY':
        return PublicKey.fromRsa(rsaPublicFromPkcs1Public(der))
      case 'RSA PRIVATE KEY':
        return PublicKey.fromRsa(rsaPublicFromPkcs1Private(der))
      case 'PRIVATE KEY':
        return PublicKey.fromRsa(rsaPublicFromPkcs1Private(pkcs8ToPkcs1(der)))
      default:
        throw new VaultError('SV_KEY_INVALID', `unsupported PEM block "${label}"`, { details: { reason: 'unsupported PEM label' } })
    }
  }
}

/** Key id of a v1 public-key text without keeping the key. */
export function publicKeyId(text: string): string {
  return PublicKey.decode(text).id
}
