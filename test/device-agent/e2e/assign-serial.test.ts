/**
 * Vault-assigned serials (issue 13, point 8): the real agent process against
 * a real vault whose model has the serial policy `assign:ACME-{n:6}`, on a
 * device with no serial source at all (the devicetree, cpuinfo and DMI
 * sources read an empty root). With `--serial-policy assign` the agent
 * proposes no serial, the vault assigns one, and snapd's own library accepts
 * the serial assertion. A SIGKILL after each step in turn, then a rerun,
 * ends with the same assigned serial, one key and one issuance.
 */
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeStream } from '@sv/shared'
import { runSnapdCheck } from '../../helpers/snapd-check.js'
import { PI_MODEL_HEADERS } from '../../helpers/vault.js'
import { PAUSE_POINTS, type PausePoint } from '../../../device-agent/src/provision/states.js'
import { loadDeviceKey } from '../../../device-agent/src/identity/device-key.js'
import { agentE2E } from '../helpers/e2e.js'
import { runAgent, spawnAgent } from '../helpers/agent-process.js'

const e2e = agentE2E('sv-agent-assign-')
const MODEL = 'acme-assigned'

// made once, by the first test that needs it (agentE2E's before hook runs alongside any of this file's)
let modelReady: Promise<unknown> | undefined

/** A device with no serial source: the configured sources read an empty root. */
async function device(name: string): Promise<{ stateDir: string; env: Record<string, string> }> {
  modelReady ??= e2e.vault.vault.services.models.create({ brandId: 'acme-brand', name: MODEL, apiKeys: [e2e.vault.apiKey], headers: PI_MODEL_HEADERS, serialPolicy: { kind: 'assign', template: 'ACME-{n:6}', start: 1 } })
  await modelReady
  const root = join(e2e.work, name, 'root')
  await mkdir(root, { recursive: true })
  return { stateDir: join(e2e.work, name, 'state'), env: { AGENT_SERIAL_ROOT: root } }
}

function args(stateDir: string, extra: string[] = ['--serial-policy', 'assign']): string[] {
  return ['provision', '--once', '--url', e2e.vault.url, '--api-key', e2e.vault.apiKey, '--brand', 'acme-brand', '--model', MODEL, '--ca', e2e.caFile, '--trusted', e2e.vault.trusted, '--state-dir', stateDir, '--key-bits', '2048', ...extra]
}

/** Provisioned, the serial the vault bound to this device's key, snapd accepts it, one issuance. */
async function checkProvisioned(t: ExecutionContext, stateDir: string, stdout: string): Promise<string> {
  const key = (await loadDeviceKey(join(stateDir, 'device-key.pem')))!
  const binding = await e2e.vault.vault.store.registrations.getBindingByDeviceKey('acme-brand', MODEL, key.publicKey.id)
  t.truthy(binding, 'the vault bound a serial to the device key')
  const serial = binding!.serial
  t.regex(serial, /^ACME-\d{6}$/)
  t.is(binding!.revision, 1)
  t.true(stdout.includes(`provisioned: acme-brand/${MODEL} serial ${serial}\n`), stdout)
  const written = await readFile(join(stateDir, 'serial.assert'), 'utf8')
  t.is(written.trimEnd(), binding!.serialAssertion.trimEnd())
  const [assertion] = decodeStream(written)
  t.is(assertion!.headerString('serial'), serial)
  t.is(assertion!.headerString('device-key-sha3-384'), key.publicKey.id)
  const v = await runSnapdCheck(['verify', '--trusted', e2e.vault.trusted, '--chain', join(stateDir, 'chain.assert'), join(stateDir, 'serial.assert')])
  t.is(v.code, 0, v.stdout)
  const entries = (await e2e.vault.vault.store.signingLog.query({ serial, limit: 100 })).entries
  t.is(entries.filter((e) => e.outcome === 'issued').length, 1, JSON.stringify(entries))
  t.is(entries.filter((e) => e.outcome === 'reissued' || e.outcome === 'refused').length, 0)
  // the serial-request the agent sent proposed no serial (snapd's way for a vault-assigned one)
  const state = JSON.parse(await readFile(join(stateDir, 'state.json'), 'utf8')) as { state: string; serial?: string; serialSource?: string; serialRequest?: string }
  t.is(state.state, 'provisioned')
  t.is(state.serial, undefined)
  t.is(state.serialSource, 'vault')
  const [request] = decodeStream(state.serialRequest!)
  t.is(request!.typeName, 'serial-request')
  t.is(request!.header('serial'), undefined)
  t.false(/^serial:/m.test(request!.body ? Buffer.from(request!.body).toString('utf8') : ''), 'nor in the body')
  return serial
}

test('assign: with no serial source the device policy fails with SV_AGENT_SERIAL_NOT_FOUND; --serial-policy assign provisions with the serial the vault assigns', async (t) => {
  const d = await device('plain')
  const without = await runAgent(args(d.stateDir, []), { env: d.env })
  t.is(without.code, 1, without.stderr)
  t.regex(without.stderr, /\(SV_AGENT_SERIAL_NOT_FOUND\)/)

  const d2 = await device('assigned')
  const r = await runAgent(args(d2.stateDir), { env: d2.env })
  t.is(r.code, 0, r.stderr)
  const serial = await checkProvisioned(t, d2.stateDir, r.stdout)
  const done = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
  t.like(done.find((l) => l.msg === 'provision.done'), { serial })
  t.falsy(done.find((l) => l.msg === 'serial.detected'), 'no source was read')
  // status shows the assigned serial, from the vault
  const status = await runAgent(['status', '--json', '--state-dir', d2.stateDir])
  t.is(status.code, 0, status.stderr)
  t.like(JSON.parse(status.stdout), { state: 'provisioned', serial, serialSource: 'vault' })
  // a rerun is a no-op: the same serial
  const again = await runAgent(args(d2.stateDir), { env: d2.env })
  t.is(again.code, 0, again.stderr)
  t.true(again.stdout.includes(`serial ${serial}\n`))
})

test('assign: --serial-policy assign with --serial-value, or an unknown policy, is invalid configuration (exit 2)', async (t) => {
  const d = await device('contradiction')
  const both = await runAgent(args(d.stateDir, ['--serial-policy', 'assign', '--serial-value', 'SN-1']), { env: d.env })
  t.is(both.code, 2, both.stderr)
  t.regex(both.stderr, /serial\.policy: assign .* exclude each other/)
  t.regex(both.stderr, /SV_AGENT_CONFIG_INVALID/)
  const bad = await runAgent(args(d.stateDir, ['--serial-policy', 'vault']), { env: d.env })
  t.is(bad.code, 2, bad.stderr)
  t.regex(bad.stderr, /serial\.policy/)
})

async function killAfter(t: ExecutionContext, stateDir: string, env: Record<string, string>, point: PausePoint): Promise<string | undefined> {
  const p = spawnAgent(args(stateDir), { env: { ...env, AGENT_TEST_PAUSE_AFTER: point } })
  await p.waitForStderr(new RegExp(`AGENT_TEST_PAUSE_AFTER reached ${point}\\b`))
  const key = await loadDeviceKey(join(stateDir, 'device-key.pem'))
  t.true(p.child.kill('SIGKILL'))
  t.is((await p.exited).signal, 'SIGKILL', `killed at ${point}`)
  return key?.publicKey.id
}

test('assign: SIGKILL after every step in turn, then a rerun: the same assigned serial, one key, one issuance; the policy cannot change under a sent request', async (t) => {
  t.timeout(240_000)
  const d = await device('crash')
  const keys: (string | undefined)[] = []
  let boundAtKill: string | undefined
  for (const point of PAUSE_POINTS) {
    keys.push(await killAfter(t, d.stateDir, d.env, point))
    const key = keys.at(-1)
    const binding = key ? await e2e.vault.vault.store.registrations.getBindingByDeviceKey('acme-brand', MODEL, key) : undefined
    // once the vault answered, the binding stays what it was: every later request of this key gets it again
    if (boundAtKill !== undefined) t.is(binding?.serial, boundAtKill, `after ${point}`)
    boundAtKill ??= binding?.serial
    if (point === 'serial-request-signed') {
      // a signed serial-request without a serial is on disk: the device policy may not take over now
        const switched = await runAgent(args(d.stateDir, ['--serial-value', 'SN-OTHER']), { env: d.env })
      t.is(switched.code, 2, switched.stderr)
      t.regex(switched.stderr, /serial\.policy: the state directory's serial-request was made under policy assign/)
    }
  }
  t.truthy(boundAtKill, 'the vault assigned a serial before the last kill')
  const r = await runAgent(args(d.stateDir), { env: d.env })
  t.is(r.code, 0, r.stderr)
  const serial = await checkProvisioned(t, d.stateDir, r.stdout)
  t.is(serial, boundAtKill!)
  const key = (await loadDeviceKey(join(d.stateDir, 'device-key.pem')))!
  for (const k of keys) if (k !== undefined) t.is(k, key.publicKey.id, 'the key was never regenerated')
  const state = JSON.parse(await readFile(join(d.stateDir, 'state.json'), 'utf8')) as { counters: { restarts: number } }
  t.true(state.counters.restarts >= 1, JSON.stringify(state.counters))
})
