/**
 * The error table: every condition the vault, the codec or the agent can report
 * on the wire, with its HTTP status, its MQTT 5 reason code and a summary.
 *
 * Rules (see docs/errors.md, generated from this table by `vault-server errors`):
 * - A code names a *condition*, never the place it happened. Codes never change
 *   once released; messages may. Tests assert codes and details, never text.
 * - Status by category: bad input 400, authentication 401, authorisation 403,
 *   missing resource 404, conflict 409, size 413, media type 415, rate 429,
 *   a fault on our side 500, anything temporary on our side 503 (with
 *   Retry-After). snapd treats 500 and every 4xx as fatal and backs off for
 *   hours, but retries codes above 500 every minute (spec §5.8), so nothing
 *   that is our fault or temporary may ever be a 4xx.
 */

export interface ErrorSpec {
  /** HTTP status used when this error answers a request. */
  readonly status: number
  /** MQTT 5 reason code used when a packet itself is refused. */
  readonly mqtt: number
  /** One line for the error-code documentation. */
  readonly summary: string
}

export const ERRORS = {
  // --- request shape -------------------------------------------------------
  SV_REQUEST_INVALID: { status: 400, mqtt: 0x99, summary: 'the request body or parameters are malformed' },
  SV_BODY_TOO_LARGE: { status: 413, mqtt: 0x95, summary: 'the request body exceeds the configured limit' },
  SV_MEDIA_TYPE_UNSUPPORTED: { status: 415, mqtt: 0x99, summary: 'the request Content-Type is not the one this endpoint takes' },
  SV_NOT_FOUND: { status: 404, mqtt: 0x90, summary: 'no such endpoint or topic' },
  SV_METHOD_NOT_ALLOWED: { status: 405, mqtt: 0x99, summary: 'the endpoint does not accept this HTTP method' },

  // --- assertion codec -----------------------------------------------------
  SV_ASSERTION_INVALID: { status: 400, mqtt: 0x99, summary: 'an assertion failed to decode or failed a header check' },
  SV_ASSERTION_TOO_LARGE: { status: 413, mqtt: 0x95, summary: 'an assertion exceeds the header, body or signature size limit' },
  SV_SIGNATURE_INVALID: { status: 400, mqtt: 0x99, summary: 'an assertion signature does not verify with the key it names' },
  SV_SIGNATURE_UNSUPPORTED: { status: 400, mqtt: 0x99, summary: 'the signature uses an algorithm or digest that is refused (only RSA with SHA-256/384/512)' },
  SV_KEY_INVALID: { status: 400, mqtt: 0x99, summary: 'a public or private key is malformed or of an unsupported kind' },
  SV_KEY_TOO_SMALL: { status: 400, mqtt: 0x99, summary: 'an RSA key is smaller than the configured minimum' },
  SV_SIGNING_KEY_UNKNOWN: { status: 400, mqtt: 0x99, summary: 'no trusted account-key matches the key that signed an assertion' },
  SV_SIGNING_KEY_EXPIRED: { status: 400, mqtt: 0x99, summary: 'the signing account-key is not valid at the assertion timestamp or now' },
  SV_ASSERTION_UNTRUSTED: { status: 400, mqtt: 0x99, summary: 'an assertion fails a trust-database cross-check (authority, prerequisite)' },
  SV_ASSERTION_REVISION: { status: 409, mqtt: 0x99, summary: 'an assertion with the same primary key and an equal or higher revision is already held' },

  // --- device API ----------------------------------------------------------
  SV_API_KEY_MISSING: { status: 401, mqtt: 0x87, summary: 'the api-key header is missing' },
  SV_API_KEY_INVALID: { status: 401, mqtt: 0x87, summary: 'the api-key is not valid for this model' },
  SV_REQUEST_ID_UNKNOWN: { status: 400, mqtt: 0x99, summary: 'the request-id was never issued by this vault' },
  SV_REQUEST_ID_EXPIRED: { status: 400, mqtt: 0x99, summary: 'the request-id was issued but has expired; ask for a new one' },
  SV_REQUEST_ID_USED: { status: 409, mqtt: 0x99, summary: 'the request-id was already used for another serial request' },
  SV_SERIAL_REQUEST_INVALID: { status: 400, mqtt: 0x99, summary: 'the serial-request stream is not a serial-request optionally followed by its model' },
  SV_SERIAL_REQUEST_SIGNATURE: { status: 400, mqtt: 0x99, summary: 'the serial-request is not signed by its own device-key' },
  SV_BRAND_UNKNOWN: { status: 404, mqtt: 0x99, summary: 'no such brand in this vault' },
  SV_MODEL_UNKNOWN: { status: 404, mqtt: 0x99, summary: 'no such model for this brand in this vault' },
  SV_MODEL_MISMATCH: { status: 400, mqtt: 0x99, summary: 'the model assertion sent does not match the serial-request brand and model' },
  SV_SERIAL_MISSING: { status: 400, mqtt: 0x99, summary: 'the model expects a device-proposed serial and none was sent' },
  SV_SERIAL_INVALID: { status: 400, mqtt: 0x99, summary: 'the proposed serial number has invalid characters or length' },
  SV_SERIAL_TAKEN: { status: 409, mqtt: 0x99, summary: 'this serial is already bound to another device key (clone attempt)' },
  SV_DEVICE_KEY_TAKEN: { status: 409, mqtt: 0x99, summary: 'this device key is already bound to another serial of the model' },
  SV_SERIAL_NOT_FOUND: { status: 404, mqtt: 0x99, summary: 'no serial binding exists for this brand, model and serial' },
  SV_RATE_LIMITED: { status: 429, mqtt: 0x97, summary: 'too many requests from this client; slow down' },

  // --- admin API -----------------------------------------------------------
  SV_AUTH_REQUIRED: { status: 401, mqtt: 0x87, summary: 'retired (0.1): the admin API answers SV_UNAUTHENTICATED instead' },
  SV_AUTH_INVALID: { status: 401, mqtt: 0x87, summary: 'retired (0.1): the admin API answers SV_UNAUTHENTICATED instead' },
  SV_FORBIDDEN: { status: 403, mqtt: 0x87, summary: 'the caller may see the store but does not hold the permission there (details name both)' },
  SV_BRAND_EXISTS: { status: 409, mqtt: 0x99, summary: 'a brand with this id already exists' },
  SV_MODEL_EXISTS: { status: 409, mqtt: 0x99, summary: 'a model with this name already exists for the brand' },
  SV_KEY_NOT_FOUND: { status: 404, mqtt: 0x99, summary: 'no such signing key' },
  SV_KEY_EXISTS: { status: 409, mqtt: 0x99, summary: 'a signing key with this id already exists' },
  SV_KEY_BRAND_MISMATCH: { status: 400, mqtt: 0x99, summary: 'the signing key does not belong to the brand of the model' },
  SV_KEY_IMPORT_MISMATCH: { status: 400, mqtt: 0x99, summary: 'the imported private key, account and account-key assertions do not match' },
  SV_MODEL_INVALID: { status: 400, mqtt: 0x99, summary: 'the model definition fails the model assertion checks' },

  // --- our side ------------------------------------------------------------
  SV_SIGNING_KEY_UNAVAILABLE: { status: 503, mqtt: 0x88, summary: 'the signing key of the model is disabled or cannot be used right now' },
  SV_OVERLOADED: { status: 503, mqtt: 0x89, summary: 'the vault is at capacity; retry after the given delay' },
  SV_STORE_UNAVAILABLE: { status: 503, mqtt: 0x88, summary: 'the storage backend is not reachable' },
  SV_STORE_NOT_OPEN: { status: 503, mqtt: 0x88, summary: 'the store is not open (starting up or shutting down)' },
  SV_TIMEOUT: { status: 503, mqtt: 0x88, summary: 'the request did not complete in time on our side' },
  SV_SHUTTING_DOWN: { status: 503, mqtt: 0x8b, summary: 'the vault is shutting down' },
  SV_INTERNAL: { status: 500, mqtt: 0x80, summary: 'an unexpected fault on our side; details are in the vault log' },
  SV_CONFIG_INVALID: { status: 500, mqtt: 0x80, summary: 'the configuration is invalid (start-up only; exit code 2)' },
  SV_MASTER_KEY_INVALID: { status: 500, mqtt: 0x80, summary: 'the master key is missing or cannot decrypt the key store' },

  // --- added with stores, people and logins (append only: released codes keep their place) ---
  SV_UNAUTHENTICATED: { status: 401, mqtt: 0x87, summary: 'no valid credential: log in, or send a valid, unexpired, unrevoked bearer token (details.reason says which)' },
  SV_SESSION_INVALID: { status: 401, mqtt: 0x87, summary: 'the session has ended or is not valid; log in again' },
  SV_CSRF_INVALID: { status: 403, mqtt: 0x87, summary: 'a state-changing call made with a session cookie lacks its X-CSRF-Token' },
  SV_LOGIN_REFUSED: { status: 403, mqtt: 0x87, summary: 'the identity provider vouched for the e-mail, but the vault refuses it: not invited, disabled, or bound to another account' },
  SV_STORE_EXISTS: { status: 409, mqtt: 0x99, summary: 'a store with this id already exists' },
  SV_STORE_NOT_FOUND: { status: 404, mqtt: 0x99, summary: 'no such store, or none the caller may see' },
  SV_PERSON_EXISTS: { status: 409, mqtt: 0x99, summary: 'a person with this e-mail already exists' },
  SV_PERSON_NOT_FOUND: { status: 404, mqtt: 0x99, summary: 'no such person' },
  SV_TOKEN_EXISTS: { status: 409, mqtt: 0x99, summary: 'a token with this hash already exists' },
  SV_TOKEN_NOT_FOUND: { status: 404, mqtt: 0x99, summary: 'no such token, or none the caller may see' },
  SV_KEY_IN_USE: { status: 409, mqtt: 0x99, summary: 'the signing key is used by a model: move the models to another key first' },
  SV_AUDIT_BROKEN: { status: 409, mqtt: 0x99, summary: 'the audit chain does not verify: an entry was changed, removed or reordered' },
  SV_PIVOT_INVALID: { status: 400, mqtt: 0x99, summary: 'the pivot (remodel) request is malformed: the new model or the current serial is missing, does not match, or was not issued here' },
  SV_PIVOT_NOT_ALLOWED: { status: 403, mqtt: 0x87, summary: 'no allow-list entry lets this device move from its model to the requested one' },
  SV_PIVOT_KEY_MISMATCH: { status: 403, mqtt: 0x87, summary: 'the pivot request is not signed by the device key bound to the serial' },
  SV_PIVOT_PENDING: { status: 202, mqtt: 0x00, summary: 'the pivot waits for a reviewer; ask again with the same request after Retry-After' },
  SV_PIVOT_REJECTED: { status: 403, mqtt: 0x87, summary: 'a reviewer refused the pivot' },
  SV_PIVOT_EXISTS: { status: 409, mqtt: 0x99, summary: 'this pivot (remodel) is already allowed, or a request for it exists' },
  SV_PIVOT_NOT_FOUND: { status: 404, mqtt: 0x99, summary: 'no such pivot rule or pivot request' },
  SV_PIVOT_DECIDED: { status: 409, mqtt: 0x99, summary: 'the pivot request was accepted or rejected already' },
  SV_LOGIN_INVALID: { status: 400, mqtt: 0x99, summary: 'the login cannot go on: unknown provider, missing, expired or used login transaction, state mismatch, or an error returned by the provider' },
  SV_OIDC_TOKEN_INVALID: { status: 401, mqtt: 0x87, summary: 'the ID token was refused (issuer, audience, expiry, nonce, signature) or carries no verified e-mail; details.reason says which' },
  SV_OIDC_CODE_INVALID: { status: 401, mqtt: 0x87, summary: 'the identity provider refused the authorization code (replayed, expired or PKCE mismatch); start a new login' },
  SV_OIDC_PROVIDER_UNAVAILABLE: { status: 503, mqtt: 0x88, summary: 'the identity provider is unreachable, timed out or answered with a server error; retry after the given delay' },
  SV_SYSTEM_USER_INVALID: { status: 400, mqtt: 0x99, summary: 'the system-user definition fails the system-user assertion checks' },
  SV_DASHBOARD_NOT_BUILT: { status: 503, mqtt: 0x88, summary: 'the dashboard assets are missing from this installation: run npm run build (the admin API works without them)' },
  SV_ALERT_NOT_FOUND: { status: 404, mqtt: 0x99, summary: 'no such clone alert in the stores the caller may see (alerts are kept for 7 days)' },
  SV_NO_WORK_ORDER: { status: 403, mqtt: 0x87, summary: 'the model requires a work order and none of its work orders is open now' },
  SV_SERIAL_NOT_IN_WORK_ORDER: { status: 403, mqtt: 0x87, summary: 'the model requires a work order and no open work order of the model allows this serial' },
  SV_WORK_ORDER_EXHAUSTED: { status: 409, mqtt: 0x99, summary: 'the work order that allows this serial has reached its planned quantity' },
  SV_WORK_ORDER_CLOSED: { status: 409, mqtt: 0x99, summary: 'the work order was closed by an administrator (or is exhausted, for a close)' },
  SV_WORK_ORDER_OUTSIDE_WINDOW: { status: 403, mqtt: 0x87, summary: 'the work order that allows this serial is not valid now (before its notBefore or from its notAfter)' },
  SV_WORK_ORDER_NOT_FOUND: { status: 404, mqtt: 0x99, summary: 'no such work order in the stores the caller may see' },
  SV_WORK_ORDER_EXISTS: { status: 409, mqtt: 0x99, summary: 'a work order with this id already exists' },
  SV_WORK_ORDER_INVALID: { status: 400, mqtt: 0x99, summary: 'the work order does not fit its model: assign orders need an assign serial policy, list and range orders a device policy; bad range or window' },
  // --- start-up conditions a retry cannot cure (exit code 2; shared/src/exit-codes.ts) ---
  SV_STORE_CORRUPT: { status: 500, mqtt: 0x80, summary: 'the LevelDB database cannot be opened: its files are damaged, missing or unreadable (details name the directory and the cause)' },
  SV_STORE_LOCKED: { status: 503, mqtt: 0x88, summary: 'the LevelDB data directory is held by another process (a running vault): stop it, or use --url against it' },
  SV_ADDRESS_UNAVAILABLE: { status: 500, mqtt: 0x80, summary: 'a listen address is in use, not local or not permitted (details name the address and which listener)' },
  SV_STORE_TOO_NEW: { status: 500, mqtt: 0x80, summary: 'the store was written by a newer vault release, or has a layout this vault does not know: run the newer release, or restore a backup' },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, code)
}

export interface VaultErrorOptions {
  /** Structured facts for logs and for the error body (never secrets). */
  details?: Record<string, unknown>
  cause?: unknown
  /** Seconds a client should wait before retrying (503 and 429). */
  retryAfter?: number
}

/**
 * The one error type that crosses module boundaries. `expose` is true for
 * client faults (status < 500): their message is shown to the client. For
 * server faults the client sees only the code and "internal error"; the
 * detail goes to the log.
 */
export class VaultError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly expose: boolean
  readonly details: Record<string, unknown> | undefined
  readonly retryAfter: number | undefined

  constructor(code: ErrorCode, message: string, options: VaultErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'VaultError'
    this.code = code
    this.status = ERRORS[code].status
    this.expose = this.status < 500
    this.details = options.details
    this.retryAfter = options.retryAfter
  }
}

export function isVaultError(err: unknown): err is VaultError {
  return err instanceof VaultError
}

/** The wire body of an error, identical on HTTP and on MQTT `rejected` topics. */
export interface ErrorBody {
  code: ErrorCode
  message: string
  requestId?: string
  details?: Record<string, unknown>
}

/**
 * Turns any thrown value into the error body a client may see. Unknown errors
 * and server faults never leak their message.
 */
export function toErrorBody(err: unknown, requestId?: string): ErrorBody {
  const e = isVaultError(err) ? err : undefined
  const body: ErrorBody = {
    code: e ? e.code : 'SV_INTERNAL',
    message: e && e.expose ? e.message : e ? `${ERRORS[e.code].summary}` : 'internal error',
  }
  if (requestId !== undefined) body.requestId = requestId
  if (e && e.expose && e.details !== undefined) body.details = e.details
  return body
}
