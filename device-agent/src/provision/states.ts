/**
 * The provisioning states and the transitions between them: pure data, no
 * I/O. Each state is a durable checkpoint (checkpoint.ts): what the device
 * has achieved so far, so that a restart at any moment, power cut included,
 * resumes from it instead of starting over.
 *
 *   new ──key──▶ key-ready ──request-id──▶ request-id-received ──sign──▶ request-signed
 *                    ▲  ▲                          │                         │  ▲ 202: poll
 *                    │  └──── stale request-id ────┘                         │  └──┘
 *                    └──── temporary failure before any 202, refusal ────────┤
 *                    └──── serial does not verify ──────┐                    ▼ 200
 *                                                  serial-received ◀─────────┘
 *                                                        │ verify, write files
 *                                                        ▼
 *                                                  serial-written ──hook──▶ provisioned
 *
 * Hazards the states encode:
 * - The serial-request is saved (request-signed) BEFORE it is sent. After a
 *   crash the same bytes are sent again: the vault answers an identical
 *   retry (same serial, same key) with the serial it already issued, so a
 *   crash between "sent" and "answer saved" never costs a second issuance.
 * - From request-signed on, the device key is "used": a serial may be bound
 *   to it, so it is never regenerated (only `reset --yes` removes it).
 * - The answer is saved (serial-received) before it is verified and written
 *   out, so a crash there needs no network at all to finish.
 */

export const STATES = ['new', 'key-ready', 'request-id-received', 'request-signed', 'serial-received', 'serial-written', 'provisioned'] as const

export type ProvisionState = (typeof STATES)[number]

export const TRANSITIONS: Readonly<Record<ProvisionState, readonly ProvisionState[]>> = {
  new: ['key-ready'],
  'key-ready': ['request-id-received'],
  'request-id-received': ['request-signed', 'key-ready'],
  'request-signed': ['serial-received', 'request-signed', 'key-ready'],
  'serial-received': ['serial-written', 'key-ready'],
  'serial-written': ['provisioned'],
  provisioned: [],
}

export function isProvisionState(s: unknown): s is ProvisionState {
  return typeof s === 'string' && (STATES as readonly string[]).includes(s)
}

export function canTransition(from: ProvisionState, to: ProvisionState): boolean {
  return TRANSITIONS[from].includes(to)
}

/** Throws TypeError for a transition the diagram does not have (a bug, not a runtime condition). */
export function assertTransition(from: ProvisionState, to: ProvisionState): void {
  if (!canTransition(from, to)) throw new TypeError(`provisioning: no transition from ${from} to ${to}`)
}

/**
 * Where a test can make the agent stop dead (AGENT_TEST_PAUSE_AFTER) to
 * SIGKILL it: right after each durable step, plus `serial-request-sent`,
 * when the vault has answered with a serial that is not saved yet (the
 * worst moment to lose power).
 */
export const PAUSE_POINTS = ['key-written', 'request-id-received', 'serial-request-signed', 'serial-request-sent', 'serial-received', 'serial-written'] as const

export type PausePoint = (typeof PAUSE_POINTS)[number]

export function isPausePoint(s: unknown): s is PausePoint {
  return typeof s === 'string' && (PAUSE_POINTS as readonly string[]).includes(s)
}

/** One line per state for `device-agent status`. */
export const STATE_DESCRIPTIONS: Readonly<Record<ProvisionState, string>> = {
  new: 'not started: no device key yet',
  'key-ready': 'device key ready; next: ask the vault for a request-id',
  'request-id-received': 'request-id received; next: sign and send the serial-request',
  'request-signed': 'serial-request signed and saved; waiting for the vault to answer it',
  'serial-received': 'serial received; next: verify it and write it out',
  'serial-written': 'serial verified and written; next: the success hook',
  provisioned: 'the serial is issued, verified and written out',
}
