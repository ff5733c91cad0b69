/**
 * Servers for the agent's transport tests: plain HTTP and HTTPS on
 * 127.0.0.1:0 with a scripted handler, certificates with chosen validity
 * (@peculiar/x509, as the vault's dev TLS), a CONNECT proxy, and a
 * "misbehaving front" that forwards to a real vault unless the script says
 * otherwise. Every server is closed by t.teardown; every hang is bounded by
 * the test's own timeouts.
 */
import type { ExecutionContext } from 'ava'
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net'
import { createHash, randomBytes, X509Certificate, type webcrypto } from 'node:crypto'
import { request as httpsRequest } from 'node:https'
import { encodePem } from '@sv/shared'
import { getWebCrypto } from '@sv/shared/node'

export interface TestCert {
  certPem: string
  keyPem: string
  /** base64 SHA-256 of the certificate's SubjectPublicKeyInfo (a pin) */
  spkiSha256: string
}

/** A self-signed server certificate for localhost/127.0.0.1, valid from `notBefore` for `days`. */
export async function makeCert(options: { notBefore?: Date; days?: number } = {}): Promise<TestCert> {
  await import('reflect-metadata')
  const x509 = await import('@peculiar/x509')
  const crypto = getWebCrypto()
  x509.cryptoProvider.set(crypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
  const keys = (await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as unknown as webcrypto.CryptoKeyPair
  const notBefore = options.notBefore ?? new Date(Date.now() - 3600_000)
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: 'CN=device-agent test',
    notBefore,
    notAfter: new Date(notBefore.getTime() + (options.days ?? 30) * 86400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: 'localhost' },
        { type: 'ip', value: '127.0.0.1' },
      ]),
    ],
  })
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', keys.privateKey as never)
  const certPem = cert.toString('pem')
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' })
  return { certPem, keyPem: encodePem('PRIVATE KEY', new Uint8Array(pkcs8 as ArrayBuffer)), spkiSha256: createHash('sha256').update(spki).digest('base64') }
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | Promise<void>

export interface TestServer {
  url: string
  port: number
  server: Server
  /** every request seen: method, path, headers, body, time (performance.now()) */
  requests: { method: string; path: string; headers: IncomingMessage['headers']; body: Buffer; at: number }[]
  /** connections accepted so far */
  connections(): number
  close(): Promise<void>
}

/** An HTTP(S) server on 127.0.0.1 (port 0 unless given) whose requests go to `handler` after the body is read. */
export async function startServer(t: ExecutionContext | undefined, handler: Handler, options: { tls?: TestCert; port?: number; prefix?: string } = {}): Promise<TestServer> {
  const requests: TestServer['requests'] = []
  const sockets = new Set<Socket>()
  let connections = 0
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, at: performance.now() })
      Promise.resolve(handler(req, res, body)).catch((err: unknown) => {
        res.statusCode = 599
        res.end(String(err))
      })
    })
  }
  const server: Server = options.tls ? (createHttpsServer({ cert: options.tls.certPem, key: options.tls.keyPem }, listener) as unknown as Server) : createHttpServer(listener)
  server.on(options.tls ? 'secureConnection' : 'connection', () => connections++)
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  let closed = false
  const ts: TestServer = {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}${options.prefix ?? '/v1/'}`,
    port,
    server,
    requests,
    connections: () => connections,
    close: async () => {
      if (closed) return
      closed = true
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  t?.teardown(() => ts.close())
  return ts
}

/** A free loopback port (listen on 0, close): for "the server comes up later" tests. */
export async function freePort(): Promise<number> {
  const s = createHttpServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

/** A CONNECT proxy (what HTTPS_PROXY points at); `connects` lists the targets it tunnelled to. */
export async function startConnectProxy(t: ExecutionContext): Promise<{ url: string; connects: string[] }> {
  const connects: string[] = []
  const server = createHttpServer((_req, res) => {
    res.statusCode = 405
    res.end()
  })
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    connects.push(req.url ?? '')
    const [host, port] = (req.url ?? '').split(':')
    const upstream = netConnect(Number(port), host!, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length > 0) upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    sockets.add(upstream)
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((r) => server.close(() => r()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connects }
}

/** What the misbehaving front does with one request. */
export type FrontAction =
  | { kind: 'forward' }
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  /** never answer (the agent's header timeout must end it) */
  | { kind: 'hang' }
  /** forward after a delay */
  | { kind: 'delay'; ms: number }

/**
 * A plain-HTTP front for a real vault: each request is first offered to
 * `script(path, index)` (index counts requests to that path, from 0), which
 * decides whether it is forwarded to `target` (the vault, HTTPS with `ca`)
 * or answered with a misbehaviour.
 */
export async function startMisbehavingFront(
  t: ExecutionContext,
  target: { url: string; ca?: string },
  script: (path: string, index: number) => FrontAction,
  options: { port?: number } = {},
): Promise<TestServer> {
  const counts = new Map<string, number>()
  const base = new URL(target.url)
  return startServer(
    t,
    async (req, res, body) => {
      const path = (req.url ?? '').replace(/^\/v1\//, '')
      const index = counts.get(path) ?? 0
      counts.set(path, index + 1)
      const action = script(path, index)
      if (action.kind === 'hang') return
      if (action.kind === 'status') {
        res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers })
        res.end(action.body === undefined ? '' : JSON.stringify(action.body))
        return
      }
      if (action.kind === 'delay') await new Promise((r) => setTimeout(r, action.ms))
      const up = new URL(path, base)
      const send = up.protocol === 'https:' ? httpsRequest : httpRequest
      const headers = { ...req.headers, host: up.host }
      await new Promise<void>((resolve) => {
        const upReq = send(up, { method: req.method, headers, ...(target.ca ? { ca: target.ca } : {}) }, (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers)
          upRes.pipe(res)
          upRes.on('end', () => resolve())
        })
        upReq.on('error', (err) => {
          res.statusCode = 502
          res.end(String(err))
          resolve()
        })
        upReq.end(body)
      })
    },
    options,
  )
}
