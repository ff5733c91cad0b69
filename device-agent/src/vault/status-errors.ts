/**
 * An HTTP answer from the vault that is not a success, mapped onto the
 * VaultClient contract (vault-client.ts): snapd's status rules. Shared by the
 * HTTPS client and the serial-line client, whose station relays the vault's
 * HTTP status, headers and body as they are.
 */
import { AgentError } from '../errors.js'
import { parseRetryAfter } from '../backoff.js'
import type { RawAnswer } from './http-transport.js'
import type { Step } from './transport-errors.js'

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
