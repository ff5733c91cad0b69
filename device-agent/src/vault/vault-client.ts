/**
 * How the agent talks to a device service: the two calls of snapd's
 * registration (spec §5.6, §5.8), whatever carries them. HttpVaultClient
 * speaks HTTP(S) to our vault and to Canonical's serial-vault; an MQTT client
 * (a later issue) implements the same interface.
 *
 * Contract of every VaultClient
 * - Calls may be made in any order and repeated; a client holds no
 *   provisioning state (the provisioner does).
 * - Every call is bounded in time by the client's own timeouts and also ends
 *   when `signal` aborts (rejecting with `signal.reason`).
 * - Failures are AgentErrors whose code tells the provisioner what to do:
 *   - `SV_AGENT_NETWORK_DOWN`: no network yet (short retry, not counted);
 *   - `SV_AGENT_VAULT_UNAVAILABLE`: temporary (a status above 500, 429, a
 *     refused or reset connection, a timeout, an answer that does not
 *     decode); `details.retryAfterMs` when the vault said when to come back;
 *   - `SV_AGENT_VAULT_REFUSED`: the vault said no (4xx, 500, anything else);
 *     `details` carry `status` and the vault's own `code` and `message`;
 *   - `SV_AGENT_CLOCK_UNSET`: TLS failed because the clock is not set;
 *   - `SV_AGENT_TLS_FAILED`: any other TLS failure (untrusted, pin mismatch).
 *   Programmer mistakes throw TypeError.
 */
import type { Buffer } from 'node:buffer'

export type SerialAnswer =
  /** 200/201: the raw assertion stream (a serial, and possibly its signing chain) */
  | { kind: 'issued'; stream: Buffer }
  /** 202: accepted; POST the same serial-request again later */
  | { kind: 'pending'; retryAfterMs?: number }

export interface VaultClient {
  /** Where it connects, for logs (no credentials). */
  readonly endpoint: string
  /**
   * Asks for a fresh request-id (a single-use nonce the serial-request must
   * carry). Resolves with a non-empty string.
   */
  requestId(signal?: AbortSignal): Promise<string>
  /**
   * Sends the serial-request stream (serial-request, then the model
   * assertion if any) and returns the answer. The stream is sent as given.
   */
  serial(stream: Buffer, signal?: AbortSignal): Promise<SerialAnswer>
  /** Releases connections; idempotent. */
  close(): Promise<void>
}
