/**
 * LevelDB layout migrations, run by LevelStore.open(): the layout version
 * lives in `sys/layout`; each migration brings the data from one version to
 * the next. A migration writes in batches and sets `sys/layout` in its last
 * one, so one cut short by a crash runs again from its start on the next
 * open: every step must be idempotent (puts of values computed from the
 * unchanged layout-N records). Data written by a newer vault is refused.
 */
import { VaultError } from '@sv/shared'
import type { BrandRecord, LogEntry, ModelRecord, TokenRecord } from '../records.js'
import { planStores } from '../store-migration.js'
import { type Op, type Sublevels, SCAN_BATCH, put } from './context.js'
import { LAYOUT_VERSION, tupleKey } from './layout.js'
import { logIndexOps } from './signing-log.js'

export interface LayoutMigration {
  from: number
  to: number
  name: string
  run(s: Sublevels, write: (ops: Op[]) => Promise<void>, now: number): Promise<void>
}

/**
 * Layout 2 (stores, people, grants, sessions, audit, pivots). Existing data:
 * brands get their base store and models their store as store-migration.ts
 * decides; log entries get the store of their model and the store and
 * device-key indexes; tokens become `admin` tokens (the operator's
 * break-glass credential).
 */
const toStores: LayoutMigration = {
  from: 1,
  to: 2,
  name: 'stores',
  async run(s, write, now) {
    const brands = (await s.brand.values().all()) as BrandRecord[]
    const models = (await s.model.values().all()) as ModelRecord[]
    const plan = planStores(brands, models, now)
    const ops: Op[] = []
    for (const st of plan.stores) ops.push(put(s.store, st.id, st), put(s.storeByBrand, tupleKey(st.brandId, st.id), ''))
    for (const m of models) {
      const storeId = plan.modelStore.get(`${m.brandId}/${m.name}`)!
      ops.push(put(s.model, tupleKey(m.brandId, m.name), { ...m, storeId }), put(s.modelByStore, tupleKey(storeId, m.brandId, m.name), ''))
    }
    ops.push(put(s.sys, 'stores-version', '1'))
    await write(ops)

    // the signing log, in batches
    let after: string | undefined
    for (;;) {
      const entries = (await s.log.values(after === undefined ? { limit: SCAN_BATCH * 2 } : { gt: after, limit: SCAN_BATCH * 2 }).all()) as LogEntry[]
      if (entries.length === 0) break
      const batch: Op[] = []
      for (const e of entries) {
        const storeId = e.brandId !== undefined && e.model !== undefined ? plan.modelStore.get(`${e.brandId}/${e.model}`) : undefined
        const next: LogEntry = storeId !== undefined ? { ...e, storeId } : e
        if (storeId !== undefined) batch.push(put(s.log, tupleKey(e.id), next))
        batch.push(...logIndexOps(s, next))
      }
      await write(batch)
      after = tupleKey(entries[entries.length - 1]!.id)
    }

    const last: Op[] = []
    for (const t of (await s.token.values().all()) as TokenRecord[]) if (t.kind === undefined) last.push(put(s.token, t.hash, { ...t, kind: 'admin' }))
    last.push(put(s.sys, 'layout', '2'))
    await write(last)
  },
}

export const LAYOUT_MIGRATIONS: readonly LayoutMigration[] = [toStores]

/**
 * Brings the database to LAYOUT_VERSION. A fresh database is stamped with it;
 * older data is migrated step by step; newer data is refused with
 * SV_STORE_TOO_NEW (exit 2: retrying never helps). Resolves with the version found (undefined when fresh).
 */
export async function migrateLayout(s: Sublevels, write: (ops: Op[]) => Promise<void>, now: number, migrations: readonly LayoutMigration[] = LAYOUT_MIGRATIONS): Promise<number | undefined> {
  const text = (await s.sys.get('layout')) as string | undefined
  if (text === undefined) {
    await write([put(s.sys, 'layout', String(LAYOUT_VERSION))])
    return undefined
  }
  const found = Number(text)
  if (!Number.isSafeInteger(found) || found < 1) throw new VaultError('SV_STORE_TOO_NEW', `the LevelDB data has an unknown layout ${JSON.stringify(text)}`, { details: { layout: text, expected: LAYOUT_VERSION } })
  if (found > LAYOUT_VERSION) {
    throw new VaultError('SV_STORE_TOO_NEW', `the LevelDB data was written by a newer vault (layout ${found}; this vault knows up to ${LAYOUT_VERSION})`, { details: { layout: found, expected: LAYOUT_VERSION } })
  }
  for (let v = found; v < LAYOUT_VERSION; ) {
    const m = migrations.find((x) => x.from === v)
    if (!m) throw new VaultError('SV_STORE_TOO_NEW', `no migration from LevelDB layout ${v}`, { details: { layout: v, expected: LAYOUT_VERSION } })
    await m.run(s, write, now)
    v = m.to
  }
  return found
}
