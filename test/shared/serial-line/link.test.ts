/**
 * The link over an in-memory line with faults (drop, corrupt, duplicate
 * bytes; detach mid-frame), real timers with a short retransmission timeout.
 */
import test from 'ava'
import fc from 'fast-check'
import { SerialLineLink, type SerialLineError } from '../../../shared/src/serial-line/link.js'
import { mulberry32 as prng } from '../../helpers/prng.js'

interface Faults {
  drop?: number
  corrupt?: number
  duplicate?: number
}


/** One direction of the line: chunks delivered on a later macrotask, with byte-level faults. */
function wire(rand: () => number, faults: Faults, deliver: (b: Uint8Array) => void): (b: Uint8Array) => void {
  return (bytes) => {
    const b = new Uint8Array(bytes)
    if (faults.drop && rand() < faults.drop) {
      // drop a run of bytes somewhere in the chunk
      const at = Math.floor(rand() * b.length)
      const n = 1 + Math.floor(rand() * 8)
      const kept = new Uint8Array([...b.subarray(0, at), ...b.subarray(at + n)])
      return void setImmediate(() => deliver(kept))
    }
    if (faults.corrupt && rand() < faults.corrupt) {
      const at = Math.floor(rand() * b.length)
      b[at] = b[at]! ^ (1 + Math.floor(rand() * 255))
    }
    setImmediate(() => deliver(b))
    if (faults.duplicate && rand() < faults.duplicate) setImmediate(() => deliver(b))
  }
}

function pair(seed: number, faults: Faults, opts: { maxPayload?: number; unitMax?: number; ackTimeoutMs?: number } = {}) {
  const rand = prng(seed)
  const atStation: Uint8Array[] = []
  const atUnit: Uint8Array[] = []
  const station: SerialLineLink = new SerialLineLink({ role: 'station', ackTimeoutMs: opts.ackTimeoutMs ?? 15, maxRetries: 60, maxPayload: opts.maxPayload ?? 64, onMessage: (m) => atStation.push(m) })
  const unit: SerialLineLink = new SerialLineLink({ role: 'unit', ackTimeoutMs: opts.ackTimeoutMs ?? 15, maxRetries: 60, maxPayload: opts.unitMax ?? opts.maxPayload ?? 64, onMessage: (m) => atUnit.push(m) })
  const toStation = wire(rand, faults, (b) => station.receive(b))
  const toUnit = wire(rand, faults, (b) => unit.receive(b))
  station.attach(toUnit)
  unit.attach(toStation)
  return { unit, station, atStation, atUnit, toStation, toUnit }
}

const text = (i: number, n: number) => new TextEncoder().encode(`message ${i} `.padEnd(n, String.fromCharCode(97 + (i % 26))))
const dec = (m: Uint8Array) => new TextDecoder().decode(m)

async function exchange(t: import('ava').ExecutionContext, seed: number, faults: Faults, count = 12, ackTimeoutMs?: number) {
  const p = pair(seed, faults, ackTimeoutMs === undefined ? {} : { ackTimeoutMs })
  t.teardown(() => {
    p.unit.close()
    p.station.close()
  })
  const sent = Array.from({ length: count }, (_, i) => text(i, 10 + ((i * 37) % 200)))
  const replies = Array.from({ length: count }, (_, i) => text(1000 + i, 5 + ((i * 53) % 150)))
  await Promise.all([Promise.all(sent.map((m) => p.unit.send(m))), Promise.all(replies.map((m) => p.station.send(m)))])
  t.deepEqual(p.atStation.map(dec), sent.map(dec), `seed ${seed}`)
  t.deepEqual(p.atUnit.map(dec), replies.map(dec), `seed ${seed}`)
  return p
}

test('link: a clean line delivers messages both ways, split into frames and reassembled', async (t) => {
  // No fault is injected, so no frame may be resent: a 2 s ack timeout keeps a
  // busy machine's timer delays from counting as losses (15 ms did, under load).
  const p = await exchange(t, 1, {}, 12, 2000)
  t.is(p.unit.stats.retransmits, 0)
  t.true(p.unit.stats.dataSent > 12, 'messages above one payload were split')
})

for (const [name, faults] of [
  ['dropped bytes', { drop: 0.2 }],
  ['corrupted bytes', { corrupt: 0.2 }],
  ['duplicated chunks', { duplicate: 0.3 }],
  ['all at once', { drop: 0.1, corrupt: 0.1, duplicate: 0.1 }],
] as const) {
  test(`link: every message arrives exactly once, in order, intact, under ${name}`, async (t) => {
    for (const seed of [2, 3, 4]) {
      const p = await exchange(t, seed, faults)
      if (name !== 'duplicated chunks') t.true(p.unit.stats.retransmits + p.station.stats.retransmits > 0, 'faults were hit')
    }
  })
}

test('link: random fault mixes never lose, duplicate or reorder a message (property)', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 30 }), fc.double({ min: 0, max: 0.2, noNaN: true }), fc.double({ min: 0, max: 0.2, noNaN: true }), fc.double({ min: 0, max: 0.3, noNaN: true }), async (seed, drop, corrupt, duplicate) => {
      await exchange(t, seed, { drop, corrupt, duplicate }, 5)
    }),
    { numRuns: 15 },
  )
})

test('link: a unit detached mid-frame and attached again resumes the session; nothing is delivered twice', async (t) => {
  const p = pair(7, {})
  t.teardown(() => {
    p.unit.close()
    p.station.close()
  })
  const session = p.unit.session
  const big = text(1, 600)
  // cut the unit's line after 40 bytes of the first frame went out
  let written = 0
  p.unit.detach()
  p.unit.attach((b) => {
    const room = Math.max(0, 40 - written)
    written += b.length
    if (room > 0) p.toStation(b.subarray(0, room))
  })
  const sending = p.unit.send(big)
  await new Promise((r) => setTimeout(r, 30))
  p.unit.detach()
  await new Promise((r) => setTimeout(r, 30))
  p.unit.attach(p.toStation)
  await sending
  t.deepEqual(p.atStation.map(dec), [dec(big)])
  t.is(p.unit.session, session)
  t.true(p.unit.stats.resumes >= 1)
  // the station's answer crosses a second unplug
  const reply = text(2, 300)
  const answering = p.station.send(reply)
  p.unit.detach()
  await new Promise((r) => setTimeout(r, 40))
  p.unit.attach(p.toStation)
  await answering
  await new Promise((r) => setTimeout(r, 20))
  t.deepEqual(p.atUnit.map(dec), [dec(reply)])
  t.is(p.station.stats.sessionsStarted, 1)
})

test('link: a station that lost the session answers "new"; the unit fails its queued sends with reset, then works on', async (t) => {
  const p = pair(8, {})
  t.teardown(() => p.unit.close())
  await p.unit.send(text(1, 20))
  // the station restarts: a fresh link behind the same line
  p.station.close()
  const got: string[] = []
  const fresh = new SerialLineLink({ role: 'station', ackTimeoutMs: 15, maxPayload: 64, onMessage: (m) => got.push(dec(m)) })
  t.teardown(() => fresh.close())
  fresh.attach(p.toUnit)
  p.station.receive = (b) => fresh.receive(b)
  // the unit's next frame carries a session the fresh station does not know: NACK, HELLO, "new", reset
  const sending = p.unit.send(text(2, 20))
  const err = await t.throwsAsync<SerialLineError>(sending)
  t.is(err?.reason, 'reset')
  await p.unit.send(text(3, 20))
  t.deepEqual(got, [dec(text(3, 20))])
})

test('link: with no peer the send fails after the bounded retries (retries-exhausted), in bounded time', async (t) => {
  const unit = new SerialLineLink({ role: 'unit', ackTimeoutMs: 5, maxRetries: 4, onMessage: () => undefined })
  t.teardown(() => unit.close())
  unit.attach(() => undefined)
  const started = Date.now()
  const err = await t.throwsAsync<SerialLineError>(unit.send(text(1, 10)))
  t.is(err?.reason, 'retries-exhausted')
  t.true(Date.now() - started < 1000)
})

test('link: messages above maxMessage are refused; both sides use the smaller max payload', async (t) => {
  const small = new SerialLineLink({ role: 'unit', maxMessage: 100, onMessage: () => undefined })
  t.teardown(() => small.close())
  t.is((await t.throwsAsync<SerialLineError>(small.send(new Uint8Array(101))))?.reason, 'too-large')
  const p = pair(9, {}, { maxPayload: 200, unitMax: 32 })
  t.teardown(() => {
    p.unit.close()
    p.station.close()
  })
  const m = text(1, 500)
  await Promise.all([p.unit.send(m), p.station.send(m)])
  t.is(dec(p.atUnit[0]!), dec(m))
  t.is(dec(p.atStation[0]!), dec(m))
  t.true(p.station.stats.dataSent >= 500 / 31, 'the station sent frames of at most the unit payload')
})

test('link: close() fails queued sends with closed', async (t) => {
  const unit = new SerialLineLink({ role: 'unit', onMessage: () => undefined })
  const sending = unit.send(text(1, 10))
  unit.close()
  t.is((await t.throwsAsync<SerialLineError>(sending))?.reason, 'closed')
})
