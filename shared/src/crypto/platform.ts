/**
 * The platform crypto the codec runs on: synchronous digests (the 16-bit hash
 * tag of every signature and the SHA3-384 key ids are computed inline, so they
 * cannot wait for a promise) and RSASSA-PKCS1-v1_5 verification.
 *
 * The default platform is portable: digests from @noble/hashes (pure JS,
 * audited; WebCrypto has no SHA3 and no synchronous digest) and verification
 * through `globalThis.crypto.subtle` (browsers in a secure context, Node 20).
 * A faster one is installed with setCryptoPlatform: `@sv/shared/node` installs
 * node:crypto when imported (digests in OpenSSL, a KeyObject cached per key;
 * measured in bench/codec.ts). The choice is process-wide (per thread: each
 * worker thread has its own modules and its own platform).
 */
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js'
import { sha3_384 } from '@noble/hashes/sha3.js'
import type { PublicKey } from './keys.js'

export type DigestName = 'sha256' | 'sha384' | 'sha512' | 'sha3-384'

/** The digests an RSA signature may name (the others are refused before any platform call). */
export type RsaDigestName = 'sha256' | 'sha384' | 'sha512'

export interface CryptoPlatform {
  /** For logs and checks: 'webcrypto' for the default, 'node' for @sv/shared/node's. */
  readonly name: string
  /** The digest of the parts, one after the other. Synchronous; never throws for a known name. */
  digest(name: DigestName, ...parts: Uint8Array[]): Uint8Array
  /**
   * RSASSA-PKCS1-v1_5 verification of `signature` over `data` (the platform
   * hashes `data` with `hash`) by `key`. `signature` is exactly as long as
   * the modulus (the caller pads it). Resolves true or false; rejects only
   * when the platform itself fails (no WebCrypto, a key it cannot import).
   */
  verifyRsaPkcs1(hash: RsaDigestName, key: PublicKey, data: Uint8Array, signature: Uint8Array): Promise<boolean>
}

/** The parts of WebCrypto used here, declared so that neither the DOM nor Node's types are needed. */
interface WebCryptoKey {
  readonly type: string
}
interface SubtleSubset {
  importKey(format: 'jwk', key: object, algorithm: { name: string; hash: string }, extractable: boolean, usages: string[]): Promise<WebCryptoKey>
  verify(algorithm: { name: string }, key: WebCryptoKey, signature: Uint8Array, data: Uint8Array): Promise<boolean>
}

const NOBLE = { sha256, sha384, sha512, 'sha3-384': sha3_384 } as const
const WEB_HASH: Record<RsaDigestName, string> = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' }

function subtle(): SubtleSubset {
  const s = (globalThis as unknown as { crypto?: { subtle?: SubtleSubset } }).crypto?.subtle
  if (!s) throw new Error('WebCrypto (globalThis.crypto.subtle) is not available here (a browser offers it in secure contexts only); install a platform with setCryptoPlatform')
  return s
}

// An imported CryptoKey is bound to one hash; a key verifies with SHA-512 in
// practice, so the per-key map holds one entry. The promise is cached, so
// concurrent first verifications import once.
const webKeys = new WeakMap<PublicKey, Map<RsaDigestName, Promise<WebCryptoKey>>>()

function webKey(key: PublicKey, hash: RsaDigestName): Promise<WebCryptoKey> {
  let byHash = webKeys.get(key)
  if (!byHash) webKeys.set(key, (byHash = new Map()))
  let k = byHash.get(hash)
  if (!k) {
    k = subtle().importKey('jwk', key.toJwk(), { name: 'RSASSA-PKCS1-v1_5', hash: WEB_HASH[hash] }, false, ['verify'])
    k.catch(() => byHash.delete(hash)) // a failed import is not remembered
    byHash.set(hash, k)
  }
  return k
}

/** The default platform: @noble/hashes digests, WebCrypto verification. */
export const webCryptoPlatform: CryptoPlatform = Object.freeze({
  name: 'webcrypto',
  digest(name: DigestName, ...parts: Uint8Array[]): Uint8Array {
    const fn = NOBLE[name]
    if (parts.length === 1) return fn(parts[0]!)
    const h = fn.create()
    for (const p of parts) h.update(p)
    return h.digest()
  },
  async verifyRsaPkcs1(hash: RsaDigestName, key: PublicKey, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return subtle().verify({ name: 'RSASSA-PKCS1-v1_5' }, await webKey(key, hash), signature, data)
  },
})

let current: CryptoPlatform = webCryptoPlatform

/** The platform in use. */
export function getCryptoPlatform(): CryptoPlatform {
  return current
}

/**
 * Installs `platform` for every digest and verification from now on and
 * returns the one it replaces. Importing `@sv/shared/node` installs Node's.
 * Throws TypeError for an object without both methods.
 */
export function setCryptoPlatform(platform: CryptoPlatform): CryptoPlatform {
  if (typeof platform?.digest !== 'function' || typeof platform.verifyRsaPkcs1 !== 'function') throw new TypeError('setCryptoPlatform: expected an object with digest and verifyRsaPkcs1')
  const prev = current
  current = platform
  return prev
}

/** The digest of the parts on the platform in use. */
export function digest(name: DigestName, ...parts: Uint8Array[]): Uint8Array {
  return current.digest(name, ...parts)
}
