import test from 'ava'
import type { ExecutionContext } from 'ava'
import { AgentError } from '../../../device-agent/src/errors.js'
import { HttpVaultClient, type HttpVaultClientOptions } from '../../../device-agent/src/vault/http-vault-client.js'
import { proxyFor } from '../../../device-agent/src/vault/http-transport.js'
import { freePort, makeCert, sendJson, startConnectProxy, startServer, type Handler, type TestCert } from '../helpers/servers.js'

const certs: { good?: Promise<TestCert>; future?: Promise<TestCert>; other?: Promise<TestCert> } = {}
const goodCert = () => (certs.good ??= makeCert())
const futureCert = () => (certs.future ??= makeCert({ notBefore: new Date(Date.now() + 86400_000) }))
const otherCert = () => (certs.other ??= makeCert())

function client(t: ExecutionContext, url: string, o: Partial<HttpVaultClientOptions> = {}): HttpVaultClient {
  const c = new HttpVaultClient({ url, apiKey: 'k-123', userAgent: 'device-agent/test', ...o })
  t.teardown(() => c.close())
  return c
}

async function agentError(t: ExecutionContext, p: Promise<unknown>): Promise<AgentError> {
  const err = await t.throwsAsync(p, { instanceOf: AgentError })
  return err as AgentError
}

const ok: Handler = (req, res) => {
  if (req.url?.endsWith('request-id')) return sendJson(res, 200, { 'request-id': 'REQ-1' })
  res.writeHead(200, { 'content-type': 'application/x.ubuntu.assertion' })
  res.end('type: serial\n')
}

test('http client: request-id and serial send what snapd sends', async (t) => {
  const s = await startServer(t, ok, { prefix: '/v1' })
  const c = client(t, s.url, { headers: { 'X-Extra': 'yes', 'Content-Type': 'text/plain' } })
  t.is(c.endpoint, `http://127.0.0.1:${s.port}/v1/`, 'a / is appended to the base path')
  t.is(await c.requestId(), 'REQ-1')
  const answer = await c.serial(Buffer.from('stream'))
  t.is(answer.kind, 'issued')
  if (answer.kind === 'issued') t.is(answer.stream.toString(), 'type: serial\n')
  const [rid, serial] = s.requests
  t.is(rid!.method, 'POST')
  t.is(rid!.path, '/v1/request-id')
  t.is(rid!.body.length, 0)
  t.is(rid!.headers['api-key'], 'k-123')
  t.is(rid!.headers['x-extra'], 'yes')
  t.is(rid!.headers['user-agent'], 'device-agent/test')
  t.is(serial!.path, '/v1/serial')
  t.is(serial!.headers['content-type'], 'application/x.ubuntu.assertion', 'custom headers cannot override Content-Type')
  t.is(serial!.headers['snap-device-capabilities'], 'serial-stream')
  t.is(serial!.body.toString(), 'stream')
})

test('http client: 201 is a serial, 202 is "poll later" with its Retry-After', async (t) => {
  let n = 0
  const s = await startServer(t, (_req, res) => {
    n++
    if (n === 1) {
      res.writeHead(202, { 'retry-after': '3' })
      res.end()
    } else {
      res.writeHead(201)
      res.end('x')
    }
  })
  const c = client(t, s.url)
  t.deepEqual(await c.serial(Buffer.from('a')), { kind: 'pending', retryAfterMs: 3000 })
  t.is((await c.serial(Buffer.from('a'))).kind, 'issued')
})

const statusCases: [string, number, unknown, Record<string, string>, string, Record<string, unknown>][] = [
  ['503 with Retry-After is temporary', 503, { code: 'SV_OVERLOADED', message: 'busy' }, { 'retry-after': '7' }, 'SV_AGENT_VAULT_UNAVAILABLE', { status: 503, code: 'SV_OVERLOADED', retryAfterMs: 7000, reason: 'status' }],
  ['502 is temporary', 502, 'bad gateway', {}, 'SV_AGENT_VAULT_UNAVAILABLE', { status: 502, reason: 'status' }],
  ['429 is temporary', 429, { code: 'SV_RATE_LIMITED', message: 'slow down' }, { 'retry-after': '2' }, 'SV_AGENT_VAULT_UNAVAILABLE', { status: 429, retryAfterMs: 2000 }],
  ['500 is a refusal (snapd: fatal)', 500, { code: 'SV_INTERNAL', message: 'internal error' }, {}, 'SV_AGENT_VAULT_REFUSED', { status: 500, code: 'SV_INTERNAL' }],
  ['409 carries our code and message', 409, { code: 'SV_SERIAL_TAKEN', message: 'taken', requestId: 'r-1' }, {}, 'SV_AGENT_VAULT_REFUSED', { status: 409, code: 'SV_SERIAL_TAKEN', message: 'taken', requestId: 'r-1' }],
  ["400 carries Canonical serial-vault's error_code", 400, { success: false, error_code: 'invalid-nonce', message: 'Nonce is invalid or expired' }, { 'content-type': 'application/json; charset=UTF-8' }, 'SV_AGENT_VAULT_REFUSED', { status: 400, code: 'invalid-nonce', message: 'Nonce is invalid or expired' }],
  ["400 carries snapd's error_list", 400, { error_list: [{ code: 'bad', message: 'no good' }] }, {}, 'SV_AGENT_VAULT_REFUSED', { status: 400, code: 'bad', message: 'no good' }],
  ['a redirect is not followed', 302, '', { location: 'http://elsewhere/' }, 'SV_AGENT_VAULT_REFUSED', { status: 302 }],
]
for (const [title, status, body, headers, code, details] of statusCases) {
  test(`http client: ${title}`, async (t) => {
    const s = await startServer(t, (_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers })
      res.end(typeof body === 'string' ? body : JSON.stringify(body))
    })
    const c = client(t, s.url)
    for (const call of [() => c.requestId(), () => c.serial(Buffer.from('x'))]) {
      const err = await agentError(t, call())
      t.is(err.code as string, code)
      t.like(err.details, details)
    }
  })
}

test('http client: a request-id answer without a request-id is temporary (bad-answer)', async (t) => {
  const s = await startServer(t, (_req, res) => sendJson(res, 200, { nonce: 'x' }))
  const err = await agentError(t, client(t, s.url).requestId())
  t.is(err.code, 'SV_AGENT_VAULT_UNAVAILABLE')
  t.is(err.details?.reason, 'bad-answer')
})

test('http client: an answer over the size bound is refused as bad-answer', async (t) => {
  const s = await startServer(t, (_req, res) => {
    res.writeHead(200)
    res.end(Buffer.alloc(5000, 0x61))
  })
  const err = await agentError(t, client(t, s.url, { maxAnswerBytes: 4096 }).serial(Buffer.from('x')))
  t.is(err.code, 'SV_AGENT_VAULT_UNAVAILABLE')
  t.is(err.details?.reason, 'bad-answer')
})

test('http client: connection refused is temporary (refused)', async (t) => {
  const port = await freePort()
  const err = await agentError(t, client(t, `http://127.0.0.1:${port}/v1/`).requestId())
  t.is(err.code, 'SV_AGENT_VAULT_UNAVAILABLE')
  t.is(err.details?.reason, 'refused')
})

test('http client: no response headers within the headers timeout is temporary (timeout)', async (t) => {
  const s = await startServer(t, () => undefined)
  const started = performance.now()
  const err = await agentError(t, client(t, s.url, { headersTimeoutMs: 300 }).requestId())
  const took = performance.now() - started
  t.is(err.code, 'SV_AGENT_VAULT_UNAVAILABLE')
  t.is(err.details?.reason, 'timeout')
  t.true(took >= 250 && took < 5000, `${took} ms`)
})

test('http client: a trickling answer is cut by the total timeout', async (t) => {
  const s = await startServer(t, (_req, res) => {
    res.writeHead(200)
    const timer = setInterval(() => res.write('a'), 50)
    res.on('close', () => clearInterval(timer))
  })
  const started = performance.now()
  const err = await agentError(t, client(t, s.url, { totalTimeoutMs: 400 }).serial(Buffer.from('x')))
  const took = performance.now() - started
  t.is(err.code, 'SV_AGENT_VAULT_UNAVAILABLE')
  t.is(err.details?.reason, 'timeout')
  t.true(took >= 350 && took < 5000, `${took} ms`)
})

test('http client: aborting rejects with the reason', async (t) => {
  const s = await startServer(t, () => undefined)
  const ac = new AbortController()
  setTimeout(() => ac.abort(new Error('stop')), 50)
  const err = await t.throwsAsync(client(t, s.url).requestId(ac.signal))
  t.is(err?.message, 'stop')
})

test('http client: TLS with the vault CA works; without it the certificate is untrusted', async (t) => {
  const cert = await goodCert()
  const s = await startServer(t, ok, { tls: cert })
  t.is(await client(t, s.url, { ca: cert.certPem }).requestId(), 'REQ-1')
  const err = await agentError(t, client(t, s.url).requestId())
  t.is(err.code, 'SV_AGENT_TLS_FAILED')
  t.is(err.details?.reason, 'untrusted')
})

test('http client: certificate pinning accepts the pinned key and refuses another', async (t) => {
  const cert = await goodCert()
  const other = await otherCert()
  const s = await startServer(t, ok, { tls: cert })
  t.is(await client(t, s.url, { ca: cert.certPem, pins: [cert.spkiSha256] }).requestId(), 'REQ-1')
  const err = await agentError(t, client(t, s.url, { ca: cert.certPem, pins: [other.spkiSha256] }).requestId())
  t.is(err.code, 'SV_AGENT_TLS_FAILED')
  t.is(err.details?.reason, 'pin-mismatch')
})

test('http client: a certificate not yet valid means the clock is not set', async (t) => {
  const cert = await futureCert()
  const s = await startServer(t, ok, { tls: cert })
  const err = await agentError(t, client(t, s.url, { ca: cert.certPem }).requestId())
  t.is(err.code, 'SV_AGENT_CLOCK_UNSET')
  t.is(err.details?.reason, 'cert-not-yet-valid')
  t.is(err.exitCode, 3)
})

test('http client: HTTPS through a CONNECT proxy, with the CA and the pin; NO_PROXY bypasses it', async (t) => {
  const cert = await goodCert()
  const s = await startServer(t, ok, { tls: cert })
  const proxy = await startConnectProxy(t)
  t.is(await client(t, s.url, { ca: cert.certPem, pins: [cert.spkiSha256], proxy: { https: proxy.url } }).requestId(), 'REQ-1')
  t.deepEqual(proxy.connects, [`127.0.0.1:${s.port}`])
  t.is(await client(t, s.url, { ca: cert.certPem, proxy: { https: proxy.url, noProxy: '127.0.0.1' } }).requestId(), 'REQ-1')
  t.is(proxy.connects.length, 1)
  const err = await agentError(t, client(t, s.url, { ca: (await otherCert()).certPem, proxy: { https: proxy.url } }).requestId())
  t.is(err.code, 'SV_AGENT_TLS_FAILED', 'the origin certificate is still checked through the tunnel')
})

test('http client: request-id and serial share one keep-alive connection', async (t) => {
  const cert = await goodCert()
  const s = await startServer(t, ok, { tls: cert })
  const c = client(t, s.url, { ca: cert.certPem })
  await c.requestId()
  await c.serial(Buffer.from('x'))
  await c.requestId()
  t.is(s.connections(), 1)
})

test('http client: plain http through a proxy sends the absolute URI to the proxy', async (t) => {
  const proxy = await startServer(t, ok, { prefix: '' })
  const c = client(t, 'http://vault.invalid:8080/v1/', { proxy: { http: `http://user:pa%20ss@127.0.0.1:${proxy.port}` } })
  t.is(await c.requestId(), 'REQ-1')
  t.is(proxy.requests[0]!.path, 'http://vault.invalid:8080/v1/request-id')
  t.is(proxy.requests[0]!.headers.host, 'vault.invalid:8080')
  t.is(proxy.requests[0]!.headers['proxy-authorization'], `Basic ${Buffer.from('user:pa ss').toString('base64')}`)
})

test('http client: a proxy that refuses the tunnel is a temporary failure', async (t) => {
  const proxy = await startServer(t, ok, { prefix: '' })
  proxy.server.on('connect', (_req, socket: import('node:net').Socket) => socket.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n'))
  const err = await agentError(t, client(t, 'https://vault.invalid/v1/', { proxy: { https: `http://127.0.0.1:${proxy.port}` } }).requestId())
  t.is(err.code, 'SV_AGENT_VAULT_UNAVAILABLE')
  t.like(err.details, { reason: 'transport', code: 'ERR_AGENT_PROXY' })
})

test('proxyFor: HTTPS_PROXY else HTTP_PROXY for https, HTTP_PROXY for http, NO_PROXY like curl', (t) => {
  const p = { https: 'http://sp:3128', http: 'http://hp:3128', noProxy: 'localhost, .corp.example,10.0.0.1 other.example:8443' }
  const via = (u: string, proxy: typeof p | { http?: string; https?: string; noProxy?: string } = p) => proxyFor(new URL(u), proxy)?.host
  t.is(via('https://vault.example/v1/'), 'sp:3128')
  t.is(via('http://vault.example/v1/'), 'hp:3128')
  t.is(via('https://vault.example/v1/', { http: 'hp:3128' }), 'hp:3128', 'no scheme: http:// assumed; http proxy used for https too')
  t.is(via('https://localhost:8443/v1/'), undefined)
  t.is(via('https://vault.corp.example/v1/'), undefined)
  t.is(via('https://corp.example/v1/'), undefined)
  t.is(via('https://10.0.0.1/v1/'), undefined)
  t.is(via('https://other.example:8443/v1/'), undefined)
  t.is(via('https://other.example/v1/'), 'sp:3128', 'port must match when given')
  t.is(via('https://notcorp.example/v1/'), 'sp:3128')
  t.is(via('https://x/v1/', { https: 'http://sp', noProxy: '*' }), undefined)
  t.is(via('https://x/v1/', {}), undefined)
})
