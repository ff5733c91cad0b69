/**
 * `npm run screenshots`: PNGs of every dashboard page, at desktop width
 * (1280x800) and phone width (390x844), full page, into docs/dashboard/.
 *
 * A vault with demo content (startDashboardVault: HTTPS, LevelDB, the
 * development OpenID provider): the base store with a product sub-store and
 * an ecosystem sub-store run for a partner, four models, a Store
 * Administrator, a Publisher, a Reviewer and a Viewer, a spare signing key
 * (disabled, with a reason), and some thirty registrations spread over the
 * last half hour (the vault's clock is moved back while they are made, so the
 * Live chart has a history), a few refusals among them. The last
 * registrations and a clone attempt (a serial offered with another key: 409)
 * are sent while the Live page is open, so they arrive live.
 *
 *   node --import tsx --conditions=source test/dashboard/screenshots.ts
 *
 * Every wait is bounded; the vault, the provider and the browser are closed
 * at the end, whatever happened (exit 1 on a failure).
 */
import { execFileSync } from 'node:child_process'
import { mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import type { Browser, Page } from 'playwright-core'
import { BRAND, launchBrowser, loginThroughIdp, newContext, startDashboardVault, type DashboardPerson, type DashboardVault } from '../helpers/browser.js'
import { PI_MODEL_HEADERS, ROOT } from '../helpers/vault.js'
import { generateDeviceKeys, registerDevice, type DeviceKey } from '../helpers/device.js'
import { adminJson, type AdminTarget } from '../vault-server/http/api.js'
import { sha256Hex } from '../../vault-server/src/services/admin/access.js'
import { newPersonalToken } from '../../vault-server/src/services/admin/people-ops.js'

const OUT = join(ROOT, 'docs/dashboard')
const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }
const WAIT = 20_000

const ADA: DashboardPerson = { email: 'ada@dash.example', password: 'ada-password-1', name: 'Ada Admin' }
const VIC: DashboardPerson = { email: 'vic@dash.example', password: 'vic-password-1', name: 'Vic Viewer' }

const KIOSKS = 'dash-kiosks'
const PARTNER = 'dash-northwind'

// the vault's clock: behind the real one by `offset` while the set-up and the history are made
let offset = 40 * 60_000
const now = (): number => Date.now() - offset

// the file's resources, closed in reverse order (startTestVault's teardown hook wants an ExecutionContext)
const cleanups: Array<() => unknown> = []
const scope = { teardown: (fn: () => unknown) => void cleanups.unshift(fn) } as unknown as ExecutionContext

function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms)
  })
  return Promise.race([p, limit]).finally(() => clearTimeout(timer))
}

interface Device {
  model: string
  apiKey: string
  serial?: string
}

/**
 * The operator makes the brand (startDashboardVault) and its first Store
 * Administrator; she does the rest, with a personal token (as from the
 * Members page), so the audit log shows who did what.
 */
async function seed(d: DashboardVault): Promise<{ apiKeys: Record<string, string>; ada: AdminTarget }> {
  await adminJson(d.op, 'PUT', `admin/stores/${BRAND}/members/${ADA.email}`, { role: 'admin', inheritable: true, displayName: ADA.name })
  const ada = (await d.v.vault.store.people.getByEmail(ADA.email))!
  const token = newPersonalToken()
  const t = now()
  await d.v.vault.store.tokens.put({ hash: sha256Hex(token), kind: 'personal', name: 'factory-provisioning', roles: [], personId: ada.id, permissions: ['*'], expiresAt: t + 90 * 86_400_000, createdAt: t })
  const op: AdminTarget = { url: d.v.url, adminToken: token }

  // the store tree: base > product (kiosks), ecosystem (a partner's)
  await adminJson(op, 'PATCH', `admin/stores/${BRAND}`, { displayName: 'Dash Brand devices' })
  await adminJson(op, 'POST', 'admin/stores', { id: KIOSKS, parent: BRAND, kind: 'product', displayName: 'Retail kiosks' })
  await adminJson(op, 'POST', 'admin/stores', { id: PARTNER, parent: BRAND, kind: 'ecosystem', displayName: 'Northwind gateways', partner: { name: 'Northwind Traders', relation: 'reseller' }, requirePivotReview: true })

  // people: a Reviewer for the tree, a Publisher of the kiosks, a Viewer at the partner
  await adminJson(op, 'PUT', `admin/stores/${BRAND}/members/rae@dash.example`, { role: 'reviewer', inheritable: true, displayName: 'Rae Reviewer' })
  await adminJson(op, 'PUT', `admin/stores/${KIOSKS}/members/pat@dash.example`, { role: 'publisher', displayName: 'Pat Publisher' })
  await adminJson(op, 'PUT', `admin/stores/${PARTNER}/members/${VIC.email}`, { role: 'viewer', displayName: VIC.name })

  // models: the base store's dash-model (made by startDashboardVault), two kiosks, a partner gateway
  const apiKeys: Record<string, string> = { 'dash-model': d.v.apiKey }
  const models = [
    { name: 'kiosk-k1', storeId: KIOSKS, display: 'Kiosk K1' },
    { name: 'kiosk-k2', storeId: KIOSKS, display: 'Kiosk K2 (assigned serials)', serialPolicy: 'assign:K2-{n:6}' },
    { name: 'nw-gateway', storeId: PARTNER, display: 'Northwind Edge Gateway', duplicates: 'reissue' },
  ]
  for (const m of models) {
    const r = await adminJson<{ apiKeys: string[] }>(op, 'POST', 'admin/models', {
      brandId: BRAND,
      name: m.name,
      storeId: m.storeId,
      headers: { ...PI_MODEL_HEADERS, 'display-name': m.display },
      ...(m.serialPolicy ? { serialPolicy: m.serialPolicy } : {}),
      ...(m.duplicates ? { duplicates: m.duplicates } : {}),
    })
    apiKeys[m.name] = r.apiKeys[0]!
  }
  await adminJson(op, 'POST', `admin/stores/${PARTNER}/pivots`, { fromModel: 'dash-model', toModel: 'nw-gateway' })

  // a spare signing key, kept disabled
  const spare = await adminJson<{ key: { keyId: string } }>(op, 'POST', `admin/brands/${BRAND}/keys`, { name: 'spare-2025' })
  await adminJson(op, 'POST', `admin/keys/${spare.key.keyId}/disable`, { reason: 'spare key: enabled only for a rotation' })
  return { apiKeys, ada: op }
}

/** Registrations per minute over the last half hour of the vault's clock, in bursts as a factory line works. */
const RATE = [1, 2, 3, 1, 0, 0, 2, 3, 2, 1, 0, 0, 0, 1, 3, 2, 0, 0, 1, 2, 1, 0, 0, 0, 1, 2, 0, 0, 0, 0]

/** Registrations over the last half hour of the vault's clock (then the clock is right again), with a few refusals. */
async function history(d: DashboardVault, ada: AdminTarget, apiKeys: Record<string, string>, keys: DeviceKey[]): Promise<number> {
  const lines: Device[][] = [
    Array.from({ length: 9 }, (_, i) => ({ model: 'dash-model', apiKey: apiKeys['dash-model']!, serial: `DB-2025-${1001 + i}` })),
    Array.from({ length: 8 }, (_, i) => ({ model: 'kiosk-k1', apiKey: apiKeys['kiosk-k1']!, serial: `K1-${40211 + i}` })),
    Array.from({ length: 5 }, () => ({ model: 'kiosk-k2', apiKey: apiKeys['kiosk-k2']! })),
    Array.from({ length: 6 }, (_, i) => ({ model: 'nw-gateway', apiKey: apiKeys['nw-gateway']!, serial: `NW-GW-${701 + i}` })),
  ]
  // interleaved, as several factory lines would
  const plan: Device[] = []
  for (let i = 0; plan.length < lines.reduce((n, l) => n + l.length, 0); i++) for (const l of lines) if (l[i]) plan.push(l[i]!)
  let next = 0
  for (const [m, n] of RATE.entries()) {
    for (let j = 0; j < n && next < plan.length; j++) {
      offset = (RATE.length + 2 - m) * 60_000 - j * 12_000
      const dev = plan[next]!
      const key = keys[next]!
      next++
      const r = await registerDevice(d.v.url, dev.apiKey, { key, brandId: BRAND, model: dev.model, ...(dev.serial ? { serial: dev.serial } : {}) })
      if (r.status !== 200) throw new Error(`${dev.model} ${dev.serial ?? ''}: ${r.status} ${r.body.toString('utf8').slice(0, 200)}`)
      // a few refusals among them: a device key offered again for another serial; an old clone, acknowledged
      if (dev.serial === 'K1-40213' || dev.serial === 'DB-2025-1006') {
        const again = await registerDevice(d.v.url, dev.apiKey, { key, brandId: BRAND, model: dev.model, serial: `${dev.serial}-B` })
        if (again.status !== 409) throw new Error(`the same key for another serial: ${again.status}`)
      }
      if (dev.serial === 'K1-40216') {
        const clone = await registerDevice(d.v.url, dev.apiKey, { key: keys[keys.length - 2]!, brandId: BRAND, model: dev.model, serial: dev.serial })
        if (clone.status !== 409) throw new Error(`an old clone attempt: ${clone.status}`)
        const alerts = await adminJson<{ alerts: Array<{ id: string; serial?: string }> }>(ada, 'GET', `admin/alerts?store=${BRAND}&subtree=true`)
        const a = alerts.alerts.find((x) => x.serial === dev.serial)!
        offset -= 4 * 60_000
        await adminJson(ada, 'POST', `admin/alerts/${a.id}/acknowledge`, { note: 'test rig at line 2 re-used a serial label; rig fixed' })
      }
    }
  }
  offset = 0
  return next
}

async function shot(page: Page, name: string, width: 'desktop' | 'phone'): Promise<void> {
  // no spinner in the picture: the content has loaded
  await page.locator('[data-testid="loading"]').first().waitFor({ state: 'detached', timeout: WAIT }).catch(() => undefined)
  if (await page.locator('[data-testid="loading"]').count()) throw new Error(`${name} (${width}): still loading after ${WAIT} ms`)
  await page.waitForTimeout(250)
  await page.screenshot({ path: join(OUT, `${name}-${width}.png`), fullPage: true, animations: 'disabled' })
  console.log(`  ${name}-${width}.png`)
}

async function go(page: Page, d: DashboardVault, path: string, ready: string): Promise<void> {
  await page.goto(`${d.base}/dashboard/${path}`, { timeout: WAIT })
  await page.locator(ready).first().waitFor({ timeout: WAIT })
}

/** Stores, Members, Keys, Models, one model, Devices (a search), one device, Audit. */
async function pages(page: Page, d: DashboardVault, width: 'desktop' | 'phone'): Promise<void> {
  await go(page, d, `stores?store=${BRAND}`, `[data-testid="store-row"][data-store="${PARTNER}"]`)
  await shot(page, 'stores', width)
  await go(page, d, 'members', `[data-testid="member-row"][data-email="rae@dash.example"]`)
  await page.getByTestId('my-tokens-section').waitFor({ timeout: WAIT })
  await shot(page, 'members', width)
  await go(page, d, 'keys', '[data-testid="key-row"][data-enabled="false"]')
  await shot(page, 'keys', width)
  // the models of the selected store: the kiosks
  await go(page, d, `models?store=${KIOSKS}`, '[data-testid="model-row"][data-model="kiosk-k2"]')
  await shot(page, 'models', width)
  await go(page, d, `models/${BRAND}/kiosk-k1`, '[data-testid="model-facts"]')
  await page.getByTestId('apikey-row').first().waitFor({ timeout: WAIT })
  await page.getByTestId('model-assertion').waitFor({ timeout: WAIT })
  await shot(page, 'model', width)
  await go(page, d, `devices?store=${BRAND}&model=kiosk-k1`, '[data-testid="log-row"][data-serial^="K1-"]')
  await shot(page, 'devices', width)
  await go(page, d, `devices/${BRAND}/kiosk-k1/K1-40215`, '[data-testid="device-binding"]')
  await page.locator('[data-testid="history-row"]').nth(1).waitFor({ timeout: WAIT })
  await shot(page, 'device', width)
  await go(page, d, `audit?store=${BRAND}`, '[data-testid="audit-row"]')
  await shot(page, 'audit', width)
}

async function waitLive(page: Page): Promise<void> {
  await page.locator('[data-testid="live-status"][data-state="live"]').waitFor({ timeout: WAIT })
  await page.waitForFunction(`Number(document.querySelector('[data-testid="live-chart"]')?.getAttribute('data-total-serials')) > 0`, undefined, { timeout: WAIT })
  await page.locator('[data-testid="clone-alert"][data-acknowledged="false"]').first().waitFor({ timeout: WAIT })
  await page.locator('[data-testid="live-event"]').first().waitFor({ timeout: WAIT })
}

async function main(): Promise<void> {
  await mkdir(OUT, { recursive: true })
  // the dashboard as npm start and npm test serve it: built when its sources are newer
  execFileSync(process.execPath, [join(ROOT, 'vault-server/dashboard/build.mjs'), '--if-stale', '--quiet'], { stdio: 'inherit', timeout: 120_000 })
  console.log('screenshots: a vault with demo content')
  const d = await startDashboardVault(scope, [ADA, VIC], { now })
  const { apiKeys, ada } = await seed(d)
  const keys = await generateDeviceKeys(36, 2048)
  const used = await history(d, ada, apiKeys, keys)
  const browser: Browser = await launchBrowser(scope)

  // the login page
  {
    const ctx = await newContext(browser, DESKTOP)
    scope.teardown(() => ctx.close())
    const page = await ctx.newPage()
    await go(page, d, '', '[data-testid="login-dev"]')
    await shot(page, 'login', 'desktop')
    await page.setViewportSize(PHONE)
    await shot(page, 'login', 'phone')
    await ctx.close()
  }

  // desktop: the Live page first, while registrations and a clone attempt come in
  const desk = await newContext(browser, DESKTOP)
  scope.teardown(() => desk.close())
  const page = await desk.newPage()
  await loginThroughIdp(page, d, ADA)
  await go(page, d, 'live', '[data-testid="live-status"][data-state="live"]')
  const live: Device[] = [
    { model: 'kiosk-k1', apiKey: apiKeys['kiosk-k1']!, serial: 'K1-40219' },
    { model: 'dash-model', apiKey: apiKeys['dash-model']!, serial: 'DB-2025-1010' },
    { model: 'kiosk-k2', apiKey: apiKeys['kiosk-k2']! },
    { model: 'nw-gateway', apiKey: apiKeys['nw-gateway']!, serial: 'NW-GW-707' },
    { model: 'kiosk-k1', apiKey: apiKeys['kiosk-k1']!, serial: 'K1-40220' },
  ]
  for (const [i, dev] of live.entries()) {
    const r = await registerDevice(d.v.url, dev.apiKey, { key: keys[used + i]!, brandId: BRAND, model: dev.model, ...(dev.serial ? { serial: dev.serial } : {}) })
    if (r.status !== 200) throw new Error(`live ${dev.model}: ${r.status}`)
  }
  // a clone: K1-40215's serial offered with another device key
  const clone = await registerDevice(d.v.url, apiKeys['kiosk-k1']!, { key: keys[keys.length - 1]!, brandId: BRAND, model: 'kiosk-k1', serial: 'K1-40215' })
  if (clone.status !== 409) throw new Error(`the clone attempt: ${clone.status}, expected 409`)
  await page.locator('[data-testid="live-event"][data-serial="K1-40220"]').waitFor({ timeout: WAIT })
  await waitLive(page)
  await shot(page, 'live', 'desktop')
  await pages(page, d, 'desktop')

  // phone
  const phone = await newContext(browser, PHONE)
  scope.teardown(() => phone.close())
  const pp = await phone.newPage()
  await loginThroughIdp(pp, d, ADA)
  await go(pp, d, 'live', '[data-testid="live-status"]')
  await waitLive(pp)
  await shot(pp, 'live', 'phone')
  await pages(pp, d, 'phone')

  for (const f of ['login', 'live', 'stores', 'members', 'keys', 'models', 'model', 'devices', 'device', 'audit']) {
    for (const w of ['desktop', 'phone']) {
      const s = await stat(join(OUT, `${f}-${w}.png`))
      if (s.size === 0) throw new Error(`${f}-${w}.png is empty`)
    }
  }
}

let code = 0
try {
  await bounded(main(), 300_000, 'screenshots')
  console.log(`screenshots: done, in ${OUT}`)
} catch (e) {
  console.error('screenshots:', e)
  code = 1
} finally {
  for (const c of cleanups) {
    try {
      await bounded(Promise.resolve(c()), 30_000, 'closing')
    } catch (e) {
      console.error('screenshots: closing:', e)
      code = 1
    }
  }
}
process.exit(code)
