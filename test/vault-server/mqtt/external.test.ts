/**
 * The device API through an external broker: the machine's Mosquitto
 * (SV_TEST_MQTT_URL, default mqtt://127.0.0.1:1883; a missing broker fails
 * the file) with a real vault in this process as its client (external mode,
 * $share/<group>/ subscriptions). Devices speak MQTT 3.1.1 (JSON token, own
 * reply topics) or MQTT 5 (response topic + correlation data).
 *
 * One vault serves the whole file, under a topic prefix of the file's own
 * (mqtt.topicPrefix): other test files' vaults on the same broker neither see
 * nor answer its requests. Tests tell their devices apart by client id.
 */
import test, { type ExecutionContext } from 'ava'
import { Buffer } from 'node:buffer'
import { randomBytes } from 'node:crypto'
import type { MqttClient } from 'mqtt'
import { decodeStream, replyTopic, requestTopic } from '@sv/shared'
import { startTestVault, type TestVault } from '../../helpers/vault.js'
import { generateDeviceKeys, registerDevice, serialRequestStream, type DeviceKey } from '../../helpers/device.js'
import { SHARED_MQTT_URL, connectMqtt, inboxOf, mqttRequest as request, mqttRequestId as requestId, newToken, requireBroker, sleep, subscribeReplies, testPrefix, type Reply } from './mqtt-helpers.js'

const BRAND = 'acme-brand'
const MODEL = 'acme-pi-gateway'
const RUN = randomBytes(3).toString('hex')
const PREFIX = testPrefix()

let vault: TestVault | undefined
const logLines: Record<string, unknown>[] = []
const keyPool = generateDeviceKeys(8)
let nextKey = 0

async function takeKey(): Promise<DeviceKey> {
  const k = (await keyPool)[nextKey++]
  if (!k) throw new Error('the key pool of this file is exhausted: raise its size')
  return k
}

test.before(async () => {
  await requireBroker()
  vault = await startTestVault(undefined, { store: 'memory', workers: 1, logLines, config: { mqtt: { mode: 'external', url: SHARED_MQTT_URL, group: `sv-test-${RUN}`, topicPrefix: PREFIX } } })
})

test.after.always(async () => {
  await vault?.close()
})

const mqttRequest: typeof request = (c, op, payload, o = {}) => request(c, op, payload, { prefix: PREFIX, ...o })
const mqttRequestId = (c: MqttClient, apiKey: string) => requestId(c, apiKey, { prefix: PREFIX })

function v(): TestVault {
  if (!vault) throw new Error('the vault did not start')
  return vault
}

/** A 3.1.1 device on Mosquitto (anonymous), subscribed to its own replies. */
async function device(t: ExecutionContext, name: string, protocolVersion: 4 | 5 = 4): Promise<MqttClient> {
  const c = await connectMqtt(t, SHARED_MQTT_URL, { clientId: `${name}-${RUN}`, protocolVersion })
  if (protocolVersion === 4) await subscribeReplies(c, { prefix: PREFIX })
  return c
}

async function registerMqtt(c: MqttClient, key: DeviceKey, serial: string): Promise<Reply> {
  const requestId = await mqttRequestId(c, v().apiKey)
  const body = await serialRequestStream({ key, brandId: BRAND, model: MODEL, requestId, serial })
  return mqttRequest(c, 'serial', { 'api-key': v().apiKey, body: body.toString('utf8') })
}

test('external: a 3.1.1 device registers through Mosquitto (JSON token, its own reply topics)', async (t) => {
  const d = await device(t, 'e-311')
  const r = await registerMqtt(d, await takeKey(), `EXT-${RUN}-1`)
  t.is(r.kind, 'accepted')
  t.is(r.topic, replyTopic('serial', `e-311-${RUN}`, 'accepted', PREFIX))
  const [serial] = decodeStream(Buffer.from(r.body.assertions as string))
  t.is(serial!.typeName, 'serial')
  t.is(serial!.headerString('serial'), `EXT-${RUN}-1`)
})

test('external: MQTT 5 response topic and correlation data are honoured, accepted and rejected alike; no token needed', async (t) => {
  const d = await device(t, 'e-v5', 5)
  const responseTopic = `${PREFIX}/replies/e-v5-${RUN}`
  await d.subscribeAsync(responseTopic, { qos: 1 })
  const inbox = inboxOf(d)
  const ask = async (op: 'request-id' | 'serial', payload: Record<string, unknown>): Promise<{ body: Record<string, unknown>; correlation: Buffer | undefined }> => {
    const correlationData = randomBytes(12)
    const reply = inbox.wait((m) => m.topic === responseTopic && Buffer.compare(Buffer.from(m.packet.properties?.correlationData ?? []), correlationData) === 0, 15_000, `${op} reply`)
    await d.publishAsync(requestTopic(op, PREFIX), JSON.stringify(payload), { qos: 1, properties: { responseTopic, correlationData } })
    const m = await reply
    return { body: m.json!, correlation: m.packet.properties?.correlationData as Buffer | undefined }
  }
  const rid = await ask('request-id', { 'api-key': v().apiKey })
  t.is(rid.body.result, 'accepted')
  t.is(typeof rid.body['request-id'], 'string')
  t.false('token' in rid.body)
  const body = await serialRequestStream({ key: await takeKey(), brandId: BRAND, model: MODEL, requestId: rid.body['request-id'] as string, serial: `EXT-${RUN}-V5` })
  const ser = await ask('serial', { 'api-key': v().apiKey, body: body.toString('utf8') })
  t.is(ser.body.result, 'accepted')
  t.regex(ser.body.assertions as string, /^type: serial\n/)
  const bad = await ask('request-id', { 'api-key': 'wrong' })
  t.like(bad.body, { result: 'rejected', code: 'SV_API_KEY_INVALID', status: 401 })
  const garbage = await ask('serial', { 'api-key': v().apiKey, body: 'not an assertion' })
  t.like(garbage.body, { result: 'rejected', code: 'SV_ASSERTION_INVALID' })

  // a response topic outside serial-vault/v1/ is not answered, and is logged
  const outside = `elsewhere/e-v5-${RUN}`
  await d.subscribeAsync(outside, { qos: 1 })
  await d.publishAsync(requestTopic('request-id', PREFIX), JSON.stringify({ 'api-key': v().apiKey }), { qos: 1, properties: { responseTopic: outside, correlationData: Buffer.from('x') } })
  const end = Date.now() + 5000
  while (!logLines.some((l) => l.msg === 'mqtt.message_dropped' && l.reason === 'response topic outside serial-vault/v1/') && Date.now() < end) await sleep(20)
  t.true(logLines.some((l) => l.msg === 'mqtt.message_dropped' && l.reason === 'response topic outside serial-vault/v1/'))
  await sleep(300)
  t.is(inbox.count((m) => m.topic === outside), 0)
})

test('external: garbage is rejected when the payload names a client, dropped with a log line when nothing does', async (t) => {
  const d = await device(t, 'e-garbage')
  const id = `e-garbage-${RUN}`
  const inbox = inboxOf(d)
  const rejected = inbox.wait((m) => m.topic === replyTopic('serial', id, 'rejected', PREFIX), 10_000)
  await d.publishAsync(requestTopic('serial', PREFIX), JSON.stringify({ client: id, token: 'bad/token', 'api-key': 'k' }), { qos: 1 })
  t.like((await rejected).json, { code: 'SV_REQUEST_INVALID', status: 400 })

  const before = logLines.filter((l) => l.reason === 'unparsable payload, no reply address').length
  await d.publishAsync(requestTopic('serial', PREFIX), Buffer.from([0xde, 0xad, 0xbe, 0xef]), { qos: 1 })
  const end = Date.now() + 5000
  while (logLines.filter((l) => l.reason === 'unparsable payload, no reply address').length === before && Date.now() < end) await sleep(20)
  t.is(logLines.filter((l) => l.msg === 'mqtt.message_dropped' && l.reason === 'unparsable payload, no reply address').length, before + 1)
  // and the vault serves the same device afterwards
  t.is((await mqttRequest(d, 'request-id', { 'api-key': v().apiKey })).kind, 'accepted')
})

test('external: a duplicate delivery of one (client, token) gets the same reply and no second issuance', async (t) => {
  const d = await device(t, 'e-dup')
  const id = `e-dup-${RUN}`
  const serial = `EXT-${RUN}-DUP`
  const requestId = await mqttRequestId(d, v().apiKey)
  const body = (await serialRequestStream({ key: await takeKey(), brandId: BRAND, model: MODEL, requestId, serial })).toString('utf8')
  const token = newToken()
  const payload = JSON.stringify({ client: id, token, 'api-key': v().apiKey, body })
  await Promise.all([d.publishAsync(requestTopic('serial', PREFIX), payload, { qos: 1 }), d.publishAsync(requestTopic('serial', PREFIX), payload, { qos: 1 })])
  const inbox = inboxOf(d)
  const end = Date.now() + 15_000
  while (inbox.count((m) => m.json?.token === token) < 2 && Date.now() < end) await sleep(20)
  const replies = inbox.messages.filter((m) => m.json?.token === token)
  t.is(replies.length, 2)
  t.is(replies[0]!.topic, replyTopic('serial', id, 'accepted', PREFIX))
  t.true(replies[0]!.payload.equals(replies[1]!.payload))
  const log = await v().vault.store.signingLog.query({ serial, limit: 100 })
  t.deepEqual(
    log.entries.map((e) => e.outcome),
    ['issued'],
  )
})

test('external: the same serial assertion over HTTPS and over Mosquitto (identical retry across transports)', async (t) => {
  const d = await device(t, 'e-both')
  const key = await takeKey()
  const serial = `EXT-${RUN}-BOTH`
  const h = await registerDevice(v().url, v().apiKey, { key, brandId: BRAND, model: MODEL, serial })
  t.is(h.status, 200)
  const same = await mqttRequest(d, 'serial', { 'api-key': v().apiKey, body: h.sent.toString('utf8') })
  t.is(same.body.assertions, h.body.toString('utf8'))
  const fresh = await registerMqtt(d, key, serial)
  t.is(fresh.body.assertions, h.body.toString('utf8'))
})

test('external: 60 devices asking at the same moment are all served (each its own rate-limit bucket)', async (t) => {
  const devices = await Promise.all(Array.from({ length: 60 }, (_, i) => device(t, `e-many-${i}`)))
  const replies = await Promise.all(devices.map((d) => mqttRequest(d, 'request-id', { 'api-key': v().apiKey })))
  t.deepEqual(
    replies.map((r) => r.kind),
    replies.map(() => 'accepted'),
    JSON.stringify(replies.find((r) => r.kind !== 'accepted')?.body),
  )
})
