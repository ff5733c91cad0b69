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
 * Exit codes follow `main.ts`: 1 failed, 2 configuration invalid.
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
} as const satisfies Record<string, AgentErrorSpec>

export type AgentErrorCode = keyof typeof AGENT_ERRORS

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
