import test from 'ava'
import { createLogId, logIdTimeBound } from '../../../vault-server/src/store/log-id.js'

test('createLogId: fixed-width time prefix, then counter and random part', (t) => {
  t.regex(createLogId(Date.UTC(2026, 0, 1)), /^1767225600000-[0-9a-z]{8}-[0-9a-f]{12}$/)
  t.regex(createLogId(0), /^0000000000000-/)
})

test('createLogId: ids sort by time, then by creation order within one millisecond', (t) => {
  const ids: string[] = []
  for (let i = 0; i < 2000; i++) ids.push(createLogId(1_700_000_000_000 + Math.floor(i / 100)))
  t.deepEqual([...ids].sort(), ids)
  t.is(new Set(ids).size, ids.length)
  t.true(createLogId(999) < createLogId(1000))
  t.true(createLogId(9_999_999_999) < createLogId(10_000_000_000))
})

test('createLogId: rejects times it cannot encode', (t) => {
  for (const bad of [-1, Number.NaN, Infinity, 1e13]) t.throws(() => createLogId(bad), { instanceOf: TypeError })
})

test('logIdTimeBound: ids made at or after a time sort at or above its bound, earlier ones below', (t) => {
  const at = createLogId(5000)
  t.true(at >= logIdTimeBound(5000))
  t.true(createLogId(4999) < logIdTimeBound(5000))
  // Fractional bounds round up: time >= 4999.5 means ms >= 5000.
  t.is(logIdTimeBound(4999.5), logIdTimeBound(5000))
  t.true(createLogId(9_999_999_999_999) < logIdTimeBound(Number.MAX_SAFE_INTEGER))
  t.is(logIdTimeBound(-5), logIdTimeBound(0))
})
