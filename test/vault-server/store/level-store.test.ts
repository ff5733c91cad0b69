import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import { Level } from 'level'
import { MemoryLevel } from 'memory-level'
import { LevelStore } from '../../../vault-server/src/store/level-store.js'
import { binding, brandRecord, logEntry, storeSuite } from '../../conformance/store-suite.js'

/** A fresh directory under the OS temp dir, removed in teardown (after the store has closed). */
async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sv-level-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

storeSuite(test, {
  name: 'LevelStore(memory-level)',
  factory: () => new LevelStore(new MemoryLevel()),
  supports: { reopen: true, multiProcess: false },
})

storeSuite(test, {
  name: 'LevelStore(classic-level)',
  factory: async (t) => new LevelStore(new Level(join(await tempDir(t), 'db'))),
  supports: { reopen: true, multiProcess: false },
})

test('LevelStore(classic-level): a new store on the same directory finds the data', async (t) => {
  const path = join(await tempDir(t), 'db')
  const first = new LevelStore(new Level(path))
  await first.open()
  const b = binding('SN-1', 'dk-1')
  const log = logEntry(Date.UTC(2026, 0, 1), { brandId: 'acme', model: 'widget', serial: 'SN-1' })
  await first.createBrand(brandRecord('acme'))
  await first.bindSerial(b, log, 0)
  await first.consumeRequestId('req-1', Date.UTC(2030, 0, 1))
  const numbers = [await first.nextSerialNumber('acme', 'widget', 1), await first.nextSerialNumber('acme', 'widget', 1)]
  await first.close()

  const second = new LevelStore(new Level(path))
  t.teardown(() => second.close())
  await second.open()
  t.deepEqual(await second.getBrand('acme'), brandRecord('acme'))
  t.deepEqual(await second.getSerialBindingByDeviceKey('acme', 'widget', 'dk-1'), b)
  t.deepEqual((await second.queryLog({ serial: 'SN-1' })).entries, [log])
  await t.throwsAsync(second.consumeRequestId('req-1', Date.UTC(2030, 0, 1)), { code: 'SV_REQUEST_ID_USED' })
  t.deepEqual(numbers, [1, 2])
  t.is(await second.nextSerialNumber('acme', 'widget', 1), 3)
})

test('LevelStore(classic-level): a directory held by an open store is SV_STORE_UNAVAILABLE to a second one', async (t) => {
  const path = join(await tempDir(t), 'db')
  const first = new LevelStore(new Level(path))
  t.teardown(() => first.close())
  await first.open()
  const second = new LevelStore(new Level(path))
  t.teardown(() => second.close())
  await t.throwsAsync(second.open(), { code: 'SV_STORE_UNAVAILABLE' })
  await t.throwsAsync(second.ping(), { code: 'SV_STORE_NOT_OPEN' })
})

test('LevelStore: refuses data written with another key layout', async (t) => {
  const db = new MemoryLevel()
  await db.sublevel('sys').put('layout', '999')
  const store = new LevelStore(db)
  t.teardown(() => store.close())
  await t.throwsAsync(store.open(), { code: 'SV_STORE_UNAVAILABLE' })
})
