/**
 * The dashboard's browser tests: a vault on HTTPS with the development
 * OpenID provider (oidc-provider on loopback, real code flow with PKCE), and
 * Debian's Chromium driven by playwright-core. People log in through the
 * provider's own login page, as in production.
 *
 * Chromium is /usr/bin/chromium (installed by .ci/run; `SV_CHROMIUM` names
 * another). A missing browser fails the test with the command to install it,
 * it never skips.
 */
import type { ExecutionContext } from 'ava'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { startDevIdentityProvider, type DevIdentityProvider } from '../../vault-server/src/auth/dev-idp.js'
import { PI_MODEL_HEADERS, startTestVault, type TestVault, type TestVaultOptions } from './vault.js'
import { adminJson } from '../vault-server/http/api.js'

export const CHROMIUM = process.env.SV_CHROMIUM ?? '/usr/bin/chromium'

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

export async function launchBrowser(t: ExecutionContext): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (.ci/run does), or set SV_CHROMIUM`)
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'], timeout: 60_000 })
  t.teardown(() => browser.close())
  return browser
}

export interface DashboardPerson {
  email: string
  password: string
  name: string
}

export interface DashboardVault {
  v: TestVault
  idp: DevIdentityProvider
  base: string
  people: DashboardPerson[]
  /** the operator's admin API target */
  op: { url: string; adminToken: string }
}

export const BRAND = 'dash-brand'

/**
 * A vault for the dashboard: HTTPS on a port chosen first (the provider
 * knows the redirect URI before the vault starts), the brand `dash-brand`
 * with its base store, the model `dash-model` in it, and accounts at the
 * provider (roles are given by the tests, as a Store Administrator would).
 */
export async function startDashboardVault(t: ExecutionContext, people: DashboardPerson[], o: TestVaultOptions = {}): Promise<DashboardVault> {
  const port = await freePort()
  const base = `https://127.0.0.1:${port}`
  const secret = `dash-secret-${Math.random().toString(36).slice(2)}`
  const idp = await startDevIdentityProvider({ accounts: people, clients: [{ clientId: 'dashboard-test', clientSecret: secret, redirectUris: [`${base}/v1/auth/callback`] }] })
  t.teardown(() => idp.close())
  const v = await startTestVault(t, {
    tls: true,
    store: 'level',
    workers: 2,
    // brand keys of 4096 bits: the device agent (as snapd) refuses smaller account-keys
    ...o,
    config: {
      listen: `127.0.0.1:${port}`,
      auth: { publicUrl: base, oidc: { providers: [{ id: 'dev', displayName: 'Development IdP', issuer: idp.issuer, clientId: 'dashboard-test', clientSecret: secret, allowInsecureHttp: true }] } },
      ...o.config,
    },
  })
  const op = { url: v.url, adminToken: v.adminToken }
  await adminJson(op, 'POST', 'admin/brands', { id: BRAND, displayName: 'Dash Brand' })
  await adminJson(op, 'POST', 'admin/models', { brandId: BRAND, name: 'dash-model', apiKeys: [v.apiKey], headers: { ...PI_MODEL_HEADERS, 'display-name': 'Dash Model' } })
  return { v, idp, base, people, op }
}

export async function newContext(browser: Browser, o: { width?: number; height?: number } = {}): Promise<BrowserContext> {
  return browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: o.width ?? 1280, height: o.height ?? 800 }, acceptDownloads: true })
}

/** Logs a person in through the dashboard's login page and the provider's form; resolves once the dashboard shows them. */
export async function loginThroughIdp(page: Page, d: DashboardVault, who: DashboardPerson): Promise<void> {
  await page.goto(`${d.base}/dashboard/`)
  await page.getByRole('link', { name: /Development IdP/ }).click()
  await page.locator('#email').fill(who.email)
  await page.locator('#password').fill(who.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(`${d.base}/dashboard/**`, { timeout: 20_000 })
  await page.getByText(who.email.toLowerCase()).first().waitFor({ timeout: 20_000 })
}

/**
 * What went wrong in a page: console errors and uncaught exceptions (CSP
 * violations show up here), and answers of 400 and above with their
 * method and path (the tests allow the ones they provoke).
 */
export function watchPage(page: Page): { errors: string[]; failed: string[] } {
  const errors: string[] = []
  const failed: string[] = []
  page.on('console', (m) => {
    // the failed answers are counted below, with their address
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text())
  })
  page.on('pageerror', (e) => errors.push(String(e)))
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}${new URL(r.url()).search}`)
  })
  return { errors, failed }
}
