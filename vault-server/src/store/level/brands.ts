import { VaultError } from '@sv/shared'
import type { AuditSeal, BrandRecord, ModelRecord, StoreRecord } from '../records.js'
import type { BrandRepository } from '../store.js'
import { type LevelContext, type Op, type Sublevels, STORES_LOCK, defined, del, put, requireStrings } from './context.js'
import { prefixRange, splitTupleKey, tupleKey } from './layout.js'

/** The store a model names must exist and be of the model's brand. */
async function checkModelStore(s: Sublevels, model: ModelRecord): Promise<void> {
  const store = (await s.store.get(model.storeId)) as StoreRecord | undefined
  if (store === undefined || store.brandId !== model.brandId) {
    throw new VaultError('SV_STORE_NOT_FOUND', 'no such store for the brand of the model', { details: { storeId: model.storeId, brandId: model.brandId } })
  }
}

function modelIndexOps(s: Sublevels, model: ModelRecord, type: 'put' | 'del'): Op[] {
  const keys: Array<[Sublevels[keyof Sublevels], string]> = [...new Set(model.apiKeyHashes)].map((hash) => [s.modelByApiKey, tupleKey(hash, model.brandId, model.name)])
  keys.push([s.modelByStore, tupleKey(model.storeId, model.brandId, model.name)])
  return keys.map(([sub, key]) => (type === 'put' ? put(sub, key, '') : del(sub, key)))
}

export class LevelBrands implements BrandRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  createBrand(brand: BrandRecord, baseStore: StoreRecord, audit?: AuditSeal): Promise<void> {
    requireStrings({ id: brand.id, storeId: baseStore.id })
    if (baseStore.brandId !== brand.id || baseStore.kind !== 'base' || baseStore.parentId !== undefined) throw new TypeError('baseStore must be a base store of the brand')
    return this.#c.locked(
      [tupleKey('brand', brand.id), tupleKey('store', baseStore.id), STORES_LOCK],
      async (s) => {
        if (await s.brand.has(brand.id)) throw new VaultError('SV_BRAND_EXISTS', 'a brand with this id already exists', { details: { brandId: brand.id } })
        if (await s.store.has(baseStore.id)) throw new VaultError('SV_STORE_EXISTS', 'a store with this id already exists', { details: { storeId: baseStore.id } })
        const version = this.#c.storesVersionOp(s)
        await this.#c.commit(s, [put(s.brand, brand.id, brand), put(s.store, baseStore.id, baseStore), put(s.storeByBrand, tupleKey(brand.id, baseStore.id), ''), version.op], audit)
        version.apply()
      },
      audit !== undefined,
    )
  }

  getBrand(id: string): Promise<BrandRecord | undefined> {
    return this.#c.run((s) => s.brand.get(id))
  }

  listBrands(): Promise<BrandRecord[]> {
    return this.#c.run((s) => s.brand.values().all())
  }

  createModel(model: ModelRecord, audit?: AuditSeal): Promise<void> {
    requireStrings({ brandId: model.brandId, name: model.name, storeId: model.storeId })
    const k = tupleKey(model.brandId, model.name)
    return this.#c.locked(
      [tupleKey('model', k), tupleKey('store', model.storeId)],
      async (s) => {
        if (await s.model.has(k)) {
          throw new VaultError('SV_MODEL_EXISTS', 'a model with this name already exists for the brand', { details: { brandId: model.brandId, model: model.name } })
        }
        await checkModelStore(s, model)
        await this.#c.commit(s, [put(s.model, k, model), ...modelIndexOps(s, model, 'put')], audit)
      },
      audit !== undefined,
    )
  }

  updateModel(model: ModelRecord, audit?: AuditSeal): Promise<void> {
    requireStrings({ brandId: model.brandId, name: model.name, storeId: model.storeId })
    const k = tupleKey(model.brandId, model.name)
    return this.#c.locked(
      [tupleKey('model', k), tupleKey('store', model.storeId)],
      async (s) => {
        const old = (await s.model.get(k)) as ModelRecord | undefined
        if (old === undefined) throw new VaultError('SV_MODEL_UNKNOWN', 'no such model for this brand', { details: { brandId: model.brandId, model: model.name } })
        await checkModelStore(s, model)
        // Index deletions first: a key kept by the update is put back by the later op.
        await this.#c.commit(s, [...modelIndexOps(s, old, 'del'), ...modelIndexOps(s, model, 'put'), put(s.model, k, model)], audit)
      },
      audit !== undefined,
    )
  }

  getModel(brandId: string, name: string): Promise<ModelRecord | undefined> {
    return this.#c.run((s) => s.model.get(tupleKey(brandId, name)))
  }

  listModels(filter: { brandId?: string; storeId?: string } = {}): Promise<ModelRecord[]> {
    return this.#c.run(async (s) => {
      if (filter.storeId !== undefined) {
        const keys = await s.modelByStore.keys(prefixRange(filter.storeId)).all()
        const models = defined<ModelRecord>(await s.model.getMany(keys.map((key) => tupleKey(...splitTupleKey(key).slice(1)))))
        return filter.brandId === undefined ? models : models.filter((m) => m.brandId === filter.brandId)
      }
      return s.model.values(filter.brandId === undefined ? {} : prefixRange(filter.brandId)).all()
    })
  }

  findModelsByApiKeyHash(hash: string): Promise<ModelRecord[]> {
    return this.#c.run(async (s) => {
      const keys = await s.modelByApiKey.keys(prefixRange(hash)).all()
      return defined(await s.model.getMany(keys.map((key) => tupleKey(...splitTupleKey(key).slice(1)))))
    })
  }
}
