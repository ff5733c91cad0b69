/**
 * Device serial numbers: the one policy shared by the device agent (which
 * reads a serial from the hardware) and the vault (which validates a serial a
 * device proposes in its serial-request).
 *
 * Policy
 * - A serial is 1 to {@link SERIAL_MAX_LENGTH} (128) characters long.
 * - It uses only the characters `A-Z a-z 0-9 . _ : -`.
 * - It starts with a letter or a digit.
 *
 * Why: the serial becomes the `serial` primary-key header of a snapd `serial`
 * assertion. Primary-key values end up in assertion database paths and in
 * URLs, so they may not contain '/'; a one-line header value may not contain
 * a newline; spaces and other punctuation are refused so a serial is safe in
 * a file name, a URL path segment and a shell word without quoting. A leading
 * '.', '-' or ':' would make a hidden file name or look like an option, so the
 * first character is a letter or a digit. The length bound keeps one serial
 * from bloating logs and store keys.
 *
 * Pure: no I/O, runs unchanged on the device and in the vault.
 */

import { VaultError } from '../errors.js'

/** Longest serial accepted, in characters (all allowed characters are ASCII, so also bytes). */
export const SERIAL_MAX_LENGTH = 128

/**
 * The whole policy as one anchored expression: a letter or digit, then up to
 * 127 more of `A-Z a-z 0-9 . _ : -`. No flags, so `SERIAL_PATTERN.test()` keeps
 * no state between calls.
 */
export const SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/

/** Why {@link validateSerial} refused a serial; found in `details.reason`. */
export type SerialInvalidReason = 'empty' | 'too-long' | 'invalid-first-character' | 'invalid-characters'

/** How much of a refused serial is echoed in error details. */
const DETAILS_MAX_LENGTH = 64

/**
 * Normalises a serial as read from hardware or proposed by a device: removes
 * leading whitespace, and trailing whitespace and NUL characters in any mix
 * (a Raspberry Pi devicetree `serial-number` ends in a NUL, files end in a
 * newline). Nothing else changes: inner spaces are not collapsed and case is
 * kept, so the result is then checked as is by {@link validateSerial}.
 *
 * @throws TypeError when `raw` is not a string.
 */
export function normaliseSerial(raw: string): string {
  if (typeof raw !== 'string') throw new TypeError('serial must be a string')
  return raw.replace(/^\s+/, '').replace(/[\s\0]+$/, '')
}

/**
 * Checks `s` against the serial policy above; returns nothing when it passes.
 * It does not normalise: call {@link normaliseSerial} first for raw input.
 *
 * @throws VaultError `SV_SERIAL_INVALID` with `details: { serial, reason }`,
 *   where `serial` is the refused value cut to 64 characters (with "…" when
 *   cut) and `reason` is a {@link SerialInvalidReason}. The first failing rule
 *   in the order empty, too-long, invalid-first-character, invalid-characters
 *   is reported.
 * @throws TypeError when `s` is not a string.
 */
export function validateSerial(s: string): void {
  if (typeof s !== 'string') throw new TypeError('serial must be a string')
  if (SERIAL_PATTERN.test(s)) return
  let reason: SerialInvalidReason
  let message: string
  if (s.length === 0) {
    reason = 'empty'
    message = 'serial should not be empty'
  } else if (s.length > SERIAL_MAX_LENGTH) {
    reason = 'too-long'
    message = `serial is ${s.length} characters long, more than ${SERIAL_MAX_LENGTH}`
  } else if (!/^[A-Za-z0-9]/.test(s)) {
    reason = 'invalid-first-character'
    message = 'serial must start with a letter or a digit'
  } else {
    reason = 'invalid-characters'
    message = 'serial contains invalid characters (allowed: A-Z a-z 0-9 . _ : -)'
  }
  throw new VaultError('SV_SERIAL_INVALID', message, { details: { serial: truncate(s), reason } })
}

function truncate(s: string): string {
  return s.length <= DETAILS_MAX_LENGTH ? s : `${s.slice(0, DETAILS_MAX_LENGTH)}…`
}
