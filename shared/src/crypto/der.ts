/**
 * Just enough DER to move RSA keys between PKCS#1, PKCS#8 and SPKI. WebCrypto
 * imports PKCS#8 and SPKI but not PKCS#1 ("RSA PRIVATE KEY", what ssh-keygen
 * and snapd write), and we need the modulus and exponent of every key to build
 * snapd's OpenPGP packet. Every read is bounds-checked; malformed input throws
 * SV_KEY_INVALID.
 */
import { VaultError } from '../errors.js'
import { bytesEqual, concatBytes } from './bytes.js'

/** rsaEncryption (1.2.840.113549.1.1.1) + NULL params */
const RSA_OID = new Uint8Array([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00])

interface Tlv {
  tag: number
  value: Uint8Array
  /** offset just after this element */
  end: number
}

function fail(what: string): never {
  throw new VaultError('SV_KEY_INVALID', `malformed key: ${what}`, { details: { reason: what } })
}

function readTlv(buf: Uint8Array, off: number): Tlv {
  if (off + 2 > buf.length) fail('truncated DER')
  const tag = buf[off]!
  let len = buf[off + 1]!
  let p = off + 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 4 || p + n > buf.length) fail('bad DER length')
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!
    p += n
  }
  if (p + len > buf.length) fail('truncated DER')
  return { tag, value: buf.subarray(p, p + len), end: p + len }
}

function children(seq: Uint8Array): Tlv[] {
  const out: Tlv[] = []
  let off = 0
  while (off < seq.length) {
    if (out.length > 16) fail('too many DER elements')
    const t = readTlv(seq, off)
    out.push(t)
    off = t.end
  }
  return out
}

function expectSequence(der: Uint8Array, what: string): Tlv[] {
  const top = readTlv(der, 0)
  if (top.tag !== 0x30) fail(`${what} is not a DER sequence`)
  return children(top.value)
}

function integer(t: Tlv | undefined, what: string): Uint8Array {
  if (!t || t.tag !== 0x02) fail(`${what} is not an integer`)
  return t.value
}

export interface RsaPublicNumbers {
  /** modulus, big-endian (may carry a leading zero byte) */
  n: Uint8Array
  /** public exponent, big-endian */
  e: Uint8Array
}

/** Parses an RSAPrivateKey (PKCS#1) and returns its public numbers. */
export function rsaPublicFromPkcs1Private(der: Uint8Array): RsaPublicNumbers {
  const f = expectSequence(der, 'RSA private key')
  if (f.length < 9) fail('RSA private key has too few fields')
  return { n: integer(f[1], 'modulus'), e: integer(f[2], 'public exponent') }
}

/** Parses an RSAPublicKey (PKCS#1). */
export function rsaPublicFromPkcs1Public(der: Uint8Array): RsaPublicNumbers {
  const f = expectSequence(der, 'RSA public key')
  return { n: integer(f[0], 'modulus'), e: integer(f[1], 'public exponent') }
}

function checkRsaAlgorithm(alg: Tlv | undefined): void {
  if (!alg || alg.tag !== 0x30) fail('missing algorithm identifier')
  const oid = readTlv(alg.value, 0)
  if (oid.tag !== 0x06 || !bytesEqual(oid.value, RSA_OID.subarray(2, 11))) {
    throw new VaultError('SV_KEY_INVALID', 'only RSA keys are supported', { details: { reason: 'not an RSA key' } })
  }
}

/** Unwraps PKCS#8 PrivateKeyInfo to the inner PKCS#1 RSAPrivateKey. */
export function pkcs8ToPkcs1(der: Uint8Array): Uint8Array {
  const f = expectSequence(der, 'PKCS#8 private key')
  checkRsaAlgorithm(f[1])
  const inner = f[2]
  if (!inner || inner.tag !== 0x04) fail('PKCS#8 private key has no key octets')
  return inner.value
}

/** Parses SubjectPublicKeyInfo with an RSA key. */
export function rsaPublicFromSpki(der: Uint8Array): RsaPublicNumbers {
  const f = expectSequence(der, 'public key info')
  checkRsaAlgorithm(f[0])
  const bits = f[1]
  if (!bits || bits.tag !== 0x03 || bits.value[0] !== 0) fail('public key info has no key bits')
  return rsaPublicFromPkcs1Public(bits.value.subarray(1))
}

function encodeLength(len: number): Uint8Array {
  if (len < 0x80) return new Uint8Array([len])
  const bytes: number[] = []
  for (let l = len; l > 0; l = Math.floor(l / 256)) bytes.unshift(l & 0xff)
  return new Uint8Array([0x80 | bytes.length, ...bytes])
}

function tlv(tag: number, value: Uint8Array): Uint8Array {
  return concatBytes([new Uint8Array([tag]), encodeLength(value.length), value])
}

/** Wraps a PKCS#1 RSAPrivateKey into PKCS#8 PrivateKeyInfo (what WebCrypto imports). */
export function pkcs1ToPkcs8(pkcs1: Uint8Array): Uint8Array {
  rsaPublicFromPkcs1Private(pkcs1) // validates
  return tlv(0x30, concatBytes([new Uint8Array([0x02, 0x01, 0x00]), tlv(0x30, RSA_OID), tlv(0x04, pkcs1)]))
}
