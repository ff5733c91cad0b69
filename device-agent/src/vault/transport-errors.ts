/**
 * How a transport failure maps onto the VaultClient contract (vault-client.ts):
 * no network yet, the vault unavailable (retry), the clock not set, or a TLS
 * failure. Shared by the HTTP and MQTT clients, which see the same errno and
 * TLS codes from node:net and node:tls.
 */
import { AgentError } from '../errors.js'
import { PIN_MISMATCH } from './http-transport.js'

export type Step = 'request-id' | 'serial'

/** Errno codes snapd's netutil treats as "no network yet" (spec §5.9). */
const NO_NETWORK = new Set(['ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN'])
const TIMEOUTS = new Set(['ERR_AGENT_CONNECT_TIMEOUT', 'ERR_AGENT_HEADERS_TIMEOUT', 'ETIMEDOUT'])
const RESETS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE'])
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'INVALID_CA',
])

/** All `code`s along an error's cause chain. */
function codesOf(err: unknown): string[] {
  const codes: string[] = []
  let e: unknown = err
  for (let i = 0; i < 6 && e !== null && typeof e === 'object'; i++) {
    const c = (e as { code?: unknown }).code
    if (typeof c === 'string') codes.push(c)
    e = (e as { cause?: unknown }).cause
  }
  return codes
}

export function transportError(step: Step, err: unknown): AgentError {
  const codes = codesOf(err)
  const has = (set: Set<string>) => codes.find((c) => set.has(c))
  const message = err instanceof Error ? err.message : String(err)
  const make = (code: 'SV_AGENT_NETWORK_DOWN' | 'SV_AGENT_VAULT_UNAVAILABLE' | 'SV_AGENT_CLOCK_UNSET' | 'SV_AGENT_TLS_FAILED', reason: string, errno?: string) =>
    new AgentError(code, `${step}: ${message}`, { details: { step, reason, ...(errno ? { code: errno } : {}) }, cause: err })
  let c: string | undefined
  if ((c = has(NO_NETWORK))) return make('SV_AGENT_NETWORK_DOWN', c, c)
  if (codes.includes('CERT_NOT_YET_VALID')) return make('SV_AGENT_CLOCK_UNSET', 'cert-not-yet-valid', 'CERT_NOT_YET_VALID')
  if (codes.includes(PIN_MISMATCH)) return make('SV_AGENT_TLS_FAILED', 'pin-mismatch', PIN_MISMATCH)
  if (codes.includes('ERR_TLS_CERT_ALTNAME_INVALID')) return make('SV_AGENT_TLS_FAILED', 'hostname', 'ERR_TLS_CERT_ALTNAME_INVALID')
  if (codes.includes('CERT_HAS_EXPIRED')) return make('SV_AGENT_TLS_FAILED', 'expired', 'CERT_HAS_EXPIRED')
  if ((c = has(UNTRUSTED))) return make('SV_AGENT_TLS_FAILED', 'untrusted', c)
  if ((c = codes.find((x) => x.startsWith('ERR_SSL_') || x === 'EPROTO'))) return make('SV_AGENT_TLS_FAILED', 'handshake', c)
  if (codes.includes('ECONNREFUSED')) return make('SV_AGENT_VAULT_UNAVAILABLE', 'refused', 'ECONNREFUSED')
  if ((c = has(TIMEOUTS))) return make('SV_AGENT_VAULT_UNAVAILABLE', 'timeout', c)
  if ((c = has(RESETS))) return make('SV_AGENT_VAULT_UNAVAILABLE', 'reset', c)
  // snapd fails hard on "no such host"; on first boot DNS often is not ready
  // yet, so the agent keeps trying (counted).
  if (codes.includes('ENOTFOUND')) return make('SV_AGENT_VAULT_UNAVAILABLE', 'dns', 'ENOTFOUND')
  return make('SV_AGENT_VAULT_UNAVAILABLE', 'transport', codes[0])
}
