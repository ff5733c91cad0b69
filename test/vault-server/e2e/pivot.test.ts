/**
 * Pivots (remodels) end to end against a real vault: a registered device asks
 * to move to a model of a sub-store with a serial-request signed by its own
 * device key (snapd's re-registration: original-* headers, the new model and
 * the current serial in the stream), over HTTPS and over MQTT. The vault
 * checks the allow-list and that the request is signed by the key bound to the
 * serial; the new serial passes snapd's checks; a store that requires review
 * holds the request (202) until a Reviewer decides. Every pivot is in the
 * signing log and the audit log.
 */
import test, { type ExecutionContext } from 'ava'
import { Buffer } from 'node:buffer'
import { readFile } from 'node:fs/promises'
import { decodeStream, type AssertionSigner, type SerialAssertion } from '@sv/shared'
import { PI_MODEL_HEADERS, startTestVault, type TestVault } from '../../helpers/vault.js'
import { fetchRequestId, generateDeviceKeys, joinStream, postSerial, registerDevice, signSerialRequest, type DeviceKey } from '../../helpers/device.js'
import { vectorPath } from '../../helpers/vectors.js'
import { snapdVerify, tempDir } from '../../helpers/snapd-check.js'
import { admin, adminJson, assertError, logEntries, serialOf } from '../http/api.js'
import { connectMqtt, mqttRequest, mqttRequestId, subscribeReplies } from '../mqtt/mqtt-helpers.js'

const BRAND = 'acme-brand'
const FROM = 'acme-pi-gateway'

interface Ctx {
  v: TestVault
  /** model name -> model assertion text */
  models: Record<string, string>
}

/** A vault with the vectors' brand, model acme-pi-gateway in the base store, and two sub-stores with one model each (one requires review). */
async function setup(t: ExecutionContext, mqtt = false): Promise<Ctx> {
  const v = await startTestVault(t, { store: 'memory', workers: 1, ...(mqtt ? { config: { mqtt: { mode: 'embedded', listen: '127.0.0.1:0' } } } : {}) })
  const models: Record<string, string> = {}
  for (const [store, model, review] of [
    ['acme-industrial', 'acme-pi-industrial', false],
    ['acme-regulated', 'acme-pi-regulated', true],
  ] as const) {
    const s = await admin(v, 'POST', 'admin/stores', { id: store, parent: BRAND, kind: 'product', displayName: store, requirePivotReview: review })
    t.is(s.status, 201, s.body.toString())
    const m = await admin(v, 'POST', 'admin/models', { brandId: BRAND, name: model, storeId: store, apiKeys: [v.apiKey], headers: PI_MODEL_HEADERS })
    t.is(m.status, 201, m.body.toString())
  }
  for (const name of [FROM, 'acme-pi-industrial', 'acme-pi-regulated']) models[name] = (await adminJson<{ model: { modelAssertion: string } }>(v, 'GET', `admin/models/${BRAND}/${name}`)).model.modelAssertion
  return { v, models }
}

async function register(c: Ctx, key: DeviceKey, serial: string): Promise<SerialAssertion> {
  return serialOf(await registerDevice(c.v.url, c.v.apiKey, { key, brandId: BRAND, model: FROM, serial, modelAssertion: c.models[FROM]! })).serial
}

/** The re-registration stream: serial-request (original-* headers), new model, current serial. */
async function pivotStream(c: Ctx, o: { key: DeviceKey; signer?: AssertionSigner; to: string; serial: string; current: SerialAssertion; requestId: string; originalBrand?: string }): Promise<Buffer> {
  const key = (o.signer ? { ...o.key, signer: o.signer } : o.key) as DeviceKey
  const req = await signSerialRequest({
    key,
    brandId: BRAND,
    model: o.to,
    requestId: o.requestId,
    serial: o.serial,
    headers: { 'original-brand-id': o.originalBrand ?? BRAND, 'original-model': FROM, 'original-serial': o.serial },
  })
  return joinStream([req.encode(), c.models[o.to]!, o.current.encode()])
}

async function allow(t: ExecutionContext, c: Ctx, store: string, to: string, serial?: string): Promise<void> {
  const r = await admin(c.v, 'POST', `admin/stores/${store}/pivots`, { fromModel: FROM, toModel: to, ...(serial ? { serial } : {}) })
  t.is(r.status, 201, r.body.toString())
}

test('pivot: an allowed device moves to a sub-store model with its own key; snapd accepts the new serial; refusals have their codes', async (t) => {
  const c = await setup(t)
  const [k1, k2] = await generateDeviceKeys(2)
  const current = await register(c, k1!, 'SN-P1')
  const to = 'acme-pi-industrial'

  // no allow-list entry yet: refused, and the request-id stays usable
  const rid = await fetchRequestId(c.v.url, c.v.apiKey)
  assertError(t, await postSerial(c.v.url, c.v.apiKey, await pivotStream(c, { key: k1!, to, serial: 'SN-P1', current, requestId: rid })), 403, 'SV_PIVOT_NOT_ALLOWED', { fromModel: FROM, toModel: to })
  await allow(t, c, 'acme-industrial', to, 'SN-P1')

  // another device key, even holding the current serial (it is public), is refused
  assertError(t, await postSerial(c.v.url, c.v.apiKey, await pivotStream(c, { key: k2!, to, serial: 'SN-P1', current, requestId: rid })), 403, 'SV_PIVOT_KEY_MISMATCH', { serial: 'SN-P1', boundKey: k1!.id, requestKey: k2!.id })
  // the bound key's id in the request, but signed by another key: not signed by its device-key
  const forged: AssertionSigner = { publicKey: k1!.publicKey, sign: (d) => k2!.signer.sign(d) }
  assertError(t, await postSerial(c.v.url, c.v.apiKey, await pivotStream(c, { key: k1!, signer: forged, to, serial: 'SN-P1', current, requestId: rid })), 400, 'SV_SERIAL_REQUEST_SIGNATURE')
  // pivots stay within the brand
  assertError(t, await postSerial(c.v.url, c.v.apiKey, await pivotStream(c, { key: k1!, to, serial: 'SN-P1', current, requestId: rid, originalBrand: 'evil-corp' })), 403, 'SV_PIVOT_NOT_ALLOWED', { reason: 'brand' })
  // a serial this vault did not sign: the vectors' serial of another device
  const foreign = decodeStream(await readFile(vectorPath('serial.assert')))[0] as SerialAssertion
  assertError(t, await postSerial(c.v.url, c.v.apiKey, await pivotStream(c, { key: k1!, to, serial: 'SN-P1', current: foreign, requestId: rid })), 400, 'SV_PIVOT_INVALID', { reason: 'serial-mismatch' })

  const stream = await pivotStream(c, { key: k1!, to, serial: 'SN-P1', current, requestId: rid })
  const done = await postSerial(c.v.url, c.v.apiKey, stream)
  const { serial, rest } = serialOf(done)
  t.is(serial.model, to)
  t.is(serial.serial, 'SN-P1')
  t.is(serial.deviceKeyId, k1!.id)
  t.is(serial.headerString('revision'), '1')

  // snapd's checks: the new serial against the trust chain and the new model
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const verdict = await snapdVerify(dir, { trusted: await readFile(c.v.trusted), chain: [joinStream([...rest.map((a) => a.encode()), c.models[to]!])], file: serial.encode() })
  t.is(verdict.code, 0, verdict.stdout + verdict.stderr)
  t.true(verdict.lines.every((l) => l.ok))

  // the same request again: the same bytes (an identical retry), nothing new logged
  t.true((await postSerial(c.v.url, c.v.apiKey, stream)).body.equals(done.body))
  const log = await logEntries(c.v, { outcome: 'pivoted' })
  t.like(log, [{ brandId: BRAND, model: to, fromModel: FROM, serial: 'SN-P1', deviceKeyId: k1!.id, storeId: 'acme-industrial', revision: 1 }])
  t.is(log.length, 1)
  const refusals = (await logEntries(c.v, { outcome: 'refused' })).map((e) => e.code)
  t.deepEqual(refusals, ['SV_PIVOT_NOT_ALLOWED', 'SV_PIVOT_KEY_MISMATCH', 'SV_SERIAL_REQUEST_SIGNATURE', 'SV_PIVOT_NOT_ALLOWED', 'SV_PIVOT_INVALID'])
  // the old binding records the move; the new one where it came from
  t.like((await adminJson<{ binding: object }>(c.v, 'GET', `admin/serials/${BRAND}/${FROM}/SN-P1`)).binding, { pivotedTo: { model: to } })
  t.like((await adminJson<{ binding: object }>(c.v, 'GET', `admin/serials/${BRAND}/${to}/SN-P1`)).binding, { pivotedFrom: FROM, deviceKeyId: k1!.id })
  // audited, by the device
  const audit = await adminJson<{ entries: Array<Record<string, unknown>> }>(c.v, 'GET', 'admin/audit?action=serial.pivoted')
  t.like(audit.entries, [{ action: 'serial.pivoted', actor: { kind: 'device', id: k1!.id }, storeId: 'acme-industrial', before: { model: FROM }, after: { model: to, revision: 1 } }])
  // a rule for one serial does not open the others
  const [k3] = await generateDeviceKeys(1)
  const other = await register(c, k3!, 'SN-P2')
  assertError(t, await postSerial(c.v.url, c.v.apiKey, await pivotStream(c, { key: k3!, to, serial: 'SN-P2', current: other, requestId: await fetchRequestId(c.v.url, c.v.apiKey) })), 403, 'SV_PIVOT_NOT_ALLOWED')
})

test('pivot: a store that requires review holds the device at 202 until a Reviewer accepts or refuses', async (t) => {
  const c = await setup(t)
  const to = 'acme-pi-regulated'
  await allow(t, c, 'acme-regulated', to)
  const [k1, k2] = await generateDeviceKeys(2)
  const s1 = await register(c, k1!, 'SN-R1')
  const s2 = await register(c, k2!, 'SN-R2')
  const body1 = await pivotStream(c, { key: k1!, to, serial: 'SN-R1', current: s1, requestId: await fetchRequestId(c.v.url, c.v.apiKey) })
  const body2 = await pivotStream(c, { key: k2!, to, serial: 'SN-R2', current: s2, requestId: await fetchRequestId(c.v.url, c.v.apiKey) })
  for (const body of [body1, body2, body1]) {
    const wait = await postSerial(c.v.url, c.v.apiKey, body)
    assertError(t, wait, 202, 'SV_PIVOT_PENDING', { storeId: 'acme-regulated' })
    t.is(wait.headers['retry-after'], '60')
  }
  const { requests } = await adminJson<{ requests: Array<{ requestId: string; serial: string; status: string }> }>(c.v, 'GET', 'admin/stores/acme-regulated/pivot-requests?status=pending')
  t.deepEqual(requests.map((r) => r.serial).sort(), ['SN-R1', 'SN-R2'])
  const id = (serial: string) => requests.find((r) => r.serial === serial)!.requestId
  t.like(await adminJson(c.v, 'POST', `admin/stores/acme-regulated/pivot-requests/${id('SN-R1')}/accept`), { request: { status: 'accepted' } })
  t.like(await adminJson(c.v, 'POST', `admin/stores/acme-regulated/pivot-requests/${id('SN-R2')}/reject`, { reason: 'not this unit' }), { request: { status: 'rejected', reason: 'not this unit' } })
  assertError(t, await admin(c.v, 'POST', `admin/stores/acme-regulated/pivot-requests/${id('SN-R2')}/accept`), 409, 'SV_PIVOT_DECIDED')

  // the devices poll with the same request
  t.is(serialOf(await postSerial(c.v.url, c.v.apiKey, body1)).serial.model, to)
  assertError(t, await postSerial(c.v.url, c.v.apiKey, body2), 403, 'SV_PIVOT_REJECTED', { reason: 'not this unit' })
  // pending polls are not refusals: the log holds the pivot and the one refusal
  t.deepEqual(
    (await logEntries(c.v, { model: to, brand: BRAND })).map((e) => [e.outcome, e.serial, e.code]),
    [
      ['pivoted', 'SN-R1', undefined],
      ['refused', 'SN-R2', 'SV_PIVOT_REJECTED'],
    ],
  )
  const audit = await adminJson<{ entries: Array<{ action: string }> }>(c.v, 'GET', 'admin/audit?action=pivot.')
  t.deepEqual(audit.entries.map((e) => e.action), ['pivot.allowed', 'pivot.accepted', 'pivot.rejected'])
})

test('pivot: over MQTT, with the same checks and the same answer', async (t) => {
  const c = await setup(t, true)
  const to = 'acme-pi-industrial'
  await allow(t, c, 'acme-industrial', to)
  const [k1, k2] = await generateDeviceKeys(2)
  const current = await register(c, k1!, 'SN-M1')
  const client = await connectMqtt(t, c.v.vault.mqttUrl!, { clientId: 'pivot-device', username: 'device', password: c.v.apiKey, rejectUnauthorized: false })
  await subscribeReplies(client, { clientId: 'pivot-device' })
  const requestId = await mqttRequestId(client, c.v.apiKey)
  const wrong = await mqttRequest(client, 'serial', { 'api-key': c.v.apiKey, body: (await pivotStream(c, { key: k2!, to, serial: 'SN-M1', current, requestId })).toString() })
  t.is(wrong.kind, 'rejected')
  t.like(wrong.body, { code: 'SV_PIVOT_KEY_MISMATCH', status: 403, details: { serial: 'SN-M1' } })
  const ok = await mqttRequest(client, 'serial', { 'api-key': c.v.apiKey, body: (await pivotStream(c, { key: k1!, to, serial: 'SN-M1', current, requestId })).toString() })
  t.is(ok.kind, 'accepted', JSON.stringify(ok.body))
  const [serial] = decodeStream(Buffer.from((ok.body as { assertions: string }).assertions)) as [SerialAssertion]
  t.is(serial.model, to)
  t.is(serial.deviceKeyId, k1!.id)
  t.like(await logEntries(c.v, { outcome: 'pivoted' }), [{ transport: 'mqtt', serial: 'SN-M1' }])
})
