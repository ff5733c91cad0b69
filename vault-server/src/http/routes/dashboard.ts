/**
 * The dashboard at /dashboard/: the built single-page application
 * (vault-server/dashboard, built by `npm run build` into dashboard/dist),
 * a client of the documented admin API and nothing else.
 *
 * - Hashed assets (/dashboard/assets/NAME-HASH.ext) are immutable and cached
 *   for a year; index.html is revalidated on every load, so a new build is
 *   picked up at once.
 * - Any other path under /dashboard/ answers index.html (the application's
 *   router shows the page), except paths that look like files (a dot in the
 *   last segment), which are 404.
 * - Every answer carries a strict Content-Security-Policy (scripts, styles
 *   and connections from this origin only, no framing, no inline code),
 *   X-Frame-Options DENY, nosniff and no referrer. State-changing calls made
 *   with the session cookie need the session's X-CSRF-Token (checked by the
 *   admin API, services/admin/access.ts), and the cookie is SameSite=Lax.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import express, { Router, type NextFunction, type Request, type Response } from 'express'
import { VaultError } from '@sv/shared'

export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/** The headers every dashboard answer carries. */
export function setDashboardHeaders(res: Response): void {
  res.setHeader('Content-Security-Policy', DASHBOARD_CSP)
  res.setHeader('X-Frame-Options', 'DENY')
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.setHeader('Referrer-Policy', 'no-referrer')
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin')
  res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), usb=(), serial=()')
}

export function defaultDashboardDir(): string {
  return fileURLToPath(new URL('../../../dashboard/dist/', import.meta.url))
}

export function dashboardRoutes(dir: string = defaultDashboardDir()): Router {
  const r = Router()
  const index = `${dir}/index.html`
  r.get('/', (_req: Request, res: Response) => res.redirect(302, '/dashboard/'))
  r.use('/dashboard', (_req: Request, res: Response, next: NextFunction) => {
    setDashboardHeaders(res)
    next()
  })
  r.use(
    '/dashboard/assets',
    express.static(`${dir}/assets`, {
      index: false,
      fallthrough: true,
      immutable: true,
      maxAge: '365d',
      dotfiles: 'deny',
    }),
  )
  r.get('/dashboard{/*path}', (req: Request, res: Response, next: NextFunction) => {
    if (req.originalUrl.split('?')[0] === '/dashboard') return res.redirect(301, '/dashboard/')
    const last = req.path.split('/').pop() ?? ''
    if (last.includes('.') && last !== 'index.html') {
      const file = `${dir}${req.path.slice('/dashboard'.length)}`
      // top-level files of the build (favicon and the like); nothing outside dir
      if (!req.path.slice('/dashboard/'.length).includes('/') && existsSync(file)) {
        res.setHeader('Cache-Control', 'public, max-age=3600')
        return res.sendFile(file, { dotfiles: 'deny' })
      }
      return next(new VaultError('SV_NOT_FOUND', `no file ${req.path}`))
    }
    // (the answer names no path of the host: anyone may ask for /dashboard/)
    if (!existsSync(index)) return next(new VaultError('SV_DASHBOARD_NOT_BUILT', 'the dashboard is not built on this vault: run npm run build (vault-server/dashboard/dist is missing)'))
    res.setHeader('Cache-Control', 'no-cache')
    res.sendFile(index)
  })
  return r
}
