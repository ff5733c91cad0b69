import { VaultError } from '@sv/shared'
import type { AuditSeal, BrandRecord, ModelRecord, SigningKeyRecord, StoreRecord } from '../records.js'
import type { BrandRepository, SigningKeyRepository, StoreRepository } from '../store.js'
import { type PgContext, bumpStoresVersion } from './context.js'
import {
  BRAND_COLUMNS,
  KEY_COLUMNS,
  MODEL_COLUMNS,
  STORE_COLUMNS,
  brandFromRow,
  brandParams,
  insertSql,
  keyFromRow,
  keyParams,
  modelFromRow,
  modelParams,
  storeFromRow,
  storeParams,
  updateSql,
} from './rows.js'

export class PgKeys implements SigningKeyRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  put(key: SigningKeyRecord, audit?: AuditSeal): Promise<void> {
    return this.#c.audited(audit, async (db) => void (await db.query(insertSql('signing_keys', KEY_COLUMNS), keyParams(key))), true)
  }

  get(keyId: string): Promise<SigningKeyRecord | undefined> {
    return this.#c.one('SELECT * FROM signing_keys WHERE key_id = $1', [keyId], keyFromRow)
  }

  list(accountId?: string): Promise<SigningKeyRecord[]> {
    return accountId === undefined
      ? this.#c.all('SELECT * FROM signing_keys ORDER BY key_id', [], keyFromRow)
      : this.#c.all('SELECT * FROM signing_keys WHERE account_id = $1 ORDER BY key_id', [accountId], keyFromRow)
  }

  setEnabled(keyId: string, change: { enabled: boolean; reason?: string; at: number }, audit?: AuditSeal): Promise<SigningKeyRecord> {
    return this.#c.audited(
      audit,
      async (db) => {
        const r = await db.query('UPDATE signing_keys SET enabled = $2, reason = $3, changed_at = $4 WHERE key_id = $1 RETURNING *', [keyId, change.enabled, change.reason ?? null, change.at])
        if (r.rowCount === 0) throw new VaultError('SV_KEY_NOT_FOUND', 'no such signing key', { details: { keyId } })
        return keyFromRow(r.rows[0]!)
      },
      true,
    )
  }
}

export class PgBrands implements BrandRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  createBrand(brand: BrandRecord, baseStore: StoreRecord, audit?: AuditSeal): Promise<void> {
    if (baseStore.brandId !== brand.id || baseStore.kind !== 'base' || baseStore.parentId !== undefined) throw new TypeError('baseStore must be a base store of the brand')
    return this.#c.audited(audit, async (db) => {
      await db.query(insertSql('brands', BRAND_COLUMNS), brandParams(brand))
      await db.query(insertSql('stores', STORE_COLUMNS), storeParams(baseStore))
      await bumpStoresVersion(db)
    })
  }

  getBrand(id: string): Promise<BrandRecord | undefined> {
    return this.#c.one('SELECT * FROM brands WHERE id = $1', [id], brandFromRow)
  }

  listBrands(): Promise<BrandRecord[]> {
    return this.#c.all('SELECT * FROM brands ORDER BY id', [], brandFromRow)
  }

  createModel(model: ModelRecord, audit?: AuditSeal): Promise<void> {
    return this.#c.audited(audit, async (db) => void (await db.query(insertSql('models', MODEL_COLUMNS), modelParams(model))), true)
  }

  updateModel(model: ModelRecord, audit?: AuditSeal): Promise<void> {
    return this.#c.audited(
      audit,
      async (db) => {
        const r = await db.query(updateSql('models', MODEL_COLUMNS, 2), modelParams(model))
        if (r.rowCount === 0) throw new VaultError('SV_MODEL_UNKNOWN', 'no such model for this brand', { details: { brandId: model.brandId, model: model.name } })
      },
      true,
    )
  }

  getModel(brandId: string, name: string): Promise<ModelRecord | undefined> {
    return this.#c.one('SELECT * FROM models WHERE brand_id = $1 AND name = $2', [brandId, name], modelFromRow)
  }

  listModels(filter: { brandId?: string; storeId?: string } = {}): Promise<ModelRecord[]> {
    const where: string[] = []
    const params: unknown[] = []
    if (filter.brandId !== undefined) where.push(`brand_id = $${params.push(filter.brandId)}`)
    if (filter.storeId !== undefined) where.push(`store_id = $${params.push(filter.storeId)}`)
    return this.#c.all(`SELECT * FROM models ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY brand_id, name`, params, modelFromRow)
  }

  findModelsByApiKeyHash(hash: string): Promise<ModelRecord[]> {
    // `@>` on the GIN index models_api_key_hashes_idx.
    return this.#c.all('SELECT * FROM models WHERE api_key_hashes @> ARRAY[$1::text] ORDER BY brand_id, name', [hash], modelFromRow)
  }
}

export class PgStores implements StoreRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  create(store: StoreRecord, audit?: AuditSeal): Promise<void> {
    if (store.kind === 'base' || typeof store.parentId !== 'string') throw new TypeError('create makes sub-stores, with a parent (base stores come with their brand)')
    return this.#c.audited(audit, async (db) => {
      await db.query(insertSql('stores', STORE_COLUMNS), storeParams(store))
      await bumpStoresVersion(db)
    })
  }

  update(store: StoreRecord, audit?: AuditSeal): Promise<void> {
    return this.#c.audited(audit, async (db) => {
      // Identity and place in the tree never change.
      const r = await db.query('UPDATE stores SET display_name = $2, partner = $3, require_pivot_review = $4, updated_at = $5 WHERE id = $1', [
        store.id,
        store.displayName,
        store.partner === undefined ? null : JSON.stringify(store.partner),
        store.requirePivotReview,
        store.updatedAt,
      ])
      if (r.rowCount === 0) throw new VaultError('SV_STORE_NOT_FOUND', 'no such store', { details: { storeId: store.id } })
      await bumpStoresVersion(db)
    })
  }

  get(id: string): Promise<StoreRecord | undefined> {
    return this.#c.one('SELECT * FROM stores WHERE id = $1', [id], storeFromRow)
  }

  list(filter: { brandId?: string } = {}): Promise<StoreRecord[]> {
    return filter.brandId === undefined
      ? this.#c.all('SELECT * FROM stores ORDER BY id', [], storeFromRow)
      : this.#c.all('SELECT * FROM stores WHERE brand_id = $1 ORDER BY id', [filter.brandId], storeFromRow)
  }

  version(): Promise<number> {
    return this.#c.one('SELECT version FROM stores_version WHERE one', [], (r) => Number(r.version)).then((v) => v ?? 0)
  }
}
