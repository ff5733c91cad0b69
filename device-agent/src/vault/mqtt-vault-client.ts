/**
 * VaultClient over MQTT (the contract is shared/src/protocol/mqtt.ts and
 * docs/api.md): the same two calls as over HTTPS, so the provisioner's state
 * machine, retries and verification are unchanged.
 *
 *   publish  serial-vault/v1/request-id   {client, token, api-key}
 *   publish  serial-vault/v1/serial       {client, token, api-key, body}
 *   replies  serial-vault/v1/<op>/<client>/accepted|rejected   (subscribed before publishing)
 *
 * MQTT 3.1.1 by default (what the vault's embedded broker speaks). With
 * `protocolVersion: 5` each request also carries a response topic and
 * correlation data. The API key is the CONNECT password too (the embedded
 * broker authenticates with it; an external broker may use its own
 * credentials: `username`/`password`). TLS (mqtts://) takes the same CA
 * bundle and SPKI pins as HTTPS.
 *
 * A reply whose token matches no pending request is ignored (a late answer
 * to a call that already timed out, or someone else's). Each call is bounded
 * by `totalTimeoutMs`; a lost connection fails the calls in flight as
 * "vault unavailable", and the next call connects again.
 */
import { randomBytes } from 'node:crypto'
import { Buffer } from 'node:buffer'
import type { MqttClient, IClientOptions } from 'mqtt'
import { replyFilter, requestTopic, MQTT_CLIENT_ID_RE, type MqttOperation } from '@sv/shared'
import { AgentError } from '../errors.js'
import type { SerialAnswer, VaultClient } from './vault-client.js'
import { pinningIdentityCheck } from './http-transport.js'
import { transportError, type Step } from './transport-errors.js'

export interface MqttVaultClientOptions {
  /** mqtt://HOST:PORT or mqtts://HOST:PORT */
  broker: string
  apiKey?: string
  /** MQTT client id, also in the reply topics (1-128 of A-Z a-z 0-9 . _ : -) */
  clientId: string
  /** CONNECT credentials; default username "device", password the API key */
  username?: string
  password?: string
  protocolVersion?: 4 | 5
  /** topic prefix of the vault deployment (default serial-vault/v1) */
  topicPrefix?: string
  ca?: string
  pins?: readonly string[]
  connectTimeoutMs?: number
  totalTimeoutMs?: number
  maxAnswerBytes?: number
}

interface Pending {
  op: MqttOperation
  resolve: (reply: Record<string, unknown>) => void
  reject: (err: AgentError) => void
}

export class MqttVaultClient implements VaultClient {
  readonly endpoint: string
  readonly #o: MqttVaultClientOptions
  readonly #pending = new Map<string, Pending>()
  #client: MqttClient | undefined
  #connecting: Promise<MqttClient> | undefined

  constructor(options: MqttVaultClientOptions) {
    if (!MQTT_CLIENT_ID_RE.test(options.clientId)) throw new TypeError(`MQTT client id must be 1-128 of A-Z a-z 0-9 . _ : -, got ${JSON.stringify(options.clientId)}`)
    const u = new URL(options.broker)
    if (u.protocol !== 'mqtt:' && u.protocol !== 'mqtts:') throw new TypeError(`expected an mqtt:// or mqtts:// broker URL, got ${u.protocol}`)
    this.#o = options
    this.endpoint = `${u.protocol}//${u.host}`
  }

  async requestId(signal?: AbortSignal): Promise<string> {
    const reply = await this.#call('request-id', undefined, signal)
    const id = reply['request-id']
    if (typeof id !== 'string' || id === '') {
      throw new AgentError('SV_AGENT_VAULT_UNAVAILABLE', 'request-id: the reply has no request-id', { details: { step: 'request-id', reason: 'decode' } })
    }
    return id
  }

  async serial(stream: Buffer, signal?: AbortSignal): Promise<SerialAnswer> {
    const reply = await this.#call('serial', stream.toString('utf8'), signal)
    const assertions = reply.assertions
    if (typeof assertions !== 'string' || assertions === '') {
      throw new AgentError('SV_AGENT_VAULT_UNAVAILABLE', 'serial: the reply has no assertions', { details: { step: 'serial', reason: 'decode' } })
    }
    return { kind: 'issued', stream: Buffer.from(assertions, 'utf8') }
  }

  async close(): Promise<void> {
    const c = this.#client
    this.#client = undefined
    this.#connecting = undefined
    this.#failAll(new AgentError('SV_AGENT_VAULT_UNAVAILABLE', 'the MQTT client was closed', { details: { reason: 'closed' } }))
    if (c) await c.endAsync(true).catch(() => undefined)
  }

  async #connect(step: Step): Promise<MqttClient> {
    if (this.#client?.connected) return this.#client
    this.#connecting ??= (async () => {
      const { default: mqtt } = await import('mqtt')
      const o = this.#o
      const opts: IClientOptions = {
        clientId: o.clientId,
        protocolVersion: o.protocolVersion ?? 4,
        clean: true,
        reconnectPeriod: 0, // the provisioner decides when to try again
        connectTimeout: o.connectTimeoutMs ?? 10_000,
        keepalive: 30,
        username: o.username ?? 'device',
        ...((o.password ?? o.apiKey) !== undefined ? { password: o.password ?? o.apiKey } : {}),
        ...(o.ca ? { ca: o.ca } : {}),
        ...(o.pins && o.pins.length > 0 ? { checkServerIdentity: pinningIdentityCheck(new Set(o.pins)) } : {}),
        rejectUnauthorized: true,
      }
      let client: MqttClient
      try {
        client = await mqtt.connectAsync(o.broker, opts, false)
      } catch (err) {
        throw connectError(step, err)
      }
      client.on('message', (topic, payload, packet) => this.#onMessage(topic, payload, packet.properties?.correlationData))
      client.on('close', () => {
        if (this.#client === client) {
          this.#client = undefined
          this.#connecting = undefined
        }
        this.#failAll(new AgentError('SV_AGENT_VAULT_UNAVAILABLE', 'the MQTT connection closed', { details: { reason: 'reset' } }))
      })
      client.on('error', () => undefined) // 'close' follows and fails the calls in flight
      try {
        const granted = await client.subscribeAsync(replyFilter(o.clientId, o.topicPrefix), { qos: 1 })
        if (granted.some((g) => g.qos === 128)) {
          throw new AgentError('SV_AGENT_VAULT_REFUSED', `${step}: the broker refused the subscription to ${replyFilter(o.clientId, o.topicPrefix)} (ACL)`, { details: { step, reason: 'subscribe-refused' } })
        }
      } catch (err) {
        // mqtt.js rejects a refused SUBACK (reason 0x80) with "Subscribe error: ..."
        // while the connection stays up: the broker's ACL said no, which retrying will not change
        const refused = client.connected && /^Subscribe error/.test((err as Error).message ?? '')
        await client.endAsync(true).catch(() => undefined)
        if (refused) {
          throw new AgentError('SV_AGENT_VAULT_REFUSED', `${step}: the broker refused the subscription to ${replyFilter(o.clientId, o.topicPrefix)} (ACL; check the topic prefix)`, { details: { step, reason: 'subscribe-refused' }, cause: err })
        }
        throw err instanceof AgentError ? err : connectError(step, err)
      }
      this.#client = client
      return client
    })()
    try {
      return await this.#connecting
    } catch (err) {
      this.#connecting = undefined
      throw err
    }
  }

  async #call(op: MqttOperation, body: string | undefined, signal: AbortSignal | undefined): Promise<Record<string, unknown>> {
    signal?.throwIfAborted()
    const client = await this.#connect(op)
    const token = randomBytes(12).toString('base64url')
    const payload: Record<string, string> = { client: this.#o.clientId, token }
    if (this.#o.apiKey !== undefined) payload['api-key'] = this.#o.apiKey
    if (body !== undefined) payload.body = body
    const v5 = (this.#o.protocolVersion ?? 4) === 5
    const timeoutMs = this.#o.totalTimeoutMs ?? 30_000
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.#pending.delete(token)
      }
      const timer = setTimeout(() => {
        done()
        reject(new AgentError('SV_AGENT_VAULT_UNAVAILABLE', `${op}: no reply within ${timeoutMs} ms`, { details: { step: op, reason: 'timeout' } }))
      }, timeoutMs)
      const onAbort = () => {
        done()
        reject(signal!.reason as AgentError)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#pending.set(token, {
        op,
        resolve: (r) => {
          done()
          resolve(r)
        },
        reject: (e) => {
          done()
          reject(e)
        },
      })
      const topic = requestTopic(op, this.#o.topicPrefix)
      const props = v5 ? { properties: { responseTopic: `${topic}/${this.#o.clientId}/reply`, correlationData: Buffer.from(token) } } : {}
      client.publishAsync(topic, JSON.stringify(payload), { qos: 1, ...props }).catch((err: unknown) => {
        this.#pending.get(token)?.reject(transportError(op, err))
      })
    })
  }

  #onMessage(topic: string, payload: Buffer, correlationData: Buffer | undefined): void {
    if (payload.length > (this.#o.maxAnswerBytes ?? 1024 * 1024)) return
    let reply: Record<string, unknown>
    try {
      reply = JSON.parse(payload.toString('utf8')) as Record<string, unknown>
    } catch {
      return
    }
    if (reply === null || typeof reply !== 'object') return
    const token = typeof reply.token === 'string' ? reply.token : correlationData?.toString('utf8')
    const pending = token === undefined ? undefined : this.#pending.get(token)
    if (!pending) return // unknown correlation: late or not ours
    const rejected = topic.endsWith('/rejected') || reply.result === 'rejected'
    if (!rejected) return pending.resolve(reply)
    pending.reject(rejectionError(pending.op, reply))
  }

  #failAll(err: AgentError): void {
    for (const p of [...this.#pending.values()]) p.reject(err)
  }
}

/** A `rejected` reply mapped like an HTTP status (http-vault-client.ts statusError). */
function rejectionError(step: Step, r: Record<string, unknown>): AgentError {
  const status = typeof r.status === 'number' ? r.status : 400
  const code = typeof r.code === 'string' ? r.code : undefined
  const message = typeof r.message === 'string' ? r.message.slice(0, 1000) : undefined
  const body = { ...(code ? { code } : {}), ...(message ? { message } : {}) }
  if (status > 500 || status === 429) {
    const retryAfter = typeof r['retry-after'] === 'number' && Number.isFinite(r['retry-after']) ? Math.max(0, r['retry-after']) * 1000 : undefined
    return new AgentError('SV_AGENT_VAULT_UNAVAILABLE', `${step}: the vault answered ${status}${message ? `: ${message}` : ''}${code ? ` (${code})` : ''}`, {
      details: { step, reason: 'status', status, ...body, ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}) },
    })
  }
  return new AgentError('SV_AGENT_VAULT_REFUSED', `${step}: the vault refused with ${status}${message ? `: ${message}` : ''}${code ? ` (${code})` : ''}`, { details: { step, status, ...body } })
}

/** CONNACK refusals (bad credentials, not authorised) are refusals; the rest is transport. */
function connectError(step: Step, err: unknown): AgentError {
  const code = (err as { code?: unknown }).code
  if (typeof code === 'number' && code > 0) {
    return new AgentError('SV_AGENT_VAULT_REFUSED', `${step}: the broker refused the connection (CONNACK ${code}): check the API key or broker credentials`, { details: { step, reason: 'connack', connack: code }, cause: err })
  }
  return transportError(step, err)
}
