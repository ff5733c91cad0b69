/**
 * A real OpenID provider for tests, in this process: the development IdP
 * (oidc-provider) on 127.0.0.1:0 with signing keys the test knows, behind a
 * loopback proxy, the *forger*, which is the issuer the client sees. The
 * forger passes everything through unchanged until a test asks it to:
 *
 *   const idp = await startTestIdp(t)                 // closed at teardown
 *   const { login, store } = idp.newLogin()           // an OidcLogin + memory transactions
 *   const s = await login.start(idp.providerId)
 *   const callback = await driveLogin(s.authorizationUrl, idp.account, idp.redirectUri)
 *   idp.forgeNext({ iss: 'https://evil.example' })    // the next token response's id_token, re-signed
 *   await login.finish(s.transactionId, callback)
 *
 * A forgery re-signs the provider's real id token (jose, with the provider's
 * private JWK, or with another key) after changing its claims, so what is
 * tested is openid-client's real verification, not a mock. `fail()` makes the
 * forger refuse connections, answer 503 or hang, for all requests or for the
 * token endpoint only. `seen` records every token response and forged token,
 * for the no-secret-in-errors test.
 *
 * `driveLogin` is the browser: it follows redirects with a cookie jar, posts
 * the IdP's login form once and stops at the redirect to our callback.
 * Each request has its own connection (agent: false) and a bounded time.
 */
import type { ExecutionContext } from 'ava'
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import { startDevIdentityProvider, type DevIdentityProvider, type DevIdpAccount } from '../../vault-server/src/auth/dev-idp.js'
import {
  OidcLogin,
  oidcRedirectUri,
  type LoginTransaction,
  type LoginTransactionStore,
  type OidcLoginOptions,
  type OidcProviderConfigInput,
} from '../../vault-server/src/auth/oidc.js'

/** In-memory LoginTransactionStore: `take` is get-and-delete in one step (single-threaded JS). */
export class MemoryLoginTransactionStore implements LoginTransactionStore {
  readonly #items = new Map<string, LoginTransaction>()
  /** every transaction ever put, for tests that look for leaked secrets */
  readonly history: LoginTransaction[] = []
  async put(tx: LoginTransaction): Promise<void> {
    this.#items.set(tx.id, structuredClone(tx))
    this.history.push(structuredClone(tx))
  }
  async take(id: string): Promise<LoginTransaction | undefined> {
    const tx = this.#items.get(id)
    this.#items.delete(id)
    return tx
  }
  get size(): number {
    return this.#items.size
  }
}

export interface IdTokenForgery {
  iss?: string
  aud?: string | string[]
  /** seconds since the epoch */
  exp?: number
  nonce?: string
  /** any other claims to set (undefined deletes) */
  claims?: Record<string, unknown>
  /** 'other-key': same kid, another RSA key; 'unknown-kid': another key under a kid the JWKS lacks */
  signWith?: 'provider' | 'other-key' | 'unknown-kid'
}

export type ForgerFailure = { mode: 'refuse' | 'status503' | 'hang'; only?: 'token' | 'discovery' }

export interface TestIdpOptions {
  accounts?: DevIdpAccount[]
  claimsInIdToken?: boolean
  /** a public client (no secret) */
  publicClient?: boolean
}

export interface TestIdp {
  /** the forger's URL: what the client is configured with */
  issuer: string
  /** the dev IdP itself */
  idp: DevIdentityProvider
  providerId: string
  clientId: string
  clientSecret: string | undefined
  redirectUri: string
  /** the first account (password known) */
  account: DevIdpAccount
  /** the provider's private signing JWK */
  signingKey: JWK
  /** queue a forgery for the next token response */
  forgeNext(f: IdTokenForgery): void
  /** make the forger fail until called with undefined */
  fail(f: ForgerFailure | undefined): void
  /** token responses passed through, forged id tokens, and requests by kind */
  seen: { tokenResponses: Record<string, unknown>[]; forged: string[]; requests: Record<'token' | 'discovery' | 'other', number>; tokenAuth: ('basic' | 'post' | 'none')[] }
  /** a provider entry for OidcLogin, with overrides */
  providerConfig(over?: Partial<OidcProviderConfigInput>): OidcProviderConfigInput
  /** an OidcLogin for this IdP over a fresh memory store */
  newLogin(over?: { provider?: Partial<OidcProviderConfigInput>; options?: Partial<OidcLoginOptions> }): { login: OidcLogin; store: MemoryLoginTransactionStore }
  close(): Promise<void>
}

interface Keys {
  provider: JWK
  other: JWK
}
let keysCache: Promise<Keys> | undefined

async function privateJwk(kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true })
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' }
}

/** The provider's key and a stranger's, made once per test process (RSA generation is the slow part). */
export function testKeys(): Promise<Keys> {
  keysCache ??= (async () => ({ provider: await privateJwk('test-idp-key-1'), other: await privateJwk('test-idp-key-1') }))()
  return keysCache
}

export const TEST_ACCOUNT: DevIdpAccount = { email: 'Ada.Lovelace@Example.com', password: 'correct horse battery staple', name: 'Ada Lovelace' }

export const VAULT_BASE = 'http://127.0.0.1:8443'

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port))
  })
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve()
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c)
  return Buffer.concat(chunks)
}

/** Starts the dev IdP behind the forger; both are closed at the test's teardown. */
export async function startTestIdp(t: ExecutionContext | undefined, o: TestIdpOptions = {}): Promise<TestIdp> {
  const keys = await testKeys()
  const accounts = o.accounts ?? [TEST_ACCOUNT]
  const clientId = `vault-${randomBytes(4).toString('hex')}`
  const clientSecret = o.publicClient ? undefined : `secret-${randomBytes(24).toString('base64url')}`
  const redirectUri = oidcRedirectUri(VAULT_BASE)
  const forgeries: IdTokenForgery[] = []
  const seen: TestIdp['seen'] = { tokenResponses: [], forged: [], requests: { token: 0, discovery: 0, other: 0 }, tokenAuth: [] }
  let failure: ForgerFailure | undefined
  let upstream: URL | undefined
  const hanging = new Set<ServerResponse>()

  const forger = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0]!
      const kind = path === '/token' ? 'token' : path.startsWith('/.well-known/') ? 'discovery' : 'other'
      seen.requests[kind]++
      if (failure && (failure.only === undefined || failure.only === kind)) {
        if (failure.mode === 'refuse') return void req.socket.destroy()
        if (failure.mode === 'status503') return void res.writeHead(503, { 'content-type': 'text/plain' }).end('unavailable')
        hanging.add(res)
        return
      }
      const body = await readAll(req)
      if (kind === 'token') {
        const basic = /^Basic /i.test(String(req.headers.authorization ?? ''))
        seen.tokenAuth.push(basic ? 'basic' : new URLSearchParams(body.toString('utf8')).has('client_secret') ? 'post' : 'none')
      }
      const up = await new Promise<IncomingMessage>((resolve, reject) => {
        const headers = { ...req.headers, 'content-length': String(body.length) }
        delete headers['transfer-encoding']
        const r = request(new URL(req.url ?? '/', upstream), { method: req.method, headers, agent: false }, resolve)
        r.on('error', reject)
        r.end(body)
      })
      let payload = await readAll(up)
      const headers = { ...up.headers }
      if (kind === 'token' && up.statusCode === 200) {
        const json = JSON.parse(payload.toString('utf8')) as Record<string, unknown>
        seen.tokenResponses.push(json)
        const f = forgeries.shift()
        if (f && typeof json.id_token === 'string') {
          json.id_token = await forge(json.id_token, f, keys)
          seen.forged.push(json.id_token as string)
          payload = Buffer.from(JSON.stringify(json))
        }
      }
      delete headers['transfer-encoding']
      headers['content-length'] = String(payload.length)
      res.writeHead(up.statusCode ?? 502, headers).end(payload)
    })().catch(() => {
      if (!res.headersSent) res.writeHead(502).end()
      else res.destroy()
    })
  })
  const forgerPort = await listen(forger)
  const issuer = `http://127.0.0.1:${forgerPort}`
  let idp: DevIdentityProvider
  try {
    idp = await startDevIdentityProvider({
      host: '127.0.0.1',
      port: 0,
      issuer,
      accounts,
      clients: [{ clientId, ...(clientSecret ? { clientSecret } : {}), redirectUris: [redirectUri] }],
      jwks: { keys: [keys.provider as import('node:crypto').JsonWebKey] },
      ...(o.claimsInIdToken === false ? { claimsInIdToken: false } : {}),
    })
  } catch (err) {
    await closeServer(forger)
    throw err
  }
  upstream = new URL(idp.url)

  let closed: Promise<void> | undefined
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      for (const r of hanging) r.destroy()
      await closeServer(forger)
      await idp.close()
    })())
  t?.teardown(close)

  const providerId = 'test-idp'
  const providerConfig = (over: Partial<OidcProviderConfigInput> = {}): OidcProviderConfigInput => ({
    id: providerId,
    displayName: 'Test IdP',
    issuer,
    clientId,
    ...(clientSecret ? { clientSecret } : {}),
    allowInsecureHttp: true,
    ...over,
  })
  return {
    issuer,
    idp,
    providerId,
    clientId,
    clientSecret,
    redirectUri,
    account: accounts[0]!,
    signingKey: keys.provider,
    forgeNext: (f) => void forgeries.push(f),
    fail: (f) => {
      failure = f
      if (!f) {
        for (const r of hanging) r.destroy()
        hanging.clear()
      }
    },
    seen,
    providerConfig,
    newLogin: (over = {}) => {
      const store = new MemoryLoginTransactionStore()
      const login = new OidcLogin({ providers: [providerConfig(over.provider)], redirectUri, transactions: store, timeoutMs: 15_000, ...over.options })
      return { login, store }
    },
    close,
  }
}

async function forge(idToken: string, f: IdTokenForgery, keys: Keys): Promise<string> {
  const header = decodeProtectedHeader(idToken)
  const claims: Record<string, unknown> = { ...decodeJwt(idToken) }
  if (f.iss !== undefined) claims.iss = f.iss
  if (f.aud !== undefined) claims.aud = f.aud
  if (f.exp !== undefined) claims.exp = f.exp
  if (f.nonce !== undefined) claims.nonce = f.nonce
  for (const [k, v] of Object.entries(f.claims ?? {})) {
    if (v === undefined) delete claims[k]
    else claims[k] = v
  }
  const jwk = f.signWith === 'other-key' || f.signWith === 'unknown-kid' ? keys.other : keys.provider
  const kid = f.signWith === 'unknown-kid' ? 'not-in-the-jwks' : header.kid
  return new SignJWT(claims).setProtectedHeader({ ...header, alg: 'RS256', ...(kid ? { kid } : {}) }).sign(await importJWK(jwk, 'RS256'))
}

// --- the browser ---------------------------------------------------------------

export interface HttpAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One HTTP request on its own connection, bounded in time. */
export function httpGet(url: string | URL, o: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const r = request(url, { method: o.method ?? 'GET', headers: o.headers, agent: false, timeout: o.timeoutMs ?? 10_000 }, (res) => {
      readAll(res).then((b) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b.toString('utf8') }), reject)
    })
    r.on('timeout', () => r.destroy(new Error(`timeout: ${o.method ?? 'GET'} ${String(url)}`)))
    r.on('error', reject)
    r.end(o.body)
  })
}

/** The IdP answered with a page where a redirect was expected (e.g. the login form again, 401). */
export class LoginPageError extends Error {
  constructor(
    readonly status: number,
    readonly html: string,
  ) {
    super(`identity provider answered ${status} instead of a redirect`)
  }
}

function unescapeHtml(s: string): string {
  return s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&')
}

/**
 * Logs in like a browser: GET the authorization URL, follow redirects with a
 * cookie jar (cookies by name; path and domain ignored, which a single test
 * host permits), post the login form once, and return the URL of the
 * redirect to `redirectUri` (the callback, not fetched).
 */
export async function driveLogin(authorizationUrl: string, creds: { email: string; password: string }, redirectUri: string): Promise<URL> {
  const jar = new Map<string, string>()
  let url = new URL(authorizationUrl)
  let post: string | undefined
  let posted = false
  for (let step = 0; step < 20; step++) {
    const headers: Record<string, string> = {}
    if (jar.size > 0) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    if (post !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded'
    const res = await httpGet(url, { method: post === undefined ? 'GET' : 'POST', headers, ...(post !== undefined ? { body: post } : {}) })
    const wasPost = post !== undefined
    post = undefined
    for (const c of ([] as string[]).concat(res.headers['set-cookie'] ?? [])) {
      const [pair, ...attrs] = c.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq).trim()
      const value = pair!.slice(eq + 1).trim()
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]!) < Date.now()))
      if (!value || expired) jar.delete(name)
      else jar.set(name, value)
    }
    if (res.status >= 300 && res.status < 400 && typeof res.headers.location === 'string') {
      const next = new URL(res.headers.location, url)
      if (next.href.startsWith(`${redirectUri}?`) || next.href === redirectUri) return next
      url = next
      continue
    }
    const form = /<form method="post" action="([^"]+)"/.exec(res.body)
    if (res.status === 200 && form && !wasPost && !posted) {
      url = new URL(unescapeHtml(form[1]!), url)
      post = new URLSearchParams({ email: creds.email, password: creds.password }).toString()
      posted = true
      continue
    }
    throw new LoginPageError(res.status, res.body)
  }
  throw new Error('driveLogin: more than 20 steps')
}
