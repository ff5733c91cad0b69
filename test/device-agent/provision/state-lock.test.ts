import test from 'ava'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AgentError } from '../../../device-agent/src/errors.js'
import { acquireStateLock } from '../../../device-agent/src/provision/state-lock.js'

test('state lock: one holder; a running holder makes others SV_AGENT_BUSY; a dead holder is taken over', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sv-lock-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'agent.lock')
  const release = await acquireStateLock(path)
  t.is((await readFile(path, 'utf8')).trim(), String(process.pid))
  // pid 1 always runs: another agent holds the lock
  await writeFile(path, '1\n')
  const err = await t.throwsAsync(acquireStateLock(path, 4242), { instanceOf: AgentError })
  t.is(err?.code, 'SV_AGENT_BUSY')
  t.is((err as AgentError).details?.pid, 1)
  // a killed agent's pid (far above pid_max) is stale
  await writeFile(path, '99999999\n')
  const again = await acquireStateLock(path)
  t.is((await readFile(path, 'utf8')).trim(), String(process.pid))
  await again()
  await release()
  await t.throwsAsync(readFile(path))
})
