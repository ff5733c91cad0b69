/**
 * MQTT device helpers for the vault tests: a connected client that is ended
 * at teardown, a reply collector, and request/reply over the topic contract
 * of shared/src/protocol/mqtt.ts. Every wait is bounded.
 *
 *   const c = await connectMqtt(t, v.vault.mqttUrl!, { clientId: 'dev-1', password: v.apiKey })
 *   const r = await mqttRequest(c, 'request-id', { 'api-key': v.apiKey })
 *   r.kind ('accepted' | 'rejected'), r.body (parsed JSON), r.topic
 *
 * The shared broker (SV_TEST_MQTT_URL, Mosquitto) has one topic namespace:
 * every vault subscribed to a prefix in external mode gets every request
 * under it (a copy per shared-subscription group) and answers it. Test files
 * that put a vault on that broker therefore give it a topic prefix of their
 * own (mqtt.topicPrefix, `testPrefix()`), and pass it to these helpers.
 */
import type { ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import { Buffer } from 'node:buffer'
import mqtt, { type IClientOptions, type MqttClient, type IPublishPacket } from 'mqtt'
import { MQTT_PREFIX, replyFilter, requestTopic, type MqttOperation } from '@sv/shared'

/** The shared broker of the test machine (started by .ci/run). */
export const SHARED_MQTT_URL = process.env.SV_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883'
export const PG_URL = process.env.SV_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export interface ConnectOptions extends Omit<IClientOptions, 'reconnectPeriod' | 'connectTimeout'> {
  connectTimeoutMs?: number
}

/** Connects (no reconnection), or rejects with the broker's refusal / a timeout. Ended at teardown. */
export async function connectMqtt(t: ExecutionContext | undefined, url: string, o: ConnectOptions = {}): Promise<MqttClient> {
  const { connectTimeoutMs = 5000, ...opts } = o
  const client = mqtt.connect(url, { protocolVersion: 4, clean: true, ...opts, reconnectPeriod: 0, connectTimeout: connectTimeoutMs })
  t?.teardown(() => client.endAsync(true).catch(() => undefined))
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`MQTT connect to ${url}: no CONNACK within ${connectTimeoutMs} ms`)), connectTimeoutMs + 500)
      client.once('connect', () => {
        clearTimeout(timer)
        resolve()
      })
      client.once('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
      client.once('close', () => {
        clearTimeout(timer)
        reject(Object.assign(new Error('MQTT connection closed before CONNACK'), { code: 'closed' }))
      })
    })
  } catch (e) {
    await client.endAsync(true).catch(() => undefined)
    throw e
  }
  // later errors (e.g. a refused publish closing the connection) must not be unhandled
  client.on('error', () => undefined)
  return client
}

/** Connection refusal of the broker, as mqtt.js reports it (CONNACK return code), or undefined. */
export async function connectRefusal(url: string, o: ConnectOptions): Promise<number | string | undefined> {
  try {
    const c = await connectMqtt(undefined, url, o)
    await c.endAsync(true)
    return undefined
  } catch (e) {
    return (e as { code?: number | string }).code ?? (e as Error).message
  }
}

export interface Received {
  topic: string
  payload: Buffer
  packet: IPublishPacket
  json: Record<string, unknown> | undefined
}

/** Collects every message a client receives, with a bounded wait for one that matches. */
export class Inbox {
  readonly messages: Received[] = []
  readonly #waiters = new Set<{ pred: (m: Received) => boolean; resolve: (m: Received) => void }>()

  constructor(client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      let json: Record<string, unknown> | undefined
      try {
        json = JSON.parse(payload.toString('utf8')) as Record<string, unknown>
      } catch {
        json = undefined
      }
      const m = { topic, payload, packet, json }
      this.messages.push(m)
      for (const w of this.#waiters) {
        if (w.pred(m)) {
          this.#waiters.delete(w)
          w.resolve(m)
        }
      }
    })
  }

  /** The first message (already received or coming) matching `pred`; rejects after `timeoutMs`. */
  wait(pred: (m: Received) => boolean, timeoutMs = 15_000, what = 'a matching message'): Promise<Received> {
    const hit = this.messages.find(pred)
    if (hit) return Promise.resolve(hit)
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (m: Received) => {
          clearTimeout(timer)
          resolve(m)
        },
      }
      const timer = setTimeout(() => {
        this.#waiters.delete(w)
        reject(new Error(`no ${what} within ${timeoutMs} ms (got ${this.messages.length} messages)`))
      }, timeoutMs)
      this.#waiters.add(w)
    })
  }

  count(pred: (m: Received) => boolean): number {
    return this.messages.filter(pred).length
  }
}

const inboxes = new WeakMap<MqttClient, Inbox>()

/** The client's inbox (created on first use; collect from then on). */
export function inboxOf(client: MqttClient): Inbox {
  let i = inboxes.get(client)
  if (!i) {
    i = new Inbox(client)
    inboxes.set(client, i)
  }
  return i
}

/** A topic prefix of this test file's own on a shared broker (`sv-test-<random>/serial-vault/v1`). */
export function testPrefix(): string {
  return `sv-test-${randomBytes(5).toString('hex')}/${MQTT_PREFIX}`
}

/** Subscribes the client to its own reply topics (PREFIX/+/<id>/+); resolves with the granted QoS. */
export async function subscribeReplies(client: MqttClient, o: { clientId?: string; prefix?: string } = {}): Promise<number> {
  inboxOf(client)
  const granted = await client.subscribeAsync(replyFilter(o.clientId ?? client.options.clientId!, o.prefix), { qos: 1 })
  return granted[0]!.qos
}

export interface Reply {
  kind: 'accepted' | 'rejected'
  topic: string
  body: Record<string, unknown>
  packet: IPublishPacket
}

export function newToken(): string {
  return `tok-${randomBytes(9).toString('hex')}`
}

/**
 * Publishes one request (QoS 1) with a fresh token (unless given) and waits
 * for its reply on the client's reply topics (subscribe first with
 * subscribeReplies).
 */
export async function mqttRequest(client: MqttClient, op: MqttOperation, payload: Record<string, unknown>, o: { timeoutMs?: number; clientId?: string; prefix?: string } = {}): Promise<Reply> {
  const clientId = o.clientId ?? client.options.clientId!
  const prefix = o.prefix ?? MQTT_PREFIX
  const token = typeof payload.token === 'string' ? payload.token : newToken()
  const inbox = inboxOf(client)
  const reply = inbox.wait((m) => m.topic.startsWith(`${prefix}/${op}/${clientId}/`) && m.json?.token === token, o.timeoutMs ?? 15_000, `${op} reply for ${token}`)
  await client.publishAsync(requestTopic(op, prefix), JSON.stringify({ client: clientId, ...payload, token }), { qos: 1 })
  const m = await reply
  return { kind: m.topic.endsWith('/accepted') ? 'accepted' : 'rejected', topic: m.topic, body: m.json!, packet: m.packet }
}

/** A request-id over MQTT; throws unless accepted. */
export async function mqttRequestId(client: MqttClient, apiKey: string, o: { prefix?: string } = {}): Promise<string> {
  const r = await mqttRequest(client, 'request-id', { 'api-key': apiKey }, o)
  if (r.kind !== 'accepted') throw new Error(`request-id rejected: ${JSON.stringify(r.body)}`)
  return r.body['request-id'] as string
}

/** Resolves after `ms` (for "nothing arrives within" checks). */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Fails loudly (never skips) when the shared broker is not there. */
export async function requireBroker(url = SHARED_MQTT_URL): Promise<void> {
  try {
    const c = await connectMqtt(undefined, url, { clientId: `sv-probe-${randomBytes(4).toString('hex')}`, connectTimeoutMs: 3000 })
    await c.endAsync(true)
  } catch (e) {
    throw new Error(`the MQTT broker at ${url} (SV_TEST_MQTT_URL) is not reachable: ${(e as Error).message}; start it: mosquitto -d -c /etc/mosquitto/mosquitto.conf`)
  }
}

/** SUBSCRIBE and the granted codes (128 = refused; mqtt.js rejects then, with the SUBACK). */
export async function subscribeGranted(client: MqttClient, filters: string[]): Promise<number[]> {
  inboxOf(client)
  try {
    return (await client.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos)
  } catch (e) {
    const granted = (e as { packet?: { granted?: (number | { qos: number })[] } }).packet?.granted
    if (!granted) throw e
    return granted.map((g) => (typeof g === 'number' ? g : g.qos))
  }
}
