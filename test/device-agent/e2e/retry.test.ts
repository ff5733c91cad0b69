/**
 * Retry behaviour of the real agent process against misbehaving services:
 * snapd-check's fake-service (a stand-in for Canonical's serial-vault, plain
 * HTTP, its error shape) with --misbehave, and a misbehaving front of our own
 * before a real vault. Intervals are configured small (AGENT_* variables) so
 * each test takes seconds; every wait is measured from the server's side.
 */
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { locateSnapdCheck, runSnapdCheck } from '../../helpers/snapd-check.js'
import { agentE2E } from '../helpers/e2e.js'
import { runAgent, spawnAgent } from '../helpers/agent-process.js'
import { VECTORS } from '../helpers/fakes.js'
import { freePort, startMisbehavingFront, type FrontAction } from '../helpers/servers.js'

const e2e = agentE2E('sv-agent-retry-')

/** Small, fast retry settings; the tests measure that they are honoured. */
const FAST = {
  AGENT_RETRY_INITIAL_MS: '200',
  AGENT_RETRY_MAX_MS: '400',
  AGENT_POLL_INTERVAL_MS: '300',
  AGENT_NO_NETWORK_RETRY_MS: '200',
  AGENT_ATTEMPT_BACKOFF_MS: '500',
}

interface FakeService {
  url: string
  /** one JSON line per request: method, path, status, time, body */
  log(): Promise<{ path: string; status: number; time: string; body: string }[]>
}

/** snapd-check fake-service (Canonical serial-vault stand-in) on plain HTTP. */
async function startFakeService(t: ExecutionContext, misbehave: string): Promise<FakeService> {
  const bin = locateSnapdCheck()
  if (bin instanceof Error) throw bin
  const dir = await mkdtemp(join(e2e.work, 'fake-'))
  const urlFile = join(dir, 'url')
  const logFile = join(dir, 'log.jsonl')
  const child = spawn(bin, ['fake-service', '--brand', 'acme-brand', '--brand-key', join(VECTORS, 'keys/brand.key.pem'), '--api-key', 'fake-key', '--misbehave', misbehave, '--log', logFile, '--url-file', urlFile, '--exit-after', '2m'], {
    stdio: 'ignore',
  })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  let url = ''
  for (let i = 0; i < 200 && url === ''; i++) {
    url = (await readFile(urlFile, 'utf8').catch(() => '')).trim()
    if (url === '') await new Promise((r) => setTimeout(r, 50))
  }
  if (url === '') throw new Error('fake-service did not start within 10 s')
  return {
    url,
    log: async () =>
      (await readFile(logFile, 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { path: string; status: number; time: string; body: string }),
  }
}

function fakeArgs(fake: FakeService, serial: string, stateDir: string, once = false): string[] {
  return [
    'provision',
    ...(once ? ['--once'] : []),
    '--url',
    fake.url,
    '--api-key',
    'fake-key',
    '--brand',
    'acme-brand',
    '--model',
    'acme-pi-gateway',
    '--serial-value',
    serial,
    '--trusted',
    join(VECTORS, 'trusted.assert'),
    '--chain',
    join(VECTORS, 'brand-chain.assert'),
    '--state-dir',
    stateDir,
    '--key-bits',
    '2048',
  ]
}

function vaultArgs(url: string, serial: string, stateDir: string, once = false): string[] {
  return [
    'provision',
    ...(once ? ['--once'] : []),
    '--url',
    url,
    '--api-key',
    e2e.vault.apiKey,
    '--brand',
    'acme-brand',
    '--model',
    'acme-pi-gateway',
    '--serial-value',
    serial,
    '--trusted',
    e2e.vault.trusted,
    '--state-dir',
    stateDir,
    '--key-bits',
    '2048',
  ]
}

async function verifyWritten(t: ExecutionContext, stateDir: string, trusted: string): Promise<void> {
  const v = await runSnapdCheck(['verify', '--trusted', trusted, '--chain', join(stateDir, 'chain.assert'), join(stateDir, 'serial.assert')])
  t.is(v.code, 0, v.stdout + v.stderr)
}

test('retry: 202 then 200 (fake-service poll-once, plain HTTP): the same serial-request is polled after the interval', async (t) => {
  const fake = await startFakeService(t, 'poll-once')
  const stateDir = join(e2e.work, 'poll')
  const r = await runAgent(fakeArgs(fake, 'RETRY-POLL-1', stateDir), { env: FAST })
  t.is(r.code, 0, r.stderr)
  const serials = (await fake.log()).filter((e) => e.path === '/v1/serial')
  t.deepEqual(
    serials.map((e) => e.status),
    [202, 200],
  )
  t.is(serials[1]!.body, serials[0]!.body, 'the same serial-request, request-id included')
  const gap = Date.parse(serials[1]!.time) - Date.parse(serials[0]!.time)
  t.true(gap >= 300 && gap < 5000, `polled after ${gap} ms`)
  const waiting = r.logs.find((l) => l.msg === 'provision.waiting')!
  t.is(waiting.code, 'SV_AGENT_SERIAL_PENDING')
  t.is(waiting.waitMs, 300)
  await verifyWritten(t, stateDir, join(VECTORS, 'trusted.assert'))
})

test('retry: 503 on request-id (fake-service 503-once): --once exits 3 (retry later), the next run provisions', async (t) => {
  const fake = await startFakeService(t, '503-once')
  const stateDir = join(e2e.work, '503-once')
  const first = await runAgent(fakeArgs(fake, 'RETRY-503-1', stateDir, true), { env: FAST })
  t.is(first.code, 3, first.stderr)
  t.regex(first.stderr, /SV_AGENT_VAULT_UNAVAILABLE/)
  const retry = first.logs.find((l) => l.msg === 'provision.retry')!
  t.is(retry.status, 503)
  const second = await runAgent(fakeArgs(fake, 'RETRY-503-1', stateDir, true), { env: FAST })
  t.is(second.code, 0, second.stderr)
  await verifyWritten(t, stateDir, join(VECTORS, 'trusted.assert'))
})

test('retry: 503 without Retry-After is retried after the backoff (daemon)', async (t) => {
  const fake = await startFakeService(t, '503-once')
  const stateDir = join(e2e.work, '503-daemon')
  const r = await runAgent(fakeArgs(fake, 'RETRY-503-2', stateDir), { env: FAST })
  t.is(r.code, 0, r.stderr)
  const ids = (await fake.log()).filter((e) => e.path === '/v1/request-id')
  t.deepEqual(
    ids.map((e) => e.status),
    [503, 200],
  )
  const gap = Date.parse(ids[1]!.time) - Date.parse(ids[0]!.time)
  t.true(gap >= 160 && gap < 5000, `retried after ${gap} ms (200 ms ± 20% jitter)`)
})

test('retry: 503 with Retry-After: 1 on serial is honoured, then a new request-id is used', async (t) => {
  const front = await startMisbehavingFront(t, { url: e2e.vault.url, ca: e2e.vault.caPem! }, (path, i): FrontAction =>
    path === 'serial' && i === 0 ? { kind: 'status', status: 503, headers: { 'retry-after': '1' }, body: { code: 'SV_OVERLOADED', message: 'busy' } } : { kind: 'forward' },
  )
  const stateDir = join(e2e.work, 'retry-after')
  const r = await runAgent(vaultArgs(front.url, 'RETRY-AFTER-1', stateDir), { env: FAST })
  t.is(r.code, 0, r.stderr)
  const paths = front.requests.map((q) => q.path.replace('/v1/', ''))
  t.deepEqual(paths, ['request-id', 'serial', 'request-id', 'serial'])
  const waited = front.requests[2]!.at - front.requests[1]!.at
  t.true(waited >= 1000 && waited < 4000, `waited ${Math.round(waited)} ms for Retry-After: 1`)
  const retry = r.logs.find((l) => l.msg === 'provision.retry')!
  t.is(retry.waitMs, 1000)
  t.is(retry.serverCode, 'SV_OVERLOADED')
  const entries = (await e2e.vault.vault.store.signingLog.query({ serial: 'RETRY-AFTER-1' })).entries
  t.is(entries.filter((e) => e.outcome === 'issued').length, 1)
  t.is(entries[0]!.timings?.retries, 1, 'the retry shows in the telemetry the vault logged')
  await verifyWritten(t, stateDir, e2e.vault.trusted)
})

test('retry: a 4xx with a JSON message is surfaced with its code and fails the attempt (exit 1)', async (t) => {
  const front = await startMisbehavingFront(t, { url: e2e.vault.url, ca: e2e.vault.caPem! }, (path): FrontAction =>
    path === 'serial' ? { kind: 'status', status: 400, body: { code: 'SV_SERIAL_INVALID', message: 'the serial has invalid characters', requestId: 'req-77' } } : { kind: 'forward' },
  )
  const stateDir = join(e2e.work, '4xx')
  const r = await runAgent(vaultArgs(front.url, 'RETRY-4XX-1', stateDir, true), { env: FAST })
  t.is(r.code, 1)
  t.regex(r.stderr, /\(SV_AGENT_VAULT_REFUSED\)/)
  const failed = r.logs.find((l) => l.msg === 'provision.failed')!
  t.like(failed, { level: 'error', code: 'SV_AGENT_VAULT_REFUSED', status: 400, serverCode: 'SV_SERIAL_INVALID', requestId: 'req-77', step: 'serial' })
  t.is(typeof failed.serverMessage, 'string')
  const status = JSON.parse((await runAgent(['status', '--json', '--state-dir', stateDir])).stdout) as { lastError: { code: string; details: Record<string, unknown> } }
  t.is(status.lastError.code, 'SV_AGENT_VAULT_REFUSED')
  t.like(status.lastError.details, { status: 400, serverCode: 'SV_SERIAL_INVALID' })
})

test('retry: connection refused is retried until the vault comes up', async (t) => {
  const port = await freePort()
  const stateDir = join(e2e.work, 'refused')
  const agent = spawnAgent(vaultArgs(`http://127.0.0.1:${port}/v1/`, 'RETRY-REFUSED-1', stateDir), { env: FAST })
  await agent.waitForStderr(/"reason":"refused"[^\n]*"msg":"provision\.retry"[\s\S]*"reason":"refused"[^\n]*"msg":"provision\.retry"/)
  const front = await startMisbehavingFront(t, { url: e2e.vault.url, ca: e2e.vault.caPem! }, () => ({ kind: 'forward' }), { port })
  const e = await agent.exited
  t.is(e.code, 0, agent.stderr)
  const retries = agent.logs().filter((l) => l.msg === 'provision.retry')
  t.true(retries.length >= 2)
  for (const r of retries) t.like(r, { code: 'SV_AGENT_VAULT_UNAVAILABLE', reason: 'refused', errno: 'ECONNREFUSED' })
  t.true(front.requests.length >= 2)
  await verifyWritten(t, stateDir, e2e.vault.trusted)
})

test('retry: a server that never answers is cut by the header timeout and retried', async (t) => {
  const front = await startMisbehavingFront(t, { url: e2e.vault.url, ca: e2e.vault.caPem! }, (path, i): FrontAction => (path === 'request-id' && i === 0 ? { kind: 'hang' } : { kind: 'forward' }))
  const stateDir = join(e2e.work, 'slow')
  const r = await runAgent(vaultArgs(front.url, 'RETRY-SLOW-1', stateDir), { env: { ...FAST, AGENT_HEADERS_TIMEOUT_MS: '500' } })
  t.is(r.code, 0, r.stderr)
  const retry = r.logs.find((l) => l.msg === 'provision.retry')!
  t.like(retry, { code: 'SV_AGENT_VAULT_UNAVAILABLE', reason: 'timeout' })
  const gap = front.requests[1]!.at - front.requests[0]!.at
  t.true(gap >= 500 + 160 && gap < 5000, `timed out and retried after ${Math.round(gap)} ms`)
  await verifyWritten(t, stateDir, e2e.vault.trusted)
})

test('retry: a slow but working server within the timeouts is simply waited for', async (t) => {
  const front = await startMisbehavingFront(t, { url: e2e.vault.url, ca: e2e.vault.caPem! }, (path): FrontAction => (path === 'serial' ? { kind: 'delay', ms: 700 } : { kind: 'forward' }))
  const stateDir = join(e2e.work, 'slow-ok')
  const r = await runAgent(vaultArgs(front.url, 'RETRY-SLOW-2', stateDir, true), { env: { AGENT_HEADERS_TIMEOUT_MS: '2000' } })
  t.is(r.code, 0, r.stderr)
  t.is(r.logs.filter((l) => l.msg === 'provision.retry').length, 0)
})
