import test from 'ava'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { openStore, type StoreConfig } from '../../../vault-server/src/store/open-store.js'
import { baseStoreRecord, brandRecord } from '../../conformance/store-suite.js'

const pgUrl = process.env.SV_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

test('openStore: memory gives an open, single-process store', async (t) => {
  const lines: Array<[Record<string, unknown>, string]> = []
  const store = await openStore({ driver: 'memory' }, { log: { info: (fields, msg) => lines.push([fields, msg]) } })
  t.teardown(() => store.close())
  await store.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme'))
  t.is((await store.brands.getBrand('acme'))?.id, 'acme')
  t.false(store.traits.multiProcess)
  t.deepEqual(lines, [[{ driver: 'memory', multiProcess: false }, 'store.opened']])
})

test('openStore: level creates the directory and keeps data across stores', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sv-open-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const config: StoreConfig = { driver: 'level', path: join(dir, 'nested', 'db') }
  const first = await openStore(config)
  await first.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme'))
  await first.close()
  const second = await openStore(config)
  t.teardown(() => second.close())
  t.is((await second.brands.getBrand('acme'))?.id, 'acme')
})

test('openStore: postgres opens in the given schema with migrations applied', async (t) => {
  const schema = `sv_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: pgUrl })
  await admin.connect()
  t.teardown(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await admin.end()
  })
  const store = await openStore({ driver: 'postgres', url: pgUrl, schema, poolSize: 2 })
  t.teardown(() => store.close())
  t.true(store.traits.multiProcess)
  await store.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme'))
  const { rows } = await admin.query(`SELECT id FROM "${schema}".brands`)
  t.deepEqual(rows, [{ id: 'acme' }])
})

test('openStore: an unreachable postgres rejects SV_STORE_UNAVAILABLE', async (t) => {
  await t.throwsAsync(openStore({ driver: 'postgres', url: 'postgres://postgres@127.0.0.1:1/test' }), {
    code: 'SV_STORE_UNAVAILABLE',
  })
})

test('openStore: an unknown driver is a programmer error', async (t) => {
  await t.throwsAsync(openStore({ driver: 'redis' } as unknown as StoreConfig), { instanceOf: TypeError })
})
