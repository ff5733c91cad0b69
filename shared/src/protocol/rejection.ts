/**
 * The one refusal both device transports send: HTTP answers with `status`,
 * `Retry-After` and `body` (Content-Type exactly application/json); the MQTT
 * `.../rejected` reply carries the same body plus `status` and `retry-after`.
 * Built once here so the two never drift apart (the MQTT reply once dropped
 * `details`).
 */
import { ERRORS, isVaultError, toErrorBody, type ErrorBody } from '../errors.js'

export interface Rejection {
  status: number
  /** seconds; set for every 503 and 429, and wherever the error names one */
  retryAfter?: number
  body: ErrorBody
}

/** Seconds a client is told to wait after a 503 that names no delay. */
export const DEFAULT_RETRY_AFTER = 5

export function rejection(err: unknown, requestId?: string): Rejection {
  const e = isVaultError(err) ? err : undefined
  const status = e ? e.status : ERRORS.SV_INTERNAL.status
  const out: Rejection = { status, body: toErrorBody(err, requestId) }
  if (e?.retryAfter !== undefined) out.retryAfter = e.retryAfter
  else if (status === 503) out.retryAfter = DEFAULT_RETRY_AFTER
  return out
}
