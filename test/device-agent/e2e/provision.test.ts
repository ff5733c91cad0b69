/**
 * End to end: a real vault (in this process, HTTPS) and the real agent
 * process; the serial the agent writes is checked by snapd's own code
 * (snapd-check verify).
 */
import test from 'ava'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { runSnapdCheck } from '../../helpers/snapd-check.js'
import { agentE2E } from '../helpers/e2e.js'
import { runAgent } from '../helpers/agent-process.js'
import { ROOT } from '../helpers/fakes.js'

const e2e = agentE2E('sv-agent-e2e-')

async function logFor(serial: string) {
  return (await e2e.vault.vault.store.signingLog.query({ serial, limit: 100 })).entries
}

function baseArgs(serial: string, stateDir: string): string[] {
  return ['--url', e2e.vault.url, '--api-key', e2e.vault.apiKey, '--brand', 'acme-brand', '--model', 'acme-pi-gateway', '--serial-value', serial, '--ca', e2e.caFile, '--trusted', e2e.vault.trusted, '--state-dir', stateDir]
}

test('e2e: the agent process provisions over HTTPS with a new RSA-4096 key, and snapd verifies the serial', async (t) => {
  const stateDir = join(e2e.work, 'device-1')
  const r = await runAgent(['provision', '--once', ...baseArgs('E2E-0001', stateDir), '--model-assertion', e2e.vault.chainFile], { timeoutMs: 90_000 })
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /^provisioned: acme-brand\/acme-pi-gateway serial E2E-0001/)

  // snapd's own checks: the serial against the trust anchors and the chain the agent wrote
  const v = await runSnapdCheck(['verify', '--trusted', e2e.vault.trusted, '--chain', join(stateDir, 'chain.assert'), join(stateDir, 'serial.assert')])
  t.is(v.code, 0, v.stdout + v.stderr)
  t.regex(v.stdout, /#1 OK\s+serial brand-id=acme-brand model=acme-pi-gateway serial=E2E-0001/)

  // the device key: 4096 bits, 0600, never in a log line
  t.is((await stat(join(stateDir, 'device-key.pem'))).mode & 0o777, 0o600)
  t.false(r.stderr.includes('PRIVATE KEY'))
  const events = r.logs.map((l) => l.msg)
  for (const e of ['agent.started', 'device_key.generating', 'device_key.generated', 'provision.step.completed', 'serial.verified', 'serial.written', 'provision.done']) t.true(events.includes(e), e)
  const generated = r.logs.find((l) => l.msg === 'device_key.generated')!
  t.is(generated.bits, 4096)

  // the vault issued once and recorded the agent's step timings
  const entries = await logFor('E2E-0001')
  t.deepEqual(
    entries.map((e) => e.outcome),
    ['issued'],
  )
  const timings = entries[0]!.timings!
  t.is(timings['key-bits'], 4096)
  t.true(timings['key-generation-ms']! > 0)
  t.is(typeof timings['request-id-ms'], 'number')
  t.is(timings['request-id-attempts'], 1)
  t.is(timings['serial-attempts'], 0)
  t.is(entries[0]!.deviceKeyId, generated.keyId as string)

  // status, human and JSON
  const status = await runAgent(['status', '--json', '--state-dir', stateDir])
  t.is(status.code, 0)
  const s = JSON.parse(status.stdout) as Record<string, any>
  t.is(s.state, 'provisioned')
  t.is(s.serial, 'E2E-0001')
  t.is(s.deviceKey.bits, 4096)
  t.is(s.deviceKey.id, generated.keyId)
  t.is(s.files.serial, join(stateDir, 'serial.assert'))
  const human = await runAgent(['status', '--state-dir', stateDir])
  t.regex(human.stdout, /^state:\s+provisioned/m)

  // running again changes nothing: no request to the vault
  const again = await runAgent(['provision', '--once', ...baseArgs('E2E-0001', stateDir)])
  t.is(again.code, 0)
  t.is((await logFor('E2E-0001')).length, 1)
})

test('e2e: bin/device-agent.js takes the command line the demo prints', async (t) => {
  const stateDir = join(e2e.work, 'device-bin')
  const child = spawn(
    process.execPath,
    [join(ROOT, 'device-agent/bin/device-agent.js'), 'provision', '--once', ...baseArgs('E2E-BIN-0001', stateDir).map((a) => a), '--key-bits', '2048'],
    { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', SV_FROM_SOURCE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr.on('data', (c: Buffer) => (err += c.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)))
  clearTimeout(timer)
  t.is(code, 0, err)
  t.regex(out, /serial E2E-BIN-0001/)
  t.true((await readFile(join(stateDir, 'serial.assert'), 'utf8')).includes('serial: E2E-BIN-0001'))
})

test('e2e: a second device claiming the same serial is refused with the vault code (exit 1), and the vault keeps one binding', async (t) => {
  const a = join(e2e.work, 'clone-a')
  const b = join(e2e.work, 'clone-b')
  t.is((await runAgent(['provision', '--once', ...baseArgs('E2E-CLONE-1', a), '--key-bits', '2048'])).code, 0)
  const r = await runAgent(['provision', '--once', ...baseArgs('E2E-CLONE-1', b), '--key-bits', '2048'])
  t.is(r.code, 1)
  t.regex(r.stderr, /SV_AGENT_VAULT_REFUSED/)
  const failed = r.logs.find((l) => l.msg === 'provision.failed')!
  t.is(failed.code, 'SV_AGENT_VAULT_REFUSED')
  t.is(failed.serverCode, 'SV_SERIAL_TAKEN')
  t.is(failed.status, 409)
  const s = JSON.parse((await runAgent(['status', '--json', '--state-dir', b])).stdout) as Record<string, any>
  t.is(s.state, 'key-ready')
  t.is(s.lastError.code, 'SV_AGENT_VAULT_REFUSED')
  t.is(s.lastError.details.serverCode, 'SV_SERIAL_TAKEN')
  const entries = await logFor('E2E-CLONE-1')
  t.deepEqual(
    entries.map((e) => [e.outcome, e.code]),
    [
      ['issued', undefined],
      ['refused', 'SV_SERIAL_TAKEN'],
    ],
  )
})

test('e2e: configuration errors exit with 2 and name every problem', async (t) => {
  const r = await runAgent(['provision', '--once', '--url', 'ftp://x', '--model', 'Bad_Model', '--state-dir', join(e2e.work, 'bad')])
  t.is(r.code, 2)
  t.regex(r.stderr, /SV_AGENT_CONFIG_INVALID/)
  for (const path of ['brand', 'vault.url', 'model', 'trust.anchors']) t.true(r.stderr.includes(path), path)
})
