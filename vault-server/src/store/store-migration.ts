/**
 * The stores that data from before stores existed gets (LevelDB layout 1 -> 2,
 * PostgreSQL migration 2), decided once here for both backends:
 * - every brand gets a base store: its id is the `store` header most of the
 *   brand's models carry (so their signed assertions already name it), else
 *   the brand id (made unique with a `-store` suffix when another brand's
 *   store took it);
 * - a model whose `store` header names another valid, free id gets a product
 *   store of that id under its base, so its assertion still names its store;
 *   every other model goes to its brand's base store (its assertion names the
 *   store once it is next re-signed; `model list` shows which still differ).
 */
import type { BrandRecord, ModelRecord, StoreRecord } from './records.js'

/** What a store id may look like: it is the model assertion's `store` header. */
export const STORE_ID_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?$/

export interface StorePlan {
  stores: StoreRecord[]
  /** `${brandId}/${model}` -> store id */
  modelStore: Map<string, string>
}

export function planStores(brands: readonly BrandRecord[], models: readonly ModelRecord[], now: number): StorePlan {
  const owner = new Map<string, string>()
  const stores: StoreRecord[] = []
  const modelStore = new Map<string, string>()
  const add = (st: StoreRecord): void => {
    owner.set(st.id, st.brandId)
    stores.push(st)
  }
  const free = (want: string): string => {
    if (!owner.has(want)) return want
    for (let i = 1; ; i++) {
      const id = `${want.slice(0, 50)}-store${i > 1 ? `-${i}` : ''}`
      if (!owner.has(id)) return id
    }
  }
  const headerOf = (m: ModelRecord): string | undefined => {
    const h = m.modelHeaders?.store
    return typeof h === 'string' && STORE_ID_RE.test(h) ? h : undefined
  }
  for (const brand of [...brands].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const own = models.filter((m) => m.brandId === brand.id).sort((a, b) => (a.name < b.name ? -1 : 1))
    const counts = new Map<string, number>()
    for (const m of own) {
      const h = headerOf(m)
      if (h !== undefined && !owner.has(h)) counts.set(h, (counts.get(h) ?? 0) + 1)
    }
    const [best] = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    const baseId = free(best?.[0] ?? brand.id)
    add({ id: baseId, brandId: brand.id, kind: 'base', displayName: brand.displayName, requirePivotReview: false, createdAt: now, updatedAt: now })
    for (const m of own) {
      let storeId = baseId
      const h = headerOf(m)
      if (h !== undefined && h !== baseId) {
        if (!owner.has(h)) add({ id: h, brandId: brand.id, kind: 'product', parentId: baseId, displayName: h, requirePivotReview: false, createdAt: now, updatedAt: now })
        if (owner.get(h) === brand.id) storeId = h
      }
      modelStore.set(`${brand.id}/${m.name}`, storeId)
    }
  }
  return { stores, modelStore }
}
