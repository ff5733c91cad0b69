/**
 * The vault as a client of an external broker (Mosquitto, EMQX, HiveMQ...),
 * for several vault instances: each subscribes to the request topics with an
 * MQTT 5 shared subscription ($share/<group>/...), so the broker hands each
 * request to one instance. Replies are published by whichever instance took
 * the request; MQTT 5 response-topic and correlation-data are honoured.
 * Device authentication and ACLs are the broker's (see docs/deployment.md for
 * a Mosquitto ACL); the vault still checks the API key in every request.
 */
import { readFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { MQTT_OPERATIONS, requestTopic } from '@sv/shared'
import type { Logger } from '../logger.js'
import type { MqttRouter } from './router.js'

export interface ExternalBrokerOptions {
  url: string
  username?: string
  password?: string
  /** CA file for mqtts:// with a private CA */
  ca?: string
  /** shared subscription group (one per vault deployment) */
  group: string
  /** topic prefix (default serial-vault/v1) */
  topicPrefix?: string
  router: MqttRouter
  log: Logger
}

export interface ExternalBridge {
  url: string
  close(): Promise<void>
}

export async function startExternalBridge(o: ExternalBrokerOptions): Promise<ExternalBridge> {
  const opts: IClientOptions = {
    protocolVersion: 5,
    clientId: `serial-vault-${randomBytes(6).toString('hex')}`,
    clean: true,
    reconnectPeriod: 2000,
    connectTimeout: 10_000,
    ...(o.username ? { username: o.username } : {}),
    ...(o.password ? { password: o.password } : {}),
    ...(o.ca ? { ca: await readFile(o.ca) } : {}),
  }
  const client: MqttClient = await mqtt.connectAsync(o.url, opts)
  const topics = MQTT_OPERATIONS.map((op) => `$share/${o.group}/${requestTopic(op, o.topicPrefix)}`)
  const subscribe = () => client.subscribeAsync(topics, { qos: 1 })
  await subscribe()
  client.on('connect', () => {
    // clean sessions: subscribe again after every reconnection
    subscribe().catch((err) => o.log.error({ err }, 'mqtt.reply_failed'))
  })
  client.on('error', (err) => o.log.warn({ err: err.message }, 'mqtt.reply_failed'))
  client.on('message', (topic, payload, packet) => {
    const props = packet.properties ?? {}
    o.router
      .handle({
        topic,
        payload,
        ...(props.responseTopic ? { responseTopic: props.responseTopic } : {}),
        ...(props.correlationData ? { correlationData: Buffer.from(props.correlationData) } : {}),
      })
      .then((reply) => {
        if (!reply) return
        client
          .publishAsync(reply.topic, reply.payload, { qos: 1, ...(reply.correlationData ? { properties: { correlationData: reply.correlationData } } : {}) })
          .catch((err) => o.log.warn({ topic: reply.topic, err: err.message }, 'mqtt.reply_failed'))
      })
  })
  o.log.info({ url: o.url.replace(/\/\/[^@/]*@/, '//<credentials>@'), group: o.group }, 'mqtt.started')
  return {
    url: o.url,
    close: () => client.endAsync(),
  }
}
