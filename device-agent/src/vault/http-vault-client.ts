/**
 * VaultClient over HTTP(S), speaking what snapd's device manager
 * speaks (spec §5.5-§5.8), so it works against our vault and against
 * Canonical's serial-vault alike (same endpoints, `api-key` header, plain
 * http or TLS):
 *
 *   POST {base}request-id          no body           -> 200 {"request-id": "..."}
 *   POST {base}serial              serial-request [+ model], Content-Type
 *                                  application/x.ubuntu.assertion,
 *                                  Snap-Device-Capabilities: serial-stream
 *                                  -> 200/201 stream | 202 poll later | error
 *
 * Transport (http-transport.ts, node:http/https): the vault's CA bundle
 * (`ca`, replacing the built-in roots) and optional SPKI pins checked on
 * every new connection; proxies as curl and snapd read them (HTTPS_PROXY,
 * HTTP_PROXY, NO_PROXY, resolved by config.ts); snapd's timeouts: connect
 * (TLS handshake) 10 s, response headers 15 s, the whole request 30 s.
 * Redirects are not followed: snapd turns a redirected POST into a GET, which
 * no device service answers usefully, so a 3xx is a refusal like any other
 * unexpected status.
 */
import type { Buffer } from 'node:buffer'
import { AgentError } from '../errors.js'
import type { SerialAnswer, VaultClient } from './vault-client.js'
import { AnswerTooLargeError, HttpTransport, type RawAnswer } from './http-transport.js'
import { transportError } from './transport-errors.js'
import { requestIdOf, serialAnswerOf } from './status-errors.js'

export interface HttpVaultClientOptions {
  /** device-service base URL (a `/` is appended to the path when missing) */
  url: string
  apiKey?: string
  /** extra headers on both requests; they cannot override Content-Type */
  headers?: Readonly<Record<string, string>>
  /** PEM bundle trusted instead of the built-in roots */
  ca?: string
  /** base64 SHA-256 of SubjectPublicKeyInfo (config.ts normalisePin); any certificate of the chain may match */
  pins?: readonly string[]
  proxy?: { http?: string; https?: string; noProxy?: string }
  connectTimeoutMs?: number
  headersTimeoutMs?: number
  totalTimeoutMs?: number
  maxAnswerBytes?: number
  userAgent?: string
  /** for Retry-After dates; default Date.now */
  now?: () => number
}

type Step = 'request-id' | 'serial'

const ASSERTION_MEDIA_TYPE = 'application/x.ubuntu.assertion'
const MAX_ERROR_BODY = 64 * 1024

export class HttpVaultClient implements VaultClient {
  readonly endpoint: string
  readonly #base: URL
  readonly #o: HttpVaultClientOptions
  readonly #transport: HttpTransport
  readonly #now: () => number
  #closed = false

  constructor(options: HttpVaultClientOptions) {
    const base = new URL(options.url)
    if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new TypeError(`HttpVaultClient: expected an http(s) URL, got ${base.protocol}`)
    if (!base.pathname.endsWith('/')) base.pathname += '/'
    base.username = ''
    base.password = ''
    this.#base = base
    this.endpoint = base.href
    this.#o = options
    this.#now = options.now ?? Date.now
    this.#transport = new HttpTransport({
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      pins: options.pins ?? [],
      ...(options.proxy ? { proxy: options.proxy } : {}),
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      headersTimeoutMs: options.headersTimeoutMs ?? 15_000,
      userAgent: options.userAgent ?? 'device-agent',
    })
  }

  async requestId(signal?: AbortSignal): Promise<string> {
    return requestIdOf(await this.#post('request-id', undefined, {}, signal), this.#now())
  }

  async serial(stream: Buffer, signal?: AbortSignal): Promise<SerialAnswer> {
    return serialAnswerOf(await this.#post('serial', stream, { 'content-type': ASSERTION_MEDIA_TYPE, 'snap-device-capabilities': 'serial-stream' }, signal), this.#now())
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#transport.close()
  }

  async #post(step: Step, body: Buffer | undefined, extra: Record<string, string>, signal: AbortSignal | undefined): Promise<RawAnswer> {
    if (this.#closed) throw new TypeError('HttpVaultClient: closed')
    const url = new URL(step, this.#base)
    // snapd's order: User-Agent, then the custom headers, then the request's
    // own (Content-Type cannot be overridden).
    const headers: Record<string, string> = { 'user-agent': this.#o.userAgent ?? 'device-agent' }
    for (const [k, v] of Object.entries(this.#o.headers ?? {})) headers[k.toLowerCase()] = v
    if (this.#o.apiKey !== undefined) headers['api-key'] = this.#o.apiKey
    Object.assign(headers, extra)
    const totalMs = this.#o.totalTimeoutMs ?? 30_000
    const total = AbortSignal.timeout(totalMs)
    const combined = signal ? AbortSignal.any([signal, total]) : total
    const maxOk = this.#o.maxAnswerBytes ?? 1024 * 1024
    try {
      const res = await this.#transport.post(url, headers, body, maxOk, combined)
      if ((res.status < 200 || res.status >= 300) && res.body.length > MAX_ERROR_BODY) res.body = res.body.subarray(0, MAX_ERROR_BODY)
      return res
    } catch (err) {
      if (signal?.aborted) throw signal.reason
      if (total.aborted) {
        throw new AgentError('SV_AGENT_VAULT_UNAVAILABLE', `${step}: no complete answer within ${totalMs} ms`, { details: { step, reason: 'timeout' }, cause: err })
      }
      if (err instanceof AnswerTooLargeError) {
        throw new AgentError('SV_AGENT_VAULT_UNAVAILABLE', `the ${step} answer is larger than ${err.limit} bytes`, { details: { step, reason: 'bad-answer', status: err.status, limit: err.limit } })
      }
      throw transportError(step, err)
    }
  }
}
