/**
 * VaultClient over a serial line to a factory station (docs/serial-line.md):
 * the unit has no network; the station PC it is wired to relays each request
 * to the vault over HTTPS and sends back the vault's answer as it came
 * (status, headers, body). So this client maps answers exactly as
 * HttpVaultClient does (status-errors.ts), and the provisioner's state
 * machine, retries and verification are unchanged.
 *
 *   request   {"v":1,"id":N,"op":"request-id","headers":{...}}  (empty body)
 *   request   {"v":1,"id":N,"op":"serial","headers":{...}}      serial-request stream
 *   response  {"v":1,"id":N,"status":S,"headers":{...}}         the vault's body
 *
 * Link faults are AgentErrors the provisioner retries like an unavailable
 * vault (exit code 3 with --once): SV_AGENT_LINK_TIMEOUT (no answer within
 * totalTimeoutMs while the port was open), SV_AGENT_LINK_CLOSED (the port
 * was closed or missing at the deadline), SV_AGENT_LINK_RETRIES_EXHAUSTED
 * (a frame was never acknowledged), SV_AGENT_LINK_RESET (the station lost the
 * session). The port is opened on the first call and kept open (and reopened
 * after a loss) until close(); one link session spans every call, so a unit
 * unplugged halfway resumes without sending a request twice.
 */
import { Buffer } from 'node:buffer'
import { SerialLineLink, decodeSerialLineResponse, encodeSerialLineRequest, type SerialLineError, type SerialLineOperation } from '@sv/shared'
import { AgentError, type AgentErrorCode } from '../errors.js'
import { SerialLinePort } from '../serial/serial-line-port.js'
import type { SerialBinding } from '../serial/serial-link.js'
import type { SerialAnswer, VaultClient } from './vault-client.js'
import type { RawAnswer } from './http-transport.js'
import { requestIdOf, serialAnswerOf } from './status-errors.js'

export interface SerialVaultClientOptions {
  /** the port wired to the station, e.g. /dev/ttyS0, /dev/ttyUSB0 */
  path: string
  baudRate: number
  binding?: SerialBinding
  apiKey?: string
  headers?: Readonly<Record<string, string>>
  /** bound on each call, link retries and reopening included (default 30 s, snapd's whole-request timeout) */
  totalTimeoutMs?: number
  /** retransmission timeout (default from the baud rate: 200 ms + twice a maximal frame's time on the line) */
  ackTimeoutMs?: number
  maxRetries?: number
  maxPayload?: number
  maxAnswerBytes?: number
  reopenMs?: number
  userAgent?: string
  now?: () => number
}

interface Pending {
  step: SerialLineOperation
  resolve: (a: RawAnswer) => void
  reject: (e: AgentError) => void
}

const LINK_CODES: Record<SerialLineError['reason'], AgentErrorCode> = {
  'retries-exhausted': 'SV_AGENT_LINK_RETRIES_EXHAUSTED',
  closed: 'SV_AGENT_LINK_CLOSED',
  reset: 'SV_AGENT_LINK_RESET',
  'too-large': 'SV_AGENT_LINK_RETRIES_EXHAUSTED',
}

/** 200 ms plus twice the time a maximal frame takes at `baudRate` (10 bits a byte). */
export function defaultAckTimeoutMs(baudRate: number, maxPayload = 1024): number {
  return 200 + Math.ceil((2 * (maxPayload + 22) * 10 * 1000) / baudRate)
}

export class SerialVaultClient implements VaultClient {
  readonly endpoint: string
  readonly #o: SerialVaultClientOptions
  readonly #link: SerialLineLink
  readonly #port: SerialLinePort
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #closed = false

  constructor(options: SerialVaultClientOptions) {
    this.#o = options
    this.endpoint = `serial:${options.path}@${options.baudRate}`
    const maxAnswer = options.maxAnswerBytes ?? 1024 * 1024
    this.#link = new SerialLineLink({
      role: 'unit',
      maxPayload: options.maxPayload ?? 1024,
      maxMessage: maxAnswer + 8192,
      ackTimeoutMs: options.ackTimeoutMs ?? defaultAckTimeoutMs(options.baudRate, options.maxPayload),
      maxRetries: options.maxRetries ?? 10,
      onMessage: (m) => this.#onMessage(m),
      onReset: () => this.#failAll((p) => this.#error('SV_AGENT_LINK_RESET', p.step, 'the station lost the session')),
    })
    this.#port = new SerialLinePort({
      path: options.path,
      baudRate: options.baudRate,
      link: this.#link,
      ...(options.binding ? { binding: options.binding } : {}),
      ...(options.reopenMs !== undefined ? { reopenMs: options.reopenMs } : {}),
    })
  }

  /** Link counters (frames, retransmissions, dropped bytes), for logs and tests. */
  get stats() {
    return { ...this.#link.stats, opens: this.#port.opens }
  }

  async requestId(signal?: AbortSignal): Promise<string> {
    return requestIdOf(await this.#call('request-id', new Uint8Array(0), {}, signal), this.#now())
  }

  async serial(stream: Buffer, signal?: AbortSignal): Promise<SerialAnswer> {
    return serialAnswerOf(await this.#call('serial', stream, { 'content-type': 'application/x.ubuntu.assertion', 'snap-device-capabilities': 'serial-stream' }, signal), this.#now())
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#failAll((p) => this.#error('SV_AGENT_LINK_CLOSED', p.step, 'the serial client was closed'))
    this.#link.close()
    await this.#port.close()
  }

  #now(): number {
    return (this.#o.now ?? Date.now)()
  }

  #error(code: AgentErrorCode, step: SerialLineOperation, message: string, extra: Record<string, unknown> = {}, cause?: unknown): AgentError {
    return new AgentError(code, `${step}: ${message}`, { details: { step, path: this.#o.path, ...extra }, ...(cause !== undefined ? { cause } : {}) })
  }

  #call(step: SerialLineOperation, body: Uint8Array, extra: Record<string, string>, signal: AbortSignal | undefined): Promise<RawAnswer> {
    if (this.#closed) throw new TypeError('SerialVaultClient: closed')
    signal?.throwIfAborted()
    this.#port.start()
    const id = this.#nextId
    this.#nextId = this.#nextId >= 2 ** 31 - 1 ? 1 : this.#nextId + 1
    const headers: Record<string, string> = { 'user-agent': this.#o.userAgent ?? 'device-agent' }
    for (const [k, v] of Object.entries(this.#o.headers ?? {})) headers[k.toLowerCase()] = v
    if (this.#o.apiKey !== undefined) headers['api-key'] = this.#o.apiKey
    Object.assign(headers, extra)
    const timeoutMs = this.#o.totalTimeoutMs ?? 30_000
    return new Promise<RawAnswer>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.#pending.delete(id)
      }
      const timer = setTimeout(() => {
        done()
        if (!this.#port.isOpen) {
          const err = this.#port.lastError
          reject(this.#error('SV_AGENT_LINK_CLOSED', step, `the serial port ${this.#o.path} is closed or missing${err ? ` (${err.message})` : ''}`, { timeoutMs, ...(err ? { error: err.message } : {}) }, err))
        } else {
          reject(this.#error('SV_AGENT_LINK_TIMEOUT', step, `no answer from the station within ${timeoutMs} ms`, { timeoutMs }))
        }
      }, timeoutMs)
      const onAbort = () => {
        done()
        reject(signal!.reason as AgentError)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#pending.set(id, {
        step,
        resolve: (a) => {
          done()
          resolve(a)
        },
        reject: (e) => {
          done()
          reject(e)
        },
      })
      this.#link.send(encodeSerialLineRequest({ id, op: step, headers, body })).catch((err: SerialLineError) => {
        const code = LINK_CODES[err.reason] ?? 'SV_AGENT_LINK_RETRIES_EXHAUSTED'
        this.#pending.get(id)?.reject(this.#error(code, step, err.message, { reason: err.reason }, err))
      })
    })
  }

  #onMessage(m: Uint8Array): void {
    const r = decodeSerialLineResponse(m)
    if (typeof r === 'string') return // not a response: ignored, the call times out
    const p = this.#pending.get(r.id)
    if (!p) return // a late answer to a call that gave up
    const max = this.#o.maxAnswerBytes ?? 1024 * 1024
    if (r.body.length > max) {
      p.reject(new AgentError('SV_AGENT_VAULT_UNAVAILABLE', `the ${p.step} answer is larger than ${max} bytes`, { details: { step: p.step, reason: 'bad-answer', status: r.status, limit: max } }))
      return
    }
    p.resolve({ status: r.status, headers: r.headers, body: Buffer.from(r.body.buffer, r.body.byteOffset, r.body.length) })
  }

  #failAll(make: (p: Pending) => AgentError): void {
    for (const p of [...this.#pending.values()]) p.reject(make(p))
  }
}
