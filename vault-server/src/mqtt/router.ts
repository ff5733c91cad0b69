/**
 * MQTT request handling, independent of the broker (embedded aedes or an
 * external one): topic -> the same services as HTTPS -> the reply to publish.
 * The contract is in shared/src/protocol/mqtt.ts.
 *
 * Bad input never stops the vault: a request that can be answered gets a
 * `rejected` reply with its SV_* code; one that cannot (no client id, no
 * response topic) is dropped with a log line. Each client has a token-bucket
 * rate limit (SV_RATE_LIMITED; past twice the burst, messages are dropped
 * without a reply), and duplicate deliveries of one (client, token) get the
 * reply of the first.
 */
import { Buffer } from 'node:buffer'
import {
  VaultError,
  isAcceptableResponseTopic,
  operationOf,
  parseMqttRequest,
  rejection,
  replyTopic,
  MQTT_CLIENT_ID_RE,
  MQTT_PREFIX,
  type MqttOperation,
  type MqttRejectedReply,
  type MqttRequest,
} from '@sv/shared'
import type { Logger } from '../logger.js'
import type { Admission } from '../services/admission.js'
import type { RegistrationService } from '../services/registration/registration-service.js'

export interface MqttIncoming {
  topic: string
  payload: Buffer
  /** the publisher's client id when the broker tells us (embedded broker) */
  clientId?: string
  /** MQTT 5 */
  responseTopic?: string
  correlationData?: Buffer
}

export interface MqttOutgoing {
  topic: string
  payload: Buffer
  correlationData?: Buffer
}

export interface MqttRouterOptions {
  registration: RegistrationService
  admission: Admission
  log: Logger
  maxPayloadBytes: number
  /** topic prefix (default serial-vault/v1) */
  topicPrefix?: string
  ratePerSecond: number
  rateBurst: number
  /** counts per operation and result, for metrics */
  onMessage?: (op: string, result: 'accepted' | 'rejected' | 'dropped') => void
  now?: () => number
}

interface Bucket {
  tokens: number
  at: number
}

/** Errors whose outcome the registration service logged already (one line per request). */
const loggedByService = new WeakSet<VaultError>()

const DEDUP_TTL_MS = 120_000
const DEDUP_MAX = 10_000
const BUCKETS_MAX = 100_000

/** The `client` of a payload that failed validation, when it is usable in a reply topic. */
function clientNamedIn(payload: Buffer): { client?: string } {
  try {
    const c = (JSON.parse(payload.toString('utf8')) as { client?: unknown } | null)?.client
    return typeof c === 'string' && MQTT_CLIENT_ID_RE.test(c) ? { client: c } : {}
  } catch {
    return {}
  }
}

export class MqttRouter {
  readonly #o: MqttRouterOptions
  readonly #prefix: string
  readonly #now: () => number
  readonly #buckets = new Map<string, Bucket>()
  readonly #recent = new Map<string, { at: number; reply: Promise<MqttOutgoing | undefined> }>()
  #droppedLogged = 0

  constructor(options: MqttRouterOptions) {
    this.#o = options
    this.#prefix = options.topicPrefix ?? MQTT_PREFIX
    this.#now = options.now ?? Date.now
  }

  /** Handles one request message; resolves with the reply to publish, or undefined (dropped). Never rejects. */
  async handle(msg: MqttIncoming): Promise<MqttOutgoing | undefined> {
    const op = operationOf(msg.topic, this.#prefix)
    if (!op) return this.#drop(msg, 'not a request topic')
    const responseTopic = msg.responseTopic !== undefined && isAcceptableResponseTopic(msg.responseTopic, this.#prefix) ? msg.responseTopic : undefined
    if (msg.responseTopic !== undefined && !responseTopic) return this.#drop(msg, 'response topic outside serial-vault/v1/')

    // who is asking (for the reply topic and the rate limit)
    let client = msg.clientId
    if (client !== undefined && !MQTT_CLIENT_ID_RE.test(client)) return this.#drop(msg, 'client id unusable in a topic')
    // Over an external broker the publisher's id is not known: rate-limit by the
    // client the payload names (the one whose reply topics get the answer), else by
    // the MQTT 5 response topic; never all devices in one bucket.
    let parsed: { req?: MqttRequest; err?: unknown; client?: string } | undefined
    if (client === undefined && msg.payload.length <= this.#o.maxPayloadBytes) {
      try {
        parsed = { req: parseMqttRequest(msg.payload) }
      } catch (err) {
        parsed = { err, ...clientNamedIn(msg.payload) }
      }
    }
    const limitKey = client ?? parsed?.req?.client ?? parsed?.client ?? responseTopic ?? 'anonymous'
    const { rate, retryAfter } = this.#take(limitKey)
    if (rate === 'drop') return this.#drop(msg, 'rate limit (flood)', false)

    let req: MqttRequest | undefined
    /** the answer is a transient refusal (429, 5xx): not remembered for duplicates */
    let transient = false
    const reply = async (fn: () => Promise<Record<string, unknown>>): Promise<MqttOutgoing | undefined> => {
      try {
        if (rate === 'limited') throw new VaultError('SV_RATE_LIMITED', 'too many requests from this client; slow down', { retryAfter })
        const body = await fn()
        this.#o.onMessage?.(op, 'accepted')
        return this.#out(op, client, responseTopic, msg.correlationData, 'accepted', { ...(req?.token ? { token: req.token } : {}), ...body })
      } catch (e) {
        const err = e instanceof VaultError ? e : new VaultError('SV_INTERNAL', 'unexpected error', { cause: e })
        // serial outcomes are logged by the registration service; what fails before it is logged here
        if (!loggedByService.has(err)) {
          if (err.status >= 500) this.#o.log.error({ op, client, code: err.code, err: err.cause ?? err }, 'request.failed')
          else this.#o.log.debug({ op, client, code: err.code }, 'request.failed')
        }
        // transient: a retry of the same token after Retry-After must run again (a pending pivot too)
        transient = err.status === 429 || err.status >= 500 || err.status === 202
        const r = rejection(err)
        const rejected: MqttRejectedReply = { ...(req?.token ? { token: req.token } : {}), ...r.body, status: r.status }
        if (r.retryAfter !== undefined) rejected['retry-after'] = r.retryAfter
        this.#o.onMessage?.(op, 'rejected')
        return this.#out(op, client, responseTopic, msg.correlationData, 'rejected', rejected as unknown as Record<string, unknown>)
      }
    }

    if (msg.payload.length > this.#o.maxPayloadBytes) {
      if (!client && !responseTopic) return this.#drop(msg, 'payload too large, no reply address')
      return reply(async () => {
        throw new VaultError('SV_BODY_TOO_LARGE', `the payload is larger than ${this.#o.maxPayloadBytes} bytes`, { details: { limit: this.#o.maxPayloadBytes } })
      })
    }
    try {
      if (parsed?.err !== undefined) throw parsed.err
      req = parsed?.req ?? parseMqttRequest(msg.payload)
    } catch (e) {
      // an invalid request that still names a usable client is answered there
      client ??= parsed?.client
      if (!client && !responseTopic) return this.#drop(msg, 'unparsable payload, no reply address')
      return reply(async () => {
        throw e
      })
    }
    if (client === undefined) client = req.client
    else if (req.client !== undefined && req.client !== client) {
      return reply(async () => {
        throw new VaultError('SV_REQUEST_INVALID', 'the payload names another client than the connection', { details: { field: 'client' } })
      })
    }
    if (!client && !responseTopic) return this.#drop(msg, 'no client and no response topic')
    if (!req.token && !msg.correlationData) {
      return reply(async () => {
        throw new VaultError('SV_REQUEST_INVALID', 'a token (or MQTT 5 correlation data) is required', { details: { field: 'token' } })
      })
    }

    // duplicate deliveries get the first reply
    const dedupKey = `${client ?? responseTopic}|${op}|${req.token ?? msg.correlationData!.toString('base64')}`
    this.#expire()
    const hit = this.#recent.get(dedupKey)
    if (hit) return hit.reply
    const r = req
    const work = reply(() => (op === 'request-id' ? this.#requestId(r) : this.#serial(r, client ?? 'mqtt-v5')))
    const entry = { at: this.#now(), reply: work }
    this.#recent.set(dedupKey, entry)
    // A transient refusal (rate limit, overload, timeout, store down) is not the
    // request's answer: a retry of the same token after Retry-After must run again,
    // not get the refusal replayed for the next two minutes.
    void work.then(() => {
      if (transient && this.#recent.get(dedupKey) === entry) this.#recent.delete(dedupKey)
    })
    return work
  }

  async #requestId(req: MqttRequest): Promise<Record<string, unknown>> {
    const { requestId, expiresIn } = await this.#o.registration.issueRequestId({ apiKey: req['api-key'], transport: 'mqtt', ...(req.token !== undefined ? { reqId: req.token } : {}) })
    return { 'request-id': requestId, 'expires-in': expiresIn }
  }

  async #serial(req: MqttRequest, client: string): Promise<Record<string, unknown>> {
    if (req.body === undefined) throw new VaultError('SV_REQUEST_INVALID', 'the body field (the serial-request stream) is required', { details: { field: 'body' } })
    const body = Buffer.from(req.body, 'utf8')
    const clientAddress = `mqtt:${client}`
    const correlation = req.token !== undefined ? { reqId: req.token } : {}
    let reached = false
    try {
      const result = await this.#o.admission.run(() => {
        reached = true
        return this.#o.registration.requestSerial({ body, apiKey: req['api-key'], clientAddress, transport: 'mqtt', ...correlation })
      })
      return { assertions: result.stream.toString('utf8') }
    } catch (e) {
      // an overload refusal before the flow is logged like any other refusal
      if (!reached && e instanceof VaultError && e.code === 'SV_OVERLOADED') throw await this.#o.registration.refuseEarly({ clientAddress, transport: 'mqtt', ...correlation }, e)
      if (e instanceof VaultError) loggedByService.add(e)
      throw e
    }
  }

  #out(op: MqttOperation, client: string | undefined, responseTopic: string | undefined, correlationData: Buffer | undefined, kind: 'accepted' | 'rejected', body: Record<string, unknown>): MqttOutgoing {
    const topic = responseTopic ?? replyTopic(op, client!, kind, this.#prefix)
    const out: MqttOutgoing = { topic, payload: Buffer.from(JSON.stringify(responseTopic ? { ...body, result: kind } : body)) }
    if (correlationData) out.correlationData = correlationData
    return out
  }

  /**
   * 'ok', 'limited' (answer SV_RATE_LIMITED) or 'drop' (flood: no answer), and
   * for 'limited' the seconds until the next message would be 'ok' (what
   * retry-after promises; it was a fixed 1 s, too soon at low rates or deep in
   * the burst, so a device that honoured it was refused again).
   */
  #take(key: string): { rate: 'ok' | 'limited' | 'drop'; retryAfter: number } {
    const now = this.#now()
    let b = this.#buckets.get(key)
    if (!b) {
      if (this.#buckets.size >= BUCKETS_MAX) this.#buckets.clear()
      b = { tokens: this.#o.rateBurst, at: now }
      this.#buckets.set(key, b)
    }
    b.tokens = Math.min(this.#o.rateBurst, b.tokens + ((now - b.at) / 1000) * this.#o.ratePerSecond)
    b.at = now
    // Refused messages are charged too (a flood stays refused while it lasts), but
    // the debt is capped just past the drop threshold: a client that stops is
    // answered again after 2/rate s and served after (burst + 2)/rate s, not only
    // once its whole flood has been paid off at `rate` per second.
    b.tokens = Math.max(b.tokens - 1, -this.#o.rateBurst - 1)
    if (b.tokens >= 0) return { rate: 'ok', retryAfter: 0 }
    const retryAfter = Math.max(1, Math.ceil((1 - b.tokens) / this.#o.ratePerSecond))
    return { rate: b.tokens >= -this.#o.rateBurst ? 'limited' : 'drop', retryAfter }
  }

  #expire(): void {
    const now = this.#now()
    for (const [k, v] of this.#recent) {
      if (now - v.at < DEDUP_TTL_MS && this.#recent.size <= DEDUP_MAX) break
      this.#recent.delete(k)
    }
  }

  #drop(msg: MqttIncoming, reason: string, log = true): undefined {
    this.#o.onMessage?.(operationOf(msg.topic, this.#prefix) ?? 'unknown', 'dropped')
    // a flood must not flood the log either: log the first drops, then one in a thousand
    if (log || this.#droppedLogged++ % 1000 === 0) {
      this.#o.log.warn({ topic: msg.topic.slice(0, 200), client: msg.clientId, bytes: msg.payload.length, reason }, 'mqtt.message_dropped')
    }
    return undefined
  }
}
