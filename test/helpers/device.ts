/**
 * A device, as far as the vault's device API sees it: a device key, a
 * request-id fetch, a self-signed serial-request stream (serial-request, then
 * the model, as snapd POSTs it, spec §5.7) and the POST of that stream. For
 * vault tests that need requests snapd would never send (tampered, truncated,
 * oversized, chunked), the pieces are separate and `httpRequest` sends any
 * bytes with any headers.
 *
 *   const key = fixtureDeviceKey('device')            // or await generateDeviceKey()
 *   const r = await registerDevice(v.url, v.apiKey, { key, brandId: 'acme-brand', model: 'acme-pi-gateway', serial: 'SN1' })
 *   r.status, r.headers, r.body (Buffer), jsonOf(r)
 *
 * Every request has a bounded time (default 15 s) and uses its own
 * connection (no keep-alive agent left behind when a test ends).
 */
import { generateKeyPair } from 'node:crypto'
import { request as httpRequestFn, type IncomingHttpHeaders } from 'node:http'
import { request as httpsRequestFn } from 'node:https'
import { Buffer } from 'node:buffer'
import { signAssertion, type Assertion, type HeaderValue, type PublicKey } from '@sv/shared'
import { NodeKeySigner } from '@sv/shared/node'
import { keyPem, type FixtureKeyName } from './keys.js'

export const SERIAL_REQUEST_TYPE = 'application/x.ubuntu.assertion'

export interface DeviceKey {
  /** PKCS#1 or PKCS#8 PEM of the private key */
  pem: string
  signer: NodeKeySigner
  publicKey: PublicKey
  /** snapd key id (sha3-384), what serials carry as device-key-sha3-384 */
  id: string
}

export function deviceKeyFromPem(pem: string): DeviceKey {
  const signer = NodeKeySigner.fromPem(pem)
  return { pem, signer, publicKey: signer.publicKey, id: signer.publicKey.id }
}

const fixtureKeys = new Map<FixtureKeyName, DeviceKey>()

/** One of the vectors' keys: 'device', 'impostor', 'evil' (4096 bits) or 'small/device' (1024 bits). */
export function fixtureDeviceKey(name: FixtureKeyName): DeviceKey {
  let k = fixtureKeys.get(name)
  if (!k) {
    k = deviceKeyFromPem(keyPem(name, 'pkcs1'))
    fixtureKeys.set(name, k)
  }
  return k
}

/** A fresh RSA key (2048 bits by default: the vault's minimum, and fast), generated off the event loop. */
export function generateDeviceKey(bits = 2048): Promise<DeviceKey> {
  return new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: bits, publicExponent: 65537, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }, (err, _pub, priv) => {
      if (err) reject(err)
      else resolve(deviceKeyFromPem(priv))
    })
  })
}

/** `n` fresh keys, generated concurrently (libuv's thread pool). */
export function generateDeviceKeys(n: number, bits = 2048): Promise<DeviceKey[]> {
  return Promise.all(Array.from({ length: n }, () => generateDeviceKey(bits)))
}

// --- HTTP ------------------------------------------------------------------------------

export interface HttpResult {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

export interface HttpOptions {
  method?: string
  headers?: Record<string, string>
  /** a Buffer is sent with Content-Length; an array of chunks is sent chunked (no Content-Length) */
  body?: Buffer | string | Buffer[]
  timeoutMs?: number
  /** CA certificate (PEM) to trust for https URLs; default: do not check (test vaults use a self-signed cert) */
  ca?: string
  /** resolve with the status and headers (empty body) and close the connection: for streams that never end */
  headOnly?: boolean
}

/** One request on its own connection. Rejects on transport errors and after `timeoutMs` (default 15 s). */
export function httpRequest(url: string | URL, o: HttpOptions = {}): Promise<HttpResult> {
  const u = typeof url === 'string' ? new URL(url) : url
  const isHttps = u.protocol === 'https:'
  const headers: Record<string, string> = { ...o.headers }
  const chunked = Array.isArray(o.body)
  if (o.body !== undefined && !chunked) headers['content-length'] = String(Buffer.byteLength(o.body as Buffer | string))
  const opts = {
    method: o.method ?? 'GET',
    headers,
    agent: false as const,
    ...(isHttps ? (o.ca ? { ca: o.ca } : { rejectUnauthorized: false }) : {}),
  }
  return new Promise((resolve, reject) => {
    const req = (isHttps ? httpsRequestFn : httpRequestFn)(u, opts, (res) => {
      if (o.headOnly && res.statusCode === 200) {
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.alloc(0) })
        req.destroy()
        return
      }
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.setTimeout(o.timeoutMs ?? 15_000, () => req.destroy(new Error(`${opts.method} ${u.href}: no answer within ${o.timeoutMs ?? 15_000} ms`)))
    req.on('error', reject)
    if (chunked) {
      for (const c of o.body as Buffer[]) req.write(c)
      req.end()
    } else {
      req.end(o.body)
    }
  })
}

/** The JSON body of a response (throws with the text when it is not JSON). */
export function jsonOf<T = Record<string, unknown>>(r: HttpResult): T {
  try {
    return JSON.parse(r.body.toString('utf8')) as T
  } catch {
    throw new Error(`expected a JSON body, got status ${r.status}: ${r.body.toString('utf8').slice(0, 300)}`)
  }
}

/** Resolves a path like 'request-id' against the vault's base URL (https://host:port/v1/). */
export function endpoint(baseUrl: string, path: string): URL {
  return new URL(path, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`)
}

/** POST {base}request-id, as snapd does (no body); the raw answer. */
export function postRequestId(baseUrl: string, apiKey: string | undefined, o: Pick<HttpOptions, 'timeoutMs' | 'ca'> = {}): Promise<HttpResult> {
  return httpRequest(endpoint(baseUrl, 'request-id'), { ...o, method: 'POST', headers: apiKey === undefined ? {} : { 'api-key': apiKey } })
}

/** A fresh request-id; throws when the vault does not answer 200. */
export async function fetchRequestId(baseUrl: string, apiKey: string, o: Pick<HttpOptions, 'timeoutMs' | 'ca'> = {}): Promise<string> {
  const r = await postRequestId(baseUrl, apiKey, o)
  if (r.status !== 200) throw new Error(`request-id: status ${r.status}: ${r.body.toString('utf8').slice(0, 300)}`)
  const id = jsonOf<{ 'request-id'?: unknown }>(r)['request-id']
  if (typeof id !== 'string' || id === '') throw new Error(`request-id: no request-id in ${r.body.toString('utf8')}`)
  return id
}

/** POST {base}serial with the given stream; Content-Type is snapd's unless overridden. */
export function postSerial(baseUrl: string, apiKey: string | undefined, body: HttpOptions['body'], o: Omit<HttpOptions, 'method' | 'body'> = {}): Promise<HttpResult> {
  const headers: Record<string, string> = { 'content-type': SERIAL_REQUEST_TYPE, 'snap-device-capabilities': 'serial-stream', ...o.headers }
  if (apiKey !== undefined) headers['api-key'] = apiKey
  return httpRequest(endpoint(baseUrl, 'serial'), { ...o, method: 'POST', headers, ...(body === undefined ? {} : { body }) })
}

// --- serial-requests --------------------------------------------------------------------

export interface SerialRequestInput {
  key: DeviceKey
  brandId: string
  model: string
  requestId: string
  /** proposed serial (the `serial` header); omitted when undefined */
  serial?: string
  /** serial-request body (gadget registration.body) */
  body?: string
  /** extra or overriding headers */
  headers?: Record<string, HeaderValue | undefined>
}

/** The self-signed serial-request assertion. */
export function signSerialRequest(i: SerialRequestInput): Promise<Assertion> {
  const headers: Record<string, HeaderValue | undefined> = {
    'brand-id': i.brandId,
    model: i.model,
    'request-id': i.requestId,
    'device-key': i.key.publicKey.encode(),
    ...(i.serial === undefined ? {} : { serial: i.serial }),
    ...i.headers,
  }
  return signAssertion('serial-request', headers, i.body, i.key.signer)
}

/**
 * The stream snapd POSTs: the serial-request, then (when given) the model
 * assertion, separated as snapd's asserts.Encoder does (one blank line).
 */
export async function serialRequestStream(i: SerialRequestInput & { modelAssertion?: string | Buffer }): Promise<Buffer> {
  const req = Buffer.from((await signSerialRequest(i)).encode())
  return joinStream([req, ...(i.modelAssertion === undefined ? [] : [Buffer.from(i.modelAssertion)])])
}

/** Joins encoded assertions into one stream: each ends with LF, one more LF between them. */
export function joinStream(parts: (Uint8Array | string)[]): Buffer {
  const out: Buffer[] = []
  parts.forEach((p, n) => {
    const b = typeof p === 'string' ? Buffer.from(p) : Buffer.from(p.buffer, p.byteOffset, p.byteLength)
    if (n > 0) out.push(Buffer.from('\n'))
    out.push(b)
    if (b[b.length - 1] !== 10) out.push(Buffer.from('\n'))
  })
  return Buffer.concat(out)
}

export interface RegisterInput extends Omit<SerialRequestInput, 'requestId'> {
  /** default: a fresh one from the vault */
  requestId?: string
  modelAssertion?: string | Buffer
  ca?: string
  timeoutMs?: number
}

/** The whole first-boot exchange: request-id, serial-request stream, POST. Resolves with the serial answer and what was sent. */
export async function registerDevice(baseUrl: string, apiKey: string, i: RegisterInput): Promise<HttpResult & { requestId: string; sent: Buffer }> {
  const net = { ...(i.ca ? { ca: i.ca } : {}), ...(i.timeoutMs ? { timeoutMs: i.timeoutMs } : {}) }
  const requestId = i.requestId ?? (await fetchRequestId(baseUrl, apiKey, net))
  const sent = await serialRequestStream({ ...i, requestId })
  const r = await postSerial(baseUrl, apiKey, sent, net)
  return { ...r, requestId, sent }
}
