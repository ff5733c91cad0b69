/**
 * The dashboard in a real Chromium against a real vault (HTTPS, LevelDB) and
 * the development OpenID provider: people log in through the provider's
 * own page, the pages act through the documented admin API only, roles
 * decide what the page offers, the Live page follows a real device agent,
 * and axe-core finds no serious or critical accessibility violation.
 */
import test from 'ava'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AxeBuilder } from '@axe-core/playwright'
import type { Browser, Page } from 'playwright-core'
import { BRAND, launchBrowser, loginThroughIdp, newContext, startDashboardVault, watchPage, type DashboardPerson, type DashboardVault } from '../helpers/browser.js'
import { generateDeviceKeys, httpRequest, registerDevice } from '../helpers/device.js'
import { adminJson } from '../vault-server/http/api.js'
import { runAgent } from '../device-agent/helpers/agent-process.js'

const ADA: DashboardPerson = { email: 'ada@dash.example', password: 'ada-password-1', name: 'Ada Admin' }
const VIC: DashboardPerson = { email: 'vic@dash.example', password: 'vic-password-1', name: 'Vic Viewer' }

let d: DashboardVault
let browser: Browser

// the vault, the provider and the browser live for the whole file (hooks have no teardown)
const cleanups: Array<() => unknown> = []
const fileScope = { teardown: (fn: () => unknown) => void cleanups.unshift(fn) } as unknown as import('ava').ExecutionContext

test.before(async () => {
  d = await startDashboardVault(fileScope, [ADA, VIC])
  await adminJson(d.op, 'PUT', `admin/stores/${BRAND}/members/${ADA.email}`, { role: 'admin', inheritable: true })
  browser = await launchBrowser(fileScope)
})

test.after.always(async () => {
  for (const c of cleanups) await c()
})

/** Failed answers, except the ones a test provokes: the /me of a page not logged in yet, and those matching `expected`. */
function unexpected(failed: string[], expected: RegExp[] = []): string[] {
  return failed.filter((f) => !/^401 GET \/v1\/admin\/me/.test(f) && !expected.some((e) => e.test(f)))
}

async function axe(t: import('ava').ExecutionContext, page: Page, name: string): Promise<void> {
  const r = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze()
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
  t.deepEqual(
    bad.map((v) => `${name}: ${v.id} (${v.impact}) ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`),
    [],
    `${name}: axe-core found serious or critical violations`,
  )
}

async function nav(page: Page, label: RegExp): Promise<void> {
  const toggle = page.locator('.nav-toggle')
  if (await toggle.isVisible()) await toggle.click()
  await page.getByRole('navigation').getByRole('link', { name: label }).click()
  await page.locator('h1').first().waitFor()
}

test.serial('a Store Administrator logs in through the provider, creates a product sub-store, a model in it and an API key, and invites a Viewer', async (t) => {
  t.timeout(180_000)
  const ctx = await newContext(browser)
  t.teardown(() => ctx.close())
  const page = await ctx.newPage()
  const watch = watchPage(page)
  await loginThroughIdp(page, d, ADA)
  const cookies = await ctx.cookies()
  const session = cookies.find((c) => c.name === 'sv_session')!
  t.true(session.httpOnly)
  t.true(session.secure)
  t.is(session.sameSite, 'Lax')

  // Stores: a product sub-store under the brand's base store
  await nav(page, /Stores/)
  await axe(t, page, 'stores')
  await page.locator(`[data-testid="store-row"][data-store="${BRAND}"] [data-testid="store-create"]`).click()
  const form = page.getByTestId('store-create-form')
  await form.getByLabel('Store id').fill('dash-kiosks')
  await form.getByLabel('product', { exact: false }).first().check()
  await form.getByLabel('Display name').fill('Kiosks')
  await form.getByRole('button', { name: /Create/ }).click()
  await page.locator('[data-testid="store-row"][data-store="dash-kiosks"]').waitFor()
  const stores = await adminJson<{ stores: Array<{ id: string; kind: string; parentId?: string }> }>(d.op, 'GET', 'admin/stores')
  t.like(stores.stores.find((s) => s.id === 'dash-kiosks'), { kind: 'product', parentId: BRAND })
  await page.getByTestId('store-picker').selectOption('dash-kiosks')

  // Models: one in the new store, headers checked as they are typed, with the vault's own messages
  await nav(page, /Models/)
  await page.getByTestId('model-create').click()
  const mf = page.getByTestId('model-form')
  await mf.getByLabel('Model name').fill('kiosk-one')
  const headers = mf.getByTestId('model-headers')
  await headers.fill(JSON.stringify({ architecture: 'arm64', base: 'core22', gadget: 'pi', kernel: 'pi-kernel', grade: 'shiny' }, null, 2))
  await page.locator('[data-testid="model-validation"][data-state="invalid"]').waitFor({ timeout: 10_000 })
  await mf.getByText('SV_MODEL_INVALID').first().waitFor({ timeout: 5000 })
  await headers.fill(JSON.stringify({ architecture: 'arm64', base: 'core22', gadget: 'pi', kernel: 'pi-kernel', 'display-name': 'Kiosk One' }, null, 2))
  await page.locator('[data-testid="model-validation"][data-state="valid"]').waitFor({ timeout: 10_000 })
  await page.getByTestId('model-save').click()
  // the API key made with the model is shown once
  const firstSecret = await page.getByTestId('secret-value').first().inputValue()
  t.true(firstSecret.length >= 16)
  await page.keyboard.press('Escape')
  await t.throwsAsync(page.getByTestId('secret-value').waitFor({ timeout: 1000 }), undefined, 'the secret is gone once the dialog closes')
  t.false((await page.content()).includes(firstSecret), 'no secret in the page after its dialog')
  const model = await adminJson<{ model: { storeId: string; apiKeyHashes: string[] } }>(d.op, 'GET', `admin/models/${BRAND}/kiosk-one`)
  t.is(model.model.storeId, 'dash-kiosks')

  // another API key, from the model's page
  await page.locator('[data-testid="model-row"][data-model="kiosk-one"]').getByRole('link').first().click()
  await page.getByTestId('apikey-add').click()
  const secret = await page.getByTestId('secret-value').first().inputValue()
  await page.keyboard.press('Escape')
  const after = await adminJson<{ model: { apiKeyHashes: string[] } }>(d.op, 'GET', `admin/models/${BRAND}/kiosk-one`)
  t.is(after.model.apiKeyHashes.length, 2)
  // the key works for a device
  const [key] = await generateDeviceKeys(1)
  t.is((await registerDevice(d.v.url, secret, { key: key!, brandId: BRAND, model: 'kiosk-one', serial: 'KIOSK-1' })).status, 200)
  await axe(t, page, 'model')

  // Members: invite a Viewer into the sub-store
  await nav(page, /Members/)
  const invite = page.getByTestId('invite-form')
  await invite.getByLabel('E-mail').fill(VIC.email)
  await invite.getByLabel('Role').selectOption('viewer')
  await invite.getByRole('button', { name: /Invite/ }).click()
  await page.locator(`[data-testid="member-row"][data-email="${VIC.email}"]`).waitFor()
  const members = await adminJson<{ members: Array<{ email: string; role: string }> }>(d.op, 'GET', 'admin/stores/dash-kiosks/members')
  t.like(members.members.find((m) => m.email === VIC.email), { role: 'viewer' })
  await axe(t, page, 'members')

  // every action is the person's, in the audit log
  const audit = await adminJson<{ entries: Array<{ action: string; actor: { email?: string } }> }>(d.op, 'GET', 'admin/audit?limit=1000')
  for (const a of ['store.created', 'model.created', 'apikey.created', 'person.invited']) t.true(audit.entries.some((e) => e.action === a && e.actor.email === ADA.email), a)
  t.deepEqual(watch.errors, [])
  // the dry runs of the invalid headers, and nothing else
  t.deepEqual(unexpected(watch.failed, [/^400 POST \/v1\/admin\/models\?dryRun=true$/]), [])
  t.true(watch.failed.some((f) => f.startsWith('400 POST /v1/admin/models?dryRun=true')))
})

test.serial('the Viewer logs in, sees no edit control on any page, and a forged state-changing request is refused', async (t) => {
  t.timeout(180_000)
  const ctx = await newContext(browser)
  t.teardown(() => ctx.close())
  const page = await ctx.newPage()
  const watch = watchPage(page)
  await loginThroughIdp(page, d, VIC)
  // what edits look like: buttons by their words, and the edit forms and buttons by their hooks
  const EDIT_WORDS = /^\s*(Create|New\b|Edit|Invite|Remove|Enable|Disable|Save|Add\b|Acknowledge|Revoke|Change)/i
  const EDIT_HOOKS = '[data-testid="store-create"], [data-testid="store-edit"], [data-testid="model-create"], [data-testid="model-edit"], [data-testid="apikey-add"], [data-testid="apikey-remove"], [data-testid="invite-form"], [data-testid="member-save"], [data-testid="member-remove"], [data-testid="alert-ack"], [data-testid="store-create-form"], [data-testid="model-form"]'
  const editControls = async (): Promise<string[]> =>
    page.evaluate(
      ([hooks, words]) => {
        const re = new RegExp(words, 'i')
        const d = (globalThis as unknown as { document: { querySelectorAll(s: string): ArrayLike<{ textContent: string | null; closest(s: string): unknown; getAttribute(n: string): string | null }> } }).document
        const els = [...Array.from(d.querySelectorAll(hooks)), ...Array.from(d.querySelectorAll('button')).filter((b) => re.test(b.textContent ?? ''))]
        return els.filter((e) => !e.closest('[data-testid="my-tokens-section"]')).map((e) => `${e.getAttribute('data-testid') ?? ''}:${(e.textContent ?? '').trim()}`)
      },
      [EDIT_HOOKS, EDIT_WORDS.source] as const,
    )
  for (const [label, name] of [[/Stores/, 'stores'], [/Members/, 'members'], [/Models/, 'models'], [/Devices/, 'devices'], [/Live/, 'live'], [/Audit/, 'audit']] as const) {
    await nav(page, label)
    await page.waitForTimeout(300)
    // (their own personal tokens are self-service: that section is theirs)
    t.deepEqual(await editControls(), [], `${name}: no edit controls for a Viewer`)
  }
  await page.goto(`${d.base}/dashboard/models/${BRAND}/kiosk-one`)
  await page.getByTestId('model-facts').waitFor()
  t.deepEqual(await editControls(), [], 'model page: no edit controls')

  // a forged request from the page's own origin with the cookie but without the CSRF token
  const forged = await page.evaluate(async () => {
    const r = await fetch('/v1/admin/stores/dash-kiosks', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ displayName: 'forged' }) })
    return { status: r.status, body: (await r.json()) as { code: string } }
  })
  t.is(forged.status, 403)
  t.is(forged.body.code, 'SV_CSRF_INVALID')
  // with the token the API still refuses: a Viewer may not manage the store
  const withToken = await page.evaluate(async () => {
    const me = (await (await fetch('/v1/admin/me')).json()) as { csrfToken: string }
    const r = await fetch('/v1/admin/stores/dash-kiosks', { method: 'PATCH', headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrfToken }, body: JSON.stringify({ displayName: 'forged' }) })
    return { status: r.status, body: (await r.json()) as { code: string } }
  })
  t.is(withToken.status, 403)
  t.is(withToken.body.code, 'SV_FORBIDDEN')
  // a cross-site page cannot even send it with the cookie (SameSite=Lax) and cannot frame the dashboard
  const cross = await ctx.newPage()
  const frame = await cross.goto(`${d.base}/dashboard/`)
  t.is(frame!.headers()['x-frame-options'], 'DENY')
  t.regex(frame!.headers()['content-security-policy']!, /frame-ancestors 'none'/)
  t.is((await adminJson<{ store: { displayName: string } }>(d.op, 'GET', 'admin/stores/dash-kiosks')).store.displayName, 'Kiosks')

  // logout ends the session: the API refuses the old cookie
  const before = (await ctx.cookies()).find((c) => c.name === 'sv_session')!.value
  await page.getByRole('button', { name: /Log out/ }).click()
  await page.getByRole('heading', { name: /Serial vault dashboard/ }).waitFor()
  const old = await httpRequest(`${d.base}/v1/admin/me`, { headers: { cookie: `sv_session=${before}` } })
  t.is(old.status, 401)
  t.deepEqual(watch.errors, [])
  // the two forged requests, and nothing else: the pages never tried what a Viewer may not do
  t.deepEqual(unexpected(watch.failed, [/^403 PATCH \/v1\/admin\/stores\/dash-kiosks$/]), [])
})

test.serial('Live: a device agent provisions while the page is open: the event and the chart update within 2 s; a clone attempt raises an alert that an administrator acknowledges', async (t) => {
  t.timeout(240_000)
  const ctx = await newContext(browser)
  t.teardown(() => ctx.close())
  const page = await ctx.newPage()
  await loginThroughIdp(page, d, ADA)
  await page.goto(`${d.base}/dashboard/live`)
  await page.locator('[data-testid="live-status"]').filter({ hasText: /live|connected/i }).waitFor({ timeout: 15_000 })
  await axe(t, page, 'live')
  const chart = page.getByTestId('live-chart')
  const issuedBefore = Number(await page.getByTestId('live-issued-count').innerText())
  const totalBefore = Number(await chart.getAttribute('data-total-serials'))
  const versionBefore = await chart.getAttribute('data-version')

  // a real device agent process, with its own key
  const caFile = join(d.v.dataDir, 'ca.pem')
  await writeFile(caFile, d.v.caPem!)
  const stateDir = join(d.v.dataDir, 'agent-1')
  const modelFile = join(d.v.dataDir, 'dash-model.assert')
  await writeFile(modelFile, (await httpRequest(new URL(`admin/models/${BRAND}/dash-model/assertion`, d.v.url), { headers: { authorization: `Bearer ${d.v.adminToken}` } })).body)
  // the trust anchors of the brand, as an image is built with them
  const trusted = join(d.v.dataDir, 'dash-trusted.assert')
  await writeFile(trusted, (await httpRequest(new URL(`admin/trust?brand=${BRAND}`, d.v.url), { headers: { authorization: `Bearer ${d.v.adminToken}` } })).body)
  const r = await runAgent(['provision', '--once', '--url', d.v.url, '--api-key', d.v.apiKey, '--brand', BRAND, '--model', 'dash-model', '--serial-value', 'LIVE-AGENT-1', '--ca', caFile, '--trusted', trusted, '--state-dir', stateDir, '--key-bits', '2048', '--model-assertion', modelFile], { timeoutMs: 120_000 })
  const done = Date.now()
  t.is(r.code, 0, r.stderr)
  await page.locator('[data-testid="live-event"][data-serial="LIVE-AGENT-1"]').waitFor({ timeout: 2000 })
  t.true(Date.now() - done <= 2000, `the event showed ${Date.now() - done} ms after the agent was done`)
  await page.waitForFunction(`Number(document.querySelector('[data-testid="live-issued-count"]')?.textContent) > ${issuedBefore}`, undefined, { timeout: 2000 })
  await page.waitForFunction(`Number(document.querySelector('[data-testid="live-chart"]')?.getAttribute('data-total-serials')) > ${totalBefore}`, undefined, { timeout: 2000 })
  t.not(await chart.getAttribute('data-version'), versionBefore, 'the chart was redrawn')
  t.true(Date.now() - done <= 2500)

  // the same serial offered with another key: a clone alert stands out
  const [other] = await generateDeviceKeys(1)
  const clone = await registerDevice(d.v.url, d.v.apiKey, { key: other!, brandId: BRAND, model: 'dash-model', serial: 'LIVE-AGENT-1' })
  t.is(clone.status, 409)
  const alert = page.locator('[data-testid="clone-alert"]').filter({ hasText: 'LIVE-AGENT-1' })
  await alert.waitFor({ timeout: 2000 })
  t.is(await page.getByTestId('clone-alerts').locator('[role="alert"]').count(), 1, 'announced to assistive technology')
  t.is(await page.getByTestId('clone-alert-count').innerText(), '1')
  await alert.getByTestId('alert-ack').click()
  await page.getByTestId('alert-ack-dialog').getByRole('textbox').first().fill('RMA 7: returned unit re-flashed').catch(() => undefined)
  await page.getByTestId('alert-ack-confirm').click()
  await page.waitForFunction(`!document.querySelector('[data-testid="clone-alert"]:not([data-acknowledged])')`, undefined, { timeout: 5000 }).catch(() => undefined)
  const alerts = await adminJson<{ alerts: Array<{ serial: string; acknowledged?: { by: string } }> }>(d.op, 'GET', `admin/alerts?store=${BRAND}&subtree=true&state=all`)
  t.is(alerts.alerts.find((a) => a.serial === 'LIVE-AGENT-1')?.acknowledged?.by, ADA.email)
  t.deepEqual((await adminJson<{ alerts: unknown[] }>(d.op, 'GET', `admin/alerts?store=${BRAND}&subtree=true`)).alerts, [])
})

test.serial('Devices: searching the signing log and downloading a CSV whose rows are the API\'s answer; one device\'s history; the audit page checks the chain', async (t) => {
  t.timeout(180_000)
  const ctx = await newContext(browser)
  t.teardown(() => ctx.close())
  const page = await ctx.newPage()
  await loginThroughIdp(page, d, ADA)
  const keys = await generateDeviceKeys(3)
  for (const [i, k] of keys.entries()) t.is((await registerDevice(d.v.url, d.v.apiKey, { key: k, brandId: BRAND, model: 'dash-model', serial: `SEARCH-${i}` })).status, 200)
  await nav(page, /Devices/)
  await axe(t, page, 'devices')
  await page.getByTestId('filter-model').fill('dash-model')
  await page.getByTestId('filter-outcome').selectOption('issued')
  await page.getByTestId('log-search').click()
  await page.locator('[data-testid="log-row"]').first().waitFor()
  const api = await adminJson<{ entries: Array<{ id: string; serial: string }> }>(d.op, 'GET', `admin/log?store=${BRAND}&subtree=true&model=dash-model&outcome=issued&limit=1000`)
  const download = page.waitForEvent('download')
  await page.getByTestId('export-csv').click()
  const file = await (await download).path()
  const csv = (await readFile(file!, 'utf8')).trim().split('\n')
  const header = csv[0]!.split(',')
  const idCol = header.indexOf('id')
  t.true(idCol >= 0, csv[0])
  t.deepEqual(csv.slice(1).map((l) => l.split(',')[idCol]).sort(), api.entries.map((e) => e.id).sort())
  t.true(api.entries.some((e) => e.serial === 'SEARCH-2'))

  // one device's history
  await page.getByTestId('filter-serial').fill('LIVE-AGENT-1')
  await page.getByTestId('filter-outcome').selectOption('')
  await page.getByTestId('log-search').click()
  await page.locator('[data-testid="log-row"]').first().waitFor()
  const href = await page.locator('[data-testid="log-row"] a[href*="LIVE-AGENT-1"]').first().getAttribute('href')
  t.is(href, `/dashboard/devices/${BRAND}/dash-model/LIVE-AGENT-1`)
  await page.goto(`${d.base}${href}`)
  await page.getByTestId('device-binding').waitFor()
  const history = await page.getByTestId('device-history').innerText()
  t.regex(history, /issued/)
  t.regex(history, /SV_SERIAL_TAKEN/)
  await axe(t, page, 'device')

  await nav(page, /Audit/)
  await page.locator('[data-testid="audit-row"]').first().waitFor()
  await page.getByTestId('audit-verify-unavailable').waitFor()
  await axe(t, page, 'audit')
  // the operator, with the admin token (kept in the tab's memory only), sees the chain checked
  const opCtx = await newContext(browser)
  t.teardown(() => opCtx.close())
  const opPage = await opCtx.newPage()
  await opPage.goto(`${d.base}/dashboard/`)
  await opPage.getByTestId('admin-token').fill(d.v.adminToken)
  await opPage.getByRole('button', { name: /Log in with the token/ }).click()
  await opPage.getByRole('navigation').waitFor()
  t.false((await opPage.content()).includes(d.v.adminToken), 'the token is not in the page')
  const stored = (await opPage.evaluate('JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage)])')) as string
  t.false(stored.includes(d.v.adminToken), `the token is in no storage (${stored.slice(0, 200)})`)
  await nav(opPage, /Audit/)
  await opPage.locator('[data-testid="audit-verify"][data-ok="true"]').waitFor({ timeout: 10_000 })
  t.regex(await opPage.getByTestId('audit-verify').innerText(), /\d+/)
  await nav(page, /Keys/)
  await axe(t, page, 'keys')
})

test.serial('a session that ends on the server (expired, or logged out elsewhere) sends the page back to the login, with the reason', async (t) => {
  t.timeout(120_000)
  const ctx = await newContext(browser)
  t.teardown(() => ctx.close())
  const page = await ctx.newPage()
  await loginThroughIdp(page, d, ADA)
  await nav(page, /Models/)
  // the session ends elsewhere: logged out from another tab of the same browser
  const cookie = (await ctx.cookies()).find((c) => c.name === 'sv_session')!.value
  const me = JSON.parse((await httpRequest(`${d.base}/v1/admin/me`, { headers: { cookie: `sv_session=${cookie}` } })).body.toString()) as { csrfToken: string }
  t.is((await httpRequest(`${d.base}/v1/auth/logout`, { method: 'POST', headers: { cookie: `sv_session=${cookie}`, 'x-csrf-token': me.csrfToken } })).status, 200)
  // the next call of the page gets a 401: the login page, saying why, with the code
  await nav(page, /Members/).catch(() => undefined)
  const problem = page.getByTestId('session-problem')
  await problem.waitFor({ timeout: 10_000 })
  t.regex(await problem.innerText(), /SV_SESSION_INVALID|session/i)
  await page.getByRole('link', { name: /Development IdP/ }).waitFor()
  await axe(t, page, 'login')
})

test.serial('the dashboard is readable at 390 px: navigation reachable, no page wider than the screen', async (t) => {
  t.timeout(120_000)
  const ctx = await newContext(browser, { width: 390, height: 844 })
  t.teardown(() => ctx.close())
  const page = await ctx.newPage()
  await loginThroughIdp(page, d, ADA)
  for (const path of ['stores', 'members', 'models', 'devices', 'live', 'audit', 'keys']) {
    await page.goto(`${d.base}/dashboard/${path}`)
    await page.locator('h1').first().waitFor()
    await page.waitForTimeout(200)
    if (path === 'stores') await page.screenshot({ path: '/tmp/dash-390-stores.png', fullPage: true })
    const overflow = (await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number
    const wide = overflow > 1 ? await page.evaluate(`[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !(e.parentElement && e.parentElement.closest('.table-wrap'))).slice(0, 6).map((e) => e.tagName + '.' + e.className + '[' + (e.getAttribute('data-testid') || '') + '] ' + Math.round(e.getBoundingClientRect().right)).join('; ')`) : ''
    t.true(overflow <= 1, `${path}: the page is ${overflow} px wider than the screen (${wide})`)
    await axe(t, page, `${path} (390 px)`)
  }
})
