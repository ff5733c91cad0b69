/**
 * The admin login end to end through the vault's own routes, against a real
 * OpenID provider in this process (the development IdP behind the forger,
 * test/helpers/oidc.ts): /v1/auth/login -> the provider's login page ->
 * /v1/auth/callback -> a session cookie that the admin API accepts, with
 * its CSRF token for writes, until logout. Refusals: an e-mail nobody
 * invited, a replayed callback, a forged id token; each audited or typed.
 */
import test from 'ava'
import { startTestVault } from '../../helpers/vault.js'
import { endpoint, httpRequest, jsonOf } from '../../helpers/device.js'
import { driveLogin, startTestIdp, VAULT_BASE } from '../../helpers/oidc.js'
import { adminJson, assertError } from '../http/api.js'

const BRAND = 'acme-brand'

async function setup(t: import('ava').ExecutionContext) {
  const idp = await startTestIdp(t, { accounts: [{ email: 'Ada.Lovelace@Example.com', password: 'correct horse battery staple', name: 'Ada Lovelace' }, { email: 'eve@example.com', password: 'eve-password', name: 'Eve' }] })
  const v = await startTestVault(t, { store: 'memory', workers: 1, config: { auth: { publicUrl: VAULT_BASE, cookieSecure: true, oidc: { providers: [idp.providerConfig()] } } } })
  return { idp, v }
}

/** Starts a login at the vault and returns the login cookie and the provider's page. */
async function startLogin(v: { url: string }, provider: string, ret?: string): Promise<{ cookie: string; location: string }> {
  const r = await httpRequest(endpoint(v.url, `auth/login/${provider}${ret ? `?return=${encodeURIComponent(ret)}` : ''}`))
  if (r.status !== 302) throw new Error(`login start: ${r.status} ${r.body.toString()}`)
  const set = String(r.headers['set-cookie'])
  return { cookie: /sv_login=([^;]+)/.exec(set)![1]!, location: String(r.headers.location) }
}

/** The provider's redirect, delivered to the vault under test (the registered URI names 127.0.0.1:8443). */
function callback(v: { url: string }, url: URL, loginCookie: string) {
  return httpRequest(endpoint(v.url, `auth/callback${url.search}`), { headers: { cookie: `sv_login=${loginCookie}` } })
}

test('login: code flow with PKCE through the vault routes gives a session the admin API accepts, with CSRF for writes, until logout', async (t) => {
  const { idp, v } = await setup(t)
  t.like(jsonOf(await httpRequest(endpoint(v.url, 'auth/providers'))), { providers: [{ id: idp.providerId }] })
  await adminJson(v, 'PUT', `admin/stores/${BRAND}/members/ada.lovelace@example.com`, { role: 'admin' })

  const { cookie, location } = await startLogin(v, idp.providerId, '/v1/admin/stores')
  const auth = new URL(location)
  t.is(auth.searchParams.get('code_challenge_method'), 'S256')
  t.truthy(auth.searchParams.get('state'))
  t.truthy(auth.searchParams.get('nonce'))
  const back = await driveLogin(location, { email: 'Ada.Lovelace@Example.com', password: 'correct horse battery staple' }, idp.redirectUri)
  const done = await callback(v, back, cookie)
  t.is(done.status, 303, done.body.toString())
  t.is(done.headers.location, '/v1/admin/stores')
  const setCookie = ([] as string[]).concat(done.headers['set-cookie'] as string[])
  const session = setCookie.find((c) => c.startsWith('sv_session='))!
  t.regex(session, /HttpOnly/i)
  t.regex(session, /Secure/i)
  t.regex(session, /SameSite=Lax/i)
  t.true(setCookie.some((c) => /^sv_login=;/.test(c)), 'the login cookie is cleared')
  const value = /sv_session=([^;]+)/.exec(session)![1]!

  const me = jsonOf<{ kind: string; via: string; person: { email: string }; csrfToken: string; stores: Array<{ id: string; roles: string[] }> }>(await httpRequest(endpoint(v.url, 'admin/me'), { headers: { cookie: `sv_session=${value}` } }))
  t.like(me, { kind: 'person', via: 'session', person: { email: 'ada.lovelace@example.com' } })
  t.like(me.stores, [{ id: BRAND, roles: ['admin'] }])
  const write = (csrf?: string) =>
    httpRequest(endpoint(v.url, 'admin/stores'), { method: 'POST', headers: { cookie: `sv_session=${value}`, 'content-type': 'application/json', ...(csrf ? { 'x-csrf-token': csrf } : {}) }, body: JSON.stringify({ id: 'acme-lab', parent: BRAND, kind: 'product', displayName: 'Lab' }) })
  assertError(t, await write(), 403, 'SV_CSRF_INVALID')
  t.is((await write(me.csrfToken)).status, 201)

  // the same callback again: the login transaction is spent
  assertError(t, await callback(v, back, cookie), 400, 'SV_LOGIN_INVALID', { reason: 'transaction' })

  // logout ends the session everywhere
  const out = await httpRequest(endpoint(v.url, 'auth/logout'), { method: 'POST', headers: { cookie: `sv_session=${value}`, 'x-csrf-token': me.csrfToken } })
  t.is(out.status, 200)
  assertError(t, await httpRequest(endpoint(v.url, 'admin/me'), { headers: { cookie: `sv_session=${value}` } }), 401, 'SV_SESSION_INVALID')

  const audit = await adminJson<{ entries: Array<{ action: string; actor: { kind: string; email?: string } }> }>(v, 'GET', 'admin/audit?action=session.')
  t.deepEqual(audit.entries.map((e) => e.action), ['session.created', 'session.ended'])
  t.like(audit.entries[0], { actor: { kind: 'person', email: 'ada.lovelace@example.com' } })
  const stores = await adminJson<{ entries: Array<{ action: string; actor: { kind: string } }> }>(v, 'GET', 'admin/audit?action=store.created')
  t.like(stores.entries, [{ actor: { kind: 'person' } }])
})

test('login: an e-mail nobody invited is refused (SV_LOGIN_REFUSED, audited); a forged id token is refused with its reason', async (t) => {
  const { idp, v } = await setup(t)
  const a = await startLogin(v, idp.providerId)
  const back = await driveLogin(a.location, { email: 'eve@example.com', password: 'eve-password' }, idp.redirectUri)
  const refused = await callback(v, back, a.cookie)
  assertError(t, refused, 403, 'SV_LOGIN_REFUSED', { reason: 'not-invited' })
  t.false(String(refused.headers['set-cookie']).includes('sv_session='))
  t.like((await adminJson<{ entries: object[] }>(v, 'GET', 'admin/audit?action=login.refused')).entries, [{ outcome: 'denied', actor: { email: 'eve@example.com' } }])

  await adminJson(v, 'PUT', `admin/stores/${BRAND}/members/ada.lovelace@example.com`, { role: 'viewer' })
  for (const [forgery, reason] of [
    [{ iss: 'https://evil.example' }, 'iss'],
    [{ aud: 'someone-else' }, 'aud'],
    [{ exp: Math.floor(Date.now() / 1000) - 3600 }, 'exp'],
  ] as const) {
    const s = await startLogin(v, idp.providerId)
    const cb = await driveLogin(s.location, { email: 'Ada.Lovelace@Example.com', password: 'correct horse battery staple' }, idp.redirectUri)
    idp.forgeNext(forgery)
    assertError(t, await callback(v, cb, s.cookie), 401, 'SV_OIDC_TOKEN_INVALID', { reason })
  }
  // no callback without the login cookie of this browser
  const s = await startLogin(v, idp.providerId)
  const cb = await driveLogin(s.location, { email: 'Ada.Lovelace@Example.com', password: 'correct horse battery staple' }, idp.redirectUri)
  assertError(t, await httpRequest(endpoint(v.url, `auth/callback${cb.search}`)), 400, 'SV_LOGIN_INVALID', { reason: 'transaction' })
})
