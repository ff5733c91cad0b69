import type { ExecutionContext } from 'ava'
import type { AuditEntry, VaultStore } from '../../../vault-server/src/store/store.js'
import {
  T0,
  adminToken,
  auditDraft,
  baseStoreRecord,
  binding,
  brandRecord,
  drain,
  grantRecord,
  hashOf,
  issuedLog,
  logEntry,
  loginTransaction,
  modelRecord,
  personRecord,
  pivotRequest,
  pivotRule,
  seal,
  sessionRecord,
  signingKeyRecord,
  subStoreRecord,
  workOrderRecord,
  type Suite,
} from '../fixtures.js'

type Repository = Exclude<keyof VaultStore, 'traits' | 'open' | 'close' | 'ping'>

/**
 * One well-formed call of every method of every repository, plus ping. The
 * mapped type makes this table fail to compile when a repository gains a
 * method (or VaultStore a repository) that has no call here.
 */
export type Operations = { ping: () => Promise<unknown> } & { [R in Repository]: { [M in keyof VaultStore[R]]-?: () => Promise<unknown> } }

/**
 * The calls are listed in an order in which each succeeds on an empty store
 * when run one after another (createBrand before createModel, bind before
 * release, ...): "every method works once open" runs them so.
 */
export function everyOperation(store: VaultStore): Operations {
  const b = binding('SN-LIFE', 'dk-life')
  const token = hashOf('lifecycle-token')
  const session = hashOf('lifecycle-session')
  return {
    ping: () => store.ping(),
    keys: {
      put: () => store.keys.put(signingKeyRecord('k1', 'acme')),
      get: () => store.keys.get('k1'),
      list: () => store.keys.list(),
      setEnabled: () => store.keys.setEnabled('k1', { enabled: false, reason: 'rotated', at: T0 }),
    },
    brands: {
      createBrand: () => store.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme')),
      getBrand: () => store.brands.getBrand('acme'),
      listBrands: () => store.brands.listBrands(),
      createModel: () => store.brands.createModel(modelRecord('acme', 'widget')),
      updateModel: () => store.brands.updateModel(modelRecord('acme', 'widget', { revision: 2 })),
      getModel: () => store.brands.getModel('acme', 'widget'),
      listModels: () => store.brands.listModels(),
      findModelsByApiKeyHash: () => store.brands.findModelsByApiKeyHash('a'.repeat(64)),
    },
    stores: {
      create: () => store.stores.create(subStoreRecord('acme-line', 'acme', 'acme')),
      update: () => store.stores.update(subStoreRecord('acme-line', 'acme', 'acme', { displayName: 'Line' })),
      get: () => store.stores.get('acme-line'),
      list: () => store.stores.list(),
      version: () => store.stores.version(),
    },
    registrations: {
      consumeRequestId: () => store.registrations.consumeRequestId('req-1', T0),
      purgeExpired: () => store.registrations.purgeExpired(T0),
      getBinding: () => store.registrations.getBinding('acme', 'widget', 'SN-LIFE'),
      getBindingByDeviceKey: () => store.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-life'),
      bind: () => store.registrations.bind(b, issuedLog(b), 0),
      release: () => store.registrations.release('acme', 'widget', 'SN-LIFE'),
      nextSerialNumber: () => store.registrations.nextSerialNumber('acme', 'widget', 1),
    },
    signingLog: {
      append: () => store.signingLog.append(logEntry(T0)),
      query: () => store.signingLog.query({}),
      export: () => drain(store.signingLog.export({})),
    },
    people: {
      create: () => store.people.create(personRecord('prs_life', 'life@example.com')),
      update: () => store.people.update(personRecord('prs_life', 'life@example.com', { displayName: 'Life' })),
      get: () => store.people.get('prs_life'),
      getByEmail: () => store.people.getByEmail('life@example.com'),
      list: () => store.people.list(),
    },
    grants: {
      put: () => store.grants.put(grantRecord('prs_life', 'acme')),
      delete: () => store.grants.delete('prs_life', 'acme'),
      listForPerson: () => store.grants.listForPerson('prs_life'),
      listForStore: () => store.grants.listForStore('acme'),
    },
    tokens: {
      put: () => store.tokens.put(adminToken(token)),
      get: () => store.tokens.get(token),
      list: () => store.tokens.list(),
      revoke: () => store.tokens.revoke(token, { at: T0, by: 'cli' }),
      touch: () => store.tokens.touch(token, T0),
    },
    sessions: {
      create: () => store.sessions.create(sessionRecord(session, 'prs_life')),
      get: () => store.sessions.get(session),
      touch: () => store.sessions.touch(session, T0 + 1),
      delete: () => store.sessions.delete(session),
      deleteForPerson: () => store.sessions.deleteForPerson('prs_life'),
      putLoginTransaction: () => store.sessions.putLoginTransaction(loginTransaction('ltx-1')),
      takeLoginTransaction: () => store.sessions.takeLoginTransaction('ltx-1'),
      purgeExpired: () => store.sessions.purgeExpired(T0),
    },
    audit: {
      head: () => store.audit.head(),
      append: () => store.audit.append(seal(auditDraft())),
      query: () => store.audit.query({}),
      export: () => drain(store.audit.export({})),
    },
    pivots: {
      putRule: () => store.pivots.putRule(pivotRule('pvr_1')),
      deleteRule: () => store.pivots.deleteRule('pvr_1'),
      getRule: () => store.pivots.getRule('pvr_1'),
      listRules: () => store.pivots.listRules({ brandId: 'acme' }),
      createRequest: () => store.pivots.createRequest(pivotRequest('req-pivot')),
      getRequest: () => store.pivots.getRequest('req-pivot'),
      decideRequest: () => store.pivots.decideRequest('req-pivot', { status: 'accepted', at: T0, by: 'prs_reviewer' }),
      listRequests: () => store.pivots.listRequests({ storeId: 'acme' }),
    },
    workOrders: {
      create: () => store.workOrders.create(workOrderRecord('wo_1')),
      get: () => store.workOrders.get('wo_1'),
      list: () => store.workOrders.list({ brandId: 'acme' }),
      close: () => store.workOrders.close('wo_1', { at: T0, by: 'prs_admin' }),
    },
    meta: {
      get: () => store.meta.get('root-authority'),
      put: () => store.meta.put('root-authority', 'acme'),
    },
  }
}

/** Every call of `everyOperation`, named `repository.method`, in table order. */
export function operationList(store: VaultStore): Array<[string, () => Promise<unknown>]> {
  const out: Array<[string, () => Promise<unknown>]> = []
  for (const [repo, calls] of Object.entries(everyOperation(store))) {
    if (typeof calls === 'function') out.push([repo, calls])
    else for (const [method, call] of Object.entries(calls as Record<string, () => Promise<unknown>>)) out.push([`${repo}.${method}`, call])
  }
  return out
}

/** Calls every method at once (so all calls see the same store state), then checks each rejected with `code`. */
async function assertEveryOperationRejects(t: ExecutionContext, store: VaultStore, code: string): Promise<void> {
  const calls = operationList(store).map(([op, call]) => [op, call()] as const)
  for (const [op, p] of calls) await t.throwsAsync(p, { code }, `${op} must reject with ${code}`)
}

export function lifecycleGroup({ test, title, options, open }: Suite): void {
  const g = (text: string): string => title('lifecycle', text)

  test(g('the operation table covers every method of every repository'), async (t) => {
    const store = await options.factory(t)
    t.teardown(() => store.close())
    // The type already demands it; this checks the store has no method the interface lacks.
    for (const [repo, calls] of Object.entries(everyOperation(store))) {
      if (typeof calls === 'function') continue
      const repository = (store as unknown as Record<string, object>)[repo]!
      const methods = new Set<string>()
      for (let p: object | null = repository; p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
        for (const name of Object.getOwnPropertyNames(p)) if (name !== 'constructor' && typeof (repository as Record<string, unknown>)[name] === 'function') methods.add(name)
      }
      t.deepEqual([...methods].sort(), Object.keys(calls).sort(), repo)
    }
  })

  test(g('every method rejects SV_STORE_NOT_OPEN before open'), async (t) => {
    const store = await options.factory(t)
    t.teardown(() => store.close())
    await assertEveryOperationRejects(t, store, 'SV_STORE_NOT_OPEN')
  })

  test(g('every method rejects SV_STORE_NOT_OPEN while opening'), async (t) => {
    const store = await options.factory(t)
    t.teardown(() => store.close())
    const opening = store.open()
    await assertEveryOperationRejects(t, store, 'SV_STORE_NOT_OPEN')
    await opening
  })

  test(g('every method rejects SV_STORE_NOT_OPEN while closing and after close'), async (t) => {
    const store = await open(t)
    const closing = store.close()
    await assertEveryOperationRejects(t, store, 'SV_STORE_NOT_OPEN')
    await closing
    await assertEveryOperationRejects(t, store, 'SV_STORE_NOT_OPEN')
  })

  test(g('every method works once open'), async (t) => {
    const store = await open(t)
    // The sequence matters (createBrand before createModel, bind before release...), so one at a time.
    for (const [op, call] of operationList(store)) await t.notThrowsAsync(call(), op)
  })

  test(g('open and close are idempotent and a closed store opens again'), async (t) => {
    const store = await options.factory(t)
    t.teardown(() => store.close())
    await Promise.all([store.open(), store.open()])
    await store.open()
    await store.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme'))
    await Promise.all([store.close(), store.close()])
    await store.close()
    await store.open()
    await store.ping()
    if (options.supports.reopen) {
      t.is((await store.brands.getBrand('acme'))?.id, 'acme')
      t.is((await store.stores.get('acme'))?.kind, 'base')
    }
  })

  test(g('open and close run in call order: close while opening, open while closing'), async (t) => {
    const store = await options.factory(t)
    t.teardown(() => store.close())
    // closed before it was ever opened, then opened
    await store.close()
    await store.open()
    await store.meta.put('k', 'v')
    // a close called while opening wins, and the store can open again
    await store.close()
    const opening = store.open()
    const closing = store.close()
    await Promise.all([opening, closing])
    await t.throwsAsync(store.ping(), { code: 'SV_STORE_NOT_OPEN' })
    // an open called while closing wins
    await store.open()
    const closing2 = store.close()
    const opening2 = store.open()
    await Promise.all([closing2, opening2])
    await t.notThrowsAsync(store.ping())
    if (options.supports.reopen) t.is(await store.meta.get('k'), 'v')
  })

  test(g('close waits for operations already running'), async (t) => {
    const store = await open(t)
    const writes = Array.from({ length: 10 }, (_, i) => store.signingLog.append(logEntry(T0 + i)))
    const number = store.registrations.nextSerialNumber('acme', 'widget', 1)
    const audited = store.audit.append(seal(auditDraft()))
    await store.close()
    await Promise.all(writes)
    t.is(await number, 1)
    t.is((await audited).seq, 1)
    if (options.supports.reopen) {
      await store.open()
      t.is((await store.signingLog.query({})).entries.length, 10)
      t.is((await store.audit.head()).seq, 1)
    }
  })

  test(g('an export stops with SV_STORE_NOT_OPEN once the store closes'), async (t) => {
    const store = await open(t)
    const entries = Array.from({ length: 1200 }, (_, i) => logEntry(T0 + i))
    for (let i = 0; i < entries.length; i += 200) await Promise.all(entries.slice(i, i + 200).map((e) => store.signingLog.append(e)))
    let read = 0
    const reading = (async () => {
      for await (const _ of store.signingLog.export({})) {
        if (++read === 1) await store.close()
      }
    })()
    await t.throwsAsync(reading, { code: 'SV_STORE_NOT_OPEN' })
    t.true(read >= 1 && read < entries.length)
  })

  if (options.supports.reopen) {
    test(g('what every repository holds survives close and open'), async (t) => {
      const store = await open(t)
      const b = binding('SN-1', 'dk-1')
      const log = issuedLog(b, T0, { storeId: 'acme' })
      const made: AuditEntry[] = []
      await store.keys.put(signingKeyRecord('k1', 'acme'))
      await store.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme'), seal(auditDraft({ action: 'brand.created' }), made))
      await store.stores.create(subStoreRecord('acme-line', 'acme', 'acme'))
      await store.brands.createModel(modelRecord('acme', 'widget', { storeId: 'acme-line' }))
      await store.registrations.bind(b, log, 0)
      await store.registrations.consumeRequestId('req-used', T0 + 60_000)
      const n = await store.registrations.nextSerialNumber('acme', 'widget', 1)
      await store.people.create(personRecord('prs_a', 'ann@example.com'))
      await store.grants.put(grantRecord('prs_a', 'acme-line'))
      await store.tokens.put(adminToken(hashOf('t')))
      await store.sessions.create(sessionRecord(hashOf('s'), 'prs_a'))
      await store.sessions.putLoginTransaction(loginTransaction('ltx-1'))
      await store.pivots.putRule(pivotRule('pvr_1'))
      await store.pivots.createRequest(pivotRequest('req-p'))
      await store.meta.put('root-authority', 'acme')
      const version = await store.stores.version()
      const head = await store.audit.head()
      await store.close()
      await store.open()
      t.truthy(await store.keys.get('k1'))
      t.deepEqual(await store.brands.getBrand('acme'), brandRecord('acme'))
      t.deepEqual((await store.stores.list()).map((x) => x.id), ['acme', 'acme-line'])
      t.true((await store.stores.version()) >= version)
      t.deepEqual((await store.brands.listModels({ storeId: 'acme-line' })).map((m) => m.name), ['widget'])
      t.deepEqual(await store.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-1'), b)
      t.deepEqual((await store.signingLog.query({ storeIds: ['acme'] })).entries, [log])
      await t.throwsAsync(store.registrations.consumeRequestId('req-used', T0 + 60_000), { code: 'SV_REQUEST_ID_USED' })
      t.is(await store.registrations.nextSerialNumber('acme', 'widget', 1), n + 1)
      t.is((await store.people.getByEmail('ann@example.com'))?.id, 'prs_a')
      t.deepEqual(await store.grants.listForStore('acme-line'), [grantRecord('prs_a', 'acme-line')])
      t.is((await store.tokens.list({ kind: 'admin' })).length, 1)
      t.is(await store.sessions.deleteForPerson('prs_a'), 1)
      t.truthy(await store.sessions.takeLoginTransaction('ltx-1'))
      t.deepEqual(await store.pivots.listRules({ brandId: 'acme' }), [pivotRule('pvr_1')])
      t.deepEqual(await store.pivots.listRequests({ storeId: 'acme' }), [pivotRequest('req-p')])
      t.is(await store.meta.get('root-authority'), 'acme')
      t.deepEqual(await store.audit.head(), head)
      t.deepEqual(await drain(store.audit.export({})), made)
      // the chain goes on from the head it had
      t.is((await store.audit.append(seal(auditDraft()))).seq, head.seq + 1)
    })

    test(g('request-id uses survive close and open, more of them than a write carries'), async (t) => {
      const store = await open(t)
      for (let i = 0; i < 1100; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => store.registrations.consumeRequestId(`r-${i + j}`, T0 + 60_000)))
      await store.close()
      await store.open()
      const codes = new Set<string | undefined>()
      for (let i = 0; i < 1100; i += 50) {
        const again = await Promise.allSettled(Array.from({ length: 50 }, (_, j) => store.registrations.consumeRequestId(`r-${i + j}`, T0 + 60_000)))
        for (const s of again) codes.add(s.status === 'rejected' ? (s.reason as { code?: string }).code : 'accepted')
      }
      t.deepEqual([...codes], ['SV_REQUEST_ID_USED'])
      t.is(await store.registrations.purgeExpired(T0 + 60_001), 1100)
    })
  }

  test(g('traits match the declared manifest and ping answers'), async (t) => {
    const store = await open(t)
    t.is(store.traits.multiProcess, options.supports.multiProcess)
    await t.notThrowsAsync(store.ping())
  })
}
