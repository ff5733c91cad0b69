import type { ExecutionContext } from 'ava'
import { GENESIS_HASH, type AuditEntry, type AuditQuery, type AuditSeal, type VaultStore } from '../../../vault-server/src/store/store.js'
import {
  T0,
  adminToken,
  auditDraft,
  auditEntries,
  badSeal,
  baseStoreRecord,
  binding,
  brandRecord,
  chainProblems,
  drain,
  grantRecord,
  hashOf,
  issuedLog,
  modelRecord,
  personRecord,
  pivotRequest,
  pivotRule,
  seal,
  signingKeyRecord,
  subStoreRecord,
  workOrderRecord,
  withBrand,
  type AuditDraft,
  type Suite,
} from '../fixtures.js'

type Repository = Exclude<keyof VaultStore, 'traits' | 'open' | 'close' | 'ping'>

/** Whether a parameter type is an audit seal, or an options object with one under `audit`. */
type TakesSeal<P> = AuditSeal extends P ? true : P extends { audit?: infer S } ? (AuditSeal extends S ? true : false) : false

/** Methods of a repository that take an audit seal. */
type Audited<R> = { [M in keyof R]-?: R[M] extends (...args: infer A) => unknown ? (true extends TakesSeal<A[number]> ? M : never) : never }[keyof R]

/** `repository.method` for every method that takes a seal. */
export type AuditedMethod = { [R in Repository]: `${R}.${Extract<Audited<VaultStore[R]>, string>}` }[Repository]

/**
 * How to exercise one audited method: `setup` prepares the store (without
 * audit), `ok` makes a change that succeeds, `check` sees it, `refused`
 * (on a store where `ok` already ran) is refused with `code`, and `noop`
 * changes nothing and writes no entry.
 */
interface AuditCase {
  setup?: (s: VaultStore) => Promise<void>
  ok: (s: VaultStore, a: AuditSeal) => Promise<unknown>
  check: (t: ExecutionContext, s: VaultStore) => Promise<unknown>
  refused?: { call: (s: VaultStore, a: AuditSeal) => Promise<unknown>; code: string }
  noop?: (s: VaultStore, a: AuditSeal) => Promise<unknown>
}

const token = hashOf('audited-token')

/** Every audited method; the Record type makes a new one without a case fail to compile. */
const AUDIT_CASES: Record<AuditedMethod, AuditCase> = {
  'keys.put': {
    ok: (s, a) => s.keys.put(signingKeyRecord('k1', 'acme'), a),
    check: async (t, s) => t.truthy(await s.keys.get('k1')),
    refused: { call: (s, a) => s.keys.put(signingKeyRecord('k1', 'other'), a), code: 'SV_KEY_EXISTS' },
  },
  'keys.setEnabled': {
    setup: (s) => s.keys.put(signingKeyRecord('k1', 'acme')),
    ok: (s, a) => s.keys.setEnabled('k1', { enabled: false, reason: 'r', at: T0 }, a),
    check: async (t, s) => t.is((await s.keys.get('k1'))?.enabled, false),
    refused: { call: (s, a) => s.keys.setEnabled('nope', { enabled: false, at: T0 }, a), code: 'SV_KEY_NOT_FOUND' },
  },
  'brands.createBrand': {
    ok: (s, a) => s.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme'), a),
    check: async (t, s) => {
      t.truthy(await s.brands.getBrand('acme'))
      t.truthy(await s.stores.get('acme'))
    },
    refused: { call: (s, a) => s.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme', 'acme-2'), a), code: 'SV_BRAND_EXISTS' },
  },
  'brands.createModel': {
    setup: (s) => withBrand(s, 'acme'),
    ok: (s, a) => s.brands.createModel(modelRecord('acme', 'widget'), a),
    check: async (t, s) => t.truthy(await s.brands.getModel('acme', 'widget')),
    refused: { call: (s, a) => s.brands.createModel(modelRecord('acme', 'gadget', { storeId: 'nope' }), a), code: 'SV_STORE_NOT_FOUND' },
  },
  'brands.updateModel': {
    setup: async (s) => {
      await withBrand(s, 'acme')
      await s.brands.createModel(modelRecord('acme', 'widget'))
    },
    ok: (s, a) => s.brands.updateModel(modelRecord('acme', 'widget', { revision: 2 }), a),
    check: async (t, s) => t.is((await s.brands.getModel('acme', 'widget'))?.revision, 2),
    refused: { call: (s, a) => s.brands.updateModel(modelRecord('acme', 'gadget'), a), code: 'SV_MODEL_UNKNOWN' },
  },
  'stores.create': {
    setup: (s) => withBrand(s, 'acme'),
    ok: (s, a) => s.stores.create(subStoreRecord('acme-line', 'acme', 'acme'), a),
    check: async (t, s) => t.truthy(await s.stores.get('acme-line')),
    refused: { call: (s, a) => s.stores.create(subStoreRecord('acme-x', 'acme', 'nope'), a), code: 'SV_STORE_NOT_FOUND' },
  },
  'stores.update': {
    setup: (s) => withBrand(s, 'acme'),
    ok: (s, a) => s.stores.update(baseStoreRecord('acme', 'acme', { displayName: 'Renamed' }), a),
    check: async (t, s) => t.is((await s.stores.get('acme'))?.displayName, 'Renamed'),
    refused: { call: (s, a) => s.stores.update(baseStoreRecord('acme', 'nope'), a), code: 'SV_STORE_NOT_FOUND' },
  },
  'registrations.bind': {
    ok: (s, a) => {
      const b = binding('SN-1', 'dk-1')
      return s.registrations.bind(b, issuedLog(b), 0, { audit: a })
    },
    check: async (t, s) => {
      t.truthy(await s.registrations.getBinding('acme', 'widget', 'SN-1'))
      t.is((await s.signingLog.query({ serial: 'SN-1' })).entries.length, 1)
    },
    refused: {
      call: (s, a) => {
        const b = binding('SN-1', 'dk-2')
        return s.registrations.bind(b, issuedLog(b), 0, { audit: a })
      },
      code: 'SV_SERIAL_TAKEN',
    },
  },
  'registrations.release': {
    setup: async (s) => {
      const b = binding('SN-1', 'dk-1')
      await s.registrations.bind(b, issuedLog(b), 0)
    },
    ok: (s, a) => s.registrations.release('acme', 'widget', 'SN-1', a),
    check: async (t, s) => t.is((await s.registrations.getBinding('acme', 'widget', 'SN-1'))?.released, true),
    refused: { call: (s, a) => s.registrations.release('acme', 'widget', 'SN-9', a), code: 'SV_SERIAL_NOT_FOUND' },
  },
  'people.create': {
    ok: (s, a) => s.people.create(personRecord('prs_a', 'ann@example.com'), a),
    check: async (t, s) => t.truthy(await s.people.get('prs_a')),
    refused: { call: (s, a) => s.people.create(personRecord('prs_b', 'ann@example.com'), a), code: 'SV_PERSON_EXISTS' },
  },
  'people.update': {
    setup: (s) => s.people.create(personRecord('prs_a', 'ann@example.com')),
    ok: (s, a) => s.people.update(personRecord('prs_a', 'ann@example.com', { disabled: true }), a),
    check: async (t, s) => t.is((await s.people.get('prs_a'))?.disabled, true),
    refused: { call: (s, a) => s.people.update(personRecord('prs_x', 'x@example.com'), a), code: 'SV_PERSON_NOT_FOUND' },
  },
  'grants.put': {
    setup: async (s) => {
      await withBrand(s, 'acme')
      await s.people.create(personRecord('prs_a', 'ann@example.com'))
    },
    ok: (s, a) => s.grants.put(grantRecord('prs_a', 'acme'), a),
    check: async (t, s) => t.is((await s.grants.listForPerson('prs_a')).length, 1),
    refused: { call: (s, a) => s.grants.put(grantRecord('prs_x', 'acme'), a), code: 'SV_PERSON_NOT_FOUND' },
  },
  'grants.delete': {
    setup: async (s) => {
      await withBrand(s, 'acme')
      await s.people.create(personRecord('prs_a', 'ann@example.com'))
      await s.grants.put(grantRecord('prs_a', 'acme'))
    },
    ok: (s, a) => s.grants.delete('prs_a', 'acme', a),
    check: async (t, s) => t.deepEqual(await s.grants.listForPerson('prs_a'), []),
    noop: (s, a) => s.grants.delete('prs_a', 'acme', a),
  },
  'tokens.put': {
    ok: (s, a) => s.tokens.put(adminToken(token), a),
    check: async (t, s) => t.truthy(await s.tokens.get(token)),
    refused: { call: (s, a) => s.tokens.put(adminToken(token), a), code: 'SV_TOKEN_EXISTS' },
  },
  'tokens.revoke': {
    setup: (s) => s.tokens.put(adminToken(token)),
    ok: (s, a) => s.tokens.revoke(token, { at: T0, by: 'cli' }, a),
    check: async (t, s) => t.is((await s.tokens.get(token))?.revokedAt, T0),
    refused: { call: (s, a) => s.tokens.revoke(hashOf('nope'), { at: T0, by: 'cli' }, a), code: 'SV_TOKEN_NOT_FOUND' },
  },
  'audit.append': {
    ok: (s, a) => s.audit.append(a),
    check: async () => {},
  },
  'pivots.putRule': {
    ok: (s, a) => s.pivots.putRule(pivotRule('pvr_1'), a),
    check: async (t, s) => t.truthy(await s.pivots.getRule('pvr_1')),
    refused: { call: (s, a) => s.pivots.putRule(pivotRule('pvr_2'), a), code: 'SV_PIVOT_EXISTS' },
  },
  'pivots.deleteRule': {
    setup: (s) => s.pivots.putRule(pivotRule('pvr_1')),
    ok: (s, a) => s.pivots.deleteRule('pvr_1', a),
    check: async (t, s) => t.is(await s.pivots.getRule('pvr_1'), undefined),
    noop: (s, a) => s.pivots.deleteRule('pvr_1', a),
  },
  'pivots.decideRequest': {
    setup: (s) => s.pivots.createRequest(pivotRequest('req-1')),
    ok: (s, a) => s.pivots.decideRequest('req-1', { status: 'accepted', at: T0, by: 'prs_r' }, a),
    check: async (t, s) => t.is((await s.pivots.getRequest('req-1'))?.status, 'accepted'),
    refused: { call: (s, a) => s.pivots.decideRequest('req-1', { status: 'rejected', at: T0, by: 'prs_r' }, a), code: 'SV_PIVOT_DECIDED' },
  },
  'workOrders.create': {
    ok: (s, a) => s.workOrders.create(workOrderRecord('wo_1'), a),
    check: async (t, s) => t.truthy(await s.workOrders.get('wo_1')),
    refused: { call: (s, a) => s.workOrders.create(workOrderRecord('wo_1', { model: 'gadget' }), a), code: 'SV_WORK_ORDER_EXISTS' },
  },
  'workOrders.close': {
    setup: (s) => s.workOrders.create(workOrderRecord('wo_1')),
    ok: (s, a) => s.workOrders.close('wo_1', { at: T0 + 1, by: 'prs_admin' }, a),
    check: async (t, s) => t.is((await s.workOrders.get('wo_1'))?.status, 'closed'),
    refused: { call: (s, a) => s.workOrders.close('wo_1', { at: T0 + 2, by: 'prs_admin' }, a), code: 'SV_WORK_ORDER_CLOSED' },
  },
}

/** 60 entries over three stores (and none), two brands, three actors, six actions, both outcomes; times not in seq order. */
function auditSeed(): AuditDraft[] {
  const actions = ['grant.changed', 'grant.removed', 'store.created', 'store.updated', 'model.moved', 'login.succeeded']
  const actors = ['prs_a', 'prs_b', 'tok_c']
  const stores: Array<string | undefined> = ['acme', 'acme-line', 'beta', undefined]
  return Array.from({ length: 60 }, (_, i) => {
    const storeId = stores[i % 4]
    const draft = auditDraft({
      time: T0 + ((i * 7) % 60) * 1000,
      actor: { kind: i % 3 === 2 ? 'personal-token' : 'person', id: actors[i % 3]!, email: `${actors[i % 3]}@example.com` },
      action: actions[i % 6]!,
      outcome: i % 5 === 0 ? 'denied' : 'ok',
      target: { type: 'store', id: storeId ?? 'none' },
      after: { n: i, nested: { list: [i, 'x'] } },
      source: { ip: '192.0.2.1', transport: 'https' },
      requestId: `req-${i}`,
    })
    if (draft.outcome === 'denied') draft.code = 'SV_FORBIDDEN'
    if (storeId !== undefined) {
      draft.storeId = storeId
      draft.brandId = storeId === 'beta' ? 'beta' : 'acme'
    } else if (i % 8 === 3) draft.brandId = 'acme'
    return draft
  })
}

function expectedSeqs(seed: AuditEntry[], q: Omit<AuditQuery, 'limit' | 'cursor'>): number[] {
  const seqs = seed
    .filter(
      (e) =>
        (q.storeIds === undefined || (e.storeId !== undefined && q.storeIds.includes(e.storeId))) &&
        (q.brandId === undefined || e.brandId === q.brandId) &&
        (q.actorId === undefined || e.actor.id === q.actorId) &&
        (q.action === undefined || (q.action.endsWith('.') ? e.action.startsWith(q.action) : e.action === q.action)) &&
        (q.outcome === undefined || e.outcome === q.outcome) &&
        (q.from === undefined || e.time >= q.from) &&
        (q.to === undefined || e.time < q.to),
    )
    .map((e) => e.seq)
    .sort((a, b) => a - b)
  return q.order === 'desc' ? seqs.reverse() : seqs
}

const AUDIT_QUERIES: Array<Omit<AuditQuery, 'limit' | 'cursor'>> = [
  {},
  { storeIds: ['acme'] },
  { storeIds: ['acme', 'acme-line'] },
  { storeIds: ['acme-line', 'beta', 'beta'] },
  { storeIds: ['nope'] },
  { brandId: 'acme' },
  { brandId: 'beta', outcome: 'ok' },
  { actorId: 'prs_b' },
  { actorId: 'tok_c', storeIds: ['acme', 'beta'] },
  { action: 'grant.changed' },
  { action: 'grant.' },
  { action: 'store.' },
  { action: 'grant' },
  { action: 'login.succeeded', outcome: 'denied' },
  { outcome: 'denied' },
  { from: T0 + 10_000, to: T0 + 30_000 },
  { from: T0 + 50_000 },
  { to: T0 + 5_000, brandId: 'acme' },
  { storeIds: ['acme', 'acme-line'], action: 'store.', from: T0 + 20_000 },
]

async function seededAudit(t: ExecutionContext, open: Suite['open']): Promise<{ store: VaultStore; entries: AuditEntry[] }> {
  const store = await open(t)
  const entries: AuditEntry[] = []
  for (const d of auditSeed()) entries.push(await store.audit.append(seal(d)))
  return { store, entries }
}

export function auditGroup({ test, title, open }: Suite): void {
  const g = (text: string): string => title('audit', text)

  test(g('an empty chain has seq 0 and the genesis hash; append resolves with the entry and moves the head'), async (t) => {
    const store = await open(t)
    t.deepEqual(await store.audit.head(), { seq: 0, hash: GENESIS_HASH })
    t.deepEqual(await auditEntries(store), [])
    t.deepEqual(await store.audit.query({}), { entries: [] })
    const made: AuditEntry[] = []
    const first = await store.audit.append(seal(auditDraft({ action: 'login.succeeded' }), made))
    t.deepEqual(first, made[0])
    t.is(first.seq, 1)
    t.is(first.prevHash, GENESIS_HASH)
    t.deepEqual(await store.audit.head(), { seq: 1, hash: first.hash })
    const second = await store.audit.append(seal(auditDraft({ action: 'login.failed', outcome: 'denied', code: 'SV_LOGIN_REFUSED' })))
    t.is(second.seq, 2)
    t.is(second.prevHash, first.hash)
    t.deepEqual(await store.audit.head(), { seq: 2, hash: second.hash })
    t.deepEqual(await auditEntries(store), [first, second])
    t.deepEqual(chainProblems([first, second]), [])
  })

  for (const [method, c] of Object.entries(AUDIT_CASES) as Array<[AuditedMethod, AuditCase]>) {
    test(g(`${method} writes its entry atomically with the change; a refused change writes none`), async (t) => {
      const store = await open(t)
      await c.setup?.(store)
      // setup wrote nothing to the chain
      t.deepEqual(await store.audit.head(), { seq: 0, hash: GENESIS_HASH })
      const made: AuditEntry[] = []
      await c.ok(store, seal(auditDraft({ action: `${method}.ok`, storeId: 'acme', brandId: 'acme' }), made))
      await c.check(t, store)
      const entries = await auditEntries(store)
      t.is(entries.length, 1)
      t.deepEqual(entries[0], made[made.length - 1])
      t.deepEqual(await store.audit.head(), { seq: 1, hash: entries[0]!.hash })
      if (c.refused) {
        await t.throwsAsync(c.refused.call(store, seal(auditDraft({ action: `${method}.refused` }))), { code: c.refused.code })
        t.deepEqual(await store.audit.head(), { seq: 1, hash: entries[0]!.hash })
        t.deepEqual(await auditEntries(store), entries)
      }
      if (c.noop) {
        await c.noop(store, seal(auditDraft({ action: `${method}.noop` })))
        t.deepEqual(await store.audit.head(), { seq: 1, hash: entries[0]!.hash })
        t.deepEqual(await auditEntries(store), entries)
      }
      // and the next audited write continues the chain
      await store.audit.append(seal(auditDraft({ action: 'after' })))
      t.deepEqual(chainProblems(await auditEntries(store)), [])
    })
  }

  test(g('a seal that makes a wrong seq or prevHash is a TypeError, and nothing is written'), async (t) => {
    const store = await open(t)
    await store.audit.append(seal(auditDraft()))
    const head = await store.audit.head()
    for (const fault of ['seq', 'prevHash'] as const) {
      const bad = badSeal(auditDraft({ action: 'bad' }), fault)
      await t.throwsAsync(store.audit.append(bad), { instanceOf: TypeError }, fault)
      await t.throwsAsync(store.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme'), bad), { instanceOf: TypeError }, fault)
      const b = binding('SN-1', 'dk-1')
      await t.throwsAsync(store.registrations.bind(b, issuedLog(b), 0, { audit: bad }), { instanceOf: TypeError }, fault)
      await t.throwsAsync(store.people.create(personRecord('prs_a', 'ann@example.com'), bad), { instanceOf: TypeError }, fault)
    }
    t.deepEqual(await store.audit.head(), head)
    t.is((await auditEntries(store)).length, 1)
    t.is(await store.brands.getBrand('acme'), undefined)
    t.is(await store.stores.get('acme'), undefined)
    t.is(await store.registrations.getBinding('acme', 'widget', 'SN-1'), undefined)
    t.deepEqual((await store.signingLog.query({})).entries, [])
    t.is(await store.people.get('prs_a'), undefined)
    // the chain goes on from where it was
    const next = await store.audit.append(seal(auditDraft()))
    t.is(next.seq, 2)
    t.deepEqual(chainProblems(await auditEntries(store)), [])
  })

  test(g('50 concurrent audited writes across repositories form one chain, seqs 1..50 without gaps'), async (t) => {
    const store = await open(t)
    await withBrand(store, 'acme')
    t.is((await store.audit.head()).seq, 0)
    const writes: Array<(a: AuditSeal) => Promise<unknown>> = []
    for (let i = 0; i < 10; i++) {
      writes.push((a) => store.keys.put(signingKeyRecord(`k${i}`, 'acme'), a))
      writes.push((a) => store.people.create(personRecord(`prs_${i}`, `p${i}@example.com`), a))
      writes.push((a) => store.stores.create(subStoreRecord(`acme-${i}`, 'acme', 'acme'), a))
      writes.push((a) => store.audit.append(a))
      const b = binding(`SN-${i}`, `dk-${i}`)
      writes.push((a) => store.registrations.bind(b, issuedLog(b), 0, { audit: a }))
    }
    const made: AuditEntry[] = []
    await Promise.all(writes.map((w, i) => w(seal(auditDraft({ action: `write.${i}`, time: T0 + i }), made))))
    const entries = await auditEntries(store)
    t.deepEqual(entries.map((e) => e.seq), Array.from({ length: 50 }, (_, i) => i + 1))
    t.deepEqual(chainProblems(entries), [])
    t.deepEqual(entries.map((e) => e.action).sort(), writes.map((_, i) => `write.${i}`).sort())
    // every entry kept is one a seal made, and every write has exactly one
    for (const e of entries) t.true(made.some((m) => m.seq === e.seq && m.hash === e.hash), `seq ${e.seq}`)
    t.deepEqual(await store.audit.head(), { seq: 50, hash: entries[49]!.hash })
    t.is((await store.keys.list()).length, 10)
    t.is((await store.people.list()).length, 10)
    t.is((await store.stores.list()).length, 11)
    t.is((await store.signingLog.query({})).entries.length, 10)
  })

  test(g('query by stores, brand, actor, action (exact and prefix), outcome and time selects exactly the matches'), async (t) => {
    const { store, entries } = await seededAudit(t, open)
    t.deepEqual(chainProblems(entries), [])
    for (const q of AUDIT_QUERIES) {
      for (const order of ['asc', 'desc'] as const) {
        const page = await store.audit.query({ ...q, order, limit: 1000 })
        t.deepEqual(page.entries.map((e) => e.seq), expectedSeqs(entries, { ...q, order }), JSON.stringify({ ...q, order }))
        t.is(page.nextCursor, undefined)
      }
    }
    // entries come back whole
    t.deepEqual((await store.audit.query({ limit: 1000 })).entries, entries)
    t.deepEqual((await store.audit.query({})).entries, entries)
    t.true(AUDIT_QUERIES.filter((q) => expectedSeqs(entries, q).length > 0).length >= 15)
  })

  test(g('paging with cursors covers every entry exactly once in both orders'), async (t) => {
    const { store, entries } = await seededAudit(t, open)
    for (const q of [{}, { storeIds: ['acme', 'acme-line'] }, { action: 'grant.' }, { actorId: 'prs_a', outcome: 'ok' as const }, { from: T0 + 5_000, to: T0 + 40_000 }]) {
      for (const order of ['asc', 'desc'] as const) {
        for (const limit of [1, 7, 25]) {
          const want = expectedSeqs(entries, { ...q, order })
          const got: number[] = []
          let cursor: string | undefined
          let pages = 0
          do {
            const page = await store.audit.query({ ...q, order, limit, ...(cursor !== undefined ? { cursor } : {}) })
            t.true(page.entries.length <= limit)
            got.push(...page.entries.map((e) => e.seq))
            cursor = page.nextCursor
            pages++
          } while (cursor !== undefined && pages < 200)
          t.deepEqual(got, want, JSON.stringify({ ...q, order, limit }))
          t.is(pages, Math.max(1, Math.ceil(want.length / limit)))
        }
      }
    }
  })

  test(g('export streams every matching entry in seq order'), async (t) => {
    const { store, entries } = await seededAudit(t, open)
    for (const q of AUDIT_QUERIES) {
      t.deepEqual((await drain(store.audit.export(q))).map((e) => e.seq), expectedSeqs(entries, q), JSON.stringify(q))
      t.deepEqual((await drain(store.audit.export({ ...q, order: 'desc' }))).map((e) => e.seq), expectedSeqs(entries, { ...q, order: 'desc' }))
    }
    t.deepEqual(await drain(store.audit.export({})), entries)
  })

  test(g('an export larger than one read batch comes out whole'), async (t) => {
    const store = await open(t)
    const made: AuditEntry[] = []
    for (let i = 0; i < 1100; i++) await store.audit.append(seal(auditDraft({ action: 'bulk.done', storeId: i % 2 ? 'acme' : 'beta', time: T0 + i }), made))
    t.deepEqual(await auditEntries(store), made)
    t.deepEqual((await drain(store.audit.export({ storeIds: ['acme'], order: 'desc' }))).map((e) => e.seq), made.filter((e) => e.storeId === 'acme').map((e) => e.seq).reverse())
    t.deepEqual(chainProblems(made), [])
  })

  test(g('invalid limits, outcomes, stores and foreign cursors reject SV_REQUEST_INVALID'), async (t) => {
    const store = await open(t)
    await store.audit.append(seal(auditDraft()))
    for (const limit of [0, 1001, 2.5]) await t.throwsAsync(store.audit.query({ limit }), { code: 'SV_REQUEST_INVALID' }, `limit ${limit}`)
    await t.throwsAsync(store.audit.query({ outcome: 'maybe' as never }), { code: 'SV_REQUEST_INVALID' })
    await t.throwsAsync(store.audit.query({ storeIds: [] }), { code: 'SV_REQUEST_INVALID' })
    await t.throwsAsync(store.audit.query({ cursor: 'nope' }), { code: 'SV_REQUEST_INVALID' })
    await t.throwsAsync(store.audit.query({ cursor: Buffer.from('c1:123').toString('base64url') }), { code: 'SV_REQUEST_INVALID' })
    await t.throwsAsync(drain(store.audit.export({ order: 'up' as never })), { code: 'SV_REQUEST_INVALID' })
  })
}
