/**
 * Upgrade of a real PostgreSQL schema written by the previous release
 * (migration 1 only): fixtures/upgrade/pg-schema-1.sql is a `pg_dump
 * --inserts` of the schema `sv_fixture_v1` (what is in it:
 * fixtures/upgrade/make-pg-schema-1.sh). Each test loads it into a fresh
 * schema (renaming `sv_fixture_v1` in the text), dropped in teardown, and
 * opens a PostgresStore on it. Like postgres-store.test.ts this needs
 * PostgreSQL at SV_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test)
 * and fails, rather than skips, without it.
 */
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import pg from 'pg'
import { PostgresStore } from '../../../vault-server/src/store/postgres-store.js'
import { GENESIS_HASH } from '../../../vault-server/src/store/store.js'
import { migrate } from '../../../vault-server/src/store/postgres/migrate.js'
import { MIGRATIONS } from '../../../vault-server/src/store/postgres/migrations/index.js'
import { binding, drain, issuedLog, subStoreRecord } from '../../conformance/store-suite.js'
import { EXPECTED_MODEL_STORE, OLD_BRANDS, OLD_LOG, OLD_MODELS, OLD_TOKENS, expectedLog, expectedStores } from './upgrade-data.js'

const url = process.env.SV_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const DUMP = new URL('../../../fixtures/upgrade/pg-schema-1.sql', import.meta.url)
const BRAND = 'fixture-brand'
const MODEL = 'fixture-gateway'
/** The model has no `store` header: store-migration.ts names the base store after the brand. */
const BASE_STORE = 'fixture-brand'

let admin: pg.Pool | undefined

test.before(async () => {
  admin = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5000 })
  admin.on('error', () => {})
  try {
    await admin.query('SELECT 1')
  } catch (err) {
    throw new Error(`PostgreSQL is not reachable at ${url.replace(/:[^:@/]*@/, ':***@')} (set SV_TEST_PG_URL): ${String((err as Error).message)}`)
  }
})

test.after.always(async () => {
  await admin?.end()
})

/** Loads the dump into a fresh schema (dropped in teardown) and resolves with its name. */
async function loadFixture(t: ExecutionContext): Promise<string> {
  const schema = `sv_upgrade_${randomBytes(6).toString('hex')}`
  t.teardown(async () => {
    await admin!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  })
  const text = (await readFile(DUMP, 'utf8'))
    .split('\n')
    // psql meta-commands (\restrict, \unrestrict) are not SQL
    .filter((line) => !line.startsWith('\\'))
    .join('\n')
    .replaceAll('sv_fixture_v1', schema)
  // One client of its own: the dump changes the session's search_path.
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(text)
  } finally {
    await client.end()
  }
  return schema
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

function openStore(t: ExecutionContext, schema: string, migrated: Array<[number, number]>): PostgresStore {
  const store = new PostgresStore({ connectionString: url, schema, max: 3, onMigrated: (from, to) => migrated.push([from, to]) })
  t.teardown(() => store.close())
  return store
}

async function rows(schema: string, sql: string): Promise<Array<Record<string, unknown>>> {
  return (await admin!.query(sql.replaceAll('$schema', `"${schema}"`))).rows
}

test('PostgresStore upgrade: a migration-1 schema of the previous release is migrated with every record kept', async (t) => {
  const schema = await loadFixture(t)
  const old = {
    bindings: await rows(schema, 'SELECT * FROM $schema.serial_bindings ORDER BY serial'),
    log: await rows(schema, 'SELECT * FROM $schema.signing_log ORDER BY id'),
    tokens: await rows(schema, 'SELECT * FROM $schema.admin_tokens ORDER BY hash'),
    keys: await rows(schema, 'SELECT key_id, account_id, purpose FROM $schema.signing_keys ORDER BY key_id'),
    requestIds: await rows(schema, 'SELECT id FROM $schema.consumed_request_ids'),
    model: (await rows(schema, 'SELECT * FROM $schema.models'))[0]!,
  }
  t.deepEqual([old.bindings.length, old.log.length, old.tokens.length, old.keys.length, old.requestIds.length], [2, 2, 2, 2, 2])

  const migrated: Array<[number, number]> = []
  const store = openStore(t, schema, migrated)
  await store.open()
  t.deepEqual(migrated, [[1, 3]])
  t.deepEqual(await rows(schema, 'SELECT version, name FROM $schema.schema_migrations ORDER BY version'), [
    { version: 1, name: 'initial' },
    { version: 2, name: 'stores' },
    { version: 3, name: 'work-orders' },
  ])

  // brand, keys and the base store
  t.deepEqual((await store.brands.listBrands()).map((b) => [b.id, b.displayName, b.origin]), [[BRAND, 'Fixture Brand', 'vault-root']])
  t.deepEqual((await store.keys.list()).map((k) => [k.keyId, k.accountId, k.purpose]), old.keys.map((k) => [k.key_id, k.account_id, k.purpose]))
  const stores = await store.stores.list()
  t.is(stores.length, 1)
  t.like(stores[0], { id: BASE_STORE, brandId: BRAND, kind: 'base', displayName: 'Fixture Brand', requirePivotReview: false })
  t.is(stores[0]!.parentId, undefined)
  t.true((await store.stores.version()) >= 1)

  // the model, in the base store, otherwise unchanged
  const model = (await store.brands.getModel(BRAND, MODEL))!
  t.like(model, {
    brandId: BRAND,
    name: MODEL,
    storeId: BASE_STORE,
    signingKeyId: old.model.signing_key_id,
    apiKeyHashes: old.model.api_key_hashes,
    serialPolicy: { kind: 'device' },
    duplicatePolicy: old.model.duplicate_policy,
    modelHeaders: old.model.model_headers,
    modelAssertion: old.model.model_assertion,
    revision: old.model.revision,
    createdAt: Number(old.model.created_at),
  })
  t.deepEqual(await store.brands.listModels({ storeId: BASE_STORE }), [model])
  t.deepEqual(await store.brands.findModelsByApiKeyHash(sha256('fixture-api-key-0123456789')), [model])

  // both bindings, by serial and by device key
  t.deepEqual(old.bindings.map((b) => b.serial), ['FX-PG-0001', 'FX-PG-0002'])
  for (const r of old.bindings) {
    const want = {
      brandId: BRAND,
      model: MODEL,
      serial: r.serial,
      deviceKeyId: r.device_key_id,
      revision: r.revision,
      serialAssertion: r.serial_assertion,
      requestId: r.request_id,
      issuedAt: Number(r.issued_at),
      released: r.released,
    }
    t.deepEqual(await store.registrations.getBinding(BRAND, MODEL, r.serial as string), want)
    t.deepEqual(await store.registrations.getBindingByDeviceKey(BRAND, MODEL, r.device_key_id as string), want)
  }

  // log entries with their store, findable by store and device key
  const log = (await store.signingLog.query({ limit: 1000 })).entries
  t.deepEqual(log.map((e) => [e.id, e.outcome, e.serial, e.deviceKeyId, e.storeId, e.requestId, e.transport]), old.log.map((r) => [r.id, 'issued', r.serial, r.device_key_id, BASE_STORE, r.request_id, 'https']))
  t.deepEqual((await store.signingLog.query({ storeIds: [BASE_STORE] })).entries, log)
  t.deepEqual(await drain(store.signingLog.export({ storeIds: [BASE_STORE] })), log)
  for (const e of log) t.deepEqual((await store.signingLog.query({ deviceKeyId: e.deviceKeyId! })).entries, [e])

  // tokens: the table is renamed, every token an admin token
  t.deepEqual(await rows(schema, `SELECT table_name FROM information_schema.tables WHERE table_schema = '${schema}' AND table_name IN ('admin_tokens', 'tokens')`), [{ table_name: 'tokens' }])
  const tokens = await store.tokens.list()
  t.deepEqual(tokens, old.tokens.map((r) => ({ hash: r.hash, name: r.name, roles: r.roles, createdAt: Number(r.created_at), kind: 'admin' })))
  t.deepEqual(tokens.map((tok) => tok.name).sort(), ['init', 'ops'])
  t.deepEqual(await store.tokens.list({ kind: 'admin' }), tokens)

  // request-ids stay used; settings stay; the audit chain starts empty
  for (const r of old.requestIds) await t.throwsAsync(store.registrations.consumeRequestId(r.id as string, Date.now()), { code: 'SV_REQUEST_ID_USED' })
  t.is(await store.meta.get('root-authority-id'), 'fixture-root')
  t.truthy(await store.meta.get('root-account'))
  t.deepEqual(await store.audit.head(), { seq: 0, hash: GENESIS_HASH })

  // and migration 2's constraints hold on the migrated data
  await store.stores.create(subStoreRecord('fixture-line', BRAND, BASE_STORE))
  await store.brands.updateModel({ ...model, storeId: 'fixture-line' })
  await t.throwsAsync(store.brands.updateModel({ ...model, storeId: 'nope' }), { code: 'SV_STORE_NOT_FOUND' })
  const b = binding('FX-PG-0003', 'dk-new', { brandId: BRAND, model: MODEL })
  await store.registrations.bind(b, issuedLog(b, Date.now(), { storeId: 'fixture-line' }), 0)
  const taken = binding('FX-PG-0001', 'dk-other', { brandId: BRAND, model: MODEL })
  await t.throwsAsync(store.registrations.bind(taken, issuedLog(taken), 0), { code: 'SV_SERIAL_TAKEN' })
  t.deepEqual((await store.signingLog.query({ storeIds: ['fixture-line'] })).entries.map((e) => e.serial), ['FX-PG-0003'])
  t.is((await store.signingLog.query({ storeIds: [BASE_STORE] })).entries.length, 2)
})

test('PostgresStore upgrade: a second open migrates nothing', async (t) => {
  const schema = await loadFixture(t)
  const migrated: Array<[number, number]> = []
  const first = openStore(t, schema, migrated)
  await first.open()
  const stores = await first.stores.list()
  const models = await first.brands.listModels()
  await first.close()
  const second = openStore(t, schema, migrated)
  await second.open()
  t.deepEqual(migrated, [[1, 3]])
  t.deepEqual(await second.stores.list(), stores)
  t.deepEqual(await second.brands.listModels(), models)
  t.is((await rows(schema, 'SELECT count(*)::int AS n FROM $schema.schema_migrations'))[0]!.n, 3)
})

test('PostgresStore upgrade: two instances opening a migration-1 schema together migrate it once', async (t) => {
  const schema = await loadFixture(t)
  const migrated: Array<[number, number]> = []
  const a = openStore(t, schema, migrated)
  const b = openStore(t, schema, migrated)
  await Promise.all([a.open(), b.open()])
  t.deepEqual(migrated, [[1, 3]])
  t.deepEqual(await a.stores.list(), await b.stores.list())
  t.is((await b.stores.list()).length, 1)
})

/** A schema at migration 1 holding the synthetic data of upgrade-data.ts, as the previous release wrote it. */
async function schemaWithOldData(t: ExecutionContext): Promise<string> {
  const schema = `sv_upgrade_${randomBytes(6).toString('hex')}`
  t.teardown(async () => {
    await admin!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  })
  await migrate(admin!, schema, MIGRATIONS.filter((m) => m.version === 1))
  const client = await admin!.connect()
  try {
    await client.query(`SET search_path TO "${schema}"`)
    for (const b of OLD_BRANDS) await client.query('INSERT INTO brands VALUES ($1, $2, $3, $4, $5)', [b.id, b.displayName, b.origin, b.accountAssertion, b.createdAt])
    for (const m of OLD_MODELS) {
      await client.query('INSERT INTO models VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)', [
        m.brandId, m.name, m.signingKeyId, m.apiKeyHashes, JSON.stringify(m.serialPolicy), m.duplicatePolicy, JSON.stringify(m.modelHeaders), m.modelAssertion, m.revision, m.createdAt, m.updatedAt,
      ])
    }
    for (const e of OLD_LOG) {
      await client.query('INSERT INTO signing_log (id, logged_at, outcome, code, brand_id, model, serial, device_key_id, revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
        e.id, e.time, e.outcome, e.code ?? null, e.brandId ?? null, e.model ?? null, e.serial ?? null, e.deviceKeyId ?? null, e.revision ?? null,
      ])
    }
    for (const tok of OLD_TOKENS) await client.query('INSERT INTO admin_tokens VALUES ($1, $2, $3, $4)', [tok.hash, tok.name, tok.roles, tok.createdAt])
  } finally {
    await client.query('RESET search_path').catch(() => {})
    client.release()
  }
  return schema
}

test('PostgresStore upgrade: several brands, product stores and many log entries get the same stores as LevelDB layout 2', async (t) => {
  const schema = await schemaWithOldData(t)
  const migrated: Array<[number, number]> = []
  const store = openStore(t, schema, migrated)
  const before = Date.now()
  await store.open()
  t.deepEqual(migrated, [[1, 3]])
  const stores = await store.stores.list()
  const now = stores[0]!.createdAt
  t.true(now >= before && now <= Date.now())
  t.deepEqual(stores, expectedStores(now))
  for (const m of OLD_MODELS) t.deepEqual(await store.brands.getModel(m.brandId, m.name), { ...m, storeId: EXPECTED_MODEL_STORE[`${m.brandId}/${m.name}`]! })
  for (const st of stores) {
    const names = Object.entries(EXPECTED_MODEL_STORE).filter(([, s]) => s === st.id).map(([k]) => k)
    t.deepEqual((await store.brands.listModels({ storeId: st.id })).map((m) => `${m.brandId}/${m.name}`), names, st.id)
  }
  const log = expectedLog()
  t.deepEqual(await drain(store.signingLog.export({})), log)
  for (const st of stores) t.deepEqual(await drain(store.signingLog.export({ storeIds: [st.id] })), log.filter((e) => e.storeId === st.id), st.id)
  t.deepEqual(await drain(store.signingLog.export({ deviceKeyId: 'dk-7' })), log.filter((e) => e.deviceKeyId === 'dk-7'))
  t.deepEqual(await store.tokens.list(), OLD_TOKENS.map((tok) => ({ ...tok, kind: 'admin' })))
})
