/**
 * The process exit code of each `SV_*` code, for every command that ends on
 * one: `vault-server` (start-up errors, data-directory commands, and the
 * vault's answers to its admin client, which carry the code) and the device
 * agent's configuration errors. Kept beside the error table, not derived from
 * the HTTP status: a status says what a *device* should do with an answer,
 * the exit code what a *script* should do with a command, and the two differ
 * (an invalid configuration is a 500 to a device, but a script must not retry
 * it; a broken signature is a 400, but the answer to the script is "no").
 *
 * The classes (README, "The `vault-server` command"):
 * - 1 the answer is no: the request was understood and refused (credentials,
 *   permission, missing or conflicting records, a signature that does not
 *   verify), or a fault on our side that retrying will not cure (SV_INTERNAL).
 * - 2 bad usage, unreadable input or invalid configuration: fix the command
 *   line, the input file, the configuration or the data directory. This takes
 *   the start-up conditions a retry cannot cure: a corrupt store, a data
 *   directory held by a running vault, an address in use, a missing master key.
 * - 3 retry later: a dependency (database server, identity provider) is not
 *   reachable, the vault is overloaded or shutting down, a rate limit, a
 *   pivot waiting for review.
 *
 * The mapped type makes the table complete: a code added to ERRORS without an
 * exit class fails the type check.
 */
import type { ErrorCode } from './errors.js'

/** 1 the answer is no, 2 bad usage/input/configuration, 3 retry later. */
export type ExitClass = 1 | 2 | 3

const NO = 1
const USAGE = 2
const LATER = 3

export const ERROR_EXIT_CODES: { readonly [K in ErrorCode]: ExitClass } = {
  SV_REQUEST_INVALID: USAGE,
  SV_BODY_TOO_LARGE: USAGE,
  SV_MEDIA_TYPE_UNSUPPORTED: USAGE,
  SV_NOT_FOUND: USAGE,
  SV_METHOD_NOT_ALLOWED: USAGE,

  SV_ASSERTION_INVALID: USAGE,
  SV_ASSERTION_TOO_LARGE: USAGE,
  SV_SIGNATURE_INVALID: NO,
  SV_SIGNATURE_UNSUPPORTED: NO,
  SV_KEY_INVALID: USAGE,
  SV_KEY_TOO_SMALL: USAGE,
  SV_SIGNING_KEY_UNKNOWN: NO,
  SV_SIGNING_KEY_EXPIRED: NO,
  SV_ASSERTION_UNTRUSTED: NO,
  SV_ASSERTION_REVISION: NO,

  SV_API_KEY_MISSING: NO,
  SV_API_KEY_INVALID: NO,
  SV_REQUEST_ID_UNKNOWN: NO,
  SV_REQUEST_ID_EXPIRED: NO,
  SV_REQUEST_ID_USED: NO,
  SV_SERIAL_REQUEST_INVALID: USAGE,
  SV_SERIAL_REQUEST_SIGNATURE: NO,
  SV_BRAND_UNKNOWN: NO,
  SV_MODEL_UNKNOWN: NO,
  SV_MODEL_MISMATCH: USAGE,
  SV_SERIAL_MISSING: USAGE,
  SV_SERIAL_INVALID: USAGE,
  SV_SERIAL_TAKEN: NO,
  SV_DEVICE_KEY_TAKEN: NO,
  SV_SERIAL_NOT_FOUND: NO,
  SV_RATE_LIMITED: LATER,

  SV_AUTH_REQUIRED: NO,
  SV_AUTH_INVALID: NO,
  SV_FORBIDDEN: NO,
  SV_BRAND_EXISTS: NO,
  SV_MODEL_EXISTS: NO,
  SV_KEY_NOT_FOUND: NO,
  SV_KEY_EXISTS: NO,
  SV_KEY_BRAND_MISMATCH: USAGE,
  SV_KEY_IMPORT_MISMATCH: USAGE,
  SV_MODEL_INVALID: USAGE,

  SV_SIGNING_KEY_UNAVAILABLE: LATER,
  SV_OVERLOADED: LATER,
  SV_STORE_UNAVAILABLE: LATER,
  SV_STORE_NOT_OPEN: LATER,
  SV_TIMEOUT: LATER,
  SV_SHUTTING_DOWN: LATER,
  SV_INTERNAL: NO,
  SV_CONFIG_INVALID: USAGE,
  SV_MASTER_KEY_INVALID: USAGE,

  SV_UNAUTHENTICATED: NO,
  SV_SESSION_INVALID: NO,
  SV_CSRF_INVALID: NO,
  SV_LOGIN_REFUSED: NO,
  SV_STORE_EXISTS: NO,
  SV_STORE_NOT_FOUND: NO,
  SV_PERSON_EXISTS: NO,
  SV_PERSON_NOT_FOUND: NO,
  SV_TOKEN_EXISTS: NO,
  SV_TOKEN_NOT_FOUND: NO,
  SV_KEY_IN_USE: NO,
  SV_AUDIT_BROKEN: NO,
  SV_PIVOT_INVALID: USAGE,
  SV_PIVOT_NOT_ALLOWED: NO,
  SV_PIVOT_KEY_MISMATCH: NO,
  SV_PIVOT_PENDING: LATER,
  SV_PIVOT_REJECTED: NO,
  SV_PIVOT_EXISTS: NO,
  SV_PIVOT_NOT_FOUND: NO,
  SV_PIVOT_DECIDED: NO,
  SV_LOGIN_INVALID: NO,
  SV_OIDC_TOKEN_INVALID: NO,
  SV_OIDC_CODE_INVALID: NO,
  SV_OIDC_PROVIDER_UNAVAILABLE: LATER,
  SV_SYSTEM_USER_INVALID: USAGE,
  SV_DASHBOARD_NOT_BUILT: USAGE,
  SV_ALERT_NOT_FOUND: NO,
  SV_NO_WORK_ORDER: NO,
  SV_SERIAL_NOT_IN_WORK_ORDER: NO,
  SV_WORK_ORDER_EXHAUSTED: NO,
  SV_WORK_ORDER_CLOSED: NO,
  SV_WORK_ORDER_OUTSIDE_WINDOW: NO,
  SV_WORK_ORDER_NOT_FOUND: NO,
  SV_WORK_ORDER_EXISTS: NO,
  SV_WORK_ORDER_INVALID: USAGE,

  SV_STORE_CORRUPT: USAGE,
  SV_STORE_LOCKED: USAGE,
  SV_ADDRESS_UNAVAILABLE: USAGE,
  SV_STORE_TOO_NEW: USAGE,
}

/**
 * The exit code a command ends with on this error code. Answers that carry no
 * known code (a proxy's 502, another service) fall back on their HTTP status:
 * above 500 and 429 retry later (3), 400/405/413/415 bad usage (2), anything
 * else "no" (1).
 */
export function exitCodeFor(code: string | undefined, status?: number): ExitClass {
  if (code !== undefined && Object.prototype.hasOwnProperty.call(ERROR_EXIT_CODES, code)) return ERROR_EXIT_CODES[code as ErrorCode]
  if (status === undefined) return NO
  if (status > 500 || status === 429) return LATER
  if (status === 400 || status === 405 || status === 413 || status === 415) return USAGE
  return NO
}
