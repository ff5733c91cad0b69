/**
 * RSA key generation for the vault's own keys (root and brand keys).
 *
 * The work runs in a worker thread with @peculiar/webcrypto, whose
 * generateKey is synchronous underneath (generateKeyPairSync) and takes
 * 0.4-3 s for 4096 bits; on the main thread that would freeze every request
 * for as long. Node's async generateKeyPair would also spare the event loop,
 * but a libuv job cannot be cancelled, while a worker can be terminated: an
 * aborted generation stops using the CPU at once.
 */
import { Buffer } from 'node:buffer'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { PublicKey, VaultError } from '@sv/shared'
import { startWorker } from './start-worker.js'

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
  if (!Number.isInteger(bits) || bits < 1024 || bits > 16384 || bits % 8 !== 0) {
    throw new TypeError(`generateRsaKey: bits must be a multiple of 8 from 1024 to 16384, got ${bits}`)
  }
  const { onProgress, progressIntervalMs = 250, signal } = options
  if (signal?.aborted) return Promise.reject(signal.reason)

  return new Promise<GeneratedKey>((resolve, reject) => {
    const started = performance.now()
    const worker = startWorker('keygen-worker', { workerData: { bits } })
    let done = false
    const ticker = onProgress ? setInterval(() => onProgress(Math.round(performance.now() - started)), progressIntervalMs) : undefined
    const finish = (err: unknown, key?: GeneratedKey): void => {
      if (done) return
      done = true
      clearInterval(ticker)
      signal?.removeEventListener('abort', onAbort)
      void worker.terminate()
      if (err === undefined) resolve(key!)
      else reject(err)
    }
    const onAbort = (): void => finish(signal!.reason)
    signal?.addEventListener('abort', onAbort, { once: true })

    worker.once('message', (msg: { pkcs8: ArrayBuffer }) => {
      const pkcs8 = Buffer.from(msg.pkcs8)
      try {
        const jwk = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' })
        const publicKey = PublicKey.fromRsa({ n: Buffer.from(jwk.n!, 'base64url'), e: Buffer.from(jwk.e!, 'base64url') })
        finish(undefined, { pkcs8, publicKey })
      } catch (err) {
        pkcs8.fill(0)
        finish(new VaultError('SV_INTERNAL', 'key generation produced an unreadable key', { cause: err }))
      }
    })
    worker.once('error', (err) => finish(new VaultError('SV_INTERNAL', `key generation failed: ${err.message}`, { cause: err })))
    worker.once('exit', (code) => finish(new VaultError('SV_INTERNAL', `key generation worker exited (code ${code}) without a key`)))
  })
}
