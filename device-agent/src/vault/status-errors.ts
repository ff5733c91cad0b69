/**
 * The vault's HTTP answers mapped onto the VaultClient contract
 * (vault-client.ts): snapd's status rules, and what a request-id or serial
 * answer holds. Shared by the HTTPS client and the serial-line client, whose
 * station relays the vault's HTTP status, headers and body as they are.
 */
import { AgentError } from '../errors.js'
import { parseRetryAfter } from '../backoff.js'
import type { RawAnswer } from './http-transport.js'
import type { Step } from './transport-errors.js'
import type { SerialAnswer } from './vault-client.js'

/** The vault's own error body, ours ({code, message, requestId}), Canonical's ({error_code, message}) or snapd's ({error_list}). */
export function readErrorBody(res: RawAnswer): { code?: string; message?: string; requestId?: string } {
  const text = res.body.toString('utf8')
  const type = String(res.headers['content-type'] ?? '')
  if (type.includes('json') || text.trimStart().startsWith('{')) {
    try {
      const b = JSON.parse(text) as Record<string, unknown>
      const first = Array.isArray(b.error_list) ? (b.error_list[0] as Record<string, unknown> | undefined) : undefined
      const code = str(b.code) ?? str(b.error_code) ?? str(first?.code)
      const message = str(b.message) ?? str(first?.message)
      const requestId = str(b.requestId)
      return { ...(code ? { code } : {}), ...(message ? { message: message.slice(0, 500) } : {}), ...(requestId ? { requestId } : {}) }
    } catch {
      // fall through: plain text
    }
  }
  const line = text.trim().split('\n')[0]?.slice(0, 200)
  return line ? { message: line } : {}
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

/**
 * snapd's status rules (spec §5.8/§5.9): above 500 is temporary; 500, 4xx and
 * anything else unexpected is a refusal. 429 (rate limited) is temporary here
 * although snapd treats it as fatal: the vault sends it with Retry-After and
 * means "later", and a five-minute backoff would be the wrong answer.
 */
export function statusError(step: Step, res: RawAnswer, now: number): AgentError {
  const body = readErrorBody(res)
  const said = body.message ? `: ${body.message}` : ''
  const code = body.code ? ` (${body.code})` : ''
  if (res.status > 500 || res.status === 429) {
    const retryAfterMs = parseRetryAfter(res.headers['retry-after'], now)
    return new AgentError('SV_AGENT_VAULT_UNAVAILABLE', `${step}: the vault answered ${res.status}${said}${code}`, {
      details: { step, reason: 'status', status: res.status, ...body, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) },
    })
  }
  return new AgentError('SV_AGENT_VAULT_REFUSED', `${step}: the vault refused with ${res.status}${said}${code}`, { details: { step, status: res.status, ...body } })
}

/** The request-id of a request-id answer; a refusal, or SV_AGENT_VAULT_UNAVAILABLE when it holds none (snapd retries an undecodable one, spec §5.9). */
export function requestIdOf(res: RawAnswer, now: number): string {
  if (res.status !== 200) throw statusError('request-id', res, now)
  let id: unknown
  try {
    id = (JSON.parse(res.body.toString('utf8')) as Record<string, unknown>)['request-id']
  } catch {
    id = undefined
  }
  if (typeof id !== 'string' || id === '') {
    throw new AgentError('SV_AGENT_VAULT_UNAVAILABLE', 'the vault answered request-id without a request-id', { details: { step: 'request-id', reason: 'bad-answer', status: res.status } })
  }
  return id
}

/** A serial answer: issued (200/201), pending (202, with Retry-After), or the status's error. */
export function serialAnswerOf(res: RawAnswer, now: number): SerialAnswer {
  if (res.status === 200 || res.status === 201) return { kind: 'issued', stream: res.body }
  if (res.status === 202) {
    const retryAfterMs = parseRetryAfter(res.headers['retry-after'], now)
    return retryAfterMs === undefined ? { kind: 'pending' } : { kind: 'pending', retryAfterMs }
  }
  throw statusError('serial', res, now)
}
