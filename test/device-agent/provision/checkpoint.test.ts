import test from 'ava'
import type { TestFn } from 'ava'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AgentError } from '../../../device-agent/src/errors.js'
import { CheckpointStore, initialCheckpoint } from '../../../device-agent/src/provision/checkpoint.js'

const it = test as TestFn<{ dir: string }>
it.beforeEach(async (t) => {
  t.context.dir = await mkdtemp(join(tmpdir(), 'sv-checkpoint-'))
})
it.afterEach.always(async (t) => {
  await rm(t.context.dir, { recursive: true, force: true })
})

it('checkpoint: none yet is undefined; save then load round-trips, mode 0600, updatedAt stamped', async (t) => {
  const store = new CheckpointStore(join(t.context.dir, 'state.json'), () => 1234)
  t.is(await store.load(), undefined)
  const cp = initialCheckpoint()
  cp.state = 'request-signed'
  cp.serial = 'S-1'
  cp.keyUsed = true
  cp.timings['request-id-ms'] = 12
  await store.save(cp)
  const back = await store.load()
  t.deepEqual(back, { ...cp, updatedAt: 1234 })
  t.is((await stat(store.path)).mode & 0o777, 0o600)
  await store.remove()
  await store.remove()
  t.is(await store.load(), undefined)
})

it('checkpoint: defaults fill fields an older agent did not write', async (t) => {
  const path = join(t.context.dir, 'state.json')
  await writeFile(path, JSON.stringify({ version: 1, state: 'key-ready', keyId: 'k' }))
  const cp = await new CheckpointStore(path).load()
  t.is(cp?.state, 'key-ready')
  t.false(cp?.keyUsed)
  t.is(cp?.counters.restarts, 0)
  t.deepEqual(cp?.timings, {})
})

const corrupt: [string, string, string][] = [
  ['not JSON', '{"version": 1, "state": ', 'not-json'],
  ['an unknown state', JSON.stringify({ version: 1, state: 'done' }), 'schema'],
  ['an unknown version', JSON.stringify({ version: 2, state: 'new' }), 'schema'],
  ['a wrong type', JSON.stringify({ version: 1, state: 'new', polls: -1 }), 'schema'],
]
for (const [what, text, reason] of corrupt) {
  it(`checkpoint: ${what} is SV_AGENT_STATE_CORRUPT (${reason}) and the file is left alone`, async (t) => {
    const path = join(t.context.dir, 'state.json')
    await writeFile(path, text)
    const err = await t.throwsAsync(new CheckpointStore(path).load(), { instanceOf: AgentError })
    t.is(err?.code, 'SV_AGENT_STATE_CORRUPT')
    t.is((err as AgentError).details?.reason, reason)
    t.is(await readFile(path, 'utf8'), text)
  })
}

it('checkpoint: a huge file is refused before parsing', async (t) => {
  const path = join(t.context.dir, 'state.json')
  await writeFile(path, Buffer.alloc(1024 * 1024 + 1, 0x20))
  const err = await t.throwsAsync(new CheckpointStore(path).load(), { instanceOf: AgentError })
  t.is((err as AgentError).details?.reason, 'too-large')
})
