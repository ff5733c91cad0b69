import type { ExecutionContext } from 'ava'
import { LOG_OUTCOMES, type LogEntry, type LogQuery, type VaultStore } from '../../../vault-server/src/store/store.js'
import { T0, byText, drain, logEntry, type Suite } from '../fixtures.js'

const STORES = ['acme', 'acme-line', 'acme-partner', 'beta']

/**
 * 160 entries over two brands, three models, four stores (and entries
 * without a store), 20 serials, device keys shared by several entries and
 * every outcome; some share a millisecond.
 */
function seedLog(): LogEntry[] {
  const entries: LogEntry[] = []
  for (let i = 0; i < 160; i++) {
    const brandId = i % 5 === 0 ? 'beta' : 'acme'
    const model = ['widget', 'gadget', 'sprocket'][i % 3]!
    const outcome = LOG_OUTCOMES[i % 7 === 0 ? 4 : i % 4]!
    const time = T0 + Math.floor(i / 3) * 1000
    const e = logEntry(time, { outcome, brandId, model, serial: `SN-${i % 20}`, transport: i % 2 ? 'https' : 'mqtt' })
    if (i % 13 !== 0) e.storeId = brandId === 'beta' ? 'beta' : STORES[i % 3]!
    if (outcome === 'refused') {
      e.code = 'SV_SERIAL_TAKEN'
      e.message = 'refused'
      if (i % 2 === 0) e.deviceKeyId = `dk-${i % 8}`
    } else {
      e.deviceKeyId = `dk-${i % 8}`
      e.revision = 1 + (i % 3)
      e.timings = { sign: i, total: i * 2 }
      e.requestId = `req-${i}`
      e.clientAddress = '192.0.2.7'
    }
    if (outcome === 'pivoted') e.fromModel = 'old-model'
    if (i % 11 === 0) delete e.serial
    entries.push(e)
  }
  return entries
}

async function seededStore(t: ExecutionContext, open: Suite['open']): Promise<{ store: VaultStore; seed: LogEntry[] }> {
  const store = await open(t)
  const seed = seedLog()
  // Appended out of order in small concurrent groups: the store orders by id, not by arrival.
  const shuffled = [...seed].reverse()
  for (let i = 0; i < shuffled.length; i += 25) await Promise.all(shuffled.slice(i, i + 25).map((e) => store.signingLog.append(e)))
  return { store, seed }
}

/** The independent filter the stores are compared with. */
function expected(seed: LogEntry[], q: Omit<LogQuery, 'limit' | 'cursor'>): string[] {
  const ids = seed
    .filter(
      (e) =>
        (q.brandId === undefined || e.brandId === q.brandId) &&
        (q.model === undefined || e.model === q.model) &&
        (q.storeIds === undefined || (e.storeId !== undefined && q.storeIds.includes(e.storeId))) &&
        (q.serial === undefined || e.serial === q.serial) &&
        (q.deviceKeyId === undefined || e.deviceKeyId === q.deviceKeyId) &&
        (q.outcome === undefined || e.outcome === q.outcome) &&
        (q.from === undefined || e.time >= q.from) &&
        (q.to === undefined || e.time < q.to),
    )
    .map((e) => e.id)
    .sort(byText)
  return q.order === 'desc' ? ids.reverse() : ids
}

async function allPages(store: VaultStore, q: LogQuery): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = []
  let cursor: string | undefined
  for (let pages = 1; pages <= 1000; pages++) {
    const page = await store.signingLog.query(cursor === undefined ? q : { ...q, cursor })
    if (page.entries.length > (q.limit ?? 100)) throw new Error('page larger than limit')
    ids.push(...page.entries.map((e) => e.id))
    if (page.nextCursor === undefined) return { ids, pages }
    cursor = page.nextCursor
  }
  throw new Error('paging did not end')
}

const LOG_QUERIES: Array<Omit<LogQuery, 'limit' | 'cursor'>> = [
  {},
  { serial: 'SN-3' },
  { serial: 'SN-3', brandId: 'acme', model: 'widget' },
  { brandId: 'acme', model: 'gadget' },
  { brandId: 'beta' },
  { model: 'sprocket' },
  { outcome: 'refused' },
  { outcome: 'pivoted' },
  { outcome: 'issued', brandId: 'acme', model: 'widget' },
  { from: T0 + 10_000, to: T0 + 20_000 },
  { brandId: 'acme', outcome: 'reissued', from: T0 + 5_000 },
  { serial: 'SN-4', to: T0 + 30_000 },
  { serial: 'nope' },
  { from: T0 + 1_000_000 },
  { to: T0 },
  { from: T0 + 20_000, to: T0 + 10_000 },
  // a store's view of the log
  { storeIds: ['acme'] },
  { storeIds: ['acme-line'] },
  { storeIds: ['acme', 'acme-line', 'acme-partner'] },
  { storeIds: ['acme-partner', 'acme', 'acme'] },
  { storeIds: ['acme-line', 'nope'] },
  { storeIds: ['nope'] },
  { storeIds: ['acme', 'beta'], outcome: 'issued' },
  { storeIds: ['acme', 'acme-line'], model: 'widget', from: T0 + 8_000, to: T0 + 40_000 },
  { storeIds: ['acme-line', 'acme-partner'], serial: 'SN-7' },
  { storeIds: ['beta'], brandId: 'acme' },
  // one device's history
  { deviceKeyId: 'dk-4' },
  { deviceKeyId: 'dk-4', outcome: 'refused' },
  { deviceKeyId: 'dk-2', storeIds: ['acme', 'acme-line'] },
  { deviceKeyId: 'dk-1', brandId: 'beta', to: T0 + 30_000 },
  { deviceKeyId: 'nope' },
]

export function signingLogGroup({ test, title, open }: Suite): void {
  const g = (text: string): string => title('signing log', text)

  test(g('entries come back whole, in id order, default page 100'), async (t) => {
    const { store, seed } = await seededStore(t, open)
    const sorted = [...seed].sort((a, b) => byText(a.id, b.id))
    const page = await store.signingLog.query({})
    t.deepEqual(page.entries, sorted.slice(0, 100))
    t.is(typeof page.nextCursor, 'string')
    const desc = await store.signingLog.query({ order: 'desc', limit: 1000 })
    t.deepEqual(desc.entries, [...sorted].reverse())
    t.is(desc.nextCursor, undefined)
    // a pivot entry keeps its fromModel, entries their store
    const pivot = seed.find((e) => e.outcome === 'pivoted')!
    t.deepEqual((await store.signingLog.query({ outcome: 'pivoted', limit: 1 })).entries, [pivot])
  })

  test(g('queries by serial, model, brand, stores, device key, outcome and time select exactly the matches'), async (t) => {
    const { store, seed } = await seededStore(t, open)
    for (const q of LOG_QUERIES) {
      for (const order of ['asc', 'desc'] as const) {
        const page = await store.signingLog.query({ ...q, order, limit: 1000 })
        t.deepEqual(page.entries.map((e) => e.id), expected(seed, { ...q, order }), JSON.stringify({ ...q, order }))
        t.is(page.nextCursor, undefined)
      }
    }
    // the seed makes the queries meaningful: all but the 7 meant to match nothing match something
    t.is(LOG_QUERIES.filter((q) => expected(seed, q).length === 0).length, 7)
  })

  test(g('paging with cursors covers every entry exactly once in both orders, over several stores too'), async (t) => {
    const { store, seed } = await seededStore(t, open)
    const queries: Array<Omit<LogQuery, 'limit' | 'cursor'>> = [
      {},
      { brandId: 'acme', model: 'widget' },
      { outcome: 'issued' },
      { from: T0 + 3_000, to: T0 + 40_000 },
      { storeIds: ['acme-line'] },
      { storeIds: ['acme', 'acme-line', 'acme-partner'] },
      { storeIds: ['acme', 'beta'], from: T0 + 5_000 },
      { deviceKeyId: 'dk-5' },
    ]
    for (const q of queries) {
      for (const order of ['asc', 'desc'] as const) {
        for (const limit of [1, 7, 50]) {
          const want = expected(seed, { ...q, order })
          const { ids, pages } = await allPages(store, { ...q, order, limit })
          t.deepEqual(ids, want, JSON.stringify({ ...q, order, limit }))
          t.is(pages, Math.max(1, Math.ceil(want.length / limit)))
        }
      }
    }
  })

  test(g('export streams every matching entry in order'), async (t) => {
    const { store, seed } = await seededStore(t, open)
    for (const q of LOG_QUERIES) {
      t.deepEqual((await drain(store.signingLog.export(q))).map((e) => e.id), expected(seed, q), JSON.stringify(q))
      t.deepEqual((await drain(store.signingLog.export({ ...q, order: 'desc' }))).map((e) => e.id), expected(seed, { ...q, order: 'desc' }), JSON.stringify({ ...q, order: 'desc' }))
    }
    // Leaving an export early releases it: the store still closes.
    for await (const e of store.signingLog.export({})) {
      t.deepEqual([e.id], expected(seed, {}).slice(0, 1))
      break
    }
  })

  test(g('an export larger than one read batch comes out whole, over several stores too'), async (t) => {
    const store = await open(t)
    const entries = Array.from({ length: 1300 }, (_, i) => logEntry(T0 + i, { outcome: 'refused', code: 'SV_RATE_LIMITED', storeId: STORES[i % 3]! }))
    for (let i = 0; i < entries.length; i += 100) await Promise.all(entries.slice(i, i + 100).map((e) => store.signingLog.append(e)))
    const ids = entries.map((e) => e.id)
    t.deepEqual((await drain(store.signingLog.export({}))).map((e) => e.id), ids)
    t.deepEqual((await drain(store.signingLog.export({ outcome: 'refused', order: 'desc' }))).map((e) => e.id), [...ids].reverse())
    const two = entries.filter((e) => e.storeId !== 'acme-line').map((e) => e.id)
    t.deepEqual((await drain(store.signingLog.export({ storeIds: ['acme', 'acme-partner'] }))).map((e) => e.id), two)
    t.deepEqual((await drain(store.signingLog.export({ storeIds: ['acme', 'acme-partner'], order: 'desc' }))).map((e) => e.id), [...two].reverse())
  })

  test(g('invalid limits, stores, outcomes and foreign cursors reject SV_REQUEST_INVALID'), async (t) => {
    const store = await open(t)
    await store.signingLog.append(logEntry(T0))
    for (const limit of [0, 1001, 1.5, -1]) {
      await t.throwsAsync(store.signingLog.query({ limit }), { code: 'SV_REQUEST_INVALID' }, `limit ${limit}`)
    }
    t.is((await store.signingLog.query({ limit: 1000 })).entries.length, 1)
    await t.throwsAsync(store.signingLog.query({ cursor: 'not-a-cursor' }), { code: 'SV_REQUEST_INVALID' })
    await t.throwsAsync(store.signingLog.query({ cursor: '' }), { code: 'SV_REQUEST_INVALID' })
    await t.throwsAsync(store.signingLog.query({ storeIds: [] }), { code: 'SV_REQUEST_INVALID' })
    await t.throwsAsync(store.signingLog.query({ storeIds: [42] as unknown as string[] }), { code: 'SV_REQUEST_INVALID' })
    await t.throwsAsync(store.signingLog.query({ outcome: 'lost' as never }), { code: 'SV_REQUEST_INVALID' })
    await t.throwsAsync(drain(store.signingLog.export({ storeIds: [] })), { code: 'SV_REQUEST_INVALID' })
  })
}
