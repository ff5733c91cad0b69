/**
 * Platform crypto used by the codec: WebCrypto from @peculiar/webcrypto for
 * RSA (import, sign, verify), and node:crypto for the digests, including
 * SHA3-384 which WebCrypto does not offer. SHA-2 digests are taken from
 * node:crypto too because they are needed synchronously (hash tag, key ids)
 * and cost microseconds against the milliseconds of an RSA operation.
 */
import { createHash, type webcrypto } from 'node:crypto'
import { Crypto } from '@peculiar/webcrypto'

/** WebCrypto key type (DOM lib is not loaded; Node's type is the same shape). */
export type CryptoKey = webcrypto.CryptoKey

let instance: Crypto | undefined

/** The process-wide WebCrypto instance (created on first use). */
export function getWebCrypto(): Crypto {
  instance ??= new Crypto()
  return instance
}

export type DigestName = 'sha256' | 'sha384' | 'sha512' | 'sha3-384'

export function digest(name: DigestName, ...parts: Uint8Array[]): Buffer {
  const h = createHash(name)
  for (const p of parts) h.update(p)
  return h.digest()
}
