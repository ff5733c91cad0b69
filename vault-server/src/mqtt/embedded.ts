/**
 * The embedded MQTT broker (aedes): the default, so a vault works out of the
 * box for devices that speak MQTT. aedes speaks MQTT 3.1.1 (not 5): the
 * JSON token correlates requests and replies; MQTT 5 clients use an external
 * broker (Mosquitto, EMQX), see external.ts.
 *
 * Device authentication: CONNECT with any username and a model's API key as
 * the password. ACL: a client may publish only to the request topics and
 * subscribe only to its own reply topics (serial-vault/v1/+/<client id>/+).
 * Everything else is refused and logged.
 */
import { createServer as createNetServer, type Server as NetServer, type AddressInfo } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { Duplex } from 'node:stream'
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes'
import { MQTT_CLIENT_ID_RE, MQTT_PREFIX, operationOf } from '@sv/shared'
import type { Logger } from '../logger.js'
import type { MqttRouter } from './router.js'

export interface EmbeddedBrokerOptions {
  host: string
  port: number
  tls?: { cert: Buffer; key: Buffer }
  router: MqttRouter
  log: Logger
  /** true when the API key belongs to some model */
  isValidApiKey: (apiKey: string) => Promise<boolean>
  maxPayloadBytes: number
  /** topic prefix (default serial-vault/v1) */
  topicPrefix?: string
  /** most simultaneous client connections */
  maxConnections?: number
}

export interface EmbeddedBroker {
  url: string
  port: number
  close(): Promise<void>
}

/** Room for the topic (at most 64 KiB) and the rest of a PUBLISH besides its payload. */
const PACKET_OVERHEAD_BYTES = 64 * 1024 + 64

/**
 * Calls `tooLarge` as soon as a packet header on `socket` announces more than
 * `maxPacketBytes`. Why: aedes (mqtt-packet) buffers each packet whole before
 * parsing it, up to MQTT's 256 MB, and before authentication too, so one
 * connection could make the vault hold 256 MB; the router's own payload check
 * comes after that. Payloads a little over mqtt.maxPayloadBytes still reach
 * the router and get SV_BODY_TOO_LARGE.
 *
 * It follows only the fixed headers (type byte, remaining length) and skips
 * the rest. It listens to 'data', which a paused socket emits for each chunk
 * aedes takes with read(): attached after aedes's 'readable' listener, it
 * sees the bytes in order without switching the socket to flowing mode.
 */
function guardPacketSize(socket: Duplex, maxPacketBytes: number, tooLarge: (bytes: number) => void): void {
  let state: 'type' | 'length' | 'body' = 'type'
  let length = 0
  let multiplier = 1
  let remaining = 0
  const onData = (chunk: Buffer): void => {
    let i = 0
    while (i < chunk.length) {
      if (state === 'body') {
        const n = Math.min(remaining, chunk.length - i)
        remaining -= n
        i += n
        if (remaining === 0) state = 'type'
      } else if (state === 'type') {
        i++
        state = 'length'
        length = 0
        multiplier = 1
      } else {
        const b = chunk[i++]!
        length += (b & 0x7f) * multiplier
        multiplier *= 128
        // a fifth length byte is malformed: aedes refuses it, nothing to buffer
        if (b & 0x80 && multiplier <= 128 ** 3) continue
        if (length > maxPacketBytes) {
          socket.off('data', onData)
          tooLarge(length)
          return
        }
        remaining = length
        state = remaining === 0 ? 'type' : 'body'
      }
    }
  }
  socket.on('data', onData)
}

function authError(code: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code }) as AuthenticateError
}

export async function startEmbeddedBroker(o: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const prefix = o.topicPrefix ?? MQTT_PREFIX
  const depth = prefix.split('/').length
  const broker = await Aedes.createBroker({
    concurrency: 200,
    connectTimeout: 15_000,
    maxClientsIdLength: 128,
    queueLimit: 100,
    authenticate: (client, _username, password, done) => {
      if (!MQTT_CLIENT_ID_RE.test(client.id)) return done(authError(2, 'client id must be 1-128 of A-Z a-z 0-9 . _ : -'), false)
      const key = password ? password.toString('utf8') : ''
      if (!key) {
        o.log.info({ client: client.id, reason: 'no password' }, 'mqtt.client_refused')
        return done(authError(4, 'a model API key is required as the password'), false)
      }
      o.isValidApiKey(key).then(
        (ok) => {
          if (!ok) o.log.info({ client: client.id, reason: 'bad api key' }, 'mqtt.client_refused')
          done(ok ? null : authError(4, 'not a valid API key'), ok)
        },
        () => done(authError(3, 'the vault cannot check credentials right now'), false),
      )
    },
    authorizePublish: (client: Client | null, packet: PublishPacket, callback) => {
      if (!client) return callback(null) // the vault's own replies
      if (!operationOf(packet.topic, prefix)) {
        o.log.warn({ client: client.id, topic: packet.topic.slice(0, 200), reason: 'publish outside the request topics' }, 'mqtt.message_dropped')
        return callback(new Error('not a request topic'))
      }
      callback(null)
    },
    authorizeSubscribe: (client: Client, sub: Subscription, callback) => {
      const parts = sub.topic.split('/')
      // <prefix>/<op or +>/<client id>/<accepted|rejected|+>
      const [opPart, idPart, kindPart] = parts.slice(depth)
      const ok =
        sub.topic.startsWith(`${prefix}/`) &&
        parts.length === depth + 3 &&
        idPart === client.id &&
        (opPart === '+' || operationOf(`${prefix}/${opPart}`, prefix) !== undefined) &&
        ['+', 'accepted', 'rejected'].includes(kindPart!)
      if (!ok) {
        o.log.warn({ client: client.id, topic: sub.topic.slice(0, 200), reason: 'subscription outside own reply topics' }, 'mqtt.message_dropped')
        return callback(null, null)
      }
      callback(null, sub)
    },
  })

  broker.on('publish', (packet, client) => {
    if (!client || !operationOf(packet.topic, prefix)) return
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload as string)
    o.router.handle({ topic: packet.topic, payload, clientId: client.id }).then((reply) => {
      if (!reply) return
      broker.publish({ cmd: 'publish', topic: reply.topic, payload: reply.payload, qos: 1, retain: false, dup: false } as PublishPacket, (err) => {
        if (err) o.log.warn({ client: client.id, topic: reply.topic, err }, 'mqtt.reply_failed')
      })
    })
  })
  broker.on('clientReady', (client) => o.log.debug({ client: client.id }, 'mqtt.client_connected'))
  broker.on('clientError', (client, err) => o.log.debug({ client: client.id, err: err.message }, 'mqtt.client_refused'))

  const maxPacketBytes = o.maxPayloadBytes + PACKET_OVERHEAD_BYTES
  const onConnection = (socket: Duplex & { client?: Client }): void => {
    broker.handle(socket)
    guardPacketSize(socket, maxPacketBytes, (bytes) => {
      o.log.warn({ client: socket.client?.id, bytes, limit: maxPacketBytes, reason: 'packet too large' }, 'mqtt.message_dropped')
      socket.destroy()
    })
  }
  const server: NetServer = o.tls ? createTlsServer({ cert: o.tls.cert, key: o.tls.key, minVersion: 'TLSv1.2' }, onConnection) : createNetServer(onConnection)
  server.maxConnections = o.maxConnections ?? 10_000
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(o.port, o.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (e) {
    // the broker's timers would keep the process alive after a failed start
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    throw e
  }
  const port = (server.address() as AddressInfo).port
  const host = o.host === '0.0.0.0' ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host
  const url = `${o.tls ? 'mqtts' : 'mqtt'}://${host}:${port}`
  o.log.info({ url }, 'mqtt.started')
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close()
        broker.close(() => resolve())
      }),
  }
}
