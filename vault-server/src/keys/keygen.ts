/**
 * RSA key generation for the vault's own keys (root and brand keys): the
 * shared worker-thread generator (@sv/shared/node generateRsaPkcs8, which
 * explains why a worker), plus the public key, with failures as SV_INTERNAL.
 */
import { Buffer } from 'node:buffer'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { PublicKey, VaultError } from '@sv/shared'
import { KeyGenerationError, generateRsaPkcs8 } from '@sv/shared/node'

export interface GeneratedKey {
  /** PKCS#8 DER of the private key (sensitive: seal it, zero it, never log it). */
  pkcs8: Buffer
  publicKey: PublicKey
}

export interface GenerateRsaKeyOptions {
  /** Called from the main thread every `progressIntervalMs` while the worker searches for primes. */
  onProgress?: (elapsedMs: number) => void
  /** Default 250. */
  progressIntervalMs?: number
  /** Aborting terminates the worker; the promise rejects with `signal.reason`. */
  signal?: AbortSignal
}

/**
 * Generates an RSA key pair (e = 65537) of `bits` bits, default 4096.
 * `bits` must be a multiple of 8 from 1024 to 16384 (TypeError otherwise);
 * the minimum a key store accepts is its own policy. Rejects with
 * `signal.reason` when aborted and with SV_INTERNAL when the worker fails.
 */
export function generateRsaKey(bits = 4096, options: GenerateRsaKeyOptions = {}): Promise<GeneratedKey> {
  const { progressIntervalMs = 250, ...rest } = options
  return generateRsaPkcs8(bits, { ...rest, progressIntervalMs }).then(
    (der) => {
      const pkcs8 = Buffer.from(der.buffer, der.byteOffset, der.byteLength)
      try {
        const jwk = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' })
        return { pkcs8, publicKey: PublicKey.fromRsa({ n: Buffer.from(jwk.n!, 'base64url'), e: Buffer.from(jwk.e!, 'base64url') }) }
      } catch (err) {
        pkcs8.fill(0)
        throw new VaultError('SV_INTERNAL', 'key generation produced an unreadable key', { cause: err })
      }
    },
    (err: unknown) => {
      throw err instanceof KeyGenerationError ? new VaultError('SV_INTERNAL', err.message, { cause: err.cause }) : err
    },
  )
}
