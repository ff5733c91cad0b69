/**
 * Builds and self-signs the serial-request (spec §4.4, §5.7) with the shared
 * codec, and the stream snapd POSTs: the serial-request, then the model
 * assertion when the device has one.
 *
 * The body is YAML, as snapd's `registration.body` and Canonical's
 * serial-vault read it (the vault takes `serial:` from it when the header is
 * missing): the proposed serial, hardware details, and the agent's step
 * timings under `telemetry:` (numbers only; the vault records them in its
 * signing log, vault-server readRequestBody).
 */
import { Buffer } from 'node:buffer'
import { encodeStream, signAssertion, type Assertion } from '@sv/shared'
import type { DeviceKey } from './device-key.js'

export interface RequestBody {
  serial?: string
  /** flat string facts: architecture, kernel, board, serial-source... */
  hardware?: Record<string, string>
  /** configured extra entries */
  extra?: Record<string, string>
  /** step timings (ms) and counters; non-finite values are dropped */
  telemetry?: Record<string, number>
}

const KEY_RE = /^[a-z][a-z0-9-]{0,40}$/

/**
 * The body as YAML. Strings are written as JSON strings, which YAML reads as
 * double-quoted scalars, so no value can change the document's shape; keys
 * are restricted to `[a-z][a-z0-9-]*` (others are dropped). Empty maps are
 * left out. Returns '' when there is nothing to say.
 */
export function formatRequestBody(body: RequestBody): string {
  const lines: string[] = []
  if (body.serial !== undefined) lines.push(`serial: ${JSON.stringify(body.serial)}`)
  const map = (name: string, entries: [string, string][]) => {
    const ok = entries.filter(([k]) => KEY_RE.test(k))
    if (ok.length === 0) return
    lines.push(`${name}:`)
    for (const [k, v] of ok) lines.push(`  ${k}: ${v}`)
  }
  map('hardware', Object.entries(body.hardware ?? {}).map(([k, v]) => [k, JSON.stringify(v)]))
  map('extra', Object.entries(body.extra ?? {}).map(([k, v]) => [k, JSON.stringify(v)]))
  map(
    'telemetry',
    Object.entries(body.telemetry ?? {})
      .filter(([, v]) => Number.isFinite(v))
      .map(([k, v]) => [k, String(Math.round(v * 1000) / 1000)]),
  )
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`
}

export interface SerialRequestInput {
  brandId: string
  model: string
  requestId: string
  /** proposed serial (the `serial` header) */
  serial?: string
  /** body text (UTF-8), may be empty */
  body?: string
  key: DeviceKey
  /** appended to the stream when the device has one (snapd sends it) */
  modelAssertion?: Assertion
}

export interface BuiltSerialRequest {
  request: Assertion
  /** what is POSTed to {base}serial */
  stream: Buffer
}

/**
 * Signs the serial-request with the device key. Throws `SV_ASSERTION_INVALID`
 * (from the codec) when a header value cannot be carried, e.g. an empty
 * request-id.
 */
export async function buildSerialRequest(input: SerialRequestInput): Promise<BuiltSerialRequest> {
  const headers: Record<string, string | undefined> = {
    'brand-id': input.brandId,
    model: input.model,
    'request-id': input.requestId,
    'device-key': input.key.publicKey.encode(),
    serial: input.serial === '' ? undefined : input.serial,
  }
  const request = await signAssertion('serial-request', headers, input.body || undefined, input.key.signer)
  const stream = Buffer.from(encodeStream(input.modelAssertion ? [request, input.modelAssertion] : [request]))
  return { request, stream }
}
