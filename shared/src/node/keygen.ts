/**
 * RSA key generation off the main thread, for the vault's own keys and the
 * device key alike.
 *
 * The work runs in a worker thread (keygen-worker.ts) with node:crypto's
 * generateKeyPairSync: 0.4-3 s for 4096 bits on a PC, up to a minute on a
 * Pi. On the main thread that would freeze every timer, request and signal
 * for as long. Node's async generateKeyPair would also spare the event loop,
 * but a libuv job cannot be cancelled, while a worker can be terminated: an
 * aborted generation stops using the CPU at once (docs/design.md,
 * "Dependencies").
 */
import { startWorkerBeside } from './start-worker.js'

export interface GenerateRsaPkcs8Options {
  /** Called on the main thread every `progressIntervalMs` while the worker searches for primes. */
  onProgress?: (elapsedMs: number) => void
  /** Default 1000. */
  progressIntervalMs?: number
  /** Aborting terminates the worker at once; the promise rejects with `signal.reason`. */
  signal?: AbortSignal
}

/** The worker failed (`cause`) or exited without a key (`exitCode`). Callers give it their own error code. */
export class KeyGenerationError extends Error {
  readonly exitCode: number | undefined

  constructor(message: string, o: { cause?: unknown; exitCode?: number } = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause })
    this.name = 'KeyGenerationError'
    this.exitCode = o.exitCode
  }
}

/**
 * Generates an RSA key (e = 65537) of `bits` bits and resolves with its
 * PKCS#8 DER (sensitive: the caller keeps it sealed or written with care, and
 * zeroes it). `bits` must be a multiple of 8 from 1024 to 16384 (TypeError,
 * thrown at once); the minimum a caller accepts is its own policy. Rejects
 * with `signal.reason` when aborted and with KeyGenerationError when the
 * worker fails.
 */
export function generateRsaPkcs8(bits: number, options: GenerateRsaPkcs8Options = {}): Promise<Uint8Array> {
  if (!Number.isInteger(bits) || bits < 1024 || bits > 16384 || bits % 8 !== 0) {
    throw new TypeError(`RSA key generation: bits must be a multiple of 8 from 1024 to 16384, got ${bits}`)
  }
  const { onProgress, progressIntervalMs = 1000, signal } = options
  if (signal?.aborted) return Promise.reject(signal.reason)
  return new Promise<Uint8Array>((resolve, reject) => {
    const started = performance.now()
    const worker = startWorkerBeside(import.meta.url, 'keygen-worker', { workerData: { bits } })
    let done = false
    const ticker = onProgress ? setInterval(() => onProgress(Math.round(performance.now() - started)), progressIntervalMs) : undefined
    const finish = (err: unknown, pkcs8?: Uint8Array): void => {
      if (done) return
      done = true
      clearInterval(ticker)
      signal?.removeEventListener('abort', onAbort)
      void worker.terminate()
      if (err === undefined) resolve(pkcs8!)
      else reject(err)
    }
    const onAbort = (): void => finish(signal!.reason)
    signal?.addEventListener('abort', onAbort, { once: true })
    worker.once('message', (msg: { pkcs8: ArrayBuffer }) => finish(undefined, new Uint8Array(msg.pkcs8)))
    worker.once('error', (err) => finish(new KeyGenerationError(`key generation failed: ${err.message}`, { cause: err })))
    worker.once('exit', (code) => finish(new KeyGenerationError(`key generation worker exited (code ${code}) without a key`, { exitCode: code })))
  })
}
