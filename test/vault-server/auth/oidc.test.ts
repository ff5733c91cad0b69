/**
 * The OpenID Connect login against a real provider over loopback: the
 * development IdP (oidc-provider) behind the forger proxy of
 * test/helpers/oidc.ts, and openid-client doing the real checks. Each test
 * starts its own IdP; each row of the refusal table checks its code and
 * reason and looks for the login's secrets in the error.
 */
import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { inspect } from 'node:util'
import { decodeJwt } from 'jose'
import { VaultError, toErrorBody } from '@sv/shared'
import {
  OidcLogin,
  OidcAuthConfigSchema,
  OidcProviderConfigSchema,
  ExternalBaseUrlSchema,
  checkReturnTo,
  oidcRedirectUri,
} from '../../../vault-server/src/auth/oidc.js'
import { startDevIdentityProvider } from '../../../vault-server/src/auth/dev-idp.js'
import { LoginPageError, MemoryLoginTransactionStore, TEST_ACCOUNT, driveLogin, httpGet, startTestIdp, type TestIdp, type TestIdpOptions } from '../../helpers/oidc.js'

const ROOT = new URL('../../../', import.meta.url).pathname

/** A free loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address() as { port: number }
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

function withParam(url: URL, name: string, value: string): URL {
  const u = new URL(url)
  u.searchParams.set(name, value)
  return u
}

/** A started login driven through the IdP's login page: the callback URL in hand. */
async function loggedIn(t: ExecutionContext, o: { idp?: TestIdpOptions; login?: Parameters<TestIdp['newLogin']>[0]; returnTo?: string } = {}) {
  const idp = await startTestIdp(t, o.idp)
  const { login, store } = idp.newLogin(o.login)
  const s = await login.start(idp.providerId, o.returnTo === undefined ? {} : { returnTo: o.returnTo })
  const callback = await driveLogin(s.authorizationUrl, idp.account, idp.redirectUri)
  return { idp, login, store, s, callback }
}

// --- the happy path ---------------------------------------------------------------

test('oidc: a full code flow with PKCE S256, state and nonce returns the e-mail', async (t) => {
  const { idp, login, store, s, callback } = await loggedIn(t, { returnTo: '/dashboard/keys?brand=acme#top' })
  const auth = new URL(s.authorizationUrl)
  t.is(auth.origin, idp.issuer)
  t.is(auth.searchParams.get('response_type'), 'code')
  t.is(auth.searchParams.get('client_id'), idp.clientId)
  t.is(auth.searchParams.get('redirect_uri'), 'http://127.0.0.1:8443/v1/auth/callback')
  t.is(auth.searchParams.get('scope'), 'openid email profile')
  t.is(auth.searchParams.get('code_challenge_method'), 'S256')
  t.regex(auth.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/)
  t.regex(auth.searchParams.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/)
  t.regex(auth.searchParams.get('nonce') ?? '', /^[A-Za-z0-9_-]{43}$/)

  const [tx] = store.history
  t.truthy(tx)
  t.is(tx!.id, s.transactionId)
  t.is<string | null, string | null>(tx!.state, auth.searchParams.get('state'))
  t.is<string | null, string | null>(tx!.nonce, auth.searchParams.get('nonce'))
  t.regex(tx!.codeVerifier, /^[A-Za-z0-9_-]{43}$/)
  t.is(tx!.expiresAt - tx!.createdAt, 10 * 60_000)
  t.is(s.expiresAt, tx!.expiresAt)
  t.is(tx!.returnTo, '/dashboard/keys?brand=acme#top')
  t.is(callback.searchParams.get('state'), tx!.state)
  t.is(callback.searchParams.get('iss'), idp.issuer)

  const who = await login.finish(s.transactionId, callback)
  t.deepEqual(who, {
    providerId: 'test-idp',
    issuer: idp.issuer,
    subject: who.subject,
    email: 'ada.lovelace@example.com',
    emailVerified: true,
    name: 'Ada Lovelace',
    returnTo: '/dashboard/keys?brand=acme#top',
  })
  t.regex(who.subject, /^dev-[0-9a-f]{20}$/)
  t.is(store.size, 0, 'the transaction is used up')
  // the id token really came through the token endpoint, signed by the provider's key
  t.is(idp.seen.requests.token, 1)
  t.is(typeof idp.seen.tokenResponses[0]?.id_token, 'string')
})

test('oidc: two finishes of one transaction at once: one logs in, the other is refused', async (t) => {
  const { idp, login, s, callback } = await loggedIn(t)
  const results = await Promise.allSettled([login.finish(s.transactionId, callback), login.finish(s.transactionId, callback)])
  t.is(results.filter((r) => r.status === 'fulfilled').length, 1)
  const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
  t.is(refused.reason.code, 'SV_LOGIN_INVALID')
  t.is(refused.reason.details.reason, 'transaction')
  t.is(idp.seen.requests.token, 1, 'the code went to the provider once')
})

test('oidc: the provider requires PKCE: an authorization request without a challenge is refused', async (t) => {
  const idp = await startTestIdp(t)
  const { login } = idp.newLogin()
  const s = await login.start(idp.providerId)
  const doc = JSON.parse((await httpGet(`${idp.issuer}/.well-known/openid-configuration`)).body) as Record<string, unknown>
  t.deepEqual(doc.code_challenge_methods_supported, ['S256'])
  const bare = new URL(s.authorizationUrl)
  bare.searchParams.delete('code_challenge')
  bare.searchParams.delete('code_challenge_method')
  const res = await httpGet(bare)
  t.true(res.status >= 300 && res.status < 400)
  const back = new URL(String(res.headers.location))
  t.is(`${back.origin}${back.pathname}`, idp.redirectUri)
  t.is(back.searchParams.get('error'), 'invalid_request')
  t.regex(back.searchParams.get('error_description') ?? '', /PKCE/)
  // and a plain challenge is not accepted either
  const plain = new URL(s.authorizationUrl)
  plain.searchParams.set('code_challenge_method', 'plain')
  const res2 = await httpGet(plain)
  t.is(new URL(String(res2.headers.location)).searchParams.get('error'), 'invalid_request')
})

test('oidc: the e-mail is read from userinfo when the id token does not carry it', async (t) => {
  const { idp, login, s, callback } = await loggedIn(t, { idp: { claimsInIdToken: false } })
  const who = await login.finish(s.transactionId, callback)
  t.is(who.email, 'ada.lovelace@example.com')
  t.true(who.emailVerified)
  t.is(who.name, 'Ada Lovelace')
  // it really was not in the id token
  const idToken = idp.seen.tokenResponses[0]?.id_token as string
  t.is(decodeJwt(idToken).email, undefined)
})

test('oidc: an unverified e-mail is accepted when requireEmailVerified is false', async (t) => {
  const { login, s, callback } = await loggedIn(t, {
    idp: { accounts: [{ ...TEST_ACCOUNT, emailVerified: false }] },
    login: { provider: { requireEmailVerified: false } },
  })
  const who = await login.finish(s.transactionId, callback)
  t.is(who.email, 'ada.lovelace@example.com')
  t.false(who.emailVerified)
})

test('oidc: a public client (no secret) logs in with PKCE alone', async (t) => {
  const { idp, login, s, callback } = await loggedIn(t, { idp: { publicClient: true } })
  t.is(idp.clientSecret, undefined)
  t.is((await login.finish(s.transactionId, callback)).email, 'ada.lovelace@example.com')
  t.deepEqual(idp.seen.tokenAuth, ['none'])
})

test('oidc: the client authenticates with client_secret_basic by default, client_secret_post when configured', async (t) => {
  const basic = await loggedIn(t)
  await basic.login.finish(basic.s.transactionId, basic.callback)
  t.deepEqual(basic.idp.seen.tokenAuth, ['basic'])
  // oidc-provider takes either method from a client registered for one, so the forger tells which was sent
  const post = await loggedIn(t, { login: { provider: { tokenEndpointAuthMethod: 'client_secret_post' } } })
  await post.login.finish(post.s.transactionId, post.callback)
  t.deepEqual(post.idp.seen.tokenAuth, ['post'])
})

test('oidc: discovery is cached per provider, shared while in flight, and redone after its TTL', async (t) => {
  const idp = await startTestIdp(t)
  let now = Date.now()
  const { login } = idp.newLogin({ options: { now: () => now, discoveryTtlMs: 60_000 } })
  await Promise.all([login.start(idp.providerId), login.start(idp.providerId), login.start(idp.providerId)])
  await login.start(idp.providerId)
  t.is(idp.seen.requests.discovery, 1)
  now += 60_001
  await login.start(idp.providerId)
  t.is(idp.seen.requests.discovery, 2)
})

test('oidc: a failed discovery is not cached: the next login rediscovers', async (t) => {
  const idp = await startTestIdp(t)
  const { login } = idp.newLogin()
  idp.fail({ mode: 'status503', only: 'discovery' })
  const err = await t.throwsAsync(login.start(idp.providerId), { instanceOf: VaultError })
  t.is(err!.code, 'SV_OIDC_PROVIDER_UNAVAILABLE')
  t.is(err!.status, 503)
  t.is(err!.retryAfter, 5)
  t.deepEqual(err!.details, { providerId: 'test-idp', reason: 'status', status: 503 })
  idp.fail(undefined)
  const s = await login.start(idp.providerId)
  t.truthy(s.authorizationUrl)
  t.is(idp.seen.requests.discovery, 2)
})

test('oidc: a provider found unavailable at the token endpoint is rediscovered next time', async (t) => {
  const { idp, login, s, callback } = await loggedIn(t)
  idp.fail({ mode: 'status503', only: 'token' })
  await t.throwsAsync(login.finish(s.transactionId, callback), { code: 'SV_OIDC_PROVIDER_UNAVAILABLE' })
  idp.fail(undefined)
  await login.start(idp.providerId)
  t.is(idp.seen.requests.discovery, 2)
})

test('oidc: returnTo keeps a path on our origin, normalised', (t) => {
  t.is(checkReturnTo('/'), '/')
  t.is(checkReturnTo('/dashboard/?tab=keys#x'), '/dashboard/?tab=keys#x')
  t.is(checkReturnTo('/a/../b/./c'), '/b/c')
  t.is(checkReturnTo('/%2F%2Fevil.example'), '/%2F%2Fevil.example', 'an encoded slash stays a path')
})

// --- refusals ---------------------------------------------------------------------

interface Outcome {
  error: unknown
  /** every secret this scenario handled: client secret, codes, verifiers, states, nonces, transaction ids, tokens */
  secrets: string[]
}

function secretsOf(idp: TestIdp | undefined, store: MemoryLoginTransactionStore | undefined, callbacks: URL[] = []): string[] {
  const out: string[] = []
  if (idp?.clientSecret) out.push(idp.clientSecret)
  for (const tx of store?.history ?? []) out.push(tx.id, tx.codeVerifier, tx.state, tx.nonce)
  for (const cb of callbacks) {
    const code = cb.searchParams.get('code')
    if (code) out.push(code)
  }
  for (const r of idp?.seen.tokenResponses ?? []) {
    for (const k of ['access_token', 'id_token', 'refresh_token']) if (typeof r[k] === 'string') out.push(r[k] as string)
  }
  out.push(...(idp?.seen.forged ?? []))
  return out
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a refusal, the login succeeded')
}

interface Refusal {
  code: string
  reason: string
  status: number
  run(t: ExecutionContext): Promise<Outcome>
}

/** A login whose id token the forger replaces. */
function forged(f: Parameters<TestIdp['forgeNext']>[0] | ((idp: TestIdp) => Parameters<TestIdp['forgeNext']>[0])): Refusal['run'] {
  return async (t) => {
    const { idp, login, store, s, callback } = await loggedIn(t)
    idp.forgeNext(typeof f === 'function' ? f(idp) : f)
    const error = await caught(login.finish(s.transactionId, callback))
    t.is(idp.seen.forged.length, 1, 'the forger replaced the id token')
    return { error, secrets: secretsOf(idp, store, [callback]) }
  }
}

function badReturnTo(returnTo: string): Refusal {
  return {
    code: 'SV_REQUEST_INVALID',
    reason: 'return_to',
    status: 400,
    run: async (t) => {
      const idp = await startTestIdp(t)
      const { login, store } = idp.newLogin()
      const error = await caught(login.start(idp.providerId, { returnTo }))
      t.is(store.size, 0, 'no transaction was saved')
      t.is((error as VaultError).details?.field, 'returnTo')
      return { error, secrets: secretsOf(idp, store) }
    },
  }
}

const REFUSALS: Record<string, Refusal> = {
  'an unknown provider': {
    code: 'SV_LOGIN_INVALID',
    reason: 'provider',
    status: 400,
    run: async (t) => {
      const idp = await startTestIdp(t)
      const { login, store } = idp.newLogin()
      return { error: await caught(login.start('no-such-idp')), secrets: secretsOf(idp, store) }
    },
  },
  'a state mismatch': {
    code: 'SV_LOGIN_INVALID',
    reason: 'state',
    status: 400,
    run: async (t) => {
      const { idp, login, store, s, callback } = await loggedIn(t)
      const error = await caught(login.finish(s.transactionId, withParam(callback, 'state', randomBytes(32).toString('base64url'))))
      // the transaction is gone: the genuine callback cannot be used after a mismatch
      await t.throwsAsync(login.finish(s.transactionId, callback), { code: 'SV_LOGIN_INVALID' })
      t.is(idp.seen.requests.token, 0, 'no code was sent to the provider')
      return { error, secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'a callback without state': {
    code: 'SV_LOGIN_INVALID',
    reason: 'state',
    status: 400,
    run: async (t) => {
      const { idp, login, store, s, callback } = await loggedIn(t)
      const bare = new URL(callback)
      bare.searchParams.delete('state')
      return { error: await caught(login.finish(s.transactionId, bare)), secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'an unknown transaction': {
    code: 'SV_LOGIN_INVALID',
    reason: 'transaction',
    status: 400,
    run: async (t) => {
      const { idp, login, store, callback } = await loggedIn(t)
      return { error: await caught(login.finish(randomBytes(32).toString('base64url'), callback)), secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'an expired transaction': {
    code: 'SV_LOGIN_INVALID',
    reason: 'expired',
    status: 400,
    run: async (t) => {
      let now = Date.now()
      const { idp, login, store, s, callback } = await loggedIn(t, { login: { options: { now: () => now } } })
      now += 10 * 60_000
      return { error: await caught(login.finish(s.transactionId, callback)), secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'an already used transaction (the same callback replayed)': {
    code: 'SV_LOGIN_INVALID',
    reason: 'transaction',
    status: 400,
    run: async (t) => {
      const { idp, login, store, s, callback } = await loggedIn(t)
      await login.finish(s.transactionId, callback)
      return { error: await caught(login.finish(s.transactionId, callback)), secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'a replayed code in a fresh transaction': {
    code: 'SV_OIDC_CODE_INVALID',
    reason: 'invalid_grant',
    status: 401,
    run: async (t) => {
      const { idp, login, store, s, callback } = await loggedIn(t)
      await login.finish(s.transactionId, callback)
      const s2 = await login.start(idp.providerId)
      const state2 = new URL(s2.authorizationUrl).searchParams.get('state')!
      const error = await caught(login.finish(s2.transactionId, withParam(callback, 'state', state2)))
      t.is(idp.seen.requests.token, 2, 'the provider saw the replay')
      return { error, secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'a code redeemed with another PKCE verifier': {
    code: 'SV_OIDC_CODE_INVALID',
    reason: 'invalid_grant',
    status: 401,
    run: async (t) => {
      const { idp, login, store, callback } = await loggedIn(t)
      const other = await login.start(idp.providerId)
      const state2 = new URL(other.authorizationUrl).searchParams.get('state')!
      return { error: await caught(login.finish(other.transactionId, withParam(callback, 'state', state2))), secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'an error returned by the provider (error=access_denied)': {
    code: 'SV_LOGIN_INVALID',
    reason: 'provider_error',
    status: 400,
    run: async (t) => {
      const idp = await startTestIdp(t)
      const { login, store } = idp.newLogin()
      const s = await login.start(idp.providerId)
      const cb = new URL(idp.redirectUri)
      cb.searchParams.set('error', 'access_denied')
      cb.searchParams.set('error_description', 'the user said no')
      cb.searchParams.set('state', new URL(s.authorizationUrl).searchParams.get('state')!)
      cb.searchParams.set('iss', idp.issuer)
      const error = await caught(login.finish(s.transactionId, cb))
      t.is((error as VaultError).details?.error, 'access_denied')
      return { error, secrets: secretsOf(idp, store) }
    },
  },
  'a callback naming another issuer (RFC 9207 iss)': {
    code: 'SV_LOGIN_INVALID',
    reason: 'iss',
    status: 400,
    run: async (t) => {
      const { idp, login, store, s, callback } = await loggedIn(t)
      const error = await caught(login.finish(s.transactionId, withParam(callback, 'iss', 'https://evil.example')))
      t.is(idp.seen.requests.token, 0)
      return { error, secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'a callback without a code': {
    code: 'SV_LOGIN_INVALID',
    reason: 'code',
    status: 400,
    run: async (t) => {
      const { idp, login, store, s, callback } = await loggedIn(t)
      const bare = new URL(callback)
      bare.searchParams.delete('code')
      return { error: await caught(login.finish(s.transactionId, bare)), secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'a callback with the code twice': {
    code: 'SV_LOGIN_INVALID',
    reason: 'callback',
    status: 400,
    run: async (t) => {
      const { idp, login, store, s, callback } = await loggedIn(t)
      const twice = new URL(callback)
      twice.searchParams.append('code', callback.searchParams.get('code')!)
      return { error: await caught(login.finish(s.transactionId, twice)), secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'a callback carrying an id token (implicit flow)': {
    code: 'SV_LOGIN_INVALID',
    reason: 'callback',
    status: 400,
    run: async (t) => {
      const { idp, login, store, s, callback } = await loggedIn(t)
      return { error: await caught(login.finish(s.transactionId, withParam(callback, 'id_token', 'eyJhbGciOiJub25lIn0.e30.'))), secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'an id token with a wrong iss': { code: 'SV_OIDC_TOKEN_INVALID', reason: 'iss', status: 401, run: forged({ iss: 'https://evil.example' }) },
  'an id token with a wrong aud': { code: 'SV_OIDC_TOKEN_INVALID', reason: 'aud', status: 401, run: forged({ aud: 'someone-else' }) },
  'an id token for several audiences without azp': { code: 'SV_OIDC_TOKEN_INVALID', reason: 'aud', status: 401, run: forged((idp) => ({ aud: ['someone-else', idp.clientId], claims: { azp: undefined } })) },
  'an expired id token': { code: 'SV_OIDC_TOKEN_INVALID', reason: 'exp', status: 401, run: forged({ exp: Math.floor(Date.now() / 1000) - 3600 }) },
  'an id token with another nonce': { code: 'SV_OIDC_TOKEN_INVALID', reason: 'nonce', status: 401, run: forged({ nonce: 'not-the-nonce-of-this-login' }) },
  'an id token without nonce': { code: 'SV_OIDC_TOKEN_INVALID', reason: 'nonce', status: 401, run: forged({ claims: { nonce: undefined } }) },
  'an id token signed by another key under the provider kid': { code: 'SV_OIDC_TOKEN_INVALID', reason: 'signature', status: 401, run: forged({ signWith: 'other-key' }) },
  'an id token signed by a key the provider does not publish': { code: 'SV_OIDC_TOKEN_INVALID', reason: 'signature', status: 401, run: forged({ signWith: 'unknown-kid' }) },
  'an unverified e-mail when verification is required': {
    code: 'SV_OIDC_TOKEN_INVALID',
    reason: 'email_verified',
    status: 401,
    run: async (t) => {
      const { idp, login, store, s, callback } = await loggedIn(t, { idp: { accounts: [{ ...TEST_ACCOUNT, emailVerified: false }] } })
      return { error: await caught(login.finish(s.transactionId, callback)), secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'an email_verified claim forged to false': { code: 'SV_OIDC_TOKEN_INVALID', reason: 'email_verified', status: 401, run: forged({ claims: { email_verified: false } }) },
  'a login without an e-mail claim (not in the id token, not in userinfo)': {
    code: 'SV_OIDC_TOKEN_INVALID',
    reason: 'email',
    status: 401,
    run: async (t) => {
      const { idp, login, store, s, callback } = await loggedIn(t, { login: { provider: { emailClaim: 'upn' } } })
      const error = await caught(login.finish(s.transactionId, callback))
      return { error, secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'a provider that is down (discovery refused)': {
    code: 'SV_OIDC_PROVIDER_UNAVAILABLE',
    reason: 'network',
    status: 503,
    run: async () => {
      const store = new MemoryLoginTransactionStore()
      const clientSecret = `secret-${randomBytes(24).toString('base64url')}`
      const login = new OidcLogin({
        providers: [{ id: 'down', displayName: 'Down', issuer: `http://127.0.0.1:${await closedPort()}`, clientId: 'vault', clientSecret, allowInsecureHttp: true }],
        redirectUri: oidcRedirectUri('http://127.0.0.1:8443'),
        transactions: store,
      })
      const error = await caught(login.start('down'))
      return { error, secrets: [clientSecret] }
    },
  },
  'a token endpoint answering 503': {
    code: 'SV_OIDC_PROVIDER_UNAVAILABLE',
    reason: 'status',
    status: 503,
    run: async (t) => {
      const { idp, login, store, s, callback } = await loggedIn(t)
      idp.fail({ mode: 'status503', only: 'token' })
      return { error: await caught(login.finish(s.transactionId, callback)), secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'a token endpoint refusing connections': {
    code: 'SV_OIDC_PROVIDER_UNAVAILABLE',
    reason: 'network',
    status: 503,
    run: async (t) => {
      const { idp, login, store, s, callback } = await loggedIn(t)
      idp.fail({ mode: 'refuse', only: 'token' })
      return { error: await caught(login.finish(s.transactionId, callback)), secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'a token endpoint that does not answer in time': {
    code: 'SV_OIDC_PROVIDER_UNAVAILABLE',
    reason: 'timeout',
    status: 503,
    run: async (t) => {
      // short, yet long enough for discovery on a machine busy with the other tests
      const { idp, login, store, s, callback } = await loggedIn(t, { login: { options: { timeoutMs: 3000 } } })
      idp.fail({ mode: 'hang', only: 'token' })
      const started = Date.now()
      const error = await caught(login.finish(s.transactionId, callback))
      t.true(Date.now() - started < 10_000, 'bounded by timeoutMs')
      return { error, secrets: secretsOf(idp, store, [callback]) }
    },
  },
  'a wrong client secret (our misconfiguration, not the user’s)': {
    code: 'SV_INTERNAL',
    reason: 'client_auth',
    status: 500,
    run: async (t) => {
      const wrong = `wrong-${randomBytes(24).toString('base64url')}`
      const { idp, login, store, s, callback } = await loggedIn(t, { login: { provider: { clientSecret: wrong } } })
      const error = await caught(login.finish(s.transactionId, callback))
      return { error, secrets: [wrong, ...secretsOf(idp, store, [callback])] }
    },
  },
  'an issuer that differs from the discovered one': {
    code: 'SV_INTERNAL',
    reason: 'issuer_mismatch',
    status: 500,
    run: async (t) => {
      const idp = await startTestIdp(t)
      const { login, store } = idp.newLogin({ provider: { issuer: idp.issuer.replace('127.0.0.1', 'localhost') } })
      return { error: await caught(login.start(idp.providerId)), secrets: secretsOf(idp, store) }
    },
  },
  'returnTo as an absolute URL': badReturnTo('https://evil.example/'),
  'returnTo as a protocol-relative URL (//evil)': badReturnTo('//evil.example/x'),
  'returnTo with a backslash (/\\evil)': badReturnTo('/\\evil.example'),
  'returnTo as javascript:': badReturnTo('javascript:alert(1)'),
  'returnTo as a relative path without /': badReturnTo('evil.example'),
  'returnTo with a line break': badReturnTo('/ok\r\nSet-Cookie: x=1'),
}

/** Where an error would show a secret: its JSON, its wire body, util.inspect with causes, its stack. */
function shownSecret(error: unknown, secrets: string[]): string | undefined {
  const views = [JSON.stringify(error), JSON.stringify(toErrorBody(error)), inspect(error, { depth: Infinity, showHidden: true }), String((error as Error).stack)]
  for (const secret of secrets) {
    if (secret.length < 16) return `a short secret would match by chance: ${secret.length} characters`
    for (const view of views) if (view.includes(secret)) return view.slice(0, 400)
  }
  return undefined
}

// Every refusal is checked twice: its code and reason, and that none of the
// secrets its login handled (client secret, code, verifier, state, nonce,
// transaction id, access and id tokens, forged ones included) shows in it.
for (const [name, r] of Object.entries(REFUSALS)) {
  test(`oidc: refuses ${name} (${r.code}, ${r.reason}) and shows no secret`, async (t) => {
    const { error, secrets } = await r.run(t)
    t.true(error instanceof VaultError, String(error))
    const e = error as VaultError
    t.is<string, string>(e.code, r.code)
    t.is(e.status, r.status)
    t.is(e.details?.reason, r.reason)
    if (r.status === 503) t.is(e.retryAfter, 5)
    t.true(secrets.length > 0)
    t.is(shownSecret(error, secrets), undefined)
  })
}

test('oidc: the secret check finds a secret in a message, in details and in a cause', (t) => {
  const secret = randomBytes(24).toString('base64url')
  t.truthy(shownSecret(new VaultError('SV_LOGIN_INVALID', `code ${secret}`), [secret]))
  t.truthy(shownSecret(new VaultError('SV_INTERNAL', 'x', { details: { body: { access_token: secret } } }), [secret]))
  t.truthy(shownSecret(new VaultError('SV_INTERNAL', 'x', { cause: Object.assign(new Error('y'), { cause: { body: secret } }) }), [secret]))
  t.is(shownSecret(new VaultError('SV_INTERNAL', 'x'), [secret]), undefined)
})

// --- the development IdP ------------------------------------------------------

test('oidc: the dev IdP refuses a wrong password at its login page', async (t) => {
  const idp = await startTestIdp(t)
  const { login, store } = idp.newLogin()
  const s = await login.start(idp.providerId)
  for (const creds of [{ email: idp.account.email, password: 'wrong password' }, { email: 'nobody@example.com', password: idp.account.password }]) {
    const err = await t.throwsAsync(driveLogin(s.authorizationUrl, creds, idp.redirectUri), { instanceOf: LoginPageError })
    t.is(err!.status, 401)
    t.regex(err!.html, /Wrong e-mail address or password/)
    t.notRegex(err!.html, new RegExp(idp.account.password))
  }
  t.is(idp.seen.requests.token, 0)
  t.is(store.size, 1, 'the login is still pending')
})

test('oidc: the dev IdP login page escapes what it shows and loads nothing from outside', async (t) => {
  const idp = await startTestIdp(t)
  const { login } = idp.newLogin()
  const s = await login.start(idp.providerId)
  const url = withParam(new URL(s.authorizationUrl), 'login_hint', '"><script>alert(1)</script>')
  const first = await httpGet(url)
  const page = await httpGet(new URL(String(first.headers.location), url), { headers: { cookie: ([] as string[]).concat(first.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ') } })
  t.is(page.status, 200)
  t.regex(String(page.headers['content-type']), /^text\/html/)
  t.regex(String(page.headers['content-security-policy']), /default-src 'none'/)
  t.false(page.body.includes('<script>'))
  t.true(page.body.includes('&#34;&#62;&#60;script&#62;'))
  t.notRegex(page.body, /(src|href)=/, 'no external assets')
})

test('oidc: the dev IdP serves its discovery document and public keys only', async (t) => {
  const idp = await startDevIdentityProvider({ accounts: [TEST_ACCOUNT], clients: [{ clientId: 'demo', clientSecret: 'demo-secret-demo-secret', redirectUris: ['http://127.0.0.1:8443/v1/auth/callback'] }] })
  t.teardown(() => idp.close())
  t.is(idp.url, idp.issuer)
  t.regex(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/)
  const res = await httpGet(`${idp.url}/.well-known/openid-configuration`)
  t.is(res.status, 200)
  const doc = JSON.parse(res.body) as Record<string, unknown>
  t.is(doc.issuer, idp.issuer)
  t.is(doc.authorization_endpoint, `${idp.issuer}/auth`)
  t.is(doc.token_endpoint, `${idp.issuer}/token`)
  t.is(doc.userinfo_endpoint, `${idp.issuer}/me`)
  t.deepEqual(doc.code_challenge_methods_supported, ['S256'])
  t.deepEqual(doc.response_types_supported, ['code'])
  t.true((doc.scopes_supported as string[]).includes('email'))
  const jwks = JSON.parse((await httpGet(String(doc.jwks_uri))).body) as { keys: Record<string, unknown>[] }
  t.is(jwks.keys.length, 1)
  t.is(jwks.keys[0]!.kty, 'RSA')
  t.is(jwks.keys[0]!.d, undefined, 'no private parts')
})

test('oidc: the dev IdP is loopback only', async (t) => {
  await t.throwsAsync(startDevIdentityProvider({ host: '0.0.0.0', accounts: [], clients: [{ clientId: 'x', redirectUris: ['http://127.0.0.1/cb'] }] }), { code: 'SV_CONFIG_INVALID' })
  await t.throwsAsync(startDevIdentityProvider({ issuer: 'https://idp.example.com', accounts: [], clients: [{ clientId: 'x', redirectUris: ['http://127.0.0.1/cb'] }] }), { code: 'SV_CONFIG_INVALID' })
})

test('oidc: the dev IdP closes cleanly: a process that logged in exits by itself', async (t) => {
  // a child process runs a whole login (openid-client's fetch keeps connections
  // alive) and closes the IdP; if anything still held its event loop it would not exit
  const script = `
    import { startTestIdp, driveLogin } from './test/helpers/oidc.ts'
    const idp = await startTestIdp(undefined)
    const { login } = idp.newLogin()
    const s = await login.start(idp.providerId)
    const who = await login.finish(s.transactionId, await driveLogin(s.authorizationUrl, idp.account, idp.redirectUri))
    await idp.close()
    try { await fetch(idp.idp.url + '/.well-known/openid-configuration'); console.log('still listening') } catch { console.log('closed') }
    console.log('done ' + who.email)
  `
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', () => {})
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])))
  clearTimeout(timer)
  t.is(signal, null, `the process had to be killed; output: ${out}`)
  t.is(code, 0, out)
  t.regex(out, /closed\ndone ada\.lovelace@example\.com/)
})

// --- configuration ------------------------------------------------------------

test('oidc: config: provider defaults', (t) => {
  const p = OidcProviderConfigSchema.parse({ id: 'ubuntu-one', displayName: 'Ubuntu One', issuer: 'https://login.ubuntu.com', clientId: 'vault', clientSecret: 's' })
  t.deepEqual(p.scopes, ['openid', 'email', 'profile'])
  t.is(p.emailClaim, 'email')
  t.true(p.requireEmailVerified)
  t.false(p.allowInsecureHttp)
  t.deepEqual(OidcAuthConfigSchema.parse({}), { providers: [] })
})

test('oidc: config: refuses insecure or malformed providers, listing every problem', (t) => {
  const base = { id: 'idp', displayName: 'IdP', clientId: 'vault' }
  const bad: [unknown, string][] = [
    [{ ...base, issuer: 'http://idp.example.com' }, 'issuer'],
    [{ ...base, issuer: 'http://idp.example.com', allowInsecureHttp: true }, 'issuer'],
    [{ ...base, issuer: 'https://idp.example.com?x=1' }, 'issuer'],
    [{ ...base, issuer: 'not a url' }, 'issuer'],
    [{ ...base, id: 'Not A Slug', issuer: 'https://idp.example.com' }, 'id'],
    [{ ...base, issuer: 'https://idp.example.com', scopes: ['email'] }, 'scopes'],
    [{ ...base, issuer: 'https://idp.example.com', tokenEndpointAuthMethod: 'client_secret_basic' }, 'clientSecret'],
    [{ ...base, issuer: 'https://idp.example.com', clientSecret: 's', tokenEndpointAuthMethod: 'none' }, 'clientSecret'],
    [{ ...base, issuer: 'https://idp.example.com', extra: 1 }, ''],
  ]
  for (const [input, field] of bad) {
    const r = OidcProviderConfigSchema.safeParse(input)
    t.false(r.success, JSON.stringify(input))
    if (field) t.true(r.error!.issues.some((i) => i.path[0] === field), `${JSON.stringify(input)}: ${JSON.stringify(r.error!.issues)}`)
  }
  t.true(OidcProviderConfigSchema.safeParse({ ...base, issuer: 'http://127.0.0.1:9000', allowInsecureHttp: true }).success)
  const dup = OidcAuthConfigSchema.safeParse({ providers: [{ ...base, issuer: 'https://a.example' }, { ...base, issuer: 'https://b.example' }] })
  t.false(dup.success)
  const err = t.throws(() => new OidcLogin({ providers: [{ ...base, issuer: 'http://idp.example.com', clientSecret: 'never-shown-1234' }], redirectUri: 'https://vault.example.com/v1/auth/callback', transactions: new MemoryLoginTransactionStore() }), { instanceOf: VaultError })
  t.is(err!.code, 'SV_CONFIG_INVALID')
  t.false(JSON.stringify(err).includes('never-shown-1234'))
})

test('oidc: config: the redirect URI is {base}/v1/auth/callback', (t) => {
  t.is(oidcRedirectUri('https://vault.example.com'), 'https://vault.example.com/v1/auth/callback')
  t.is(oidcRedirectUri('https://example.com/vault/'), 'https://example.com/vault/v1/auth/callback')
  t.true(ExternalBaseUrlSchema.safeParse('http://127.0.0.1:8443').success)
  t.false(ExternalBaseUrlSchema.safeParse('http://vault.example.com').success)
  t.false(ExternalBaseUrlSchema.safeParse('https://vault.example.com/?x').success)
})
