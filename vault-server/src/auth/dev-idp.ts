/**
 * A development OpenID provider, for the demo (`npm start`) and the tests:
 * panva's oidc-provider on a loopback address, with a login page of its own
 * (e-mail and password, no external assets) and consent given automatically
 * to the configured clients. Not for production: accounts and passwords are
 * plain options, and grants, sessions and codes live in oidc-provider's
 * in-memory adapter (an LRU of 1000 entries per instance, gone at close; it
 * prints a "you MUST change it" warning at start, rightly for production).
 *
 * What it enforces, all by oidc-provider: the authorization code flow only
 * (no implicit, no refresh tokens), PKCE required with S256 (the only method
 * oidc-provider 9 supports), exact redirect URIs, codes used once (a replay
 * also revokes the tokens issued with it), client authentication with
 * client_secret_basic (or none for a client without a secret). ID tokens are
 * RS256 and carry `sub`, `email`, `email_verified` (true unless the account
 * says otherwise) and `name`; with `claimsInIdToken: false` the e-mail and
 * name are served by the userinfo endpoint only, as OIDC Core §5.4 providers
 * do (oidc-provider's `conformIdTokenClaims`).
 *
 * oidc-provider is imported when the first IdP starts, so the vault does not
 * load it (or koa) unless the demo or a test asks. oidc-provider 9 states
 * support for Node 22 LTS and later and prints an "Unsupported runtime"
 * warning at import on Node 20; it runs there (the tests show it), but that
 * is one more reason it stays a development tool.
 *
 * `close()` ends open connections and the listener; nothing else holds the
 * event loop (oidc-provider starts no timers), so a process can exit after.
 */
import { createHash, generateKeyPair, randomBytes, timingSafeEqual, type JsonWebKey } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import type { Configuration, JWK, Provider } from 'oidc-provider'
import { VaultError } from '@sv/shared'

export interface DevIdpAccount {
  email: string
  password: string
  name: string
  /** default true */
  emailVerified?: boolean
  /** default: derived from the e-mail ("dev-" + 20 hex of its SHA-256) */
  sub?: string
}

export interface DevIdpClient {
  clientId: string
  /** without one the client is public (token_endpoint_auth_method none) */
  clientSecret?: string
  redirectUris: string[]
}

export interface DevIdentityProviderOptions {
  /** a loopback address (default 127.0.0.1) */
  host?: string
  /** default 0: any free port */
  port?: number
  accounts: DevIdpAccount[]
  clients: DevIdpClient[]
  /**
   * the issuer to claim (default http://host:port); a loopback http(s) URL
   * with no path, e.g. a proxy in front of this IdP
   */
  issuer?: string
  /** private signing keys (RSA, with kid); default: one fresh 2048-bit RS256 key */
  jwks?: { keys: JsonWebKey[] }
  /** put e-mail and name in the id token (default true) or only in userinfo */
  claimsInIdToken?: boolean
}

export interface DevIdentityProvider {
  /** the issuer identifier, as in discovery and in id tokens */
  issuer: string
  /** where this IdP listens (the issuer, unless one was given) */
  url: string
  close(): Promise<void>
}

const MAX_FORM_BYTES = 8 * 1024

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

function configInvalid(issue: string): VaultError {
  return new VaultError('SV_CONFIG_INVALID', `development identity provider: ${issue}`, { details: { issues: [issue] } })
}

/** Starts the development IdP; see the file header. */
export async function startDevIdentityProvider(o: DevIdentityProviderOptions): Promise<DevIdentityProvider> {
  const host = o.host ?? '127.0.0.1'
  if (!isLoopbackHost(host)) throw configInvalid(`host must be a loopback address, not ${host}`)
  if (o.issuer !== undefined) {
    let u: URL
    try {
      u = new URL(o.issuer)
    } catch {
      throw configInvalid('issuer must be a URL')
    }
    if (!/^https?:$/.test(u.protocol) || !isLoopbackHost(u.hostname) || u.pathname !== '/' || u.search || u.hash) {
      throw configInvalid('issuer must be a loopback http(s) URL without path, query or fragment')
    }
  }
  if (o.clients.length === 0) throw configInvalid('at least one client is needed')
  const accounts = new Map<string, Required<DevIdpAccount>>()
  for (const a of o.accounts) {
    const email = a.email.trim().toLowerCase()
    const sub = a.sub ?? `dev-${createHash('sha256').update(email).digest('hex').slice(0, 20)}`
    accounts.set(sub, { ...a, email, sub, emailVerified: a.emailVerified ?? true })
  }
  const keys = o.jwks?.keys ?? [await generateSigningKey()]
  const clientIds = new Set(o.clients.map((c) => c.clientId))

  const { Provider } = await import('oidc-provider')
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  try {
    const { port } = server.address() as AddressInfo
    const url = `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`
    const issuer = o.issuer ?? url
    const configuration: Configuration = {
      clients: o.clients.map((c) => ({
        client_id: c.clientId,
        ...(c.clientSecret !== undefined ? { client_secret: c.clientSecret, token_endpoint_auth_method: 'client_secret_basic' } : { token_endpoint_auth_method: 'none' }),
        redirect_uris: c.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
      })),
      jwks: { keys: keys as JWK[] },
      cookies: { keys: [randomBytes(32).toString('base64url')] },
      responseTypes: ['code'],
      pkce: { required: () => true },
      features: { devInteractions: { enabled: false } },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
      conformIdTokenClaims: o.claimsInIdToken === false,
      findAccount: (_ctx, sub) => {
        const a = accounts.get(sub)
        if (!a) return undefined
        return { accountId: sub, claims: () => ({ sub, email: a.email, email_verified: a.emailVerified, name: a.name }) }
      },
      // explicit values keep oidc-provider from printing "you SHOULD change" notices
      ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
      clientBasedCORS: () => false,
      renderError: (ctx, out) => {
        ctx.type = 'html'
        ctx.body = page('Sign-in error', `<p>${escapeHtml(String(out.error ?? 'error'))}: ${escapeHtml(String(out.error_description ?? ''))}</p>`)
      },
    }
    const provider = new Provider(issuer, configuration)
    const callback = provider.callback()
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '/').split('?')[0]!
      const m = /^\/interaction\/([A-Za-z0-9_-]{1,64})(\/login)?$/.exec(path)
      if (!m) {
        void callback(req, res)
        return
      }
      interaction(provider, req, res, m[1]!, m[2] !== undefined, accounts, clientIds).catch((err: unknown) => {
        if (res.headersSent) return void res.destroy()
        const expired = (err as { name?: unknown }).name === 'SessionNotFound'
        sendHtml(res, expired ? 400 : 500, page('Sign-in error', expired ? '<p>This sign-in has expired or was already used. Go back to the application and start again.</p>' : '<p>Internal error.</p>'))
      })
    })
    let closing: Promise<void> | undefined
    return {
      issuer,
      url,
      close: () => (closing ??= closeServer(server)),
    }
  } catch (err) {
    await closeServer(server)
    throw err
  }
}

async function interaction(
  provider: Provider,
  req: IncomingMessage,
  res: ServerResponse,
  uid: string,
  isLoginPost: boolean,
  accounts: ReadonlyMap<string, Required<DevIdpAccount>>,
  clientIds: ReadonlySet<string>,
): Promise<void> {
  const details = await provider.interactionDetails(req, res)
  if (details.uid !== uid) return sendHtml(res, 400, page('Sign-in error', '<p>This sign-in does not match your browser session; start again.</p>'))
  const clientId = String(details.params.client_id ?? '')
  if (isLoginPost) {
    if (req.method !== 'POST') return sendHtml(res, 405, page('Sign-in error', '<p>Method not allowed.</p>'))
    if (details.prompt.name !== 'login') return sendHtml(res, 400, page('Sign-in error', '<p>No sign-in is expected here; start again.</p>'))
    const form = await readForm(req)
    const email = (form.get('email') ?? '').trim().toLowerCase()
    const password = form.get('password') ?? ''
    const account = [...accounts.values()].find((a) => a.email === email)
    // compare digests so the time taken does not depend on where the passwords differ
    const ok = account !== undefined && timingSafeEqual(sha256(password), sha256(account.password))
    if (!ok) return sendHtml(res, 401, loginPage(uid, email, 'Wrong e-mail address or password.'))
    return provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false })
  }
  if (req.method !== 'GET') return sendHtml(res, 405, page('Sign-in error', '<p>Method not allowed.</p>'))
  if (details.prompt.name === 'login') {
    const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint : ''
    return sendHtml(res, 200, loginPage(uid, hint))
  }
  if (details.prompt.name === 'consent' && clientIds.has(clientId) && details.session?.accountId) {
    // automatic consent for our own clients: grant what the prompt says is missing
    const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> }
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: details.session.accountId, clientId })
    if (!grant) return sendHtml(res, 400, page('Sign-in error', '<p>This sign-in has expired; start again.</p>'))
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '))
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims)
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '))
    const grantId = await grant.save()
    return provider.interactionFinished(req, res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true })
  }
  return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the development provider cannot complete this prompt' }, { mergeWithLastSubmission: false })
}

async function generateSigningKey(): Promise<JsonWebKey> {
  const { privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 })
  return { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_FORM_BYTES) throw new Error('form too large')
    chunks.push(chunk)
  }
  return new URLSearchParams(type === 'application/x-www-form-urlencoded' ? Buffer.concat(chunks).toString('utf8') : '')
}

async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`)
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.statusCode = status
  res.setHeader('Content-Type', 'text/html; charset=utf-8')
  res.setHeader('Cache-Control', 'no-store')
  // no scripts, no external anything; the form posts to this origin
  res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
  res.setHeader('Referrer-Policy', 'no-referrer')
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.end(html)
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font:16px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f4;color:#111}main{max-width:22rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:6px;box-shadow:0 1px 4px #0002}
h1{font-size:1.3rem;margin:0 0 .5rem}label{display:block;margin:.8rem 0 .2rem}input{box-sizing:border-box;width:100%;padding:.5rem;font:inherit}
button{margin-top:1.2rem;width:100%;padding:.6rem;font:inherit;background:#e95420;color:#fff;border:0;border-radius:4px}.note{color:#666;font-size:.85rem}.error{color:#b00020}</style>
</head><body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>
`
}

function loginPage(uid: string, email: string, error?: string): string {
  return page(
    'Development sign-in',
    `<p class="note">Development identity provider: not for production.</p>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="email">E-mail address</label><input id="email" type="email" name="email" value="${escapeHtml(email)}" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" type="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`,
  )
}
