/**
 * Agent-local error codes: conditions the device agent reports in its own log
 * and through its exit code. They never go on the wire; anything the vault
 * reports uses the shared table in `@sv/shared` (`VaultError`).
 *
 * Same rules as the shared table: a code names a *condition*, never the place
 * it happened; codes never change once released, messages may; tests assert
 * `code` and `details`, never message text. Sub-cases of one condition are told
 * apart by `details.reason` (documented on each code below), a stable string.
 *
 * Exit codes follow `main.ts` (EXIT): 1 failed, 2 configuration invalid,
 * 3 retry later (a temporary condition: no network, vault unavailable, serial
 * pending, clock not set). `provision --once` ends with the exit code of the
 * condition that stopped it.
 */

export interface AgentErrorSpec {
  /** Process exit code when this error ends the agent. */
  readonly exitCode: number
  /** One line for the error-code documentation. */
  readonly summary: string
}

export const AGENT_ERRORS = {
  /**
   * No configured source produced a valid serial.
   * details: { tried: SerialSourceAttempt[] } listing every source tried, in
   * order, each with its code and reason.
   */
  SV_AGENT_SERIAL_NOT_FOUND: { exitCode: 1, summary: 'no configured serial source produced a valid serial number' },
  /**
   * One serial source could not produce a value. details: { source, detail,
   * reason } with reason one of missing, permission, unreadable, too-large,
   * timeout, no-match, placeholder, spawn-failed, exit-status, signal,
   * output-too-large.
   */
  SV_AGENT_SERIAL_SOURCE_FAILED: { exitCode: 1, summary: 'a serial source could not be read or gave no usable value' },
  /**
   * A serial port could not be used or did not answer. details: { path,
   * reason } with reason one of not-found, busy, permission, open-failed,
   * not-open, timeout (no line at all), no-match (lines came, none matched),
   * write-failed, disconnected, closed.
   */
  SV_AGENT_SERIAL_PORT: { exitCode: 1, summary: 'a serial port could not be opened, failed, or gave no matching answer in time' },
  /** The agent configuration is invalid. details: { problems: [...] } lists every problem at once. */
  SV_AGENT_CONFIG_INVALID: { exitCode: 2, summary: 'the agent configuration is invalid' },
  /** Persisted agent state (checkpoint, stored assertions) cannot be parsed or is inconsistent. */
  SV_AGENT_STATE_CORRUPT: { exitCode: 1, summary: 'the persisted agent state is unreadable or inconsistent' },
  /** The device key on disk is missing parts, malformed or of an unsupported kind. */
  SV_AGENT_KEY_INVALID: { exitCode: 1, summary: 'the stored device key is malformed or of an unsupported kind' },
  /** A file the agent reads is larger than the bound for it. details: { path, maxBytes }. */
  SV_AGENT_FILE_TOO_LARGE: { exitCode: 1, summary: 'a file is larger than the agent allows for it' },
  /**
   * No network yet (ENETUNREACH, ENETDOWN, EAI_AGAIN): retried at a short
   * interval without counting towards any limit (snapd does the same).
   * details: { reason: the errno code, step }.
   */
  SV_AGENT_NETWORK_DOWN: { exitCode: 3, summary: 'the network is not up yet (no route, interface down or DNS not answering)' },
  /**
   * The vault could not be reached or answered with a temporary failure:
   * details: { step, reason, status?, code?, message?, retryAfterMs? } with
   * reason one of status (a status above 500, or 429), refused, reset,
   * timeout, dns, bad-answer (undecodable request-id or serial stream),
   * transport. Retried with backoff and jitter; Retry-After is honoured.
   */
  SV_AGENT_VAULT_UNAVAILABLE: { exitCode: 3, summary: 'the vault is unreachable or answered with a temporary failure' },
  /**
   * The vault refused the request (a 4xx, a 500, or any other status snapd
   * treats as fatal): details: { step, status, code?, message?, requestId? }
   * with the server's own code (SV_* or Canonical's error_code) and message.
   * Fatal for this attempt; the next attempt waits for the long backoff.
   */
  SV_AGENT_VAULT_REFUSED: { exitCode: 1, summary: 'the vault refused the request (its code and message are in details)' },
  /** The vault accepted the serial-request and asked to poll later (202). details: { polls, retryAfterMs? }. */
  SV_AGENT_SERIAL_PENDING: { exitCode: 3, summary: 'the vault accepted the serial-request; the serial is not ready yet (poll later)' },
  /**
   * The system clock looks unset: it is before the agent's release date, or
   * TLS says the server certificate is not yet valid. details: { reason:
   * before-release | cert-not-yet-valid, now, notBefore? }. The agent waits
   * for time synchronisation.
   */
  SV_AGENT_CLOCK_UNSET: { exitCode: 3, summary: 'the system clock is not set yet; waiting for time synchronisation' },
  /**
   * TLS with the vault failed for a reason other than the clock: details: {
   * reason: untrusted | pin-mismatch | hostname | expired | handshake, code? }.
   */
  SV_AGENT_TLS_FAILED: { exitCode: 1, summary: 'the TLS connection to the vault failed (untrusted certificate, pin mismatch, wrong host)' },
  /**
   * The serial the vault returned cannot be accepted: details: { reason,
   * code?, ... } with reason one of no-serial, several-serials,
   * identity-mismatch (brand, model or device key differ: details.field),
   * untrusted (the signature or key chain fails the trust database checks:
   * details.code is the codec's SV_* code).
   */
  SV_AGENT_SERIAL_UNVERIFIED: { exitCode: 1, summary: 'the serial returned by the vault does not match this device or does not verify' },
  /** Generating the device key failed (worker error or unreadable result). */
  SV_AGENT_KEYGEN_FAILED: { exitCode: 1, summary: 'the device key could not be generated' },
  /**
   * The success hook failed: details: { reason: exit-status | signal |
   * timeout | spawn-failed, exitStatus?, signal?, timeoutMs? }. The agent
   * runs it again later; the serial stays written.
   */
  SV_AGENT_HOOK_FAILED: { exitCode: 1, summary: 'the success hook command failed or timed out' },
  /**
   * Serial-line transport (--transport serial): no answer from the station
   * within the call's bound while the port was open. details: { step, path,
   * timeoutMs }. Temporary: retried like an unavailable vault.
   */
  SV_AGENT_LINK_TIMEOUT: { exitCode: 3, summary: 'the serial-line station did not answer in time' },
  /**
   * Serial-line transport: a frame (or HELLO) was retransmitted the bounded
   * number of times without an acknowledgement. details: { step, path,
   * maxRetries }. The link starts a new session; temporary.
   */
  SV_AGENT_LINK_RETRIES_EXHAUSTED: { exitCode: 3, summary: 'the serial line dropped every retransmission of a frame' },
  /**
   * Serial-line transport: the port was closed or could not be opened, and
   * was not back before the call's bound. details: { step, path, error? }.
   * Temporary (a unit unplugged from its station).
   */
  SV_AGENT_LINK_CLOSED: { exitCode: 3, summary: 'the serial port to the station is closed or missing' },
  /**
   * Serial-line transport: the station lost the session (it restarted), so a
   * request in flight was lost. details: { step, path }. Temporary: the
   * request is sent again.
   */
  SV_AGENT_LINK_RESET: { exitCode: 3, summary: 'the serial-line station lost the session; the request is sent again' },
  /** Another agent process holds the state directory. details: { pid, lockFile }. */
  SV_AGENT_BUSY: { exitCode: 1, summary: 'another device-agent process is using the state directory' },
} as const satisfies Record<string, AgentErrorSpec>

export type AgentErrorCode = keyof typeof AGENT_ERRORS

/** Process exit codes of every `device-agent` command. */
export const EXIT = {
  /** done: provisioned (provision), printed (status, serial), reset (reset) */
  OK: 0,
  /** failed: the vault refused, the serial did not verify, the state is corrupt, ... */
  FAILED: 1,
  /** the configuration (file, environment, flags) is invalid, or contradicts the saved state */
  CONFIG_INVALID: 2,
  /** not provisioned yet, nothing wrong: run again later (no network, vault busy, serial pending, clock unset) */
  RETRY_LATER: 3,
} as const

export function isAgentErrorCode(code: unknown): code is AgentErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(AGENT_ERRORS, code)
}

export interface AgentErrorOptions {
  /** Structured facts for the log (never secrets). */
  details?: Record<string, unknown>
  cause?: unknown
}

/** The error type for agent-local conditions; `exitCode` comes from the table. */
export class AgentError extends Error {
  readonly code: AgentErrorCode
  readonly exitCode: number
  readonly details: Record<string, unknown> | undefined

  constructor(code: AgentErrorCode, message: string, options: AgentErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'AgentError'
    this.code = code
    this.exitCode = AGENT_ERRORS[code].exitCode
    this.details = options.details
  }
}

export function isAgentError(err: unknown): err is AgentError {
  return err instanceof AgentError
}
