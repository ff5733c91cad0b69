/**
 * Assertion signatures (spec §3): base64( 0x01 || OpenPGP v4 signature packet ),
 * RSA PKCS#1 v1.5, SHA-512, a creation-time subpacket in the hashed area and
 * nothing else, exactly as snapd's own signer writes them.
 *
 *   digest = H( content || 04 00 01 0A | hashed-len(2) | hashed subpackets || 04 FF | BE32(6 + hashed-len) )
 *
 * Verification follows snapd (x/crypto PublicKey.VerifySignature): the 16-bit
 * hash tag first, then RSA with the digest the packet names, the MPI read as
 * ceil(bits/8) bytes and left-padded to the modulus size (both Go's and GnuPG's
 * MPI styles verify). Unlike snapd we refuse digests other than SHA-256/384/512
 * (snapd also takes MD5, SHA-1 and SHA-224, and panics on RIPEMD-160).
 */
import { VaultError } from '../errors.js'
import { concatBytes, hexEncode, readUint16be, readUint32be, uint16be, uint32be } from './bytes.js'
import { decodeV1, encodeV1 } from './v1.js'
import { readPacket, writePacketHeader } from './packet.js'
import { digest, getCryptoPlatform, type RsaDigestName } from './platform.js'
import type { PublicKey } from './keys.js'
import type { AssertionSigner } from './signer.js'

const TAG_SIGNATURE = 2
const HASH_SHA512 = 10

/** OpenPGP hash ids that exist (RFC 4880 §9.4); only some are accepted. */
const HASH_NAMES: Record<number, string> = { 1: 'MD5', 2: 'SHA-1', 3: 'RIPEMD-160', 8: 'SHA-256', 9: 'SHA-384', 10: 'SHA-512', 11: 'SHA-224' }
const ACCEPTED: Record<number, RsaDigestName> = { 8: 'sha256', 9: 'sha384', 10: 'sha512' }

export interface ParsedSignature {
  version: number
  sigType: number
  pubKeyAlgo: number
  hashId: number
  /** packet bytes covered by the digest: version .. end of hashed subpackets */
  hashedPrefix: Uint8Array
  /** Unix seconds from the creation-time subpacket */
  creationTime: number
  /** issuer key id (8 bytes hex) if an issuer subpacket was present; informational only */
  issuer?: string
  hashTag: Uint8Array
  /** RSA signature value as carried (not yet padded) */
  value: Uint8Array
}

function sigError(code: 'SV_SIGNATURE_INVALID' | 'SV_SIGNATURE_UNSUPPORTED', reason: string, message?: string): VaultError {
  return new VaultError(code, message ?? `cannot decode signature: ${reason}`, { details: { reason } })
}

interface Subpackets {
  creationTime?: number
  issuer?: string
}

function parseSubpackets(area: Uint8Array, hashed: boolean, out: Subpackets): void {
  let off = 0
  let count = 0
  while (off < area.length) {
    if (++count > 64) throw sigError('SV_SIGNATURE_INVALID', 'too many signature subpackets')
    const l0 = area[off]!
    let len: number
    if (l0 < 192) {
      len = l0
      off += 1
    } else if (l0 < 255) {
      if (off + 2 > area.length) throw sigError('SV_SIGNATURE_INVALID', 'subpacket truncated')
      len = ((l0 - 192) << 8) + area[off + 1]! + 192
      off += 2
    } else {
      if (off + 5 > area.length) throw sigError('SV_SIGNATURE_INVALID', 'subpacket truncated')
      len = readUint32be(area, off + 1)
      off += 5
    }
    if (len < 1 || off + len > area.length) throw sigError('SV_SIGNATURE_INVALID', 'subpacket truncated')
    const type = area[off]! & 0x7f
    const critical = (area[off]! & 0x80) !== 0
    const data = area.subarray(off + 1, off + len)
    off += len
    switch (type) {
      case 2: // signature creation time
        if (!hashed) throw sigError('SV_SIGNATURE_INVALID', 'signature creation time in non-hashed area')
        if (data.length !== 4) throw sigError('SV_SIGNATURE_INVALID', 'signature creation time not four bytes')
        out.creationTime = readUint32be(data, 0)
        break
      case 3: // signature expiration
      case 9: // key expiration
        if (data.length !== 4) throw sigError('SV_SIGNATURE_INVALID', 'expiration subpacket not four bytes')
        break
      case 16: // issuer
        if (data.length !== 8) throw sigError('SV_SIGNATURE_INVALID', 'issuer subpacket with bad length')
        out.issuer = hexEncode(data)
        break
      default:
        if (critical) throw sigError('SV_SIGNATURE_UNSUPPORTED', `unknown critical signature subpacket type ${type}`)
    }
  }
}

/** Parses the v1 signature text. Throws SV_SIGNATURE_INVALID or SV_SIGNATURE_UNSUPPORTED. */
export function parseSignature(text: string | Uint8Array): ParsedSignature {
  const pkt = readPacket(decodeV1(text, 'signature'), 'signature')
  if (pkt.tag !== TAG_SIGNATURE) throw sigError('SV_SIGNATURE_INVALID', `expected signature, got packet tag ${pkt.tag}`, `expected signature, got instead packet tag ${pkt.tag}`)
  const b = pkt.body
  if (b.length < 1) throw sigError('SV_SIGNATURE_INVALID', 'unexpected EOF')
  if (b[0] === 3) throw sigError('SV_SIGNATURE_UNSUPPORTED', 'v3 signatures are not supported', 'expected signature, got instead a v3 signature')
  if (b[0] !== 4) throw sigError('SV_SIGNATURE_UNSUPPORTED', `signature packet version ${b[0]}`)
  if (b.length < 6) throw sigError('SV_SIGNATURE_INVALID', 'unexpected EOF')
  const sigType = b[1]!
  const pubKeyAlgo = b[2]!
  const hashId = b[3]!
  if (pubKeyAlgo !== 1 && pubKeyAlgo !== 3) throw sigError('SV_SIGNATURE_UNSUPPORTED', `public key algorithm ${pubKeyAlgo} is not RSA`)
  if (!(hashId in HASH_NAMES)) throw sigError('SV_SIGNATURE_UNSUPPORTED', `unsupported feature: hash function ${hashId}`)
  const hashedLen = readUint16be(b, 4)
  if (6 + hashedLen + 2 > b.length) throw sigError('SV_SIGNATURE_INVALID', 'unexpected EOF')
  const sub: Subpackets = {}
  parseSubpackets(b.subarray(6, 6 + hashedLen), true, sub)
  let off = 6 + hashedLen
  const unhashedLen = readUint16be(b, off)
  off += 2
  if (off + unhashedLen + 4 > b.length) throw sigError('SV_SIGNATURE_INVALID', 'unexpected EOF')
  parseSubpackets(b.subarray(off, off + unhashedLen), false, sub)
  off += unhashedLen
  if (sub.creationTime === undefined) throw sigError('SV_SIGNATURE_INVALID', 'no creation time in signature')
  const hashTag = b.subarray(off, off + 2)
  off += 2
  const bits = readUint16be(b, off)
  off += 2
  const len = (bits + 7) >> 3
  if (off + len > b.length) throw sigError('SV_SIGNATURE_INVALID', 'unexpected EOF')
  const parsed: ParsedSignature = {
    version: 4,
    sigType,
    pubKeyAlgo,
    hashId,
    hashedPrefix: b.subarray(0, 6 + hashedLen),
    creationTime: sub.creationTime,
    hashTag,
    value: b.subarray(off, off + len),
  }
  if (sub.issuer !== undefined) parsed.issuer = sub.issuer
  return parsed
}

function trailer(hashedPrefixLen: number): Uint8Array {
  return concatBytes([TRAILER_HEAD, uint32be(hashedPrefixLen)])
}

const TRAILER_HEAD = new Uint8Array([0x04, 0xff])
const CREATION_TIME_SUBPACKET = new Uint8Array([0x05, 0x02])
const NO_UNHASHED = new Uint8Array([0x00, 0x00])

/**
 * Verifies `signature` (v1 text) over `content` with `key`. Throws
 * SV_SIGNATURE_INVALID (tampered, wrong key) or SV_SIGNATURE_UNSUPPORTED
 * (weak or unknown digest, not RSA); resolves when the signature is good.
 */
export async function verifySignature(content: Uint8Array, signature: string | Uint8Array, key: PublicKey): Promise<ParsedSignature> {
  const sig = parseSignature(signature)
  const alg = ACCEPTED[sig.hashId]
  if (alg === undefined) {
    throw sigError('SV_SIGNATURE_UNSUPPORTED', `weak digest ${HASH_NAMES[sig.hashId]} refused (only SHA-256, SHA-384, SHA-512)`, `signature digest ${HASH_NAMES[sig.hashId]} is refused as weak; only SHA-256, SHA-384 and SHA-512 are accepted`)
  }
  const data = concatBytes([content, sig.hashedPrefix, trailer(sig.hashedPrefix.length)])
  const d = digest(alg, data)
  if (d[0] !== sig.hashTag[0] || d[1] !== sig.hashTag[1]) {
    throw new VaultError('SV_SIGNATURE_INVALID', "failed signature verification: openpgp: invalid signature: hash tag doesn't match", { details: { reason: 'hash tag mismatch' } })
  }
  const k = key.n.length
  let value = sig.value
  if (value.length > k) {
    throw new VaultError('SV_SIGNATURE_INVALID', 'failed signature verification: openpgp: invalid signature: RSA verification failure', { details: { reason: 'signature longer than modulus' } })
  }
  if (value.length < k) value = concatBytes([new Uint8Array(k - value.length), value])
  // The platform verifies (getCryptoPlatform: node:crypto with a cached
  // KeyObject once @sv/shared/node is imported, WebCrypto otherwise).
  const ok = await getCryptoPlatform().verifyRsaPkcs1(alg, key, data, value)
  if (!ok) {
    throw new VaultError('SV_SIGNATURE_INVALID', 'failed signature verification: openpgp: invalid signature: RSA verification failure', { details: { reason: 'RSA verification failure' } })
  }
  return sig
}

/**
 * Signs `content` as snapd does and returns the v1 signature text (no trailing
 * LF). `creationTime` is Unix seconds (default: now).
 */
export async function signContent(content: Uint8Array, signer: AssertionSigner, creationTime: number = Math.floor(Date.now() / 1000)): Promise<string> {
  const hashed = concatBytes([CREATION_TIME_SUBPACKET, uint32be(creationTime)])
  const prefix = concatBytes([new Uint8Array([0x04, 0x00, 0x01, HASH_SHA512, 0x00, hashed.length]), hashed])
  const data = concatBytes([content, prefix, trailer(prefix.length)])
  const value = await signer.sign(data)
  const k = signer.publicKey.n.length
  if (value.length !== k) throw new Error(`internal error: signer returned ${value.length} bytes for a ${k}-byte modulus`)
  const tag = digest('sha512', data).subarray(0, 2)
  const bits = uint16be(k * 8) // x/crypto writes 8 × length, leading zeros kept
  const body = concatBytes([prefix, NO_UNHASHED, tag, bits, value])
  return encodeV1(concatBytes([writePacketHeader(TAG_SIGNATURE, body.length), body]))
}
