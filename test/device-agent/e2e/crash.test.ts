/**
 * Crash tests: the real agent process is SIGKILLed right after each
 * provisioning step (AGENT_TEST_PAUSE_AFTER makes it stop dead there and say
 * so on stderr; the kill is a real SIGKILL), then started again. Every run
 * must end provisioned with one device key and one serial, and the vault's
 * signing log must show exactly one issuance for that serial, bound to that key.
 */
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { runSnapdCheck } from '../../helpers/snapd-check.js'
import { PAUSE_POINTS, type PausePoint } from '../../../device-agent/src/provision/states.js'
import { loadDeviceKey } from '../../../device-agent/src/identity/device-key.js'
import { agentE2E } from '../helpers/e2e.js'
import { runAgent, spawnAgent } from '../helpers/agent-process.js'

const e2e = agentE2E('sv-agent-crash-')

function args(serial: string, stateDir: string): string[] {
  return [
    'provision',
    '--once',
    '--url',
    e2e.vault.url,
    '--api-key',
    e2e.vault.apiKey,
    '--brand',
    'acme-brand',
    '--model',
    'acme-pi-gateway',
    '--serial-value',
    serial,
    '--ca',
    e2e.caFile,
    '--trusted',
    e2e.vault.trusted,
    '--state-dir',
    stateDir,
    '--key-bits',
    '2048',
  ]
}

/** Starts the agent, waits until it reports the pause, SIGKILLs it. Returns the key id on disk at that moment. */
async function killAfter(t: ExecutionContext, serial: string, stateDir: string, point: PausePoint): Promise<string | undefined> {
  const p = spawnAgent(args(serial, stateDir), { env: { AGENT_TEST_PAUSE_AFTER: point } })
  await p.waitForStderr(new RegExp(`AGENT_TEST_PAUSE_AFTER reached ${point}\\b`))
  const key = await loadDeviceKey(join(stateDir, 'device-key.pem'))
  t.true(p.child.kill('SIGKILL'))
  const e = await p.exited
  t.is(e.signal, 'SIGKILL', `killed at ${point}`)
  return key?.publicKey.id
}

/** Restarts to the end and checks: provisioned, one key (the one from before, if any), one issuance. */
async function finishAndCheck(t: ExecutionContext, serial: string, stateDir: string, keyAtKill: (string | undefined)[], minRestarts = 1): Promise<void> {
  const r = await runAgent(args(serial, stateDir))
  t.is(r.code, 0, r.stderr)
  const key = await loadDeviceKey(join(stateDir, 'device-key.pem'))
  t.truthy(key)
  for (const k of keyAtKill) if (k !== undefined) t.is(k, key!.publicKey.id, 'the key was never regenerated')
  // one key file, no leftovers of interrupted atomic writes that matter
  const files = (await readdir(stateDir)).filter((f) => !f.endsWith('.tmp'))
  t.deepEqual(files.sort(), ['chain.assert', 'device-key.pem', 'serial.assert', 'state.json'])
  // the vault: one issuance, bound to this key
  const entries = (await e2e.vault.vault.store.signingLog.query({ serial, limit: 100 })).entries
  t.is(entries.filter((e) => e.outcome === 'issued').length, 1, JSON.stringify(entries))
  t.is(entries.filter((e) => e.outcome === 'reissued' || e.outcome === 'refused').length, 0)
  for (const e of entries) t.is(e.deviceKeyId, key!.publicKey.id)
  const binding = await e2e.vault.vault.store.registrations.getBinding('acme-brand', 'acme-pi-gateway', serial)
  t.is(binding?.deviceKeyId, key!.publicKey.id)
  t.is(binding?.revision, 1)
  t.is(binding?.serialAssertion.trimEnd(), (await readFile(join(stateDir, 'serial.assert'), 'utf8')).trimEnd())
  const v = await runSnapdCheck(['verify', '--trusted', e2e.vault.trusted, '--chain', join(stateDir, 'chain.assert'), join(stateDir, 'serial.assert')])
  t.is(v.code, 0, v.stdout)
  // (status --json prints this file's facts; the e2e test runs the command itself)
  const status = JSON.parse(await readFile(join(stateDir, 'state.json'), 'utf8')) as { state: string; counters: { restarts: number } }
  t.is(status.state, 'provisioned')
  t.true(status.counters.restarts >= minRestarts)
}

PAUSE_POINTS.forEach((point, i) => {
  test(`crash: SIGKILL right after ${point}, restart: provisioned, one key, one issuance`, async (t) => {
    const serial = `CRASH-${i + 1}`
    const stateDir = join(e2e.work, point)
    const key = await killAfter(t, serial, stateDir, point)
    if (point !== 'key-written') t.truthy(key, 'the key exists at every later step')
    const issuedAtKill = (await e2e.vault.vault.store.signingLog.query({ serial, outcome: 'issued' })).entries.length
    // after the vault answered, the issuance is there even though the agent never saved the answer
    t.is(issuedAtKill, ['serial-request-sent', 'serial-received', 'serial-written'].includes(point) ? 1 : 0)
    // killed before the first checkpoint (key-written), the restart finds only the key: not counted as a resume
    await finishAndCheck(t, serial, stateDir, [key], point === 'key-written' ? 0 : 1)
  })
})

test('crash: SIGKILL after every step in turn, in one state directory', async (t) => {
  const serial = 'CRASH-ALL'
  const stateDir = join(e2e.work, 'all')
  const keys: (string | undefined)[] = []
  for (const point of PAUSE_POINTS) keys.push(await killAfter(t, serial, stateDir, point))
  await finishAndCheck(t, serial, stateDir, keys)
})
