import test from 'ava'
import { attemptBackoffDelay, parseRetryAfter, retryDelay, temporaryFailureDelay } from '../../device-agent/src/backoff.js'

const policy = { initialMs: 10_000, maxMs: 300_000, factor: 2, jitter: 0.2 }

test('retryDelay: exponential from initialMs, capped at maxMs', (t) => {
  const mid = () => 0.5
  t.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelay(policy, n, mid)),
    [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000],
  )
})

test('retryDelay: jitter spreads the wait over ±jitter', (t) => {
  t.is(retryDelay(policy, 1, () => 0), 8000)
  t.is(retryDelay(policy, 1, () => 0.999999), 12_000)
  for (let i = 0; i < 200; i++) {
    const d = retryDelay(policy, 3)
    t.true(d >= 32_000 && d <= 48_000, String(d))
  }
  t.is(retryDelay({ ...policy, jitter: 0 }, 2, () => 0), 20_000)
})

test('temporaryFailureDelay: Retry-After replaces the backoff, capped', (t) => {
  t.is(temporaryFailureDelay(policy, 1, 3000, 3_600_000, () => 0.5), 3000)
  t.is(temporaryFailureDelay(policy, 1, 7_200_000, 3_600_000, () => 0.5), 3_600_000)
  t.is(temporaryFailureDelay(policy, 2, undefined, 3_600_000, () => 0.5), 20_000)
})

test("attemptBackoffDelay: snapd's schedule, 5 min doubling, 24 h once past 12 h", (t) => {
  const b = { initialMs: 5 * 60_000, doublingLimitMs: 12 * 3_600_000, ceilingMs: 24 * 3_600_000 }
  const minutes = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20].map((n) => attemptBackoffDelay(b, n) / 60_000)
  t.deepEqual(minutes, [5, 10, 20, 40, 80, 160, 320, 640, 1440, 1440, 1440])
})

test('parseRetryAfter: seconds, HTTP dates, garbage', (t) => {
  const now = Date.parse('2026-11-26T12:00:00Z')
  t.is(parseRetryAfter('5', now), 5000)
  t.is(parseRetryAfter(' 0 ', now), 0)
  t.is(parseRetryAfter(['2', '9'], now), 2000)
  t.is(parseRetryAfter('Thu, 26 Nov 2026 12:00:30 GMT', now), 30_000)
  t.is(parseRetryAfter('Thu, 26 Nov 2026 11:00:00 GMT', now), 0)
  t.is(parseRetryAfter('soon', now), undefined)
  t.is(parseRetryAfter('-3', now), undefined)
  t.is(parseRetryAfter(undefined, now), undefined)
})
