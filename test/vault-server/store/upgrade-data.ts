/**
 * Synthetic data as the previous release stored it (LevelDB layout 1,
 * PostgreSQL migration 1: models without store, tokens without kind), larger
 * and more varied than the fixtures made by the CLI: several brands, models
 * whose `store` headers make product stores, clash with another brand's
 * store or are invalid, and more log entries than one migration batch. Both
 * upgrade tests load it and expect the same stores (store-migration.ts is
 * shared), written out by hand below.
 */
import { createLogId } from '../../../vault-server/src/store/log-id.js'
import type { BrandRecord, LogEntry, ModelRecord, StoreRecord, TokenRecord } from '../../../vault-server/src/store/store.js'
import { brandRecord, modelRecord } from '../../conformance/store-suite.js'

export const T1 = Date.UTC(2025, 5, 1)

export type OldModel = Omit<ModelRecord, 'storeId'>
export type OldToken = Omit<TokenRecord, 'kind'>

function oldModel(brandId: string, name: string, store: string | undefined): OldModel {
  const { storeId: _s, ...m } = modelRecord(brandId, name, { apiKeyHashes: [`${brandId}-${name}`.padEnd(64, '0')] })
  return { ...m, modelHeaders: store === undefined ? { architecture: 'arm64' } : { architecture: 'arm64', store } }
}

export const OLD_BRANDS: BrandRecord[] = [brandRecord('acme', { displayName: 'Acme' }), brandRecord('beta', { displayName: 'Beta' }), brandRecord('zeta', { displayName: 'Zeta' })]

export const OLD_MODELS: OldModel[] = [
  oldModel('acme', 'a1', 'acme-main'),
  oldModel('acme', 'a2', 'acme-main'),
  oldModel('acme', 'a3', 'acme-extra'),
  oldModel('acme', 'a4', undefined),
  // names the store that will be beta's: acme is planned first and gets it as a product store
  oldModel('acme', 'a5', 'beta'),
  // taken by acme by then: beta's model goes to beta's base store
  oldModel('beta', 'b1', 'beta'),
  oldModel('beta', 'b2', 'not a store id!'),
]

/** 1300 entries (more than one migration batch), over every model, an unknown model and no model. */
export const OLD_LOG: LogEntry[] = Array.from({ length: 1300 }, (_, i) => {
  const time = T1 + i * 10
  const m = i % 9 === 8 ? undefined : i % 9 === 7 ? { brandId: 'acme', name: 'ghost' } : OLD_MODELS[i % 7]!
  const e: LogEntry = { id: createLogId(time), time, outcome: i % 5 === 0 ? 'refused' : 'issued', serial: `SN-${i}`, deviceKeyId: `dk-${i % 50}` }
  if (m) {
    e.brandId = m.brandId
    e.model = m.name
  }
  if (e.outcome === 'refused') e.code = 'SV_SERIAL_TAKEN'
  else e.revision = 1
  return e
})

export const OLD_TOKENS: OldToken[] = [
  { hash: 'a'.repeat(64), name: 'init', roles: ['admin'], createdAt: T1 },
  { hash: 'b'.repeat(64), name: 'ops', roles: ['admin'], createdAt: T1 + 1 },
]

/** What store-migration.ts must make of it (createdAt/updatedAt are the migration's now). */
export function expectedStores(now: number): StoreRecord[] {
  const s = (id: string, brandId: string, kind: 'base' | 'product', displayName: string, parentId?: string): StoreRecord => ({
    id,
    brandId,
    kind,
    ...(parentId !== undefined ? { parentId } : {}),
    displayName,
    requirePivotReview: false,
    createdAt: now,
    updatedAt: now,
  })
  return [
    s('acme-extra', 'acme', 'product', 'acme-extra', 'acme-main'),
    s('acme-main', 'acme', 'base', 'Acme'),
    s('beta', 'acme', 'product', 'beta', 'acme-main'),
    s('beta-store', 'beta', 'base', 'Beta'),
    s('zeta', 'zeta', 'base', 'Zeta'),
  ]
}

export const EXPECTED_MODEL_STORE: Record<string, string> = {
  'acme/a1': 'acme-main',
  'acme/a2': 'acme-main',
  'acme/a3': 'acme-extra',
  'acme/a4': 'acme-main',
  'acme/a5': 'beta',
  'beta/b1': 'beta-store',
  'beta/b2': 'beta-store',
}

/** The log entries as layout 2 has them: with the store of their model, when it exists. */
export function expectedLog(): LogEntry[] {
  return OLD_LOG.map((e) => {
    const storeId = e.brandId !== undefined && e.model !== undefined ? EXPECTED_MODEL_STORE[`${e.brandId}/${e.model}`] : undefined
    return storeId === undefined ? e : { ...e, storeId }
  })
}
