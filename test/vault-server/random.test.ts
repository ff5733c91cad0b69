import test from 'ava'
import { Buffer } from 'node:buffer'
import { fillRandom, randomText } from '../../vault-server/src/random.js'

test('randomText: ids across many pool refills are all distinct and of the asked size', (t) => {
  const seen = new Set<string>()
  // 20,000 x 9 bytes: about 44 refills of the 4 KiB block
  for (let i = 0; i < 20_000; i++) seen.add(randomText(9, 'base64url'))
  t.is(seen.size, 20_000)
  t.true([...seen].every((s) => s.length === 12 && /^[A-Za-z0-9_-]+$/.test(s)))
  t.is(randomText(6, 'hex').length, 12)
})

test('randomText: the byte values look uniform (a stuck or zeroed pool fails this)', (t) => {
  const counts = new Array<number>(256).fill(0)
  for (let i = 0; i < 4000; i++) for (const b of Buffer.from(randomText(16, 'hex'), 'hex')) counts[b]!++
  // 64,000 bytes, 250 per value expected: every value seen, none wildly off
  t.true(counts.every((c) => c > 150 && c < 360), JSON.stringify(counts))
})

test('fillRandom: writes exactly the asked range, pooled and unpooled', (t) => {
  for (const n of [1, 16, 256, 1000]) {
    const buf = Buffer.alloc(n + 8, 0xaa)
    fillRandom(buf, 4, n)
    t.true(buf.subarray(0, 4).every((b) => b === 0xaa))
    t.true(buf.subarray(4 + n).every((b) => b === 0xaa))
    if (n >= 16) t.false(buf.subarray(4, 4 + n).every((b) => b === 0xaa))
  }
})

test('randomText: refuses sizes outside 1..256', (t) => {
  for (const n of [0, -1, 257, 1.5]) t.throws(() => randomText(n, 'hex'), { instanceOf: RangeError })
})
