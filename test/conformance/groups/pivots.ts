import type { PivotRule } from '../../../vault-server/src/store/store.js'
import { T0, pivotRequest, pivotRule, race, type Suite } from '../fixtures.js'

export function pivotsGroup(suite: Suite): void {
  rules(suite)
  requests(suite)
}

function rules({ test, title, open }: Suite): void {
  const g = (text: string): string => title('pivots', `rules: ${text}`)

  test(g('putRule, getRule, listRules by brand, from-model and store, ordered by id'), async (t) => {
    const store = await open(t)
    t.is(await store.pivots.getRule('pvr_1'), undefined)
    t.deepEqual(await store.pivots.listRules({}), [])
    const all = pivotRule('pvr_c')
    const one = pivotRule('pvr_a', { serial: 'SN-1' })
    const other = pivotRule('pvr_b', { fromModel: 'gadget', toModel: 'gizmo-2', storeId: 'acme-line' })
    const beta = pivotRule('pvr_d', { brandId: 'beta', storeId: 'beta' })
    const prefix = pivotRule('pvr_e', { brandId: 'acme-2', storeId: 'acme-2' })
    for (const r of [beta, all, other, prefix, one]) await store.pivots.putRule(r)
    t.deepEqual(await store.pivots.getRule('pvr_c'), all)
    t.deepEqual(await store.pivots.getRule('pvr_a'), one)
    t.deepEqual(await store.pivots.listRules({}), [one, other, all, beta, prefix])
    t.deepEqual(await store.pivots.listRules({ brandId: 'acme' }), [one, other, all])
    t.deepEqual(await store.pivots.listRules({ brandId: 'acme', fromModel: 'widget' }), [one, all])
    t.deepEqual(await store.pivots.listRules({ brandId: 'acme', storeId: 'acme-line' }), [other])
    t.deepEqual(await store.pivots.listRules({ brandId: 'acme', fromModel: 'widget', storeId: 'acme-line' }), [])
    t.deepEqual(await store.pivots.listRules({ storeId: 'acme' }), [one, all])
    t.deepEqual(await store.pivots.listRules({ fromModel: 'widget' }), [one, all, beta, prefix])
    t.deepEqual(await store.pivots.listRules({ brandId: 'nobody' }), [])
  })

  test(g('SV_PIVOT_EXISTS for the same brand, models and serial, or the same id; serial absent means every serial'), async (t) => {
    const store = await open(t)
    const all = pivotRule('pvr_1')
    await store.pivots.putRule(all)
    await t.throwsAsync(store.pivots.putRule(pivotRule('pvr_2', { storeId: 'elsewhere' })), { code: 'SV_PIVOT_EXISTS' })
    await t.throwsAsync(store.pivots.putRule(pivotRule('pvr_1', { fromModel: 'gadget' })), { code: 'SV_PIVOT_EXISTS' })
    // one serial is another rule than all serials; so are another brand, another source or target
    const some: PivotRule[] = [
      pivotRule('pvr_3', { serial: 'SN-1' }),
      pivotRule('pvr_4', { serial: 'SN-2' }),
      pivotRule('pvr_5', { brandId: 'beta' }),
      pivotRule('pvr_6', { fromModel: 'gadget' }),
      pivotRule('pvr_7', { toModel: 'gizmo-2' }),
    ]
    for (const r of some) await store.pivots.putRule(r)
    await t.throwsAsync(store.pivots.putRule(pivotRule('pvr_8', { serial: 'SN-1' })), { code: 'SV_PIVOT_EXISTS' })
    t.is(await store.pivots.getRule('pvr_2'), undefined)
    t.is(await store.pivots.getRule('pvr_8'), undefined)
    t.deepEqual(await store.pivots.getRule('pvr_1'), all)
    t.deepEqual((await store.pivots.listRules({})).map((r) => r.id), ['pvr_1', 'pvr_3', 'pvr_4', 'pvr_5', 'pvr_6', 'pvr_7'])
    const { won, codes } = await race(Array.from({ length: 6 }, (_, i) => store.pivots.putRule(pivotRule(`pvr_race_${i}`, { serial: 'SN-9' })).then(() => i)))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_PIVOT_EXISTS']))
  })

  test(g('deleteRule resolves with the removed rule, then undefined; the pivot can be allowed again'), async (t) => {
    const store = await open(t)
    const rule = pivotRule('pvr_1', { serial: 'SN-1' })
    await store.pivots.putRule(rule)
    await store.pivots.putRule(pivotRule('pvr_2'))
    t.deepEqual(await store.pivots.deleteRule('pvr_1'), rule)
    t.is(await store.pivots.deleteRule('pvr_1'), undefined)
    t.is(await store.pivots.deleteRule('nope'), undefined)
    t.is(await store.pivots.getRule('pvr_1'), undefined)
    t.deepEqual((await store.pivots.listRules({ brandId: 'acme' })).map((r) => r.id), ['pvr_2'])
    await store.pivots.putRule(pivotRule('pvr_9', { serial: 'SN-1' }))
    t.deepEqual((await store.pivots.listRules({ brandId: 'acme', fromModel: 'widget' })).map((r) => r.id), ['pvr_2', 'pvr_9'])
  })
}

function requests({ test, title, open }: Suite): void {
  const g = (text: string): string => title('pivots', `requests: ${text}`)

  test(g('createRequest stores a pending request; SV_PIVOT_EXISTS for a taken request-id'), async (t) => {
    const store = await open(t)
    t.is(await store.pivots.getRequest('req-1'), undefined)
    const req = pivotRequest('req-1')
    await store.pivots.createRequest(req)
    t.deepEqual(await store.pivots.getRequest('req-1'), req)
    await t.throwsAsync(store.pivots.createRequest(pivotRequest('req-1', { serial: 'SN-2' })), { code: 'SV_PIVOT_EXISTS' })
    t.deepEqual(await store.pivots.getRequest('req-1'), req)
    t.deepEqual(await store.pivots.listRequests({ storeId: 'acme' }), [req])
    const { won, codes } = await race(Array.from({ length: 5 }, (_, i) => store.pivots.createRequest(pivotRequest('req-2', { createdAt: T0 + i })).then(() => i)))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_PIVOT_EXISTS']))
    t.is((await store.pivots.listRequests({ storeId: 'acme' })).length, 2)
  })

  test(g('decideRequest is a compare-and-set from pending: SV_PIVOT_DECIDED after, SV_PIVOT_NOT_FOUND without one'), async (t) => {
    const store = await open(t)
    const a = pivotRequest('req-a')
    const b = pivotRequest('req-b')
    await store.pivots.createRequest(a)
    await store.pivots.createRequest(b)
    const accepted = await store.pivots.decideRequest('req-a', { status: 'accepted', at: T0 + 10, by: 'prs_r' })
    t.deepEqual(accepted, { ...a, status: 'accepted', decidedAt: T0 + 10, decidedBy: 'prs_r' })
    t.deepEqual(await store.pivots.getRequest('req-a'), accepted)
    const rejected = await store.pivots.decideRequest('req-b', { status: 'rejected', at: T0 + 11, by: 'prs_r', reason: 'wrong line' })
    t.deepEqual(rejected, { ...b, status: 'rejected', decidedAt: T0 + 11, decidedBy: 'prs_r', reason: 'wrong line' })
    t.deepEqual(await store.pivots.getRequest('req-b'), rejected)
    for (const status of ['accepted', 'rejected'] as const) {
      await t.throwsAsync(store.pivots.decideRequest('req-a', { status, at: T0 + 20, by: 'prs_x' }), { code: 'SV_PIVOT_DECIDED' })
      await t.throwsAsync(store.pivots.decideRequest('req-b', { status, at: T0 + 20, by: 'prs_x' }), { code: 'SV_PIVOT_DECIDED' })
    }
    t.deepEqual(await store.pivots.getRequest('req-a'), accepted)
    t.deepEqual(await store.pivots.getRequest('req-b'), rejected)
    await t.throwsAsync(store.pivots.decideRequest('nope', { status: 'accepted', at: T0, by: 'prs_r' }), { code: 'SV_PIVOT_NOT_FOUND' })
    t.is(await store.pivots.getRequest('nope'), undefined)
  })

  test(g('concurrent decisions of one request: exactly one wins'), async (t) => {
    const store = await open(t)
    for (let round = 0; round < 4; round++) {
      await store.pivots.createRequest(pivotRequest(`req-${round}`))
      const { won, codes } = await race(
        Array.from({ length: 8 }, (_, i) => store.pivots.decideRequest(`req-${round}`, { status: i % 2 ? 'accepted' : 'rejected', at: T0 + i, by: `prs_${i}` })),
      )
      t.is(won.length, 1, `round ${round}`)
      t.deepEqual(new Set(codes), new Set(['SV_PIVOT_DECIDED']))
      t.deepEqual(await store.pivots.getRequest(`req-${round}`), won[0])
    }
  })

  test(g('listRequests: one store, newest first, optionally of one status, at most limit'), async (t) => {
    const store = await open(t)
    const reqs = Array.from({ length: 12 }, (_, i) => pivotRequest(`req-${String(i).padStart(2, '0')}`, { createdAt: T0 + i * 10, serial: `SN-${i}`, storeId: i % 4 === 3 ? 'acme-line' : 'acme' }))
    for (const r of [...reqs].reverse()) await store.pivots.createRequest(r)
    const decided = new Map<string, Awaited<ReturnType<typeof store.pivots.decideRequest>>>()
    for (const i of [1, 2, 5]) decided.set(reqs[i]!.requestId, await store.pivots.decideRequest(reqs[i]!.requestId, { status: i === 2 ? 'rejected' : 'accepted', at: T0 + 500, by: 'prs_r' }))
    const current = reqs.map((r) => decided.get(r.requestId) ?? r)
    const acme = current.filter((r) => r.storeId === 'acme').reverse()
    t.deepEqual(await store.pivots.listRequests({ storeId: 'acme' }), acme)
    t.deepEqual(await store.pivots.listRequests({ storeId: 'acme', limit: 3 }), acme.slice(0, 3))
    t.deepEqual(await store.pivots.listRequests({ storeId: 'acme', status: 'pending' }), acme.filter((r) => r.status === 'pending'))
    t.deepEqual(await store.pivots.listRequests({ storeId: 'acme', status: 'pending', limit: 2 }), acme.filter((r) => r.status === 'pending').slice(0, 2))
    t.deepEqual(await store.pivots.listRequests({ storeId: 'acme', status: 'accepted' }), acme.filter((r) => r.status === 'accepted'))
    t.deepEqual(await store.pivots.listRequests({ storeId: 'acme', status: 'rejected' }), [decided.get('req-02')])
    t.deepEqual(await store.pivots.listRequests({ storeId: 'acme-line' }), current.filter((r) => r.storeId === 'acme-line').reverse())
    t.deepEqual(await store.pivots.listRequests({ storeId: 'acme-line', status: 'accepted' }), [])
    t.deepEqual(await store.pivots.listRequests({ storeId: 'nope' }), [])
  })

  test(g('listRequests: default limit 100, a larger limit lists more'), async (t) => {
    const store = await open(t)
    const reqs = Array.from({ length: 105 }, (_, i) => pivotRequest(`req-${String(i).padStart(3, '0')}`, { createdAt: T0 + ((i * 37) % 105) }))
    for (let i = 0; i < reqs.length; i += 35) await Promise.all(reqs.slice(i, i + 35).map((r) => store.pivots.createRequest(r)))
    const newest = [...reqs].sort((a, b) => b.createdAt - a.createdAt)
    t.deepEqual(await store.pivots.listRequests({ storeId: 'acme' }), newest.slice(0, 100))
    t.deepEqual(await store.pivots.listRequests({ storeId: 'acme', limit: 1000 }), newest)
  })
}
