/**
 * The Live page's API on a real vault: the server-sent event stream of a
 * store's provisioning (hello, entry, alert, ack), clone alerts and their
 * acknowledgement (audited, heard by every open stream), store scoping,
 * the stream limit, credentials checked while a stream is open, and the
 * model dry run the dashboard validates with.
 */
import test from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { PI_MODEL_HEADERS, startTestVault, type TestVault } from '../../helpers/vault.js'
import { endpoint, generateDeviceKeys, httpRequest, jsonOf, registerDevice } from '../../helpers/device.js'
import { openSse } from '../../helpers/sse.js'
import { admin, adminJson, assertError } from './api.js'

const BRAND = 'live-brand'

async function setup(t: Parameters<typeof startTestVault>[0], config: Record<string, unknown> = {}) {
  const v = await startTestVault(t, { store: 'level', workers: 2, keyBits: 2048, config })
  const op = { url: v.url, adminToken: v.adminToken }
  await adminJson(op, 'POST', 'admin/brands', { id: BRAND, displayName: 'Live Brand' })
  await adminJson(op, 'POST', 'admin/stores', { id: 'live-a', parent: BRAND, kind: 'product', displayName: 'A' })
  await adminJson(op, 'POST', 'admin/stores', { id: 'live-b', parent: BRAND, kind: 'product', displayName: 'B' })
  await adminJson(op, 'POST', 'admin/models', { brandId: BRAND, name: 'model-a', storeId: 'live-a', apiKeys: [v.apiKey], headers: PI_MODEL_HEADERS })
  await adminJson(op, 'POST', 'admin/models', { brandId: BRAND, name: 'model-b', storeId: 'live-b', apiKeys: [v.apiKey], headers: PI_MODEL_HEADERS })
  return { v, op }
}

/** A person with a role in a store and a session, as a login makes it (the login itself: test/vault-server/auth/login.test.ts). */
async function person(v: TestVault, store: string, role: string, email: string): Promise<{ cookie: string; csrf: string; headers: Record<string, string> }> {
  await adminJson({ url: v.url, adminToken: v.adminToken }, 'PUT', `admin/stores/${store}/members/${email}`, { role })
  const p = (await v.vault.store.people.getByEmail(email))!
  const cookie = randomBytes(32).toString('base64url')
  const hash = createHash('sha256').update(cookie).digest('hex')
  const now = Date.now()
  await v.vault.store.sessions.create({ hash, personId: p.id, providerId: 'test', createdAt: now, expiresAt: now + 3_600_000, idleExpiresAt: now + 3_600_000 })
  const csrf = v.vault.services.admin.core.d.access.csrfToken(hash)
  return { cookie, csrf, headers: { cookie: `sv_session=${cookie}` } }
}

test('live: a registration reaches an open stream within 2 s, a clone attempt raises an alert, and its acknowledgement is audited and heard', async (t) => {
  const { v, op } = await setup(t)
  const [k1, k2, k3] = await generateDeviceKeys(3)
  // history before the page opens: in the hello
  t.is((await registerDevice(v.url, v.apiKey, { key: k1!, brandId: BRAND, model: 'model-a', serial: 'LIVE-0' })).status, 200)
  const reviewer = await person(v, 'live-a', 'reviewer', 'rita@live.example')
  const s = await openSse(endpoint(v.url, 'admin/live?store=live-a'), reviewer.headers)
  t.teardown(() => s.close())
  t.is(s.status, 200)
  t.regex(String(s.headers['content-type']), /^text\/event-stream/)
  t.is(s.headers['cache-control'], 'no-store')
  const hello = (await s.next('hello')).data as { recent: Array<{ serial: string }>; alerts: unknown[]; buckets: Array<{ model: string; outcome: string; count: number }>; windowMinutes: number; stores: string[] }
  t.deepEqual(hello.stores, ['live-a'])
  t.deepEqual(hello.recent.map((e) => e.serial), ['LIVE-0'])
  t.deepEqual(hello.alerts, [])
  t.is(hello.windowMinutes, 60)
  t.deepEqual(hello.buckets.map((b) => [b.model, b.outcome, b.count]), [['model-a', 'issued', 1]])

  const started = Date.now()
  t.is((await registerDevice(v.url, v.apiKey, { key: k2!, brandId: BRAND, model: 'model-a', serial: 'LIVE-1' })).status, 200)
  const entry = (await s.next('entry', 2000)).data as { serial: string; outcome: string; model: string; transport: string; storeId: string; time: string }
  t.true(Date.now() - started < 2000 + 1000)
  t.like(entry, { serial: 'LIVE-1', outcome: 'issued', model: 'model-a', transport: 'https', storeId: 'live-a' })
  t.regex(entry.time, /^\d{4}-\d\d-\d\dT/)

  // the same serial with another key: a refusal entry and an alert
  const clone = await registerDevice(v.url, v.apiKey, { key: k3!, brandId: BRAND, model: 'model-a', serial: 'LIVE-1' })
  assertError(t, clone, 409, 'SV_SERIAL_TAKEN')
  const refused = (await s.next('entry', 2000)).data as { outcome: string; code: string; serial: string }
  t.like(refused, { outcome: 'refused', code: 'SV_SERIAL_TAKEN', serial: 'LIVE-1' })
  const alert = (await s.next('alert', 2000)).data as { id: string; serial: string; deviceKeyId: string; acknowledged?: unknown }
  t.like(alert, { serial: 'LIVE-1', deviceKeyId: k3!.publicKey.id })
  t.is(alert.acknowledged, undefined)
  const open = await adminJson<{ alerts: Array<{ id: string }> }>(op, 'GET', 'admin/alerts?store=live-a')
  t.deepEqual(open.alerts.map((a) => a.id), [alert.id])

  // a second page opened now sees the alert in its hello
  const s2 = await openSse(endpoint(v.url, 'admin/live?store=live-a'), reviewer.headers)
  t.teardown(() => s2.close())
  t.deepEqual(((await s2.next('hello')).data as { alerts: Array<{ id: string }> }).alerts.map((a) => a.id), [alert.id])

  // acknowledged by the reviewer (a session: needs the CSRF token)
  const noCsrf = await httpRequest(endpoint(v.url, `admin/alerts/${alert.id}/acknowledge`), { method: 'POST', headers: { ...reviewer.headers, 'content-type': 'application/json' }, body: '{}' })
  assertError(t, noCsrf, 403, 'SV_CSRF_INVALID')
  const ackR = await httpRequest(endpoint(v.url, `admin/alerts/${alert.id}/acknowledge`), { method: 'POST', headers: { ...reviewer.headers, 'x-csrf-token': reviewer.csrf, 'content-type': 'application/json' }, body: JSON.stringify({ note: 'RMA 42: refurbished unit' }) })
  t.is(ackR.status, 200, ackR.body.toString())
  t.like(jsonOf<{ alert: unknown }>(ackR).alert, { id: alert.id, acknowledged: { by: 'rita@live.example', note: 'RMA 42: refurbished unit' } })
  for (const stream of [s, s2]) t.like((await stream.next('ack', 2000)).data, { id: alert.id, by: 'rita@live.example' })
  t.deepEqual((await adminJson<{ alerts: unknown[] }>(op, 'GET', 'admin/alerts?store=live-a')).alerts, [])
  const all = await adminJson<{ alerts: Array<{ id: string; acknowledged?: { by: string } }> }>(op, 'GET', 'admin/alerts?store=live-a&state=all')
  t.is(all.alerts[0]!.acknowledged!.by, 'rita@live.example')
  // audited once; a second acknowledgement changes nothing
  const again = await httpRequest(endpoint(v.url, `admin/alerts/${alert.id}/acknowledge`), { method: 'POST', headers: { ...reviewer.headers, 'x-csrf-token': reviewer.csrf } })
  t.is(again.status, 200)
  const audit = await adminJson<{ entries: Array<{ action: string; target: { id: string }; actor: { email: string } }> }>(op, 'GET', 'admin/audit?action=alert.acknowledged')
  t.deepEqual(audit.entries.map((e) => [e.target.id, e.actor.email]), [[alert.id, 'rita@live.example']])
})

test('live: a stream shows its stores only; a Viewer watches but may not acknowledge; unknown alerts and bad queries are typed', async (t) => {
  const { v, op } = await setup(t)
  const viewer = await person(v, 'live-b', 'viewer', 'vic@live.example')
  const s = await openSse(endpoint(v.url, 'admin/live?store=live-b'), viewer.headers)
  t.teardown(() => s.close())
  await s.next('hello')
  const [k1, k2, k3] = await generateDeviceKeys(3)
  t.is((await registerDevice(v.url, v.apiKey, { key: k1!, brandId: BRAND, model: 'model-a', serial: 'A-1' })).status, 200)
  t.is((await registerDevice(v.url, v.apiKey, { key: k2!, brandId: BRAND, model: 'model-b', serial: 'B-1' })).status, 200)
  t.is((await registerDevice(v.url, v.apiKey, { key: k3!, brandId: BRAND, model: 'model-a', serial: 'A-1' })).status, 409)
  const e = (await s.next('entry', 2000)).data as { serial: string }
  t.is(e.serial, 'B-1')
  await new Promise((r) => setTimeout(r, 600))
  t.deepEqual(s.events.filter((x) => x.event !== 'hello').map((x) => (x.data as { serial?: string }).serial), ['B-1'], 'nothing of store live-a, alerts included')

  // the viewer cannot see live-a at all, and cannot acknowledge in live-b
  const other = await openSse(endpoint(v.url, 'admin/live?store=live-a'), viewer.headers)
  t.is(other.status, 404)
  t.is((JSON.parse(await other.body()) as { code: string }).code, 'SV_STORE_NOT_FOUND')
  const alertA = (await adminJson<{ alerts: Array<{ id: string }> }>(op, 'GET', 'admin/alerts?store=live-a')).alerts[0]!
  const r = await httpRequest(endpoint(v.url, `admin/alerts/${alertA.id}/acknowledge`), { method: 'POST', headers: { ...viewer.headers, 'x-csrf-token': viewer.csrf } })
  assertError(t, r, 404, 'SV_ALERT_NOT_FOUND')
  assertError(t, await admin(op, 'POST', 'admin/alerts/1764196800000-00000003-9f2c41d07ab3/acknowledge'), 404, 'SV_ALERT_NOT_FOUND')
  assertError(t, await admin(op, 'POST', 'admin/alerts/not-an-id/acknowledge'), 404, 'SV_ALERT_NOT_FOUND')
  assertError(t, await admin(op, 'GET', 'admin/alerts?store=live-a&state=maybe'), 400, 'SV_REQUEST_INVALID', { field: 'state' })
  assertError(t, await admin(op, 'POST', `admin/alerts/${alertA.id}/acknowledge`, { note: 'x'.repeat(501) }), 400, 'SV_REQUEST_INVALID')
  // a person must name the store; the operator may watch everything
  const noStore = await openSse(endpoint(v.url, 'admin/live'), viewer.headers)
  t.is(noStore.status, 400)
  const everything = await openSse(endpoint(v.url, 'admin/live'), { authorization: `Bearer ${v.adminToken}` })
  t.teardown(() => everything.close())
  t.deepEqual(((await everything.next('hello')).data as { recent: Array<{ serial: string }> }).recent.map((x) => x.serial), ['A-1', 'B-1', 'A-1'])
})

test('live: the number of open streams is bounded (503 SV_OVERLOADED with Retry-After), and a closed stream frees its place', async (t) => {
  const { v } = await setup(t, { limits: { maxLiveStreams: 2 } })
  const auth = { authorization: `Bearer ${v.adminToken}` }
  const a = await openSse(endpoint(v.url, 'admin/live'), auth)
  const b = await openSse(endpoint(v.url, 'admin/live'), auth)
  t.teardown(() => (a.close(), b.close()))
  const c = await httpRequest(endpoint(v.url, 'admin/live'), { headers: auth })
  assertError(t, c, 503, 'SV_OVERLOADED')
  a.close()
  for (let i = 0; i < 50; i++) {
    const d = await openSse(endpoint(v.url, 'admin/live'), auth)
    if (d.status === 200) {
      d.close()
      return t.pass()
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  t.fail('the closed stream did not free its place')
})

test('live: POST /models?dryRun=true answers what creating would, and stores and audits nothing', async (t) => {
  const { v, op } = await setup(t)
  const ok = await admin(op, 'POST', 'admin/models?dryRun=true', { brandId: BRAND, name: 'dry-model', storeId: 'live-a', headers: PI_MODEL_HEADERS })
  t.is(ok.status, 200)
  t.like(jsonOf(ok), { valid: true, model: { name: 'dry-model', storeId: 'live-a' } })
  t.is((await admin(op, 'GET', `admin/models/${BRAND}/dry-model`)).status, 404)
  const before = (await adminJson<{ entries: unknown[] }>(op, 'GET', 'admin/audit?limit=1000')).entries.length
  // a bad header: the same code and message as the real call
  const bad = { brandId: BRAND, name: 'dry-model', storeId: 'live-a', headers: { ...PI_MODEL_HEADERS, grade: 'shiny' } }
  const dry = assertError(t, await admin(op, 'POST', 'admin/models?dryRun=true', bad), 400, 'SV_MODEL_INVALID')
  const real = assertError(t, await admin(op, 'POST', 'admin/models', bad), 400, 'SV_MODEL_INVALID')
  t.is(dry.message, real.message)
  // a taken name
  assertError(t, await admin(op, 'POST', 'admin/models?dryRun=true', { brandId: BRAND, name: 'model-a', storeId: 'live-a', headers: PI_MODEL_HEADERS }), 409, 'SV_MODEL_EXISTS')
  const after = (await adminJson<{ entries: Array<{ action: string }> }>(op, 'GET', 'admin/audit?limit=1000')).entries
  // the refused real call is not audited as a change either; nothing was added by the dry runs
  t.is(after.length, before)
  assertError(t, await admin(op, 'POST', 'admin/models?dryRun=maybe', bad), 400, 'SV_REQUEST_INVALID', { field: 'dryRun' })
})

test('live: the stream\'s credential re-checks do not extend a session\'s idle time; an ordinary call does', async (t) => {
  const { v } = await setup(t)
  const p = await person(v, 'live-a', 'viewer', 'idle@live.example')
  const hash = createHash('sha256').update(p.cookie).digest('hex')
  const idleBefore = (await v.vault.store.sessions.get(hash))!.idleExpiresAt
  const access = v.vault.services.admin
  // the session was made to expire in an hour: a re-check leaves it so
  await access.authenticate({ session: p.cookie, method: 'GET', touch: false })
  await new Promise((r) => setTimeout(r, 100))
  t.is((await v.vault.store.sessions.get(hash))!.idleExpiresAt, idleBefore)
  // an ordinary call moves it (when it moved by more than the touch interval: shorten the stored one first)
  await v.vault.store.sessions.touch(hash, Date.now() + 60_000)
  await access.authenticate({ session: p.cookie, method: 'GET' })
  await new Promise((r) => setTimeout(r, 100))
  t.true((await v.vault.store.sessions.get(hash))!.idleExpiresAt > Date.now() + 30 * 60_000)
})

test('live: a vault stopping with Live pages open ends their streams and stops at once (no wait for the grace period)', async (t) => {
  const { v } = await setup(t)
  const streams = await Promise.all([1, 2, 3].map(() => openSse(endpoint(v.url, 'admin/live'), { authorization: `Bearer ${v.adminToken}` })))
  for (const s of streams) await s.next('hello')
  const started = Date.now()
  await v.close()
  t.true(Date.now() - started < 3000, `stopped in ${Date.now() - started} ms`)
  for (const s of streams) await s.ended
})
