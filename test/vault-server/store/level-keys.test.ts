import test from 'ava'
import fc from 'fast-check'
import { lastComponent, prefixRange, splitTupleKey, tupleKey } from '../../../vault-server/src/store/level/layout.js'
import { KeyedMutex } from '../../../vault-server/src/store/keyed-mutex.js'

const component = fc.string({ unit: fc.constantFrom('\x00', '\x01', '\x02', 'a', 'b', '!', '~', 'é'), maxLength: 6 })
const tuple = fc.array(component, { minLength: 1, maxLength: 3 })

function compareTuples(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1
  }
  return a.length - b.length
}

test('tupleKey: round-trips and preserves tuple order, control characters included', (t) => {
  fc.assert(
    fc.property(tuple, tuple, (a, b) => {
      t.deepEqual(splitTupleKey(tupleKey(...a)), a)
      t.deepEqual([lastComponent(tupleKey(...a))], a.slice(-1))
      const ka = tupleKey(...a)
      const kb = tupleKey(...b)
      return Math.sign(compareTuples(a, b)) === Math.sign(ka < kb ? -1 : ka > kb ? 1 : 0)
    }),
    { numRuns: 2000 },
  )
})

test('prefixRange: matches exactly the keys whose leading components equal the prefix', (t) => {
  fc.assert(
    fc.property(tuple, tuple, (prefix, rest) => {
      const key = tupleKey(...rest)
      const r = prefixRange(prefix[0]!, ...prefix.slice(1))
      const inRange = key >= r.gte && key < r.lt
      const expected = rest.length > prefix.length && prefix.every((p, i) => rest[i] === p)
      return inRange === expected
    }),
    { numRuns: 2000 },
  )
  t.pass()
})

test('KeyedMutex: runs holders of one key one at a time, others in parallel, and frees its keys', async (t) => {
  const mutex = new KeyedMutex()
  let inside = 0
  let most = 0
  const holder = (keys: string[]) =>
    mutex.run(keys, async () => {
      inside++
      most = Math.max(most, inside)
      await new Promise((resolve) => setTimeout(resolve, 2))
      inside--
    })
  await Promise.all(Array.from({ length: 20 }, (_, i) => holder(i % 2 ? ['a', 'b'] : ['b', 'a'])))
  t.is(most, 1)
  most = 0
  await Promise.all(['x', 'y', 'z'].map((k) => holder([k])))
  t.is(most, 3)
  await t.throwsAsync(mutex.run(['a'], async () => { throw new Error('boom') }))
  t.is(mutex.size, 0)
})
