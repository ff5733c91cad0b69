/**
 * The login routes under /v1/auth: an OpenID Connect code flow with PKCE
 * (services/auth/login-service.ts) ending in an HttpOnly session cookie.
 *
 *   GET  /v1/auth/providers            the configured identity providers
 *   GET  /v1/auth/login/{provider}     302 to the provider (?return=/path for afterwards)
 *   GET  /v1/auth/callback             the provider sends the browser back here: 303 to the return path
 *   POST /v1/auth/logout               ends the session (needs the session's X-CSRF-Token)
 *
 * Cookies: `sv_login` (the login transaction, Path=/v1/auth, 10 min) and
 * `sv_session` (Path=/), both HttpOnly, SameSite=Lax (the callback is a
 * top-level navigation from the provider's site), Secure unless
 * auth.cookieSecure is switched off.
 */
import { Router, type Request, type Response } from 'express'
import { parse as parseCookie, serialize } from 'cookie'
import { VaultError } from '@sv/shared'
import type { AppDeps } from '../../app.js'
import { reqId, sendJson } from '../respond.js'
import { SESSION_COOKIE } from './admin.js'
import type { RequestContext } from '../../services/admin/admin-service.js'

export const LOGIN_COOKIE = 'sv_login'

/** The login routes, for docs/openapi.yaml. */
export const AUTH_ROUTES: Array<{ method: 'get' | 'post'; path: string; summary: string; status: string; answer: string; query?: string[] }> = [
  { method: 'get', path: '/v1/auth/providers', summary: 'the identity providers people log in with', status: '200', answer: '{"providers": [{"id", "displayName"}]}' },
  { method: 'get', path: '/v1/auth/login/:provider', summary: 'start a login: 302 to the provider (authorization code flow with PKCE S256, state, nonce)', status: '302', answer: 'redirect to the provider; sets the sv_login cookie', query: ['return'] },
  { method: 'get', path: '/v1/auth/callback', summary: 'the redirect URI registered at the providers: checks the answer, makes the session', status: '303', answer: 'redirect to the return path; sets the sv_session cookie (HttpOnly, Secure, SameSite=Lax)', query: ['code', 'state', 'iss'] },
  { method: 'post', path: '/v1/auth/logout', summary: 'end the session (needs its X-CSRF-Token)', status: '200', answer: '{"loggedOut": true}' },
]

function cookies(req: Request): Record<string, string | undefined> {
  return typeof req.headers.cookie === 'string' && req.headers.cookie.length < 8192 ? parseCookie(req.headers.cookie) : {}
}

export function authRoutes(deps: AppDeps): Router {
  const r = Router()
  const { login, admin } = deps.services
  const secure = deps.config.auth.cookieSecure
  const ctxOf = (req: Request): RequestContext => ({ requestId: reqId(req), transport: 'https', ...(req.socket.remoteAddress ? { ip: req.socket.remoteAddress } : {}), ...(typeof req.headers['user-agent'] === 'string' ? { userAgent: req.headers['user-agent'] } : {}) })
  const base = deps.config.auth.publicUrl ?? `${deps.config.tls.plainHttp ? 'http' : 'https'}://${deps.config.listen}`

  r.get('/v1/auth/providers', (_req: Request, res: Response) => sendJson(res, 200, { providers: login.providers() }))

  r.get('/v1/auth/login/:provider', async (req: Request, res: Response) => {
    const ret = typeof req.query.return === 'string' ? req.query.return : undefined
    const s = await login.start(req.params.provider as string, ret)
    res.setHeader('Set-Cookie', serialize(LOGIN_COOKIE, s.transactionId, { httpOnly: true, secure, sameSite: 'lax', path: '/v1/auth', maxAge: Math.max(1, Math.floor((s.expiresAt - Date.now()) / 1000)) }))
    res.setHeader('Cache-Control', 'no-store')
    res.redirect(302, s.authorizationUrl)
  })

  r.get('/v1/auth/callback', async (req: Request, res: Response) => {
    const tx = cookies(req)[LOGIN_COOKIE]
    // the login cookie is spent whatever happens next
    const clear = serialize(LOGIN_COOKIE, '', { httpOnly: true, secure, sameSite: 'lax', path: '/v1/auth', maxAge: 0 })
    res.setHeader('Set-Cookie', clear)
    if (!tx) throw new VaultError('SV_LOGIN_INVALID', 'no login in progress in this browser (the login cookie is missing): start again', { details: { reason: 'transaction' } })
    const url = new URL(req.originalUrl, base.endsWith('/') ? base : `${base}/`)
    const done = await login.finish(tx, url, ctxOf(req))
    res.setHeader('Set-Cookie', [clear, serialize(SESSION_COOKIE, done.session, { httpOnly: true, secure, sameSite: 'lax', path: '/', maxAge: Math.floor((done.expiresAt - Date.now()) / 1000) })])
    res.setHeader('Cache-Control', 'no-store')
    res.redirect(303, done.returnTo ?? '/v1/admin/me')
  })

  r.post('/v1/auth/logout', async (req: Request, res: Response) => {
    const c = cookies(req)
    const csrf = req.headers['x-csrf-token']
    const p = await admin.authenticate({ ...(c[SESSION_COOKIE] !== undefined ? { session: c[SESSION_COOKIE] } : {}), ...(typeof csrf === 'string' ? { csrf } : {}), method: 'POST' })
    const ended = await login.logout(p, ctxOf(req))
    res.setHeader('Set-Cookie', serialize(SESSION_COOKIE, '', { httpOnly: true, secure, sameSite: 'lax', path: '/', maxAge: 0 }))
    sendJson(res, 200, { loggedOut: ended })
  })

  return r
}
