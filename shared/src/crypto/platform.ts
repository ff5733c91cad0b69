/**
 * Platform crypto used by the codec: WebCrypto from @peculiar/webcrypto for
 * RSA (import, sign, verify), and node:crypto for the digests, including
 * SHA3-384 which WebCrypto does not offer. SHA-2 digests are taken from
 * node:crypto too because they are needed synchronously (hash tag, key ids)
 * and cost microseconds against the milliseconds of an RSA operation.
 */
import { createHash, type webcrypto } from 'node:crypto'
import { createRequire } from 'node:module'
import type { Crypto } from '@peculiar/webcrypto'

/** WebCrypto key type (DOM lib is not loaded; Node's type is the same shape). */
export type CryptoKey = webcrypto.CryptoKey

let instance: Crypto | undefined

/**
 * The process-wide WebCrypto instance (created on first use). The package is
 * loaded on that first use, synchronously (its CommonJS build), not at import:
 * it costs about 14 MB of RSS, and a process that only verifies (node:crypto)
 * or signs with NodeKeySigner, like the device agent, never needs it.
 */
export function getWebCrypto(): Crypto {
  if (!instance) {
    const { Crypto: WebCrypto } = createRequire(import.meta.url)('@peculiar/webcrypto') as typeof import('@peculiar/webcrypto')
    instance = new WebCrypto()
  }
  return instance
}

export type DigestName = 'sha256' | 'sha384' | 'sha512' | 'sha3-384'

export function digest(name: DigestName, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash(name)
  for (const p of parts) h.update(p)
  const d = h.digest()
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
}
