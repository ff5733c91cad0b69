/**
 * The MQTT contract of the device API: the same operations, inputs, checks
 * and SV_* codes as over HTTPS (docs/api.md "MQTT").
 *
 * Requests (QoS 1) are published to
 *     serial-vault/v1/request-id
 *     serial-vault/v1/serial
 * as a JSON object:
 *     { "client": "<MQTT client id>", "token": "<correlation token>",
 *       "api-key": "<model API key>",
 *       "body": "<serial-request [+ model] assertion stream>" }   (serial only)
 * Replies (QoS 1) go to
 *     serial-vault/v1/<operation>/<client>/accepted    { "token", "request-id", "expires-in" }
 *                                                      { "token", "assertions": "<serial, account-key, account stream>" }
 *     serial-vault/v1/<operation>/<client>/rejected    { "token", "code", "message", "status", "retry-after"? }
 * This is the AWS fleet-provisioning shape and works with MQTT 3.1.1. With
 * MQTT 5 a request may instead carry a response-topic (under
 * serial-vault/v1/) and correlation-data, which the reply honours; the JSON
 * token is then optional.
 *
 * Duplicate deliveries (QoS 1) are answered with the same reply: the vault
 * remembers recent (client, token) pairs.
 */
import { z } from 'zod'
import { utf8Decode } from '../crypto/bytes.js'
import { VaultError, type ErrorCode } from '../errors.js'

export const MQTT_PREFIX = 'serial-vault/v1'
export const MQTT_OPERATIONS = ['request-id', 'serial'] as const
export type MqttOperation = (typeof MQTT_OPERATIONS)[number]

/** Default largest request payload (the same as the HTTP body limit). */
export const MQTT_MAX_PAYLOAD = 256 * 1024

/** MQTT client ids usable in topics: no wildcards, no slashes, bounded. */
export const MQTT_CLIENT_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/
const TOKEN_RE = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * A topic prefix: `serial-vault/v1` by default. Deployments sharing a broker
 * (several brands on one EMQX, test runs on one Mosquitto) each take their
 * own, e.g. `acme/serial-vault/v1`. Levels of A-Z a-z 0-9 . _ -, no wildcards.
 */
export const MQTT_PREFIX_RE = /^[A-Za-z0-9._-]{1,64}(?:\/[A-Za-z0-9._-]{1,64}){0,7}$/

export function requestTopic(op: MqttOperation, prefix: string = MQTT_PREFIX): string {
  return `${prefix}/${op}`
}

export function replyTopic(op: MqttOperation, client: string, kind: 'accepted' | 'rejected', prefix: string = MQTT_PREFIX): string {
  return `${prefix}/${op}/${client}/${kind}`
}

/** The subscription filter for one client's replies (what a device subscribes to). */
export function replyFilter(client: string, prefix: string = MQTT_PREFIX): string {
  return `${prefix}/+/${client}/+`
}

/** The operation of a request topic, or undefined. */
export function operationOf(topic: string, prefix: string = MQTT_PREFIX): MqttOperation | undefined {
  for (const op of MQTT_OPERATIONS) if (topic === requestTopic(op, prefix)) return op
  return undefined
}

export const MqttRequestSchema = z.object({
  client: z.string().regex(MQTT_CLIENT_ID_RE, 'client must be 1-128 of A-Z a-z 0-9 . _ : -').optional(),
  token: z.string().regex(TOKEN_RE, 'token must be 1-128 of A-Z a-z 0-9 . _ : -').optional(),
  'api-key': z.string().min(1).max(512).optional(),
  body: z.string().max(4 * 1024 * 1024).optional(),
})

export type MqttRequest = z.infer<typeof MqttRequestSchema>

export interface MqttRequestIdReply {
  token?: string
  'request-id': string
  'expires-in': number
}

export interface MqttSerialReply {
  token?: string
  assertions: string
}

/** The rejection body (protocol/rejection.ts) with the status and the delay to wait. */
export interface MqttRejectedReply {
  token?: string
  code: ErrorCode
  message: string
  details?: Record<string, unknown>
  status: number
  'retry-after'?: number
}

/** Parses a request payload; SV_REQUEST_INVALID with the issues otherwise. */
export function parseMqttRequest(payload: Uint8Array): MqttRequest {
  let json: unknown
  try {
    json = JSON.parse(utf8Decode(payload))
  } catch {
    throw new VaultError('SV_REQUEST_INVALID', 'the payload is not JSON', { details: { reason: 'json' } })
  }
  const r = MqttRequestSchema.safeParse(json)
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`)
    throw new VaultError('SV_REQUEST_INVALID', `invalid request: ${issues.join('; ')}`, { details: { issues } })
  }
  return r.data
}

/** A response topic given by an MQTT 5 client must stay under the prefix and not be a request topic. */
export function isAcceptableResponseTopic(topic: string, prefix: string = MQTT_PREFIX): boolean {
  return topic.startsWith(`${prefix}/`) && !/[#+]/.test(topic) && operationOf(topic, prefix) === undefined && topic.length <= 512
}
