import test from 'ava'
import { isClockUnset, systemClock } from '../../device-agent/src/clock.js'

test('systemClock: sleep waits about the time asked', async (t) => {
  const t0 = performance.now()
  await systemClock.sleep(50)
  const took = performance.now() - t0
  t.true(took >= 45 && took < 2000, String(took))
})

test('systemClock: sleep rejects with the abort reason, at once when already aborted', async (t) => {
  const ac = new AbortController()
  const p = systemClock.sleep(10_000, ac.signal)
  ac.abort(new Error('stop'))
  t.is((await t.throwsAsync(p))?.message, 'stop')
  t.is((await t.throwsAsync(systemClock.sleep(10, AbortSignal.abort(new Error('early')))))?.message, 'early')
})

test('isClockUnset: before notBefore only', (t) => {
  const at = (ms: number) => ({ now: () => ms, monotonic: () => 0, sleep: async () => undefined })
  t.true(isClockUnset(at(0), Date.parse('2026-11-01T00:00:00Z')))
  t.false(isClockUnset(at(Date.parse('2026-11-02T00:00:00Z')), Date.parse('2026-11-01T00:00:00Z')))
})
