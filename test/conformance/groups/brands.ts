import type { ModelRecord, VaultStore } from '../../../vault-server/src/store/store.js'
import { T0, baseStoreRecord, brandRecord, modelRecord, race, subStoreRecord, withBrand, type Suite } from '../fixtures.js'

const key = (m: ModelRecord): string => `${m.brandId}/${m.name}`

/** acme (base store `acme`, sub-store `acme-line`), acme-2 (base `acme-2`), beta (base `beta-store`). */
async function catalog(store: VaultStore): Promise<void> {
  await withBrand(store, 'acme')
  await withBrand(store, 'acme-2')
  await withBrand(store, 'beta', 'beta-store')
  await store.stores.create(subStoreRecord('acme-line', 'acme', 'acme'))
}

export function brandsGroup({ test, title, open }: Suite): void {
  const g = (text: string): string => title('brands', text)

  test(g('createBrand writes the brand and its base store; get, list in id order; missing reads as undefined'), async (t) => {
    const store = await open(t)
    t.is(await store.brands.getBrand('acme'), undefined)
    t.deepEqual(await store.brands.listBrands(), [])
    const acme = brandRecord('acme', { origin: 'imported' })
    const acmeBase = baseStoreRecord('acme', 'acme-store', { displayName: 'Acme', requirePivotReview: true })
    await store.brands.createBrand(brandRecord('zeta'), baseStoreRecord('zeta'))
    await store.brands.createBrand(acme, acmeBase)
    await store.brands.createBrand(brandRecord('acme-2'), baseStoreRecord('acme-2'))
    t.deepEqual(await store.brands.getBrand('acme'), acme)
    t.deepEqual(await store.stores.get('acme-store'), acmeBase)
    t.deepEqual((await store.brands.listBrands()).map((b) => b.id), ['acme', 'acme-2', 'zeta'])
    t.deepEqual(await store.stores.list({ brandId: 'acme' }), [acmeBase])
    t.is(await store.stores.get('acme'), undefined)
  })

  test(g('a taken brand id rejects SV_BRAND_EXISTS and writes nothing, not even the base store'), async (t) => {
    const store = await open(t)
    const first = brandRecord('acme')
    await store.brands.createBrand(first, baseStoreRecord('acme'))
    await t.throwsAsync(store.brands.createBrand(brandRecord('acme', { displayName: 'Other' }), baseStoreRecord('acme', 'acme-again')), { code: 'SV_BRAND_EXISTS' })
    t.deepEqual(await store.brands.getBrand('acme'), first)
    t.is(await store.stores.get('acme-again'), undefined)
    t.deepEqual((await store.stores.list()).map((s) => s.id), ['acme'])
  })

  test(g('a taken base store id rejects SV_STORE_EXISTS and leaves no brand behind'), async (t) => {
    const store = await open(t)
    await withBrand(store, 'acme')
    await store.stores.create(subStoreRecord('acme-line', 'acme', 'acme'))
    for (const taken of ['acme', 'acme-line']) {
      await t.throwsAsync(store.brands.createBrand(brandRecord('beta'), baseStoreRecord('beta', taken)), { code: 'SV_STORE_EXISTS' }, taken)
    }
    t.is(await store.brands.getBrand('beta'), undefined)
    t.deepEqual((await store.brands.listBrands()).map((b) => b.id), ['acme'])
    t.deepEqual((await store.stores.list()).map((s) => [s.id, s.brandId]), [
      ['acme', 'acme'],
      ['acme-line', 'acme'],
    ])
    // and the brand can still be created with a free store id
    await store.brands.createBrand(brandRecord('beta'), baseStoreRecord('beta'))
    t.is((await store.stores.get('beta'))?.brandId, 'beta')
  })

  test(g('createBrand refuses a base store that is not the base store of that brand (TypeError)'), async (t) => {
    const store = await open(t)
    const wrong = [
      baseStoreRecord('other-brand', 'acme'),
      { ...baseStoreRecord('acme'), kind: 'product' as const },
      { ...baseStoreRecord('acme'), parentId: 'acme-root' },
    ]
    for (const base of wrong) await t.throwsAsync(async () => store.brands.createBrand(brandRecord('acme'), base), { instanceOf: TypeError })
    t.is(await store.brands.getBrand('acme'), undefined)
    t.deepEqual(await store.stores.list(), [])
  })

  test(g('concurrent createBrand: exactly one wins a brand id, and exactly one a store id'), async (t) => {
    const store = await open(t)
    const sameBrand = await race(Array.from({ length: 10 }, (_, i) => store.brands.createBrand(brandRecord('acme', { displayName: `n${i}` }), baseStoreRecord('acme', `acme-${i}`)).then(() => i)))
    t.is(sameBrand.won.length, 1)
    t.deepEqual(new Set(sameBrand.codes), new Set(['SV_BRAND_EXISTS']))
    t.deepEqual((await store.stores.list()).map((s) => s.id), [`acme-${sameBrand.won[0]}`])

    const sameStore = await race(Array.from({ length: 10 }, (_, i) => store.brands.createBrand(brandRecord(`b${i}`), baseStoreRecord(`b${i}`, 'shared')).then(() => i)))
    t.is(sameStore.won.length, 1)
    t.deepEqual(new Set(sameStore.codes), new Set(['SV_STORE_EXISTS']))
    t.deepEqual((await store.brands.listBrands()).map((b) => b.id), ['acme', `b${sameStore.won[0]}`])
    t.is((await store.stores.get('shared'))?.brandId, `b${sameStore.won[0]}`)
  })

  test(g('models: create, get, update, list in (brand, name) order, by brand, by store and by both'), async (t) => {
    const store = await open(t)
    await catalog(store)
    const widget = modelRecord('acme', 'widget', { serialPolicy: { kind: 'device' }, duplicatePolicy: 'reissue' })
    const gadget = modelRecord('acme', 'gadget', { storeId: 'acme-line' })
    await store.brands.createModel(widget)
    await store.brands.createModel(gadget)
    await store.brands.createModel(modelRecord('acme', 'sprocket', { storeId: 'acme-line' }))
    await store.brands.createModel(modelRecord('acme-2', 'widget'))
    await store.brands.createModel(modelRecord('beta', 'widget', { storeId: 'beta-store' }))
    t.deepEqual(await store.brands.getModel('acme', 'widget'), widget)
    t.deepEqual(await store.brands.getModel('acme', 'gadget'), gadget)
    t.is(await store.brands.getModel('acme', 'nope'), undefined)
    t.is(await store.brands.getModel('nope', 'widget'), undefined)
    t.deepEqual((await store.brands.listModels()).map(key), ['acme/gadget', 'acme/sprocket', 'acme/widget', 'acme-2/widget', 'beta/widget'])
    t.deepEqual((await store.brands.listModels({})).map(key), ['acme/gadget', 'acme/sprocket', 'acme/widget', 'acme-2/widget', 'beta/widget'])
    t.deepEqual((await store.brands.listModels({ brandId: 'acme' })).map(key), ['acme/gadget', 'acme/sprocket', 'acme/widget'])
    t.deepEqual(await store.brands.listModels({ brandId: 'nobody' }), [])
    t.deepEqual((await store.brands.listModels({ storeId: 'acme-line' })).map(key), ['acme/gadget', 'acme/sprocket'])
    t.deepEqual((await store.brands.listModels({ storeId: 'acme' })).map(key), ['acme/widget'])
    t.deepEqual((await store.brands.listModels({ storeId: 'beta-store' })).map(key), ['beta/widget'])
    t.deepEqual(await store.brands.listModels({ storeId: 'nope' }), [])
    t.deepEqual((await store.brands.listModels({ brandId: 'acme', storeId: 'acme-line' })).map(key), ['acme/gadget', 'acme/sprocket'])
    t.deepEqual(await store.brands.listModels({ brandId: 'beta', storeId: 'acme-line' }), [])
    t.deepEqual(await store.brands.listModels({ storeId: 'acme-line' }), [gadget, modelRecord('acme', 'sprocket', { storeId: 'acme-line' })])
    const updated = { ...widget, revision: 2, modelHeaders: { architecture: 'amd64', store: 'acme' }, modelAssertion: 'resigned', updatedAt: T0 + 1 }
    await store.brands.updateModel(updated)
    t.deepEqual(await store.brands.getModel('acme', 'widget'), updated)
    t.deepEqual(await store.brands.listModels({ storeId: 'acme' }), [updated])
  })

  test(g('models: SV_MODEL_EXISTS on create, SV_MODEL_UNKNOWN on update of a missing model, concurrent creates'), async (t) => {
    const store = await open(t)
    await catalog(store)
    await store.brands.createModel(modelRecord('acme', 'widget'))
    await t.throwsAsync(store.brands.createModel(modelRecord('acme', 'widget', { revision: 9 })), { code: 'SV_MODEL_EXISTS' })
    t.is((await store.brands.getModel('acme', 'widget'))?.revision, 1)
    await t.throwsAsync(store.brands.updateModel(modelRecord('acme', 'gadget')), { code: 'SV_MODEL_UNKNOWN' })
    t.is(await store.brands.getModel('acme', 'gadget'), undefined)
    t.deepEqual(await store.brands.listModels({ storeId: 'acme' }), [modelRecord('acme', 'widget')])
    const { won, codes } = await race(Array.from({ length: 5 }, (_, i) => store.brands.createModel(modelRecord('acme', 'racer', { revision: i + 1 })).then(() => i)))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_MODEL_EXISTS']))
    t.is((await store.brands.getModel('acme', 'racer'))?.revision, won[0]! + 1)
  })

  test(g('models need an existing store of their brand: SV_STORE_NOT_FOUND on create and update, nothing written'), async (t) => {
    const store = await open(t)
    await catalog(store)
    for (const storeId of ['nope', 'beta-store', 'acme-2']) {
      await t.throwsAsync(store.brands.createModel(modelRecord('acme', 'widget', { storeId })), { code: 'SV_STORE_NOT_FOUND' }, storeId)
    }
    t.is(await store.brands.getModel('acme', 'widget'), undefined)
    t.deepEqual(await store.brands.listModels(), [])
    t.deepEqual(await store.brands.findModelsByApiKeyHash('a'.repeat(64)), [])
    const widget = modelRecord('acme', 'widget')
    await store.brands.createModel(widget)
    for (const storeId of ['nope', 'beta-store']) {
      await t.throwsAsync(store.brands.updateModel({ ...widget, storeId, revision: 2 }), { code: 'SV_STORE_NOT_FOUND' }, storeId)
    }
    t.deepEqual(await store.brands.getModel('acme', 'widget'), widget)
    t.deepEqual(await store.brands.listModels({ storeId: 'acme' }), [widget])
    t.deepEqual(await store.brands.listModels({ storeId: 'beta-store' }), [])
  })

  test(g('models: a move to another store of the brand moves the store index and keeps the api-key index'), async (t) => {
    const store = await open(t)
    await catalog(store)
    const h = '1'.repeat(64)
    const widget = modelRecord('acme', 'widget', { apiKeyHashes: [h] })
    await store.brands.createModel(widget)
    const moved = { ...widget, storeId: 'acme-line', revision: 2, updatedAt: T0 + 1 }
    await store.brands.updateModel(moved)
    t.deepEqual(await store.brands.getModel('acme', 'widget'), moved)
    t.deepEqual(await store.brands.listModels({ storeId: 'acme' }), [])
    t.deepEqual(await store.brands.listModels({ storeId: 'acme-line' }), [moved])
    t.deepEqual(await store.brands.findModelsByApiKeyHash(h), [moved])
    const back = { ...moved, storeId: 'acme', apiKeyHashes: ['2'.repeat(64)], revision: 3 }
    await store.brands.updateModel(back)
    t.deepEqual(await store.brands.listModels({ storeId: 'acme' }), [back])
    t.deepEqual(await store.brands.listModels({ storeId: 'acme-line' }), [])
    t.deepEqual(await store.brands.findModelsByApiKeyHash(h), [])
    t.deepEqual(await store.brands.findModelsByApiKeyHash('2'.repeat(64)), [back])
  })

  test(g('models: the api-key hash index follows creates and updates'), async (t) => {
    const store = await open(t)
    await catalog(store)
    const [h1, h2, h3] = ['1', '2', '3'].map((c) => c.repeat(64)) as [string, string, string]
    await store.brands.createModel(modelRecord('acme', 'widget', { apiKeyHashes: [h1, h2] }))
    await store.brands.createModel(modelRecord('beta', 'gadget', { storeId: 'beta-store', apiKeyHashes: [h2] }))
    await store.brands.createModel(modelRecord('acme', 'apple', { apiKeyHashes: [h2] }))
    // the order of findModelsByApiKeyHash is not part of the contract
    const found = async (h: string): Promise<string[]> => (await store.brands.findModelsByApiKeyHash(h)).map(key).sort()
    t.deepEqual(await found(h1), ['acme/widget'])
    t.deepEqual(await found(h2), ['acme/apple', 'acme/widget', 'beta/gadget'])
    t.deepEqual(await found(h3), [])
    await store.brands.updateModel(modelRecord('acme', 'widget', { apiKeyHashes: [h3, h2], revision: 2 }))
    t.deepEqual(await found(h1), [])
    t.deepEqual(await found(h2), ['acme/apple', 'acme/widget', 'beta/gadget'])
    t.deepEqual(await found(h3), ['acme/widget'])
    t.is((await store.brands.findModelsByApiKeyHash(h3))[0]?.revision, 2)
    await store.brands.updateModel(modelRecord('beta', 'gadget', { storeId: 'beta-store', apiKeyHashes: [] }))
    t.deepEqual(await found(h2), ['acme/apple', 'acme/widget'])
  })
}
