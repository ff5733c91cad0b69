import test from 'ava'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import { Level } from 'level'
import { MemoryLevel } from 'memory-level'
import { LevelStore } from '../../../vault-server/src/store/level-store.js'
import { baseStoreRecord, binding, brandRecord, logEntry, storeSuite } from '../../conformance/store-suite.js'
import type { VaultError } from '@sv/shared'

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
  await first.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme'))
  await first.registrations.bind(b, log, 0)
  await first.registrations.consumeRequestId('req-1', Date.UTC(2030, 0, 1))
  const numbers = [await first.registrations.nextSerialNumber('acme', 'widget', 1), await first.registrations.nextSerialNumber('acme', 'widget', 1)]
  await first.close()

  const second = new LevelStore(new Level(path))
  t.teardown(() => second.close())
  await second.open()
  t.deepEqual(await second.brands.getBrand('acme'), brandRecord('acme'))
  t.deepEqual(await second.stores.get('acme'), baseStoreRecord('acme'))
  t.deepEqual(await second.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-1'), b)
  t.deepEqual((await second.signingLog.query({ serial: 'SN-1' })).entries, [log])
  await t.throwsAsync(second.registrations.consumeRequestId('req-1', Date.UTC(2030, 0, 1)), { code: 'SV_REQUEST_ID_USED' })
  t.deepEqual(numbers, [1, 2])
  t.is(await second.registrations.nextSerialNumber('acme', 'widget', 1), 3)
})

test('LevelStore(classic-level): a directory held by an open store is SV_STORE_LOCKED to a second one, naming the directory', async (t) => {
  const path = join(await tempDir(t), 'db')
  const first = new LevelStore(new Level(path))
  t.teardown(() => first.close())
  await first.open()
  const second = new LevelStore(new Level(path))
  t.teardown(() => second.close())
  const err = await t.throwsAsync<VaultError>(second.open(), { code: 'SV_STORE_LOCKED' })
  t.deepEqual(err?.details, { reason: 'locked', path })
  await t.throwsAsync(second.ping(), { code: 'SV_STORE_NOT_OPEN' })
})

// Issue 13: damaged files are not "unavailable" (a retry never heals them):
// SV_STORE_CORRUPT names the directory and LevelDB's cause.
test('LevelStore(classic-level): a damaged manifest or a path that is a file is SV_STORE_CORRUPT with the directory and the cause', async (t) => {
  const path = join(await tempDir(t), 'db')
  const first = new LevelStore(new Level(path))
  await first.open()
  await first.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme'))
  await first.close()
  const manifest = (await readdir(path)).find((f) => f.startsWith('MANIFEST-'))!
  await writeFile(join(path, manifest), Buffer.alloc(200, 0x5a))
  const damaged = new LevelStore(new Level(path))
  t.teardown(() => damaged.close())
  const err = await t.throwsAsync<VaultError>(damaged.open(), { code: 'SV_STORE_CORRUPT' })
  t.is(err?.details?.path, path)
  t.is(err?.details?.reason, 'corruption')
  t.regex(String(err?.details?.cause), /^Corruption: /)
  t.true(err!.message.includes(path))

  const file = join(await tempDir(t), 'not-a-dir')
  await writeFile(file, 'x')
  const onFile = new LevelStore(new Level(file))
  t.teardown(() => onFile.close())
  const e2 = await t.throwsAsync<VaultError>(onFile.open(), { code: 'SV_STORE_CORRUPT' })
  t.deepEqual([e2?.details?.path, e2?.details?.reason], [file, 'EEXIST'])
})

test('LevelStore: refuses data written with another key layout', async (t) => {
  const db = new MemoryLevel()
  await db.sublevel('sys').put('layout', '999')
  const store = new LevelStore(db)
  t.teardown(() => store.close())
  await t.throwsAsync(store.open(), { code: 'SV_STORE_TOO_NEW' })
})

// A request-id use is not written on its own: it rides in the next batch
// (consumeRequestId). Shown here with a real SIGKILL: the use written with the
// binding that followed it survives; and a clean close writes pending uses.
test('LevelStore(classic-level): a request-id use is durable with the next write (SIGKILL after it) and at close', async (t) => {
  const path = join(await tempDir(t), 'db')
  const script = `
    import { Level } from 'level'
    import { LevelStore } from ${JSON.stringify(new URL('../../../vault-server/src/store/level-store.ts', import.meta.url).href)}
    import { binding, logEntry } from ${JSON.stringify(new URL('../../conformance/fixtures.ts', import.meta.url).href)}
    const store = new LevelStore(new Level(${JSON.stringify(path)}))
    await store.open()
    await store.registrations.consumeRequestId('req-bound', Date.UTC(2030, 0, 1))
    await store.registrations.bind(binding('SN-K', 'dk-k'), logEntry(Date.UTC(2026, 0, 1), { brandId: 'acme', model: 'widget', serial: 'SN-K' }), 0)
    process.stdout.write('bound\\n')
    setInterval(() => {}, 1000)
  `
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  const exited = new Promise((r) => child.once('exit', r))
  const deadline = Date.now() + 30_000
  while (!out.includes('bound') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.true(out.includes('bound'), err)
  child.kill('SIGKILL')
  await exited

  const store = new LevelStore(new Level(path))
  await store.open()
  t.is((await store.registrations.getBinding('acme', 'widget', 'SN-K'))?.deviceKeyId, 'dk-k')
  await t.throwsAsync(store.registrations.consumeRequestId('req-bound', Date.UTC(2030, 0, 1)), { code: 'SV_REQUEST_ID_USED' })
  // no write after this use: close writes it
  await store.registrations.consumeRequestId('req-closed', Date.UTC(2030, 0, 1))
  await store.close()
  const again = new LevelStore(new Level(path))
  t.teardown(() => again.close())
  await again.open()
  await t.throwsAsync(again.registrations.consumeRequestId('req-closed', Date.UTC(2030, 0, 1)), { code: 'SV_REQUEST_ID_USED' })
})
