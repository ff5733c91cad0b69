import test from 'ava'
import fc from 'fast-check'
import { crc32 } from '../../../shared/src/serial-line/crc32.js'
import { FRAME_OVERHEAD, FrameDecoder, FrameType, HEADER_BYTES, encodeFrame, type Frame } from '../../../shared/src/serial-line/frame.js'

const utf8 = (s: string) => new TextEncoder().encode(s)

const frameArb = fc.record({
  type: fc.constantFrom(FrameType.DATA, FrameType.ACK, FrameType.NACK, FrameType.HELLO, FrameType.HELLO_ACK),
  session: fc.integer({ min: 0, max: 0xffffffff }),
  seq: fc.integer({ min: 0, max: 0xffffffff }),
  payload: fc.uint8Array({ maxLength: 300 }),
}) as fc.Arbitrary<Frame>

/** Splits bytes into chunks at the given cut points. */
function chunks(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let last = 0
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(last, p))
    last = p
  }
  return out
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

test('crc32: the check value of "123456789" is 0xCBF43926 (IEEE)', (t) => {
  t.is(crc32(utf8('123456789')), 0xcbf43926)
  t.is(crc32(new Uint8Array(0)), 0)
})

test('encodeFrame: the documented byte layout', (t) => {
  const f = encodeFrame({ type: FrameType.DATA, session: 0x01020304, seq: 7, payload: utf8('hi') })
  t.is(f.length, FRAME_OVERHEAD + 2)
  t.deepEqual([...f.subarray(0, 14)], [0xa5, 0xc3, 1, 1, 1, 2, 3, 4, 0, 0, 0, 7, 0, 2])
  const v = new DataView(f.buffer)
  t.is(v.getUint32(14), crc32(f, 0, 14))
  t.deepEqual([...f.subarray(18, 20)], [0x68, 0x69])
  t.is(v.getUint32(20), crc32(f, 0, 20))
})

test('encodeFrame: refuses a payload above the bound, an unknown type, a seq outside u32', (t) => {
  t.throws(() => encodeFrame({ type: FrameType.DATA, session: 1, seq: 1, payload: new Uint8Array(1025) }), { instanceOf: TypeError })
  t.throws(() => encodeFrame({ type: 9 as FrameType, session: 1, seq: 1, payload: new Uint8Array(0) }), { instanceOf: TypeError })
  t.throws(() => encodeFrame({ type: FrameType.ACK, session: 1, seq: 2 ** 32, payload: new Uint8Array(0) }), { instanceOf: TypeError })
})

test('FrameDecoder: any frames, cut anywhere, decode to themselves (property)', (t) => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (frames, cuts) => {
      const d = new FrameDecoder({ maxPayload: 300 })
      const got = chunks(concat(frames.map((f) => encodeFrame(f, 300))), cuts).flatMap((c) => d.push(c))
      t.deepEqual(got, frames)
      t.is(d.buffered, 0)
      t.is(d.stats.garbageBytes, 0)
    }),
    { numRuns: 300 },
  )
})

test('FrameDecoder: garbage before, between and inside frames is skipped; every intact frame is found (property)', (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.uint8Array({ maxLength: 60 }), frameArb), { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 10 }), (items, cuts) => {
      const d = new FrameDecoder({ maxPayload: 300 })
      // garbage may contain start markers and even a valid-looking header prefix
      const bytes = concat(items.flatMap(([g, f]) => [g, encodeFrame(f, 300)]))
      const got = chunks(bytes, cuts).flatMap((c) => d.push(c))
      // a frame can only be lost if garbage forms a frame overlapping it; with CRC-32 that does not happen by chance
      t.deepEqual(got, items.map(([, f]) => f))
    }),
    { numRuns: 300 },
  )
})

test('FrameDecoder: a frame with one corrupted byte is dropped, the next one is decoded (property)', (t) => {
  fc.assert(
    fc.property(frameArb, frameArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (a, b, at, xor) => {
      const d = new FrameDecoder({ maxPayload: 300 })
      const ea = encodeFrame(a, 300)
      const i = at % ea.length
      ea[i] = ea[i]! ^ xor
      const got = d.push(concat([ea, encodeFrame(b, 300)]))
      t.deepEqual(got, [b])
      t.true(d.stats.badHeaders + d.stats.badCrc + d.stats.oversized + d.stats.garbageBytes > 0)
    }),
    { numRuns: 500 },
  )
})

test('FrameDecoder: a valid header with an oversized length is refused at once, without waiting for or holding its payload', (t) => {
  const d = new FrameDecoder({ maxPayload: 64 })
  const big = encodeFrame({ type: FrameType.DATA, session: 1, seq: 1, payload: new Uint8Array(1000) }, 1000)
  const ok = encodeFrame({ type: FrameType.ACK, session: 1, seq: 2, payload: new Uint8Array(0) }, 64)
  // only the header of the oversized frame, then a good frame: the good one comes out now
  t.deepEqual(d.push(concat([big.subarray(0, HEADER_BYTES), ok])), [{ type: FrameType.ACK, session: 1, seq: 2, payload: new Uint8Array(0) }])
  t.is(d.stats.oversized, 1)
  t.is(d.buffered, 0)
  // a header claiming 65535 bytes
  const h = new Uint8Array(big.subarray(0, HEADER_BYTES))
  const v = new DataView(h.buffer)
  v.setUint16(12, 0xffff)
  v.setUint32(14, crc32(h, 0, 14))
  d.push(h)
  t.is(d.stats.oversized, 2)
  t.true(d.buffered < HEADER_BYTES)
})

test('FrameDecoder: the buffer never holds more than one maximal frame, whatever arrives (1 MiB of random bytes)', (t) => {
  const d = new FrameDecoder({ maxPayload: 128 })
  let max = 0
  let state = 12345
  for (let i = 0; i < 256; i++) {
    const chunk = new Uint8Array(4096)
    for (let j = 0; j < chunk.length; j++) {
      state = (state * 1103515245 + 12345) >>> 0
      // plenty of start markers
      chunk[j] = j % 7 === 0 ? 0xa5 : j % 7 === 1 ? 0xc3 : state >>> 24
    }
    d.push(chunk)
    max = Math.max(max, d.buffered)
  }
  t.true(max < FRAME_OVERHEAD + 128, `held ${max}`)
  t.true(d.stats.garbageBytes > 1_000_000 - FRAME_OVERHEAD - 128)
})
