/**
 * One bounded HTTP(S) POST on node:http/node:https, with what the agent
 * needs and nothing more: a keep-alive connection (request-id and serial
 * share it), snapd's three timeouts, proxies (CONNECT tunnel for https,
 * absolute-URI requests for http, NO_PROXY), the vault's CA bundle and SPKI
 * pins, and a bound on the answer size.
 *
 * Why not undici: measured on the built agent, importing undici costs 18 MB
 * of RSS and its first TLS request another 9 MB; node:https costs 2 + 2 MB.
 * The agent's budget on a Pi is 80 MB in total (docs/benchmarks.md).
 *
 * Errors are Node's own (errno and TLS codes such as ECONNREFUSED or
 * CERT_NOT_YET_VALID, wrapped nowhere) plus four of ours, by `code`:
 * ERR_AGENT_CONNECT_TIMEOUT, ERR_AGENT_HEADERS_TIMEOUT, ERR_AGENT_PROXY
 * (the proxy refused the tunnel; `status`), ERR_AGENT_PIN_MISMATCH.
 */
import { Buffer } from 'node:buffer'
import { X509Certificate, createHash } from 'node:crypto'
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ClientRequest, type RequestOptions } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { connect as tlsConnect, checkServerIdentity, type ConnectionOptions, type PeerCertificate } from 'node:tls'
import type { Duplex } from 'node:stream'

export interface TransportOptions {
  /** PEM bundle trusted instead of the built-in roots */
  ca?: string
  /** base64 SHA-256 of SubjectPublicKeyInfo; any certificate of the chain may match */
  pins?: readonly string[]
  proxy?: { http?: string; https?: string; noProxy?: string }
  connectTimeoutMs: number
  headersTimeoutMs: number
  userAgent: string
}

export interface RawAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

export class AnswerTooLargeError extends Error {
  constructor(
    readonly status: number,
    readonly limit: number,
  ) {
    super(`the answer is larger than ${limit} bytes`)
  }
}

type CodedError = Error & { code: string; status?: number }

function coded(code: string, message: string, extra: Record<string, unknown> = {}): CodedError {
  return Object.assign(new Error(message), { code, ...extra })
}

export const PIN_MISMATCH = 'ERR_AGENT_PIN_MISMATCH'

export class HttpTransport {
  readonly #o: TransportOptions
  readonly #tls: ConnectionOptions
  readonly #agents = new Map<string, HttpAgent>()

  constructor(options: TransportOptions) {
    this.#o = options
    const pins = new Set(options.pins ?? [])
    this.#tls = {
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(pins.size > 0 ? { checkServerIdentity: pinningIdentityCheck(pins) } : {}),
    }
  }

  /**
   * POSTs `body` to `url`. Resolves with the status, headers and body (at
   * most `maxBytes`, else AnswerTooLargeError). Rejects with `signal.reason`
   * when `signal` aborts.
   */
  post(url: URL, headers: Record<string, string>, body: Buffer | undefined, maxBytes: number, signal: AbortSignal): Promise<RawAnswer> {
    return new Promise<RawAnswer>((resolve, reject) => {
      let settled = false
      let connectTimer: NodeJS.Timeout | undefined
      let headersTimer: NodeJS.Timeout | undefined
      let req: ClientRequest | undefined
      const finish = (err: unknown, answer?: RawAnswer) => {
        if (settled) return
        settled = true
        clearTimeout(connectTimer)
        clearTimeout(headersTimer)
        signal.removeEventListener('abort', onAbort)
        if (err !== undefined) {
          req?.destroy()
          reject(err)
        } else resolve(answer!)
      }
      const onAbort = () => finish(signal.reason)
      if (signal.aborted) return onAbort()
      signal.addEventListener('abort', onAbort, { once: true })

      const https = url.protocol === 'https:'
      const proxy = proxyFor(url, this.#o.proxy)
      const options: RequestOptions = {
        method: 'POST',
        headers: { ...headers, 'content-length': String(body?.length ?? 0) },
        agent: this.#agent(https, proxy),
      }
      if (proxy && !https) {
        // Plain http through a proxy: the absolute URI on the proxy's connection.
        options.host = proxy.hostname
        options.port = proxy.port || 80
        options.path = url.href
        options.headers = { ...options.headers, host: url.host, ...proxyAuthorization(proxy) }
      } else {
        options.host = url.hostname.replace(/^\[|\]$/g, '')
        options.port = url.port || (https ? 443 : 80)
        options.path = url.pathname + url.search
      }
      req = (https ? httpsRequest : httpRequest)(options)
      connectTimer = setTimeout(() => finish(coded('ERR_AGENT_CONNECT_TIMEOUT', `no connection to ${url.host} within ${this.#o.connectTimeoutMs} ms`)), this.#o.connectTimeoutMs)
      const r = req
      r.once('socket', (socket) => {
        const connected = () => {
          clearTimeout(connectTimer)
          headersTimer = setTimeout(() => finish(coded('ERR_AGENT_HEADERS_TIMEOUT', `no answer headers from ${url.host} within ${this.#o.headersTimeoutMs} ms`)), this.#o.headersTimeoutMs)
        }
        // A reused keep-alive socket is connected (and its TLS established) already.
        if (r.reusedSocket) connected()
        else socket.once(https ? 'secureConnect' : 'connect', connected)
      })
      req.once('error', (err) => finish(err))
      req.once('response', (res: IncomingMessage) => {
        clearTimeout(headersTimer)
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > maxBytes) {
            finish(new AnswerTooLargeError(res.statusCode ?? 0, maxBytes))
            res.destroy()
            return
          }
          chunks.push(c)
        })
        res.once('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
        res.once('error', (err) => finish(err))
        res.once('aborted', () => finish(coded('ECONNRESET', 'the answer was cut off')))
      })
      req.end(body)
    })
  }

  /** Releases every connection. */
  close(): void {
    for (const a of this.#agents.values()) a.destroy()
    this.#agents.clear()
  }

  /** One keep-alive agent per (scheme, proxy); one socket each: the agent sends one request at a time. */
  #agent(https: boolean, proxy: URL | undefined): HttpAgent {
    const key = `${https}|${proxy?.href ?? ''}`
    let a = this.#agents.get(key)
    if (a) return a
    const base = { keepAlive: true, maxSockets: 1 }
    if (!https) a = new HttpAgent(base)
    else if (!proxy) a = new HttpsAgent({ ...base, ...this.#tls })
    else a = new TunnelAgent({ ...base, ...this.#tls }, proxy, this.#o.userAgent, this.#o.connectTimeoutMs)
    this.#agents.set(key, a)
    return a
  }
}

/**
 * HTTPS through an HTTP proxy: CONNECT host:port, then TLS to the vault over
 * the tunnel, with the agent's CA, pins and the vault's name (SNI and host
 * check), so the proxy sees only ciphertext.
 */
class TunnelAgent extends HttpsAgent {
  readonly #proxy: URL
  readonly #userAgent: string
  readonly #timeoutMs: number

  constructor(options: ConstructorParameters<typeof HttpsAgent>[0], proxy: URL, userAgent: string, timeoutMs: number) {
    super(options)
    this.#proxy = proxy
    this.#userAgent = userAgent
    this.#timeoutMs = timeoutMs
  }

  override createConnection(options: ConnectionOptions & { host?: string; port?: number }, callback: (err: Error | null, socket?: Duplex) => void): undefined {
    const target = `${options.host}:${options.port}`
    const connectReq = httpRequest({
      host: this.#proxy.hostname,
      port: this.#proxy.port || 80,
      method: 'CONNECT',
      path: target,
      headers: { host: target, 'user-agent': this.#userAgent, ...proxyAuthorization(this.#proxy) },
      agent: false,
      timeout: this.#timeoutMs,
    })
    connectReq.once('connect', (res: IncomingMessage, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy()
        callback(coded('ERR_AGENT_PROXY', `the proxy refused to open a tunnel to ${target}: ${res.statusCode}`, { status: res.statusCode }))
        return
      }
      callback(null, tlsConnect({ ...options, socket }))
    })
    connectReq.once('timeout', () => connectReq.destroy(coded('ERR_AGENT_CONNECT_TIMEOUT', `the proxy did not open a tunnel within ${this.#timeoutMs} ms`)))
    connectReq.once('error', (err) => callback(err))
    connectReq.end()
    return undefined
  }
}

function proxyAuthorization(proxy: URL): Record<string, string> {
  if (proxy.username === '') return {}
  const user = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`
  return { 'proxy-authorization': `Basic ${Buffer.from(user).toString('base64')}` }
}

/**
 * The proxy for `url`, as curl and undici decide it: HTTPS_PROXY (else
 * HTTP_PROXY) for https URLs, HTTP_PROXY for http; none when NO_PROXY lists
 * `*`, the host, a parent domain (`example.com` and `.example.com` both cover
 * `vault.example.com`), or `host:port`.
 */
export function proxyFor(url: URL, proxy: TransportOptions['proxy']): URL | undefined {
  const raw = url.protocol === 'https:' ? (proxy?.https ?? proxy?.http) : proxy?.http
  if (!raw) return undefined
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  const port = url.port || (url.protocol === 'https:' ? '443' : '80')
  for (const entry of (proxy?.noProxy ?? '').split(/[\s,]+/).filter(Boolean)) {
    if (entry === '*') return undefined
    const m = /^(.*?)(?::(\d+))?$/.exec(entry.toLowerCase())!
    const name = m[1]!.replace(/^\*?\./, '').replace(/^\[|\]$/g, '')
    if (m[2] !== undefined && m[2] !== port) continue
    if (host === name || host.endsWith(`.${name}`)) return undefined
  }
  return new URL(raw.includes('://') ? raw : `http://${raw}`)
}

/**
 * Node's host name check, then the pins: some certificate of the presented
 * chain (leaf, intermediate or root) must have one of the pinned SPKI
 * digests. Runs after the CA check, so a pin narrows trust, never widens it.
 */
export function pinningIdentityCheck(pins: ReadonlySet<string>): (host: string, cert: PeerCertificate) => Error | undefined {
  return (host, cert) => {
    const err = checkServerIdentity(host, cert)
    if (err) return err
    let c: (PeerCertificate & { issuerCertificate?: PeerCertificate }) | undefined = cert
    for (let i = 0; c && i < 16; i++) {
      if (c.raw && pins.has(spkiSha256(c.raw))) return undefined
      if (c.issuerCertificate === c) break
      c = c.issuerCertificate
    }
    return coded(PIN_MISMATCH, `no certificate presented by ${host} matches a configured pin`)
  }
}

/**
 * base64 SHA-256 of the certificate's DER SubjectPublicKeyInfo (curl's
 * --pinnedpubkey sha256//, HPKP). PeerCertificate.pubkey is not that for
 * EC keys (it is the bare point), so the SPKI is taken from the raw DER.
 */
function spkiSha256(raw: Buffer): string {
  const spki = new X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(spki).digest('base64')
}
