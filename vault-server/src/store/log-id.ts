import { randomText } from '../random.js'

/**
 * Signing log ids: `<time>-<counter>-<random>`, for example
 * `1764196800000-00000003-9f2c41d07ab3`.
 *
 * - `time`: epoch milliseconds, 13 decimal digits (good until the year 2286).
 *   Fixed width, so ids sort as strings in time order, and a time range is a
 *   range of ids: both stores filter `LogQuery.from`/`to` on this prefix
 *   (see `logIdTimeBound`), which is why the id must be made from the entry's
 *   own `time`: `entry.id = createLogId(entry.time)`.
 * - `counter`: per-process, monotonic, 8 base-36 digits, so ids made by one
 *   process in the same millisecond keep their creation order.
 * - `random`: 48 random bits, so two processes (two vaults on one PostgreSQL)
 *   never make the same id even with equal time and counter.
 *
 * All characters are ASCII digits, lowercase letters and `-`, so bytewise,
 * UTF-16 and COLLATE "C" orders agree.
 */

const TIME_WIDTH = 13
const MAX_TIME = 10 ** TIME_WIDTH - 1
const COUNTER_WIDTH = 8
const COUNTER_MODULUS = 36 ** COUNTER_WIDTH

let counter = 0

/** Makes a new time-ordered log id for the instant `now` (epoch ms). */
export function createLogId(now: number): string {
  if (!Number.isFinite(now) || now < 0 || now > MAX_TIME) {
    throw new TypeError(`log id time must be epoch milliseconds in [0, ${MAX_TIME}], got ${now}`)
  }
  counter = (counter + 1) % COUNTER_MODULUS
  return [
    String(Math.floor(now)).padStart(TIME_WIDTH, '0'),
    counter.toString(36).padStart(COUNTER_WIDTH, '0'),
    randomText(6, 'hex'),
  ].join('-')
}

/**
 * The id bound for an instant: every id made at `time` or later sorts at or
 * above it, every id made before sorts below it. Times outside the id range
 * are clamped, so `to: Number.MAX_SAFE_INTEGER` still means "no upper bound".
 */
export function logIdTimeBound(time: number): string {
  const t = Math.max(Math.ceil(time), 0)
  // '~' sorts after '-', so this bound is above every id, including those of MAX_TIME.
  if (t > MAX_TIME) return `${MAX_TIME}~`
  return String(t).padStart(TIME_WIDTH, '0')
}
