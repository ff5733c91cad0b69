/**
 * The agent over a serial line, end to end: a real vault (HTTPS, in this
 * process), a minimal station relaying to it (helpers/serial-station.ts) on
 * one pty pair, the real agent process with `--transport serial` on another,
 * and the fault-injecting relay between the pairs. snapd's own code checks
 * the serial the agent wrote.
 */
import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { runSnapdCheck } from '../../helpers/snapd-check.js'
import { agentE2E } from '../helpers/e2e.js'
import { runAgent } from '../helpers/agent-process.js'
import { startTestStation } from '../helpers/serial-station.js'
import { FaultRelay, spawnPtyPair, type FaultPlan } from '../serial/line-jig.js'

const e2e = agentE2E('sv-agent-serial-')

async function line(t: import('ava').ExecutionContext, plan: FaultPlan, seed: number) {
  const dir = await mkdtemp(join(e2e.work, 'line-'))
  const p = { unit: join(dir, 'unit'), relayU: join(dir, 'relay-u'), station: join(dir, 'station'), relayS: join(dir, 'relay-s') }
  const pairU = await spawnPtyPair(p.unit, p.relayU)
  const pairS = await spawnPtyPair(p.station, p.relayS)
  const relay = new FaultRelay({ unit: p.relayU, station: p.relayS }, plan, seed)
  await relay.start()
  const station = startTestStation({ path: p.station, vaultUrl: e2e.vault.url, ca: e2e.vault.caPem!, ackTimeoutMs: 150 })
  t.teardown(async () => {
    await station.close()
    await relay.stop()
    await pairU.kill()
    await pairS.kill()
    await rm(dir, { recursive: true, force: true })
  })
  return { unitPath: p.unit, station, relay }
}

function agentArgs(port: string, serial: string, stateDir: string): string[] {
  return ['provision', '--once', '--transport', 'serial', '--serial-port', port, '--baud', '115200', '--api-key', e2e.vault.apiKey, '--brand', 'acme-brand', '--model', 'acme-pi-gateway', '--serial-value', serial, '--trusted', e2e.vault.trusted, '--model-assertion', e2e.vault.chainFile, '--key-bits', '2048', '--state-dir', stateDir]
}

for (const [name, plan] of [
  ['a clean line', {}],
  ['dropped, corrupted and duplicated bytes and garbage', { drop: 0.05, corrupt: 0.05, duplicate: 0.05, garbage: 0.05 }],
] as [string, FaultPlan][]) {
  test(`serial e2e: the agent provisions through a station over ${name}; snapd verifies the serial; the vault issued once`, async (t) => {
    const serial = `SERIAL-LINE-${name.length}`
    const l = await line(t, plan, 4242 + name.length)
    const stateDir = join(e2e.work, serial)
    const r = await runAgent(agentArgs(l.unitPath, serial, stateDir), { timeoutMs: 90_000, env: { AGENT_SERIAL_ACK_TIMEOUT_MS: '150' } })
    t.is(r.code, 0, r.stderr)
    t.regex(r.stdout, new RegExp(`^provisioned: acme-brand/acme-pi-gateway serial ${serial}`))
    const v = await runSnapdCheck(['verify', '--trusted', e2e.vault.trusted, '--chain', join(stateDir, 'chain.assert'), join(stateDir, 'serial.assert')])
    t.is(v.code, 0, v.stdout + v.stderr)
    t.regex(v.stdout, new RegExp(`#1 OK\\s+serial brand-id=acme-brand model=acme-pi-gateway serial=${serial}`))
    const entries = (await e2e.vault.vault.store.signingLog.query({ serial, limit: 10 })).entries
    t.deepEqual(entries.map((e) => e.outcome), ['issued'])
    t.deepEqual(l.station.relayed.map((x) => [x.op, x.status]), [['request-id', 200], ['serial', 200]], 'each request relayed exactly once')
    t.true(r.logs.some((x) => x.msg === 'agent.started' && String(x.vault).startsWith('serial:')))
    t.log(`relay ${JSON.stringify(l.relay.stats)}; station link retransmits ${l.station.link.stats.retransmits}, duplicates dropped ${l.station.link.stats.duplicatesDropped}`)
  })
}

test('serial e2e: no station on the line: exit 3 with a link code; a missing port: exit 3 with SV_AGENT_LINK_CLOSED', async (t) => {
  const dir = await mkdtemp(join(e2e.work, 'silent-'))
  const pair = await spawnPtyPair(join(dir, 'unit'), join(dir, 'nobody'))
  t.teardown(() => pair.kill())
  const env = { AGENT_SERIAL_ACK_TIMEOUT_MS: '50', AGENT_SERIAL_MAX_RETRIES: '3', AGENT_TOTAL_TIMEOUT_MS: '3000' }
  const silent = await runAgent(agentArgs(join(dir, 'unit'), 'SERIAL-LINE-SILENT', join(dir, 'state-1')), { timeoutMs: 60_000, env })
  t.is(silent.code, 3, silent.stderr)
  t.regex(silent.stderr, /SV_AGENT_LINK_(RETRIES_EXHAUSTED|TIMEOUT)/)
  const missing = await runAgent(agentArgs(join(dir, 'no-such-port'), 'SERIAL-LINE-MISSING', join(dir, 'state-2')), { timeoutMs: 60_000, env })
  t.is(missing.code, 3, missing.stderr)
  t.regex(missing.stderr, /SV_AGENT_LINK_CLOSED/)
  const status = JSON.parse((await runAgent(['status', '--json', '--state-dir', join(dir, 'state-2')])).stdout) as { lastError: { code: string } }
  t.is(status.lastError.code, 'SV_AGENT_LINK_CLOSED')
})

test('serial e2e: --transport serial without --serial-port is a configuration error (exit 2)', async (t) => {
  const r = await runAgent(['provision', '--once', '--transport', 'serial', '--brand', 'acme-brand', '--model', 'acme-pi-gateway', '--trusted', e2e.vault.trusted, '--state-dir', join(e2e.work, 'cfg')])
  t.is(r.code, 2)
  t.regex(r.stderr, /vault\.serialLine\.port: required to provision over a serial line/)
})
