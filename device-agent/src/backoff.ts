/**
 * Retry timing, after snapd's device manager (spec §5.2, §5.9), with the
 * numbers configurable:
 * - inside an attempt, temporary failures (status above 500, transport
 *   errors, timeouts) wait `initialMs * factor^(n-1)`, capped at `maxMs`, with
 *   ±`jitter` so a fleet that lost the vault at the same moment does not come
 *   back in lock step; a Retry-After from the vault replaces the backoff
 *   (capped), since the vault knows when it will have capacity again;
 * - between whole attempts (after a refusal), snapd's schedule: 5 min,
 *   doubling, and once doubling would pass 12 h, 24 h from then on.
 */

export interface RetryPolicy {
  /** First wait, ms. */
  initialMs: number
  /** Upper bound of the exponential part, ms. */
  maxMs: number
  /** Growth per retry (>= 1). */
  factor: number
  /** Relative jitter in [0, 1): the wait is spread over ±jitter of its value. */
  jitter: number
}

/**
 * The wait before retry number `retry` (1 for the first retry).
 * `random` returns [0, 1) (Math.random by default; tests pass a constant).
 */
export function retryDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(retry))
  const base = Math.min(policy.maxMs, policy.initialMs * policy.factor ** (n - 1))
  const spread = base * policy.jitter * (2 * random() - 1)
  return Math.max(0, Math.round(base + spread))
}

/** The wait for a temporary failure: Retry-After (capped at `maxRetryAfterMs`) when given, else the backoff. */
export function temporaryFailureDelay(policy: RetryPolicy, retry: number, retryAfterMs: number | undefined, maxRetryAfterMs: number, random?: () => number): number {
  const backoff = retryDelay(policy, retry, random)
  if (retryAfterMs === undefined) return backoff
  return Math.max(Math.min(retryAfterMs, maxRetryAfterMs), 0)
}

export interface AttemptBackoff {
  /** Wait after the first failed attempt, ms (snapd: 5 min). */
  initialMs: number
  /** Doubling stops once it would pass this; the wait is then `ceilingMs` (snapd: 12 h). */
  doublingLimitMs: number
  /** The wait once the doubling limit is passed (snapd: 24 h). */
  ceilingMs: number
}

/** snapd's ensureOperationalShouldBackoff schedule: the wait after `failures` failed attempts (>= 1). */
export function attemptBackoffDelay(b: AttemptBackoff, failures: number): number {
  let wait = b.initialMs
  for (let i = 1; i < failures; i++) {
    wait *= 2
    if (wait > b.doublingLimitMs) return b.ceilingMs
  }
  return wait
}

/**
 * Parses a Retry-After header: delta seconds or an HTTP date. Returns ms from
 * `now`, or undefined when absent or unreadable. Negative results give 0.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (v === undefined) return undefined
  const text = v.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  if (!/^[A-Za-z]{3}, /.test(text)) return undefined
  const at = Date.parse(text)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - now)
}
