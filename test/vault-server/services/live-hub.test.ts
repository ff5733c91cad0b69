/**
 * The live hub over real HTTP connections: memory stays bounded when a
 * client stops reading (skipped entries are announced by a gap event when
 * it reads again, and a client stalled too long is cut off), entries are
 * batched per flush and serialised once, old minutes leave the counts, and
 * credentials that stop holding end the stream.
 */
import test, { type ExecutionContext } from 'ava'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { LiveHub } from '../../../vault-server/src/services/live/live-hub.js'
import type { LogEntry } from '../../../vault-server/src/store/store.js'
import { createLogId } from '../../../vault-server/src/store/log-id.js'
import { openSse } from '../../helpers/sse.js'

function entry(i: number, storeId = 's1', time = Date.now()): LogEntry {
  return { id: createLogId(time), time, outcome: 'issued', storeId, brandId: 'b', model: 'm', serial: `SN-${i}`, transport: 'https', message: 'x'.repeat(300) }
}

async function serve(t: ExecutionContext, hub: LiveHub, o: { storeIds?: string[]; revalidate?: () => Promise<boolean> } = {}): Promise<string> {
  const server: Server = createServer((_req, res) => hub.subscribe(res, { storeIds: o.storeIds ? new Set(o.storeIds) : undefined, hello: {}, revalidate: o.revalidate ?? (async () => true) }))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    hub.close()
    server.closeAllConnections()
    server.close()
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
}

test('live hub: a client that stops reading costs at most its buffer bound; when it reads again it hears of the gap', async (t) => {
  const maxBuffer = 64 * 1024
  let views = 0
  const hub = new LiveHub({ view: (e) => (views++, { ...e, time: new Date(e.time).toISOString() }), maxBufferBytes: maxBuffer, flushMs: 20, stallMs: 60_000 })
  const url = await serve(t, hub)
  const slow = await openSse(url)
  t.teardown(() => slow.close())
  await slow.next('hello')
  slow.pause()
  let peak = 0
  const total = 20_000
  const big = 'x'.repeat(4000)
  for (let i = 0; i < total; i++) {
    hub.publish({ ...entry(i), message: big })
    if (i % 100 === 99) {
      await new Promise((r) => setTimeout(r, 25))
      peak = Math.max(peak, hub.bufferedBytes)
    }
  }
  await new Promise((r) => setTimeout(r, 100))
  peak = Math.max(peak, hub.bufferedBytes)
  // ~80 MB were published, far more than the loopback socket buffers hold: the
  // process keeps at most the bound plus one flush (100 entries of 4 KB)
  t.true(peak < maxBuffer + 100 * 4200, `peak ${peak} bytes buffered`)
  t.true(views <= total, 'each entry serialised once')
  // it reads again: what it missed is announced, then new entries flow
  slow.resume()
  // once its socket drains below the bound, the next flush carries the gap
  for (let tries = 0; tries < 100 && hub.bufferedBytes > maxBuffer; tries++) await new Promise((r) => setTimeout(r, 50))
  hub.publish(entry(total))
  const gap = await slow.next('gap', 10_000)
  t.true((gap.data as { dropped: number }).dropped > 0)
  const serials = () => slow.events.filter((e) => e.event === 'entry').map((e) => (e.data as { serial: string }).serial)
  for (let tries = 0; tries < 200 && !serials().includes(`SN-${total}`); tries++) await new Promise((r) => setTimeout(r, 50))
  t.true(serials().includes(`SN-${total}`))
  t.true(serials().length < total, 'the slow client skipped entries instead of buffering them')
})

test('live hub: every reading client gets every entry of its stores, in order', async (t) => {
  const hub = new LiveHub({ view: (e) => e, flushMs: 10 })
  const url = await serve(t, hub)
  const clients = await Promise.all([openSse(url), openSse(url), openSse(url)])
  t.teardown(() => clients.forEach((c) => c.close()))
  for (const c of clients) await c.next('hello')
  for (let i = 0; i < 3000; i++) {
    hub.publish(entry(i))
    if (i % 500 === 499) await new Promise((r) => setTimeout(r, 15))
  }
  for (const c of clients) {
    for (let tries = 0; tries < 100 && c.events.filter((e) => e.event === 'entry').length < 3000; tries++) await new Promise((r) => setTimeout(r, 50))
    t.deepEqual(c.events.filter((e) => e.event === 'entry').map((e) => (e.data as { serial: string }).serial), Array.from({ length: 3000 }, (_, i) => `SN-${i}`))
    t.false(c.events.some((e) => e.event === 'gap'))
  }
})

test('live hub: a client stalled longer than stallMs is cut off', async (t) => {
  const hub = new LiveHub({ view: (e) => e, maxBufferBytes: 16 * 1024, flushMs: 10, stallMs: 300, keepaliveMs: 100 })
  const url = await serve(t, hub)
  const s = await openSse(url)
  await s.next('hello')
  s.pause()
  const until = Date.now() + 8000
  const big = 'x'.repeat(4000)
  while (hub.clients > 0 && Date.now() < until) {
    for (let i = 0; i < 50; i++) hub.publish({ ...entry(i), message: big })
    await new Promise((r) => setTimeout(r, 20))
  }
  t.is(hub.clients, 0)
})

test('live hub: streams see their stores only; counts are per minute and old minutes go', async (t) => {
  let now = Date.UTC(2026, 11, 3, 10, 0, 30)
  const hub = new LiveHub({ view: (e) => e, flushMs: 10, now: () => now, windowMinutes: 60 })
  const url = await serve(t, hub, { storeIds: ['s2'] })
  const s = await openSse(url)
  t.teardown(() => s.close())
  await s.next('hello')
  hub.publish(entry(1, 's1', now))
  hub.publish(entry(2, 's2', now))
  hub.publish({ ...entry(3, 's2', now), outcome: 'refused', code: 'SV_SERIAL_TAKEN' })
  hub.broadcast('ack', { id: 'x' }, 's1')
  hub.broadcast('ack', { id: 'y' }, 's2')
  t.like((await s.next('entry')).data, { serial: 'SN-2' })
  t.like((await s.next('entry')).data, { serial: 'SN-3' })
  t.like((await s.next('ack')).data, { id: 'y' })
  t.deepEqual(
    hub.buckets(new Set(['s2'])).map((b) => [b.minute, b.outcome, b.count]),
    [
      [Date.UTC(2026, 11, 3, 10, 0), 'issued', 1],
      [Date.UTC(2026, 11, 3, 10, 0), 'refused', 1],
    ],
  )
  t.is(hub.buckets(undefined).length, 3)
  now += 61 * 60_000
  t.deepEqual(hub.buckets(undefined), [])
})

test('live hub: credentials that no longer hold end the stream with an end event', async (t) => {
  let valid = true
  const hub = new LiveHub({ view: (e) => e, flushMs: 10, keepaliveMs: 50, revalidateMs: 100 })
  const url = await serve(t, hub, { revalidate: async () => valid })
  const s = await openSse(url)
  await s.next('hello')
  await new Promise((r) => setTimeout(r, 300))
  t.is(hub.clients, 1, 'still valid: still open')
  valid = false
  const end = await s.next('end', 10_000)
  t.like(end.data, { reason: 'credentials' })
  await s.ended
  t.is(hub.clients, 0)
})
