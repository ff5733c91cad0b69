import { VaultError } from '@sv/shared'
import type { AuditSeal, StoreRecord } from '../records.js'
import type { StoreRepository } from '../store.js'
import { type LevelContext, STORES_LOCK, defined, put, requireStrings } from './context.js'
import { lastComponent, prefixRange, tupleKey } from './layout.js'

export class LevelStores implements StoreRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  create(store: StoreRecord, audit?: AuditSeal): Promise<void> {
    requireStrings({ id: store.id, brandId: store.brandId })
    if (store.kind === 'base' || typeof store.parentId !== 'string') throw new TypeError('create makes sub-stores, with a parent (base stores come with their brand)')
    return this.#c.locked(
      [tupleKey('store', store.id), tupleKey('store', store.parentId), STORES_LOCK],
      async (s) => {
        if (await s.store.has(store.id)) throw new VaultError('SV_STORE_EXISTS', 'a store with this id already exists', { details: { storeId: store.id } })
        const parent = (await s.store.get(store.parentId!)) as StoreRecord | undefined
        if (parent === undefined || parent.brandId !== store.brandId) {
          throw new VaultError('SV_STORE_NOT_FOUND', 'no such parent store for this brand', { details: { storeId: store.parentId, brandId: store.brandId } })
        }
        const version = this.#c.storesVersionOp(s)
        await this.#c.commit(s, [put(s.store, store.id, store), put(s.storeByBrand, tupleKey(store.brandId, store.id), ''), version.op], audit)
        version.apply()
      },
      audit !== undefined,
    )
  }

  update(store: StoreRecord, audit?: AuditSeal): Promise<void> {
    requireStrings({ id: store.id })
    return this.#c.locked(
      [tupleKey('store', store.id), STORES_LOCK],
      async (s) => {
        const old = (await s.store.get(store.id)) as StoreRecord | undefined
        if (old === undefined) throw new VaultError('SV_STORE_NOT_FOUND', 'no such store', { details: { storeId: store.id } })
        // Identity and place in the tree never change.
        const next: StoreRecord = { ...store, id: old.id, brandId: old.brandId, kind: old.kind, createdAt: old.createdAt, ...(old.parentId !== undefined ? { parentId: old.parentId } : {}) }
        if (old.parentId === undefined) delete next.parentId
        const version = this.#c.storesVersionOp(s)
        await this.#c.commit(s, [put(s.store, store.id, next), version.op], audit)
        version.apply()
      },
      audit !== undefined,
    )
  }

  get(id: string): Promise<StoreRecord | undefined> {
    return this.#c.run((s) => s.store.get(id))
  }

  list(filter: { brandId?: string } = {}): Promise<StoreRecord[]> {
    return this.#c.run(async (s) => {
      if (filter.brandId === undefined) return s.store.values().all()
      const ids = (await s.storeByBrand.keys(prefixRange(filter.brandId)).all()).map(lastComponent)
      return defined<StoreRecord>(await s.store.getMany(ids)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    })
  }

  version(): Promise<number> {
    return this.#c.run(async () => this.#c.storesVersion)
  }
}
