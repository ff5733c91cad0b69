/**
 * Upgrade of a real LevelDB data directory written by the previous release
 * (layout 1, fixtures/upgrade/level-layout-1.tar.gz; what is in it:
 * fixtures/upgrade/make-level-layout-1.sh) to layout 2. The JSON and
 * assertion files beside `data/` are what the CLI printed when it was made.
 *
 * Each test extracts its own copy into a temp dir (tar, spawned).
 */
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Level } from 'level'
import { MemoryLevel } from 'memory-level'
import { LevelStore, type LevelDatabase } from '../../../vault-server/src/store/level-store.js'
import { GENESIS_HASH, type BrandRecord, type LogEntry, type ModelRecord, type SerialBinding, type SigningKeyRecord, type TokenRecord } from '../../../vault-server/src/store/store.js'
import { tupleKey } from '../../../vault-server/src/store/level/layout.js'
import { binding, drain, issuedLog, subStoreRecord } from '../../conformance/store-suite.js'
import { EXPECTED_MODEL_STORE, OLD_BRANDS, OLD_LOG, OLD_MODELS, OLD_TOKENS, expectedLog, expectedStores } from './upgrade-data.js'

const FIXTURE = fileURLToPath(new URL('../../../fixtures/upgrade/level-layout-1.tar.gz', import.meta.url))
/** `now` of the migrations in these tests, so that two runs write the same bytes. */
const NOW = Date.UTC(2027, 0, 1)
const BRAND = 'fixture-brand'
const GATEWAY = 'fixture-gateway'
const SENSOR = 'fixture-sensor'
/** The `store` header both models carry: store-migration.ts makes it the brand's base store. */
const BASE_STORE = 'fixture-store'

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d) => (err += d))
    child.once('error', reject)
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${err}`))))
  })
}

/** A fresh copy of the fixture; resolves with its `level-layout-1` directory. */
async function extract(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sv-level-upgrade-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await run('tar', ['-xzf', FIXTURE, '-C', dir])
  return join(dir, 'level-layout-1')
}

/** Every key and value of the database, as raw text (the store must be closed). */
async function dump(path: string): Promise<Array<[string, string]>> {
  const db = new Level<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  await db.open()
  try {
    return await db.iterator().all()
  } finally {
    await db.close()
  }
}

/** The records of one sublevel of a raw dump, by key (without the sublevel prefix). */
function records<T>(raw: Array<[string, string]>, sublevel: string): Map<string, T> {
  const prefix = `!${sublevel}!`
  return new Map(raw.filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), JSON.parse(v) as T]))
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

async function json<T>(dir: string, name: string): Promise<T> {
  return JSON.parse(await readFile(join(dir, name), 'utf8')) as T
}

function openStore(t: ExecutionContext, db: LevelDatabase, migrated: Array<[number, number]>): LevelStore {
  const store = new LevelStore(db, { now: () => NOW, onMigrated: (from, to) => migrated.push([from, to]) })
  t.teardown(() => store.close())
  return store
}

test('LevelStore upgrade: layout-1 data of the previous release is migrated to layout 2 with every record kept', async (t) => {
  const dir = await extract(t)
  const dbPath = join(dir, 'data', 'db')
  const before = await dump(dbPath)
  t.deepEqual(before.filter(([k]) => k === '!sys!layout'), [['!sys!layout', '1']])
  const old = {
    brands: [...records<BrandRecord>(before, 'brand').values()],
    keys: [...records<SigningKeyRecord>(before, 'key').values()],
    models: [...records<Omit<ModelRecord, 'storeId'>>(before, 'model').values()],
    bindings: [...records<SerialBinding>(before, 'serial').values()],
    log: [...records<LogEntry>(before, 'log').values()],
    tokens: [...records<Omit<TokenRecord, 'kind'>>(before, 'token').values()],
  }
  // what the fixture holds, from make-level-layout-1.sh
  t.deepEqual([old.brands.length, old.keys.length, old.models.length, old.bindings.length, old.log.length, old.tokens.length], [1, 2, 2, 3, 4, 2])

  const migrated: Array<[number, number]> = []
  const store = openStore(t, new Level(dbPath), migrated)
  await store.open()
  t.deepEqual(migrated, [[1, 2]])

  // brand, keys, base store
  const brandJson = await json<{ brand: string; displayName: string; keyId: string; rootId: string }>(dir, 'brand.json')
  t.deepEqual(await store.brands.listBrands(), old.brands)
  t.is((await store.brands.getBrand(BRAND))?.displayName, brandJson.displayName)
  t.deepEqual(await store.keys.list(), [...old.keys].sort((a, b) => (a.keyId < b.keyId ? -1 : 1)))
  t.deepEqual((await store.keys.list(BRAND)).map((k) => [k.keyId, k.purpose]), [[brandJson.keyId, 'brand']])
  t.deepEqual((await store.keys.list(brandJson.rootId)).map((k) => k.purpose), ['root'])
  t.deepEqual(await store.stores.list(), [
    { id: BASE_STORE, brandId: BRAND, kind: 'base', displayName: brandJson.displayName, requirePivotReview: false, createdAt: NOW, updatedAt: NOW },
  ])
  t.deepEqual(await store.stores.list({ brandId: BRAND }), await store.stores.list())
  t.true((await store.stores.version()) >= 1)

  // both models, in the base store, otherwise unchanged
  const models = await store.brands.listModels()
  t.deepEqual(models, old.models.map((m) => ({ ...m, storeId: BASE_STORE })))
  t.deepEqual((await store.brands.listModels({ storeId: BASE_STORE })).map((m) => m.name), [GATEWAY, SENSOR])
  t.deepEqual((await store.brands.findModelsByApiKeyHash(sha256('fixture-api-key-0123456789'))).map((m) => m.name).sort(), [GATEWAY, SENSOR])
  const model1 = await json<{ signingKeyId: string; serialPolicy: unknown; duplicatePolicy: string }>(dir, 'model1.json')
  const model2 = await json<{ signingKeyId: string; serialPolicy: unknown; duplicatePolicy: string }>(dir, 'model2.json')
  const gateway = (await store.brands.getModel(BRAND, GATEWAY))!
  const sensor = (await store.brands.getModel(BRAND, SENSOR))!
  t.deepEqual([gateway.signingKeyId, gateway.serialPolicy, gateway.duplicatePolicy], [model1.signingKeyId, model1.serialPolicy, model1.duplicatePolicy])
  t.deepEqual([sensor.signingKeyId, sensor.serialPolicy, sensor.duplicatePolicy], [model2.signingKeyId, model2.serialPolicy, model2.duplicatePolicy])
  t.is(gateway.modelAssertion, await readFile(join(dir, 'model1.assert'), 'utf8'))
  t.is(gateway.modelHeaders.store, BASE_STORE)

  // every binding, by serial and by device key
  for (const b of old.bindings) {
    t.deepEqual(await store.registrations.getBinding(b.brandId, b.model, b.serial), b)
    t.deepEqual(await store.registrations.getBindingByDeviceKey(b.brandId, b.model, b.deviceKeyId), b)
  }
  t.deepEqual(old.bindings.map((b) => `${b.model}/${b.serial}`).sort(), [`${GATEWAY}/FX-GW-0001`, `${GATEWAY}/FX-GW-0002`, `${SENSOR}/FX-000001`])
  const serial1 = await readFile(join(dir, 'serial1.assert'), 'utf8')
  const first = (await store.registrations.getBinding(BRAND, GATEWAY, 'FX-GW-0001'))!
  t.true(serial1.startsWith(first.serialAssertion))
  const deviceKey1 = /^device-key-sha3-384: (.+)$/m.exec(serial1)![1]!
  t.is(first.deviceKeyId, deviceKey1)

  // every log entry, with its store, findable by store and by device key
  const log = old.log.map((e) => ({ ...e, storeId: BASE_STORE })).sort((a, b) => (a.id < b.id ? -1 : 1))
  t.deepEqual((await store.signingLog.query({ limit: 1000 })).entries, log)
  t.deepEqual((await store.signingLog.query({ storeIds: [BASE_STORE] })).entries, log)
  t.deepEqual(await drain(store.signingLog.export({ storeIds: [BASE_STORE, 'nope'] })), log)
  for (const e of log) t.deepEqual((await store.signingLog.query({ deviceKeyId: e.deviceKeyId!, storeIds: [BASE_STORE] })).entries, [e])
  t.deepEqual((await store.signingLog.query({ deviceKeyId: deviceKey1 })).entries.map((e) => [e.serial, e.outcome]), [['FX-GW-0001', 'issued']])
  const refused = (await store.signingLog.query({ outcome: 'refused', storeIds: [BASE_STORE] })).entries
  t.deepEqual(refused.map((e) => [e.serial, e.code, e.model, e.storeId]), [['FX-GW-0001', 'SV_SERIAL_TAKEN', GATEWAY, BASE_STORE]])
  t.deepEqual((await store.signingLog.query({ serial: 'FX-GW-0001' })).entries.map((e) => e.outcome), ['issued', 'refused'])
  t.deepEqual((await store.signingLog.query({ brandId: BRAND, model: SENSOR })).entries.map((e) => e.serial), ['FX-000001'])

  // both tokens, as admin tokens
  const tokens = await store.tokens.list()
  t.deepEqual(tokens, old.tokens.map((tok) => ({ ...tok, kind: 'admin' })).sort((a, b) => (a.hash < b.hash ? -1 : 1)))
  t.deepEqual(await store.tokens.list({ kind: 'admin' }), tokens)
  const opsToken = await json<{ token: string }>(dir, 'token.json')
  const init = await json<{ adminToken: string }>(dir, 'init.json')
  t.is((await store.tokens.get(sha256(opsToken.token)))?.name, 'ops')
  t.is((await store.tokens.get(sha256(init.adminToken)))?.name, 'init')

  // the sequence continues, request-ids stay used, settings stay
  t.is(await store.registrations.nextSerialNumber(BRAND, SENSOR, 1), 2)
  for (const e of old.log) await t.throwsAsync(store.registrations.consumeRequestId(e.requestId!, NOW), { code: 'SV_REQUEST_ID_USED' })
  t.is(await store.meta.get('root-authority-id'), brandJson.rootId)
  t.truthy(await store.meta.get('root-account'))
  t.deepEqual(await store.audit.head(), { seq: 0, hash: GENESIS_HASH })

  // and layout 2 works on it
  await store.stores.create(subStoreRecord('fixture-line', BRAND, BASE_STORE))
  await store.brands.updateModel({ ...gateway, storeId: 'fixture-line' })
  const b = binding('FX-GW-0003', 'dk-new', { brandId: BRAND, model: GATEWAY })
  await store.registrations.bind(b, issuedLog(b, NOW, { storeId: 'fixture-line' }), 0)
  t.deepEqual((await store.signingLog.query({ storeIds: ['fixture-line'] })).entries.map((e) => e.serial), ['FX-GW-0003'])
  t.is((await store.signingLog.query({ storeIds: [BASE_STORE] })).entries.length, 4)
  t.is(await store.registrations.purgeExpired(Number.MAX_SAFE_INTEGER), 4)

  await store.close()
  t.deepEqual((await dump(dbPath)).filter(([k]) => k === '!sys!layout'), [['!sys!layout', '2']])
})

test('LevelStore upgrade: a second open does not migrate again and changes nothing', async (t) => {
  const dir = await extract(t)
  const dbPath = join(dir, 'data', 'db')
  const migrated: Array<[number, number]> = []
  const first = openStore(t, new Level(dbPath), migrated)
  await first.open()
  await first.close()
  const afterFirst = await dump(dbPath)
  const second = openStore(t, new Level(dbPath), migrated)
  await second.open()
  t.is((await second.brands.listModels({ storeId: BASE_STORE })).length, 2)
  await second.close()
  t.deepEqual(migrated, [[1, 2]])
  t.deepEqual(await dump(dbPath), afterFirst)
})

/** A database whose batches fail after the first `okBatches` (a crash of the migration, seen from the store). */
function failingAfter(db: Level<string, unknown>, okBatches: number): LevelDatabase & { batches: number } {
  const wrapper = {
    batches: 0,
    open: () => db.open(),
    close: () => db.close(),
    sublevel: db.sublevel.bind(db),
    batch: (ops: unknown[], options: unknown) => {
      if (++wrapper.batches > okBatches) return Promise.reject(Object.assign(new Error('the process died here'), { code: 'TEST_INJECTED' }))
      return (db.batch as (o: unknown[], p: unknown) => Promise<void>)(ops, options)
    },
  }
  return wrapper as unknown as LevelDatabase & { batches: number }
}

const cutShort = test.macro({
  async exec(t, okBatches: number) {
    // the same data migrated in one go, for comparison
    const cleanDir = await extract(t)
    const clean = openStore(t, new Level(join(cleanDir, 'data', 'db')), [])
    await clean.open()
    await clean.close()
    const want = await dump(join(cleanDir, 'data', 'db'))

    const dir = await extract(t)
    const dbPath = join(dir, 'data', 'db')
    const migrated: Array<[number, number]> = []
    const db = failingAfter(new Level(dbPath), okBatches)
    const broken = openStore(t, db, migrated)
    await t.throwsAsync(broken.open(), { code: 'TEST_INJECTED' })
    t.is(db.batches, okBatches + 1)
    await t.throwsAsync(broken.ping(), { code: 'SV_STORE_NOT_OPEN' })
    t.deepEqual(migrated, [])
    // still layout 1: the migration stamps layout 2 only in its last batch
    t.deepEqual((await dump(dbPath)).filter(([k]) => k === '!sys!layout'), [['!sys!layout', '1']])

    const store = openStore(t, new Level(dbPath), migrated)
    await store.open()
    t.deepEqual(migrated, [[1, 2]])
    t.is((await store.signingLog.query({ storeIds: [BASE_STORE] })).entries.length, 4)
    await store.close()
    t.deepEqual(await dump(dbPath), want)
  },
  title: (_, okBatches: number) => `LevelStore upgrade: a migration cut short after ${okBatches} batch(es) runs again on the next open and ends with the same data`,
})

// The fixture migrates in three batches (stores and models, the log, tokens and the layout stamp).
for (const ok of [0, 1, 2]) test(cutShort, ok)

test('LevelStore upgrade: data with a newer layout is refused with SV_STORE_TOO_NEW and left untouched', async (t) => {
  const dir = await extract(t)
  const dbPath = join(dir, 'data', 'db')
  const raw = new Level<string, string>(dbPath, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  await raw.open()
  await raw.sublevel<string, string>('sys', { keyEncoding: 'utf8', valueEncoding: 'utf8' }).put('layout', '99')
  await raw.close()
  const before = await dump(dbPath)
  const migrated: Array<[number, number]> = []
  const store = openStore(t, new Level(dbPath), migrated)
  await t.throwsAsync(store.open(), { code: 'SV_STORE_TOO_NEW' })
  await t.throwsAsync(store.brands.listBrands(), { code: 'SV_STORE_NOT_OPEN' })
  await store.close()
  t.deepEqual(migrated, [])
  t.deepEqual(await dump(dbPath), before)
})

/** Writes the synthetic data of upgrade-data.ts as layout 1 had it (the sublevels and indexes of that release). */
async function writeLayout1(db: MemoryLevel<string, string>): Promise<void> {
  const sub = (name: string, json = true) => db.sublevel<string, unknown>(name, { keyEncoding: 'utf8', valueEncoding: json ? 'json' : 'utf8' })
  await sub('sys', false).put('layout', '1')
  for (const b of OLD_BRANDS) await sub('brand').put(b.id, b)
  for (const m of OLD_MODELS) {
    await sub('model').put(tupleKey(m.brandId, m.name), m)
    for (const h of m.apiKeyHashes) await sub('model-by-api-key', false).put(tupleKey(h, m.brandId, m.name), '')
  }
  for (const e of OLD_LOG) {
    await sub('log').put(tupleKey(e.id), e)
    await sub('log-by-outcome', false).put(tupleKey(e.outcome, e.id), '')
    if (e.serial !== undefined) await sub('log-by-serial', false).put(tupleKey(e.serial, e.id), '')
    if (e.brandId !== undefined) {
      await sub('log-by-brand', false).put(tupleKey(e.brandId, e.id), '')
      if (e.model !== undefined) await sub('log-by-model', false).put(tupleKey(e.brandId, e.model, e.id), '')
    }
  }
  for (const tok of OLD_TOKENS) await sub('token').put(tok.hash, tok)
}

test('LevelStore upgrade: several brands, product stores and more log entries than one batch get the planned stores', async (t) => {
  const db = new MemoryLevel<string, string>()
  await writeLayout1(db)
  const migrated: Array<[number, number]> = []
  const store = openStore(t, db, migrated)
  await store.open()
  t.deepEqual(migrated, [[1, 2]])
  t.deepEqual(await store.stores.list(), expectedStores(NOW))
  for (const m of OLD_MODELS) t.deepEqual(await store.brands.getModel(m.brandId, m.name), { ...m, storeId: EXPECTED_MODEL_STORE[`${m.brandId}/${m.name}`]! })
  for (const st of expectedStores(NOW)) {
    const names = Object.entries(EXPECTED_MODEL_STORE).filter(([, s]) => s === st.id).map(([k]) => k)
    t.deepEqual((await store.brands.listModels({ storeId: st.id })).map((m) => `${m.brandId}/${m.name}`), names, st.id)
  }
  const log = expectedLog()
  t.deepEqual(await drain(store.signingLog.export({})), log)
  for (const st of expectedStores(NOW)) {
    t.deepEqual(await drain(store.signingLog.export({ storeIds: [st.id] })), log.filter((e) => e.storeId === st.id), st.id)
  }
  t.deepEqual(await drain(store.signingLog.export({ storeIds: ['acme-main', 'acme-extra', 'beta'], order: 'desc' })), log.filter((e) => e.storeId?.startsWith('acme-') || e.storeId === 'beta').reverse())
  t.deepEqual(await drain(store.signingLog.export({ deviceKeyId: 'dk-7' })), log.filter((e) => e.deviceKeyId === 'dk-7'))
  t.true(log.filter((e) => e.storeId === undefined).length > 100)
  t.deepEqual(await store.tokens.list(), OLD_TOKENS.map((tok) => ({ ...tok, kind: 'admin' })))
  t.deepEqual((await store.brands.findModelsByApiKeyHash(OLD_MODELS[0]!.apiKeyHashes[0]!)).map((m) => m.storeId), ['acme-main'])
})
