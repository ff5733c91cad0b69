/**
 * The serial-line link on real pseudo-terminals: unit and station each on a
 * socat pty pair, node-serialport (the native binding) on every end, and a
 * fault-injecting relay between the two pairs (line-jig.ts). Every message
 * must arrive exactly once, in order and intact, under each kind of fault.
 */
import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SerialLineLink, encodeFrame, FrameType, crc32 } from '@sv/shared'
import { SerialLinePort } from '../../../device-agent/src/serial/serial-line-port.js'
import { FaultRelay, spawnPtyPair, type FaultPlan, type SocatPair } from './line-jig.js'

interface Line {
  dir: string
  unit: SerialLineLink
  station: SerialLineLink
  unitPort: SerialLinePort
  stationPort: SerialLinePort
  relay: FaultRelay
  pairU: SocatPair
  atStation: string[]
  atUnit: string[]
  paths: { unit: string; relayU: string }
}

async function line(t: import('ava').ExecutionContext, plan: FaultPlan, seed: number): Promise<Line> {
  const dir = await mkdtemp(join(tmpdir(), 'sv-line-'))
  const paths = { unit: join(dir, 'unit'), relayU: join(dir, 'relay-u'), station: join(dir, 'station'), relayS: join(dir, 'relay-s') }
  const l = { dir, paths, atStation: [] as string[], atUnit: [] as string[] } as unknown as Line
  l.pairU = await spawnPtyPair(paths.unit, paths.relayU)
  const pairS = await spawnPtyPair(paths.station, paths.relayS)
  l.relay = new FaultRelay({ unit: paths.relayU, station: paths.relayS }, plan, seed)
  await l.relay.start()
  const opts = { ackTimeoutMs: 80, maxRetries: 40, maxPayload: 256 }
  l.station = new SerialLineLink({ role: 'station', ...opts, onMessage: (m) => l.atStation.push(new TextDecoder().decode(m)) })
  l.unit = new SerialLineLink({ role: 'unit', ...opts, onMessage: (m) => l.atUnit.push(new TextDecoder().decode(m)) })
  l.stationPort = new SerialLinePort({ path: paths.station, baudRate: 115200, link: l.station, reopenMs: 50 })
  l.unitPort = new SerialLinePort({ path: paths.unit, baudRate: 115200, link: l.unit, reopenMs: 50 })
  t.teardown(async () => {
    l.unit.close()
    l.station.close()
    await l.unitPort.close()
    await l.stationPort.close()
    await l.relay.stop()
    await l.pairU.kill()
    await pairS.kill()
    await rm(dir, { recursive: true, force: true })
  })
  l.stationPort.start()
  l.unitPort.start()
  t.true(await l.stationPort.waitOpen(5000))
  t.true(await l.unitPort.waitOpen(5000))
  return l
}

const message = (who: string, i: number) => `${who} ${i} `.padEnd(40 + ((i * 397) % 1500), String.fromCharCode(97 + (i % 26)))

/** The unit sends `count` messages; the station answers each one; both sides' deliveries are checked. */
async function conversation(t: import('ava').ExecutionContext, l: Line, count: number): Promise<void> {
  const expectUnit: string[] = []
  const answered = new Promise<void>((resolve, reject) => {
    let n = 0
    const poll = setInterval(() => {
      while (n < l.atStation.length) {
        const reply = message('station', n)
        expectUnit.push(reply)
        l.station.send(new TextEncoder().encode(reply)).catch(reject)
        n++
      }
      if (n === count && l.atUnit.length >= count) {
        clearInterval(poll)
        resolve()
      }
    }, 5)
  })
  const sent = Array.from({ length: count }, (_, i) => message('unit', i))
  for (const m of sent) await l.unit.send(new TextEncoder().encode(m))
  await answered
  await new Promise((r) => setTimeout(r, 150)) // room for a late duplicate to show
  t.deepEqual(l.atStation, sent, 'the station got every message once, in order, intact')
  t.deepEqual(l.atUnit, expectUnit, 'the unit got every answer once, in order, intact')
}

for (const [name, plan] of [
  ['no fault', {}],
  ['dropped bytes', { drop: 0.15 }],
  ['corrupted bytes', { corrupt: 0.15 }],
  ['duplicated chunks', { duplicate: 0.25 }],
  ['garbage before and inside frames', { garbage: 0.2 }],
  ['every fault at once', { drop: 0.08, corrupt: 0.08, duplicate: 0.1, garbage: 0.1 }],
] as [string, FaultPlan][]) {
  test(`serial line (pty): ${name}: every message arrives exactly once, in order, intact`, async (t) => {
    const l = await line(t, plan, name.length * 7919)
    await conversation(t, l, 15)
    const s = l.relay.stats
    if (plan.drop) t.true(s.dropped > 0)
    if (plan.corrupt) t.true(s.corrupted > 0)
    if (plan.duplicate) t.true(s.duplicated > 0)
    if (plan.garbage) t.true(s.garbage > 0 && l.station.stats.garbageBytes + l.unit.stats.garbageBytes > 0)
    if (plan.drop || plan.corrupt) t.true(l.unit.stats.retransmits + l.station.stats.retransmits > 0, 'losses were repaired by retransmission')
    if (plan.duplicate) t.true(l.unit.stats.duplicatesDropped + l.station.stats.duplicatesDropped > 0, 'duplicates were dropped')
    t.log(`relay ${JSON.stringify(s)}; unit retransmits ${l.unit.stats.retransmits}, station retransmits ${l.station.stats.retransmits}`)
  })
}

test('serial line (pty): the relay closes a port in the middle of a frame, both directions; the messages arrive once', async (t) => {
  const l = await line(t, {}, 11)
  const big = message('unit', 7).repeat(3)
  const cut = l.relay.closeMidFrame('station', 30, 200)
  const sending = l.unit.send(new TextEncoder().encode(big))
  await cut
  await sending
  const reply = message('station', 3).repeat(3)
  const cut2 = l.relay.closeMidFrame('unit', 25, 200)
  const answering = l.station.send(new TextEncoder().encode(reply))
  await cut2
  await answering
  await new Promise((r) => setTimeout(r, 200))
  t.deepEqual(l.atStation, [big])
  t.deepEqual(l.atUnit, [reply])
  t.is(l.relay.stats.closedMidFrame, 2)
})

test('serial line (pty): the unit is unplugged mid-frame (its pty vanishes) and plugged back: the port reopens, the session resumes, nothing is duplicated', async (t) => {
  const l = await line(t, {}, 12)
  await l.unit.send(new TextEncoder().encode('before'))
  const session = l.unit.session
  const big = message('unit', 9).repeat(4)
  // unplug once the first frame of `big` is half way through the relay
  const cut = l.relay.closeMidFrame('station', 40, 10)
  const sending = l.unit.send(new TextEncoder().encode(big))
  await cut
  await l.pairU.kill()
  await new Promise((r) => setTimeout(r, 300))
  l.pairU = await spawnPtyPair(l.paths.unit, l.paths.relayU)
  await l.relay.reopen('unit')
  await sending
  await new Promise((r) => setTimeout(r, 200))
  t.deepEqual(l.atStation, ['before', big])
  t.is(l.unit.session, session, 'the same session')
  t.true(l.unitPort.opens >= 2, 'the unit reopened its port')
  t.true(l.unit.stats.resumes >= 1)
  t.is(l.station.stats.sessionsStarted, 1)
})

test('serial line (pty): a forged header with a huge length is refused at once, the decoder holds no more than one frame, the line goes on', async (t) => {
  const l = await line(t, {}, 13)
  await l.unit.send(new TextEncoder().encode('first'))
  const h = encodeFrame({ type: FrameType.DATA, session: l.unit.session!, seq: 999, payload: new Uint8Array(0) })
  const forged = h.subarray(0, 18)
  const v = new DataView(forged.buffer, forged.byteOffset)
  v.setUint16(12, 65535)
  v.setUint32(14, crc32(forged, 0, 14))
  l.relay.inject('station', forged)
  await new Promise((r) => setTimeout(r, 100))
  t.is(l.station.stats.oversized, 1)
  await l.unit.send(new TextEncoder().encode('second'))
  t.deepEqual(l.atStation, ['first', 'second'])
})
