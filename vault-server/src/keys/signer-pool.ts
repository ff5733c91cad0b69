/**
 * SignerPool: RSA signing on every core. An RSA-4096 signature costs about
 * 5 ms of CPU, which would stall the event loop (and every other request) if
 * done on the main thread; here it runs on a pool of worker threads that each
 * hold every loaded private key as a KeyObject.
 *
 * Scheduling: requests wait in one FIFO queue in the main thread and go to
 * the least busy live worker, at most `perWorker` at a time per worker (2: one
 * signing, one already in its port, so a worker never idles waiting for the
 * next message). Keeping the queue here rather than in the workers' ports
 * means a timed-out request is dropped before any work is done on it, and a
 * crashed worker takes at most `perWorker` requests down with it.
 *
 * Guarantees, each with its code:
 * - at most `maxPending` requests are queued or in flight; more are refused
 *   at once with SV_OVERLOADED (retryAfter 1), so a burst cannot pile up
 *   unbounded memory and latency;
 * - every request settles within `timeoutMs` of being made: SV_TIMEOUT;
 * - a worker that dies (crash, out of memory, terminated) is replaced with the
 *   same keys; its in-flight requests reject with SV_INTERNAL rather than
 *   being retried, since they may have been the cause;
 * - signing with a key that is not loaded (or was removed while the request
 *   was queued) rejects with SV_SIGNING_KEY_UNAVAILABLE;
 * - after close() everything rejects with SV_SHUTTING_DOWN.
 */
import os from 'node:os'
import { Buffer } from 'node:buffer'
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import type { Worker } from 'node:worker_threads'
import { VaultError, type AssertionSigner, type PublicKey } from '@sv/shared'
import type { FromWorker, ToWorker } from './signer-protocol.js'
import { startWorker } from './start-worker.js'

/** What the pool logs: pino's Logger fits. */
export interface SignerPoolLog {
  warn(obj: Record<string, unknown>, msg: string): void
}

export interface SignerPoolOptions {
  /** Worker threads. Default os.availableParallelism(); at least 1. */
  size?: number
  /** Requests queued or in flight before SV_OVERLOADED. Default 1024. */
  maxPending?: number
  /** Per-request deadline in ms, queueing included. Default 10000. */
  timeoutMs?: number
  /** Requests sent to one worker at a time. Default 2. */
  perWorker?: number
  log?: SignerPoolLog
  /** Starts a signer worker (default startWorker('signer-worker')). Lets a test hold the Worker to kill it. */
  workerFactory?: () => Worker
}

export interface SignerPoolMetrics {
  size: number
  /** Workers started and not exited. */
  live: number
  keys: number
  maxPending: number
  /** Waiting in the main-thread queue. */
  queued: number
  /** Sent to a worker and not answered. */
  inFlight: number
  /** Counters since the pool started. */
  signed: number
  overloaded: number
  timedOut: number
  failed: number
  restarts: number
  workers: { index: number; threadId: number; live: boolean; inFlight: number; signed: number }[]
}

interface Request {
  id: number
  keyId: string
  data: Uint8Array<ArrayBuffer>
  resolve: (sig: Uint8Array) => void
  reject: (err: unknown) => void
  timer: NodeJS.Timeout
  settled: boolean
}

interface Slot {
  index: number
  worker: Worker | undefined
  ready: boolean
  /** sent and not answered, including requests that already timed out */
  inFlight: Map<number, Request>
  signed: number
  /** exits in a row without a single answer: a worker that cannot start */
  failedStarts: number
  answered: boolean
  respawnTimer: NodeJS.Timeout | undefined
}

const DEFAULT_MAX_PENDING = 1024
const DEFAULT_TIMEOUT_MS = 10_000
const RESPAWN_BACKOFF_MAX_MS = 5_000

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`SignerPool: ${name} must be a positive integer, got ${value}`)
  return value
}

/** Worker threads of a pool given no size (signing.workers 0): one per core, at least 1. */
export function defaultSignerPoolSize(): number {
  return Math.max(1, os.availableParallelism())
}

export class SignerPool {
  readonly #size: number
  readonly #maxPending: number
  readonly #timeoutMs: number
  readonly #perWorker: number
  readonly #log: SignerPoolLog | undefined
  readonly #workerFactory: () => Worker
  readonly #keys = new Map<string, KeyObject>()
  readonly #slots: Slot[] = []
  readonly #queue: Request[] = []
  readonly #readyWaiters: { resolve: () => void; reject: (err: unknown) => void }[] = []
  #nextId = 1
  #closed = false
  #counters = { signed: 0, overloaded: 0, timedOut: 0, failed: 0, restarts: 0 }

  constructor(options: SignerPoolOptions = {}) {
    this.#size = positiveInt('size', options.size, defaultSignerPoolSize())
    this.#maxPending = positiveInt('maxPending', options.maxPending, DEFAULT_MAX_PENDING)
    this.#timeoutMs = positiveInt('timeoutMs', options.timeoutMs, DEFAULT_TIMEOUT_MS)
    this.#perWorker = positiveInt('perWorker', options.perWorker, 2)
    this.#log = options.log
    this.#workerFactory = options.workerFactory ?? (() => startWorker('signer-worker'))
    for (let index = 0; index < this.#size; index++) {
      const slot: Slot = { index, worker: undefined, ready: false, inFlight: new Map(), signed: 0, failedStarts: 0, answered: false, respawnTimer: undefined }
      this.#slots.push(slot)
      this.#spawn(slot)
    }
  }

  /** Resolves once every worker has started (useful before timing, or at start-up). */
  ready(): Promise<void> {
    if (this.#closed) return Promise.reject(shuttingDown())
    if (this.#allReady()) return Promise.resolve()
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }))
  }

  /**
   * Loads a private key (PKCS#8 DER) into every worker under `keyId`,
   * replacing a key of the same id. The pool keeps its own KeyObject (to
   * reload a replaced worker); the caller may and should zero `pkcs8Der`
   * afterwards. Throws SV_KEY_INVALID when the DER is not an RSA private key.
   */
  addKey(keyId: string, pkcs8Der: Uint8Array): void {
    if (this.#closed) throw shuttingDown()
    let key: KeyObject
    try {
      key = createPrivateKey({ key: Buffer.from(pkcs8Der.buffer, pkcs8Der.byteOffset, pkcs8Der.byteLength), format: 'der', type: 'pkcs8' })
    } catch (err) {
      // OpenSSL's message names the decoder that failed, never the key bytes.
      throw new VaultError('SV_KEY_INVALID', 'cannot load private key: not a PKCS#8 DER key', { details: { keyId, reason: 'not PKCS#8' }, cause: err })
    }
    if (key.asymmetricKeyType !== 'rsa') {
      throw new VaultError('SV_KEY_INVALID', `cannot load private key: expected RSA, got ${key.asymmetricKeyType}`, { details: { keyId, reason: 'not RSA' } })
    }
    this.#keys.set(keyId, key)
    this.#broadcast({ type: 'add', keyId, key })
  }

  /** Unloads a key. Requests already sent to a worker finish; queued ones reject with SV_SIGNING_KEY_UNAVAILABLE. */
  removeKey(keyId: string): void {
    if (!this.#keys.delete(keyId)) return
    this.#broadcast({ type: 'remove', keyId })
  }

  hasKey(keyId: string): boolean {
    return this.#keys.has(keyId)
  }

  /**
   * An AssertionSigner for a loaded key. Throws SV_SIGNING_KEY_UNAVAILABLE when
   * the key is not loaded and SV_INTERNAL when `publicKey` is not its public half.
   * The signer stays bound to the key id: after removeKey its sign() rejects.
   */
  signer(keyId: string, publicKey: PublicKey): AssertionSigner {
    const key = this.#keys.get(keyId)
    if (!key) throw keyUnavailable(keyId)
    const jwk = createPublicKey(key).export({ format: 'jwk' })
    if (!Buffer.from(jwk.n ?? '', 'base64url').equals(publicKey.n) || !Buffer.from(jwk.e ?? '', 'base64url').equals(publicKey.e)) {
      throw new VaultError('SV_INTERNAL', 'public key does not match the loaded private key', { details: { keyId, publicKeyId: publicKey.id } })
    }
    return { publicKey, sign: (data) => this.sign(keyId, data) }
  }

  /** RSASSA-PKCS1-v1_5 SHA-512 signature (k bytes) of `data` with a loaded key. */
  sign(keyId: string, data: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(shuttingDown())
    if (!this.#keys.has(keyId)) return Promise.reject(keyUnavailable(keyId))
    if (this.#pending() >= this.#maxPending) {
      this.#counters.overloaded++
      return Promise.reject(
        new VaultError('SV_OVERLOADED', 'signing queue is full', { retryAfter: 1, details: { maxPending: this.#maxPending } }),
      )
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      const req: Request = {
        id: this.#nextId++,
        keyId,
        // An exact-size copy: the caller may reuse its buffer, and cloning a
        // view of Node's shared Buffer pool would copy the whole pool.
        data: new Uint8Array(data),
        resolve,
        reject,
        settled: false,
        timer: setTimeout(() => this.#timeout(req), this.#timeoutMs),
      }
      this.#queue.push(req)
      this.#pump()
    })
  }

  metrics(): SignerPoolMetrics {
    let inFlight = 0
    for (const s of this.#slots) inFlight += s.inFlight.size
    return {
      size: this.#size,
      live: this.#slots.filter((s) => s.worker !== undefined).length,
      keys: this.#keys.size,
      maxPending: this.#maxPending,
      queued: this.#queue.length,
      inFlight,
      ...this.#counters,
      workers: this.#slots.map((s) => ({
        index: s.index,
        threadId: s.worker?.threadId ?? -1,
        live: s.worker !== undefined,
        inFlight: s.inFlight.size,
        signed: s.signed,
      })),
    }
  }

  /** Stops every worker; queued and in-flight requests reject with SV_SHUTTING_DOWN. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const err = shuttingDown()
    for (const req of this.#queue.splice(0)) this.#settle(req, err)
    const workers: Worker[] = []
    for (const slot of this.#slots) {
      clearTimeout(slot.respawnTimer)
      for (const req of slot.inFlight.values()) this.#settle(req, err)
      slot.inFlight.clear()
      if (slot.worker) workers.push(slot.worker)
      slot.worker = undefined
    }
    for (const w of this.#readyWaiters.splice(0)) w.reject(err)
    this.#keys.clear()
    await Promise.all(workers.map((w) => w.terminate()))
  }

  #pending(): number {
    let n = this.#queue.length
    for (const s of this.#slots) {
      for (const req of s.inFlight.values()) if (!req.settled) n++
    }
    return n
  }

  #allReady(): boolean {
    return this.#slots.every((s) => s.ready)
  }

  #spawn(slot: Slot): void {
    slot.respawnTimer = undefined
    if (this.#closed) return
    let worker: Worker
    try {
      worker = this.#workerFactory()
    } catch (err) {
      if (slot.failedStarts === 0 && this.#counters.restarts === 0) throw err // first start: fail the constructor
      this.#log?.warn({ worker: slot.index, err }, 'signer.worker.failed')
      this.#scheduleRespawn(slot, ++slot.failedStarts)
      return
    }
    slot.worker = worker
    slot.ready = false
    slot.answered = false
    worker.on('message', (msg: FromWorker) => this.#onMessage(slot, worker, msg))
    // 'error' (an uncaught exception in the worker) is always followed by 'exit'.
    worker.on('error', (err) => this.#log?.warn({ worker: slot.index, err }, 'signer.worker.failed'))
    worker.on('exit', (code) => this.#onExit(slot, worker, code))
    for (const [keyId, key] of this.#keys) worker.postMessage({ type: 'add', keyId, key } satisfies ToWorker)
  }

  #onMessage(slot: Slot, worker: Worker, msg: FromWorker): void {
    if (slot.worker !== worker) return
    if (msg.type === 'ready') {
      slot.ready = true
      if (this.#allReady()) for (const w of this.#readyWaiters.splice(0)) w.resolve()
      this.#pump()
      return
    }
    const req = slot.inFlight.get(msg.id)
    if (!req) return
    slot.inFlight.delete(msg.id)
    slot.answered = true
    slot.failedStarts = 0
    if (msg.type === 'signed') {
      slot.signed++
      this.#counters.signed++
      this.#settle(req, undefined, new Uint8Array(msg.signature.buffer, msg.signature.byteOffset, msg.signature.byteLength))
    } else if (msg.reason === 'unknown-key') {
      this.#settle(req, keyUnavailable(req.keyId))
    } else {
      this.#counters.failed++
      this.#settle(req, new VaultError('SV_INTERNAL', `signing failed: ${msg.message}`, { details: { keyId: req.keyId } }))
    }
    this.#pump()
  }

  #onExit(slot: Slot, worker: Worker, code: number): void {
    if (slot.worker !== worker) return // closed, or already replaced
    slot.worker = undefined
    slot.ready = false
    const lost = [...slot.inFlight.values()]
    slot.inFlight.clear()
    for (const req of lost) {
      this.#counters.failed++
      this.#settle(req, new VaultError('SV_INTERNAL', 'signer worker exited while signing', { details: { keyId: req.keyId, exitCode: code } }))
    }
    if (this.#closed) return
    this.#counters.restarts++
    slot.failedStarts = slot.answered ? 0 : slot.failedStarts + 1
    const delay = this.#scheduleRespawn(slot, slot.failedStarts)
    this.#log?.warn({ worker: slot.index, exitCode: code, lost: lost.length, respawnInMs: delay }, 'signer.worker.exited')
    this.#pump()
  }

  /**
   * A worker that dies before answering anything may be unable to start at
   * all (a missing file, a broken install): back off instead of spinning.
   */
  #scheduleRespawn(slot: Slot, failedStarts: number): number {
    const delay = failedStarts <= 1 ? 0 : Math.min(RESPAWN_BACKOFF_MAX_MS, 50 * 2 ** failedStarts)
    slot.respawnTimer = setTimeout(() => {
      this.#spawn(slot)
      this.#pump()
    }, delay)
    return delay
  }

  /** Sends queued requests to the least busy workers with room. */
  #pump(): void {
    while (this.#queue.length > 0) {
      let best: Slot | undefined
      for (const s of this.#slots) {
        if (!s.worker || s.inFlight.size >= this.#perWorker) continue
        // Prefer started workers: one still booting (a replacement) takes work only when nobody else has room.
        if (!best || (s.ready && !best.ready) || (s.ready === best.ready && s.inFlight.size < best.inFlight.size)) best = s
      }
      if (!best) return
      const req = this.#queue.shift()!
      if (!this.#keys.has(req.keyId)) {
        this.#settle(req, keyUnavailable(req.keyId))
        continue
      }
      best.inFlight.set(req.id, req)
      best.worker!.postMessage({ type: 'sign', id: req.id, keyId: req.keyId, data: req.data } satisfies ToWorker, [req.data.buffer])
    }
  }

  #timeout(req: Request): void {
    if (req.settled) return
    const i = this.#queue.indexOf(req)
    if (i >= 0) this.#queue.splice(i, 1)
    // A request already in a worker stays counted there until the worker
    // answers: the worker is busy with it either way.
    this.#counters.timedOut++
    this.#settle(req, new VaultError('SV_TIMEOUT', `signing did not complete within ${this.#timeoutMs} ms`, { retryAfter: 1, details: { keyId: req.keyId } }))
  }

  #settle(req: Request, err: unknown, signature?: Uint8Array): void {
    if (req.settled) return
    req.settled = true
    clearTimeout(req.timer)
    if (err === undefined) req.resolve(signature!)
    else req.reject(err)
  }

  #broadcast(msg: ToWorker): void {
    for (const s of this.#slots) s.worker?.postMessage(msg)
  }
}

function shuttingDown(): VaultError {
  return new VaultError('SV_SHUTTING_DOWN', 'the signer pool is closed')
}

function keyUnavailable(keyId: string): VaultError {
  return new VaultError('SV_SIGNING_KEY_UNAVAILABLE', 'signing key is not loaded', { details: { keyId } })
}
