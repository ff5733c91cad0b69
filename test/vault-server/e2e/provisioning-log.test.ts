/**
 * What ops see of provisioning: one log line per serial request outcome, the
 * same on HTTPS and MQTT (the registration service writes it, whichever
 * transport called), checked field by field on the vault's own logger
 * (createLogger: level names, redaction). A clone attempt is a warning; a
 * refusal names its SV_* code; nothing secret is ever in a line.
 *
 * One vault (LevelDB in a temp dir, HTTPS with the development certificate,
 * the embedded MQTT broker) per test.
 */
import test, { type ExecutionContext } from 'ava'
import { startTestVault, type TestVault } from '../../helpers/vault.js'
import { fetchRequestId, fixtureDeviceKey, generateDeviceKey, postSerial, serialRequestStream, type DeviceKey } from '../../helpers/device.js'
import { connectMqtt, mqttRequest, mqttRequestId, newToken, subscribeReplies } from '../mqtt/mqtt-helpers.js'
import type { MqttClient } from 'mqtt'

const BRAND = 'acme-brand'
const MODEL = 'acme-pi-gateway'
const REISSUE = 'acme-reissue'

type Line = Record<string, unknown>

interface Ctx {
  v: TestVault
  lines: Line[]
  mqtt: MqttClient
}

async function setup(t: ExecutionContext): Promise<Ctx> {
  const lines: Line[] = []
  const v = await startTestVault(t, { tls: true, store: 'level', workers: 1, logLines: lines, models: [{ name: REISSUE, duplicatePolicy: 'reissue' }], config: { mqtt: { mode: 'embedded', listen: '127.0.0.1:0' } } })
  const mqtt = await connectMqtt(t, v.vault.mqttUrl!, { clientId: 'line-7', username: 'line-7', password: v.apiKey, rejectUnauthorized: false })
  await subscribeReplies(mqtt)
  return { v, lines, mqtt }
}

/** One serial request over HTTPS with our own X-Request-Id; resolves with the status. */
async function overHttps(c: Ctx, reqId: string, key: DeviceKey, serial: string, o: { model?: string; requestId?: string } = {}): Promise<number> {
  const requestId = o.requestId ?? (await fetchRequestId(c.v.url, c.v.apiKey, { ca: c.v.caPem! }))
  const body = await serialRequestStream({ key, brandId: BRAND, model: o.model ?? MODEL, requestId, serial })
  const r = await postSerial(c.v.url, c.v.apiKey, body, { ca: c.v.caPem!, headers: { 'x-request-id': reqId } })
  return r.status
}

/** One serial request over MQTT with the given token; resolves with the reply's kind and code. */
async function overMqtt(c: Ctx, token: string, key: DeviceKey, serial: string, o: { requestId?: string } = {}): Promise<{ kind: string; code?: unknown }> {
  const requestId = o.requestId ?? (await mqttRequestId(c.mqtt, c.v.apiKey))
  const body = await serialRequestStream({ key, brandId: BRAND, model: MODEL, requestId, serial })
  const r = await mqttRequest(c.mqtt, 'serial', { 'api-key': c.v.apiKey, body: body.toString('utf8'), token })
  return { kind: r.kind, code: r.body.code }
}

/** The registration service's lines of one request (by correlation id). */
function outcomeLines(c: Ctx, reqId: string): Line[] {
  return c.lines.filter((l) => l.module === 'registration' && l.reqId === reqId && l.msg !== 'request_id.issued')
}

/** Exactly one outcome line for the request, with these fields (and a duration); resolves with it. */
function one(t: ExecutionContext, c: Ctx, reqId: string, expected: Line): Line {
  const got = outcomeLines(c, reqId)
  t.is(got.length, 1, `one outcome line for ${reqId}: ${JSON.stringify(got)}`)
  const line = got[0] ?? {}
  for (const [k, want] of Object.entries(expected)) t.deepEqual(line[k], want, `${reqId}: ${k}`)
  t.is(typeof line.durationMs, 'number', `${reqId}: durationMs`)
  t.is(line.service, 'vault-server')
  t.is(typeof line.time, 'string')
  return line
}

function noSecrets(t: ExecutionContext, c: Ctx, keys: DeviceKey[]): void {
  const all = JSON.stringify(c.lines)
  t.false(all.includes(c.v.apiKey), 'the api-key is in no line')
  t.false(all.includes(c.v.adminToken), 'the admin token is in no line')
  t.false(all.includes('PRIVATE KEY'), 'no private key material')
  for (const k of keys) t.false(all.includes(k.publicKey.encode().slice(0, 80)), 'not even the device public key (its id is enough)')
}

test('provisioning log over HTTPS: signed, retried, clone refused (warn), other refusals with their code, reissued; each once, field by field', async (t) => {
  const c = await setup(t)
  const device = fixtureDeviceKey('device')
  const clone = fixtureDeviceKey('evil')
  const other = await generateDeviceKey()

  t.is(await overHttps(c, 'h-signed', device, 'LOG-1'), 200)
  const base = { level: 'info', transport: 'https', brandId: BRAND, model: MODEL, storeId: BRAND, clientAddress: '127.0.0.1' }
  one(t, c, 'h-signed', { ...base, msg: 'serial.signed', serial: 'LOG-1', deviceKeyId: device.id, revision: 1 })

  t.is(await overHttps(c, 'h-retried', device, 'LOG-1'), 200)
  one(t, c, 'h-retried', { ...base, msg: 'serial.retried', serial: 'LOG-1', deviceKeyId: device.id, revision: 1 })

  t.is(await overHttps(c, 'h-clone', clone, 'LOG-1'), 409)
  const cl = one(t, c, 'h-clone', { ...base, level: 'warn', msg: 'serial.clone_refused', serial: 'LOG-1', deviceKeyId: clone.id, code: 'SV_SERIAL_TAKEN' })
  t.is(cl.revision, undefined)

  // a refusal before the model is known: what the device claimed, and the code
  t.is(await overHttps(c, 'h-unknown', other, 'LOG-2', { model: 'no-such-model' }), 404)
  const unknown = one(t, c, 'h-unknown', { level: 'info', msg: 'serial.rejected', transport: 'https', brandId: BRAND, model: 'no-such-model', deviceKeyId: other.id, code: 'SV_MODEL_UNKNOWN' })
  t.is(unknown.storeId, undefined)

  // a used request-id
  const used = await fetchRequestId(c.v.url, c.v.apiKey, { ca: c.v.caPem! })
  t.is(await overHttps(c, 'h-first-use', other, 'LOG-3', { requestId: used }), 200)
  t.is(await overHttps(c, 'h-used', other, 'LOG-4', { requestId: used }), 409)
  one(t, c, 'h-used', { ...base, msg: 'serial.rejected', serial: 'LOG-4', deviceKeyId: other.id, code: 'SV_REQUEST_ID_USED' })

  // another key for a serial of a reissue model: the next revision
  t.is(await overHttps(c, 'h-r1', device, 'LOG-5', { model: REISSUE }), 200)
  t.is(await overHttps(c, 'h-r2', clone, 'LOG-5', { model: REISSUE }), 200)
  one(t, c, 'h-r2', { ...base, model: REISSUE, msg: 'serial.reissued', serial: 'LOG-5', deviceKeyId: clone.id, revision: 2 })

  // the access line of the refused request says what it was about too
  const access = c.lines.filter((l) => l.msg === 'request.completed' && l.reqId === 'h-clone')
  t.is(access.length, 1)
  t.like(access[0], { level: 'info', route: '/v1/serial', status: 409, code: 'SV_SERIAL_TAKEN', brandId: BRAND, model: MODEL, serial: 'LOG-1' })

  // request-ids: at debug, with the transport and the correlation id
  const ids = c.lines.filter((l) => l.msg === 'request_id.issued')
  t.is(ids.length, 7)
  t.true(ids.every((l) => l.level === 'debug' && l.transport === 'https' && typeof l.reqId === 'string' && l.reqId !== ''))
  noSecrets(t, c, [device, clone, other])
})

test('provisioning log over MQTT: the same events and fields, the token as the correlation id, the client as the address', async (t) => {
  const c = await setup(t)
  const device = fixtureDeviceKey('device')
  const clone = fixtureDeviceKey('impostor')
  const base = { level: 'info', transport: 'mqtt', brandId: BRAND, model: MODEL, storeId: BRAND, clientAddress: 'mqtt:line-7' }

  const signed = newToken()
  t.is((await overMqtt(c, signed, device, 'MQ-1')).kind, 'accepted')
  one(t, c, signed, { ...base, msg: 'serial.signed', serial: 'MQ-1', deviceKeyId: device.id, revision: 1 })

  const retried = newToken()
  t.is((await overMqtt(c, retried, device, 'MQ-1')).kind, 'accepted')
  one(t, c, retried, { ...base, msg: 'serial.retried', serial: 'MQ-1', deviceKeyId: device.id, revision: 1 })

  const cloned = newToken()
  t.deepEqual(await overMqtt(c, cloned, clone, 'MQ-1'), { kind: 'rejected', code: 'SV_SERIAL_TAKEN' })
  one(t, c, cloned, { ...base, level: 'warn', msg: 'serial.clone_refused', serial: 'MQ-1', deviceKeyId: clone.id, code: 'SV_SERIAL_TAKEN' })

  const bogus = newToken()
  t.deepEqual(await overMqtt(c, bogus, clone, 'MQ-2', { requestId: 'A'.repeat(50) }), { kind: 'rejected', code: 'SV_REQUEST_ID_UNKNOWN' })
  one(t, c, bogus, { ...base, msg: 'serial.rejected', serial: 'MQ-2', deviceKeyId: clone.id, code: 'SV_REQUEST_ID_UNKNOWN' })

  // the router adds no second line for what the service logged
  t.is(c.lines.filter((l) => l.module === 'mqtt' && l.msg === 'request.failed').length, 0)
  const ids = c.lines.filter((l) => l.msg === 'request_id.issued')
  t.is(ids.length, 3)
  t.true(ids.every((l) => l.level === 'debug' && l.transport === 'mqtt' && typeof l.reqId === 'string'))
  noSecrets(t, c, [device, clone])
})
