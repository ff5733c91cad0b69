/**
 * How the vault serves the dashboard, on a real listener: security headers
 * on every answer, immutable hashed assets, index.html revalidated, the
 * application's paths answered by index.html, no way out of the build
 * directory, and a typed 503 when the dashboard was not built.
 */
import test from 'ava'
import express from 'express'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { VaultError } from '@sv/shared'
import { DASHBOARD_CSP, dashboardRoutes } from '../../../vault-server/src/http/routes/dashboard.js'
import { sendError } from '../../../vault-server/src/http/respond.js'
import { httpRequest } from '../../helpers/device.js'
import { startTestVault } from '../../helpers/vault.js'

async function serve(t: import('ava').ExecutionContext, dir: string): Promise<string> {
  const app = express()
  app.use(dashboardRoutes(dir))
  app.use((_req, _res, next) => next(new VaultError('SV_NOT_FOUND', 'no route')))
  app.use((err: unknown, req: express.Request, res: express.Response, _next: express.NextFunction) => void sendError(req, res, err))
  const server: Server = createServer(app)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function buildDir(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sv-dash-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'assets'))
  await writeFile(join(dir, 'index.html'), '<!doctype html><html lang="en"><script type="module" src="/dashboard/assets/index-AbC123.js"></script></html>')
  await writeFile(join(dir, 'assets', 'index-AbC123.js'), 'console.log(1)')
  await writeFile(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>')
  await writeFile(join(dir, '..', 'secret.txt'), 'outside').catch(() => undefined)
  return dir
}

test('dashboard route: headers, caching, application paths, and nothing outside the build', async (t) => {
  const url = await serve(t, await buildDir(t))
  const index = await httpRequest(`${url}/dashboard/`)
  t.is(index.status, 200)
  t.regex(String(index.headers['content-type']), /^text\/html/)
  t.is(index.headers['content-security-policy'], DASHBOARD_CSP)
  t.regex(DASHBOARD_CSP, /script-src 'self'(;|$)/)
  t.notRegex(DASHBOARD_CSP, /unsafe-inline|unsafe-eval/)
  t.regex(DASHBOARD_CSP, /frame-ancestors 'none'/)
  t.is(index.headers['x-frame-options'], 'DENY')
  t.is(index.headers['x-content-type-options'], 'nosniff')
  t.is(index.headers['referrer-policy'], 'no-referrer')
  t.is(index.headers['cache-control'], 'no-cache')

  const asset = await httpRequest(`${url}/dashboard/assets/index-AbC123.js`)
  t.is(asset.status, 200)
  t.is(asset.headers['cache-control'], 'public, max-age=31536000, immutable')
  t.is(asset.headers['content-security-policy'], DASHBOARD_CSP)
  t.regex(String(asset.headers['content-type']), /javascript/)

  // the application's own paths: index.html, the router shows the page
  for (const p of ['/dashboard/models', '/dashboard/live', '/dashboard/devices/dash-brand/dash-model/SN-1']) {
    const r = await httpRequest(`${url}${p}`)
    t.is(r.status, 200, p)
    t.is(r.body.toString(), index.body.toString())
  }
  t.is((await httpRequest(`${url}/dashboard/favicon.svg`)).status, 200)
  // files that are not there, and ways out
  for (const p of ['/dashboard/assets/missing-123.js', '/dashboard/missing.js', '/dashboard/assets/../../secret.txt', '/dashboard/assets/%2e%2e/%2e%2e/secret.txt', '/dashboard/..%2fsecret.txt', '/dashboard/a/b.txt']) {
    const r = await httpRequest(`${url}${p}`)
    t.is(r.status, 404, p)
    t.false(r.body.toString().includes('outside'), p)
  }
  const redirect = await httpRequest(`${url}/dashboard`)
  t.is(redirect.status, 301)
  t.is(redirect.headers.location, '/dashboard/')
  t.is((await httpRequest(`${url}/`)).headers.location, '/dashboard/')
})

test('dashboard route: a vault without the built dashboard answers a typed 503 naming the fix; the API still works', async (t) => {
  const url = await serve(t, join(tmpdir(), 'sv-no-such-dashboard'))
  const r = await httpRequest(`${url}/dashboard/`)
  t.is(r.status, 503)
  const b = JSON.parse(r.body.toString()) as { code: string; message: string }
  t.is(b.code, 'SV_DASHBOARD_NOT_BUILT')
  t.regex(b.message, /npm run build/)
  t.false(b.message.includes(tmpdir()), 'no path of the host in the answer')
})

test('dashboard route: the real vault serves the built dashboard and sends no-frame, no-sniff headers on its API answers', async (t) => {
  const v = await startTestVault(t, { store: 'memory', workers: 1 })
  const page = await httpRequest(new URL('/dashboard/', v.url))
  t.is(page.status, 200, `the dashboard is built by npm test (pretest) and npm run build: ${page.body.toString().slice(0, 300)}`)
  t.is(page.headers['content-security-policy'], DASHBOARD_CSP)
  // the built page loads no inline script or style: the CSP would block it
  const html = page.body.toString()
  t.notRegex(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline <script>')
  t.notRegex(html, /<style/, 'no <style> element')
  t.notRegex(html, /\sstyle=/, 'no style attribute')
  t.notRegex(html, /\son[a-z]+=/, 'no inline event handler')
  const assets = [...html.matchAll(/(?:src|href)="(\/dashboard\/assets\/[^"]+)"/g)].map((m) => m[1]!)
  t.true(assets.length >= 2, 'a script and a stylesheet')
  for (const a of assets) {
    const r = await httpRequest(new URL(a, v.url))
    t.is(r.status, 200, a)
    t.is(r.headers['cache-control'], 'public, max-age=31536000, immutable')
  }
  const api = await httpRequest(new URL('/v1/admin/me', v.url))
  t.is(api.status, 401)
  t.is(api.headers['x-content-type-options'], 'nosniff')
  t.regex(String(api.headers['content-security-policy']), /frame-ancestors 'none'/)
})
