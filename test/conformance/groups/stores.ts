import type { StoreRecord } from '../../../vault-server/src/store/store.js'
import { T0, baseStoreRecord, brandRecord, race, subStoreRecord, withBrand, type Suite } from '../fixtures.js'

export function storesGroup({ test, title, open, options }: Suite): void {
  const g = (text: string): string => title('stores', text)

  test(g('create sub-stores under a parent of the brand, nested; get; list by brand and all, ordered by id'), async (t) => {
    const store = await open(t)
    await withBrand(store, 'acme')
    await withBrand(store, 'beta', 'beta-base')
    const line = subStoreRecord('acme-line', 'acme', 'acme', { displayName: 'Line' })
    const partner = subStoreRecord('acme-partner', 'acme', 'acme-line', { kind: 'ecosystem', partner: { name: 'Partner Co', relation: 'reseller' }, requirePivotReview: true })
    const beta = subStoreRecord('a-beta', 'beta', 'beta-base')
    await store.stores.create(line)
    await store.stores.create(partner)
    await store.stores.create(beta)
    t.deepEqual(await store.stores.get('acme-line'), line)
    t.deepEqual(await store.stores.get('acme-partner'), partner)
    t.is(await store.stores.get('nope'), undefined)
    t.deepEqual(await store.stores.list({ brandId: 'acme' }), [baseStoreRecord('acme'), line, partner])
    t.deepEqual(await store.stores.list({ brandId: 'beta' }), [beta, baseStoreRecord('beta', 'beta-base')])
    t.deepEqual(await store.stores.list({ brandId: 'nobody' }), [])
    t.deepEqual((await store.stores.list()).map((s) => s.id), ['a-beta', 'acme', 'acme-line', 'acme-partner', 'beta-base'])
    t.deepEqual((await store.stores.list({})).map((s) => s.id), ['a-beta', 'acme', 'acme-line', 'acme-partner', 'beta-base'])
  })

  test(g('create: SV_STORE_EXISTS for a taken id, SV_STORE_NOT_FOUND for a missing parent or one of another brand; nothing written'), async (t) => {
    const store = await open(t)
    await withBrand(store, 'acme')
    await withBrand(store, 'beta')
    await store.stores.create(subStoreRecord('acme-line', 'acme', 'acme'))
    const before = await store.stores.list()
    // taken by a sub-store, by this brand's base store, by another brand's base store
    for (const id of ['acme-line', 'acme', 'beta']) {
      await t.throwsAsync(store.stores.create(subStoreRecord(id, 'acme', 'acme', { displayName: 'Other' })), { code: 'SV_STORE_EXISTS' }, id)
    }
    await t.throwsAsync(store.stores.create(subStoreRecord('acme-x', 'acme', 'nope')), { code: 'SV_STORE_NOT_FOUND' })
    await t.throwsAsync(store.stores.create(subStoreRecord('acme-x', 'acme', 'beta')), { code: 'SV_STORE_NOT_FOUND' })
    t.deepEqual(await store.stores.list(), before)
    t.is(await store.stores.get('acme-x'), undefined)
  })

  test(g('create makes sub-stores only: a base store or a store without parent is a TypeError'), async (t) => {
    const store = await open(t)
    await withBrand(store, 'acme')
    await t.throwsAsync(async () => store.stores.create(baseStoreRecord('acme', 'acme-2')), { instanceOf: TypeError })
    const { parentId: _p, ...orphan } = subStoreRecord('acme-x', 'acme', 'acme')
    await t.throwsAsync(async () => store.stores.create(orphan as StoreRecord), { instanceOf: TypeError })
    t.deepEqual((await store.stores.list()).map((s) => s.id), ['acme'])
  })

  test(g('concurrent creates of one id: exactly one wins'), async (t) => {
    const store = await open(t)
    await withBrand(store, 'acme')
    const { won, codes } = await race(Array.from({ length: 10 }, (_, i) => store.stores.create(subStoreRecord('acme-line', 'acme', 'acme', { displayName: `n${i}` })).then(() => i)))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_STORE_EXISTS']))
    t.is((await store.stores.get('acme-line'))?.displayName, `n${won[0]}`)
  })

  test(g('update replaces display name, partner, review flag and updatedAt, never id, brand, kind, parent or createdAt; SV_STORE_NOT_FOUND'), async (t) => {
    const store = await open(t)
    await withBrand(store, 'acme')
    await withBrand(store, 'beta')
    const line = subStoreRecord('acme-line', 'acme', 'acme')
    await store.stores.create(line)
    await store.stores.create(subStoreRecord('acme-sub', 'acme', 'acme-line'))
    const partner = { name: 'Partner Co', relation: 'business-partner' as const }
    await store.stores.update({ ...line, displayName: 'Renamed', partner, requirePivotReview: true, updatedAt: T0 + 5 })
    const renamed: StoreRecord = { ...line, displayName: 'Renamed', partner, requirePivotReview: true, updatedAt: T0 + 5 }
    t.deepEqual(await store.stores.get('acme-line'), renamed)
    // identity and place in the tree are kept, whatever the record says
    await store.stores.update({ ...renamed, brandId: 'beta', kind: 'ecosystem', parentId: 'beta', displayName: 'Again', createdAt: T0 + 99, updatedAt: T0 + 6 })
    t.deepEqual(await store.stores.get('acme-line'), { ...renamed, displayName: 'Again', updatedAt: T0 + 6 })
    const sub = subStoreRecord('acme-sub', 'acme', 'acme-line')
    await store.stores.update({ ...sub, parentId: 'acme', displayName: 'Sub' })
    t.deepEqual(await store.stores.get('acme-sub'), { ...sub, displayName: 'Sub' })
    // a base store stays a base store without parent
    await store.stores.update({ ...baseStoreRecord('acme'), kind: 'product', parentId: 'beta', displayName: 'Base' })
    t.deepEqual(await store.stores.get('acme'), { ...baseStoreRecord('acme'), displayName: 'Base' })
    // the partner goes when the record has none
    const { partner: _gone, ...withoutPartner } = { ...renamed, displayName: 'Again', updatedAt: T0 + 7 }
    await store.stores.update(withoutPartner)
    t.deepEqual(await store.stores.get('acme-line'), withoutPartner)
    t.deepEqual((await store.stores.list({ brandId: 'beta' })).map((s) => s.id), ['beta'])
    await t.throwsAsync(store.stores.update(subStoreRecord('nope', 'acme', 'acme')), { code: 'SV_STORE_NOT_FOUND' })
    t.is(await store.stores.get('nope'), undefined)
  })

  test(g('version() grows with every createBrand, create and update'), async (t) => {
    const store = await open(t)
    const v0 = await store.stores.version()
    t.true(Number.isSafeInteger(v0))
    await store.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme'))
    const v1 = await store.stores.version()
    t.true(v1 > v0)
    await store.stores.create(subStoreRecord('acme-line', 'acme', 'acme'))
    const v2 = await store.stores.version()
    t.true(v2 > v1)
    await store.stores.update(subStoreRecord('acme-line', 'acme', 'acme', { displayName: 'Renamed' }))
    const v3 = await store.stores.version()
    t.true(v3 > v2)
    // reads do not move it
    await store.stores.list()
    t.is(await store.stores.version(), v3)
    if (options.supports.reopen) {
      await store.close()
      await store.open()
      t.true((await store.stores.version()) >= v3)
      await store.stores.update(subStoreRecord('acme-line', 'acme', 'acme', { displayName: 'Again' }))
      t.true((await store.stores.version()) > v3)
    }
  })

  test(g('version() grows with every write, concurrent ones included'), async (t) => {
    const store = await open(t)
    await withBrand(store, 'acme')
    const v0 = await store.stores.version()
    // A cache that read the version between two of these writes must see it move again after the second.
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => store.stores.create(subStoreRecord(`acme-${i}`, 'acme', 'acme'))),
      ...Array.from({ length: 5 }, (_, i) => store.brands.createBrand(brandRecord(`b${i}`), baseStoreRecord(`b${i}`))),
      store.stores.update(baseStoreRecord('acme', 'acme', { displayName: 'Renamed' })),
    ])
    t.true((await store.stores.version()) - v0 >= 16)
  })
}
