/**
 * `vault-server log follow` as a real process against a real vault (in this
 * process: LevelDB, HTTPS, the embedded MQTT broker) while devices register:
 * what it prints, its filters, --count and --timeout, SIGINT, a vault that
 * restarts under it, and the refusals it does not retry.
 */
import test, { type ExecutionContext } from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startTestVault, type TestVault } from '../../helpers/vault.js'
import { VAULT_MAIN, type CliRun } from '../../helpers/cli.js'
import { REPO_ROOT } from '../../helpers/vectors.js'
import { fetchRequestId, fixtureDeviceKey, generateDeviceKey, postSerial, serialRequestStream, type DeviceKey } from '../../helpers/device.js'
import { connectMqtt, mqttRequest, mqttRequestId, sleep, subscribeReplies } from '../mqtt/mqtt-helpers.js'

const BRAND = 'acme-brand'
const MODEL = 'acme-pi-gateway'

interface Follow {
  child: ChildProcess
  done: Promise<CliRun>
  stdout(): string
  stderr(): string
}

/** Waits (bounded, 15 s) for a condition. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 15_000
  while (!cond()) {
    if (Date.now() > end) throw new Error(`not within 15 s: ${what}`)
    await sleep(50)
  }
}

/** `vault-server log follow ARGS` as a process; killed at teardown and past `timeoutMs`. */
function follow(t: ExecutionContext, args: string[], timeoutMs = 90_000): Follow {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', VAULT_MAIN, 'log', 'follow', ...args], { cwd: REPO_ROOT, env: { ...process.env, VAULT_URL: '', VAULT_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const done = new Promise<CliRun>((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    }),
  )
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  return { child, done, stdout: () => stdout, stderr: () => stderr }
}

/** Waits (bounded) until `n` live streams are open on the vault. */
async function streamsOpen(v: TestVault, n = 1, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (v.vault.live.clients < n) {
    if (Date.now() > end) throw new Error(`no live stream open within ${timeoutMs} ms`)
    await sleep(50)
  }
}

async function caFile(v: TestVault): Promise<string> {
  const f = join(v.dataDir, 'follow-ca.pem')
  await writeFile(f, v.caPem!)
  return f
}

async function register(v: TestVault, key: DeviceKey, serial: string): Promise<number> {
  const requestId = await fetchRequestId(v.url, v.apiKey, { ca: v.caPem! })
  return (await postSerial(v.url, v.apiKey, await serialRequestStream({ key, brandId: BRAND, model: MODEL, requestId, serial }), { ca: v.caPem! })).status
}

const remote = async (v: TestVault): Promise<string[]> => ['--url', v.url, '--token', v.adminToken, '--ca', await caFile(v)]

test('log follow --json --count 3: the outcomes of HTTPS and MQTT registrations as they happen, one JSON line each, then exit 0', async (t) => {
  const v = await startTestVault(t, { tls: true, workers: 1, config: { mqtt: { mode: 'embedded', listen: '127.0.0.1:0' } } })
  // something from before: not printed without --recent
  t.is(await register(v, await generateDeviceKey(), 'OLD-1'), 200)
  const f = follow(t, [...(await remote(v)), '--json', '--count', '3', '--timeout', '60'])
  await streamsOpen(v)
  const device = fixtureDeviceKey('device')
  t.is(await register(v, device, 'FOL-1'), 200)
  t.is(await register(v, fixtureDeviceKey('evil'), 'FOL-1'), 409)
  const c = await connectMqtt(t, v.vault.mqttUrl!, { clientId: 'fol-1', username: 'fol-1', password: v.apiKey, rejectUnauthorized: false })
  await subscribeReplies(c)
  const requestId = await mqttRequestId(c, v.apiKey)
  const body = await serialRequestStream({ key: fixtureDeviceKey('impostor'), brandId: BRAND, model: MODEL, requestId, serial: 'FOL-2' })
  t.is((await mqttRequest(c, 'serial', { 'api-key': v.apiKey, body: body.toString('utf8') })).kind, 'accepted')

  const r = await f.done
  t.is(r.code, 0, r.stderr)
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.is(lines.length, 3)
  t.like(lines[0], { outcome: 'issued', transport: 'https', brandId: BRAND, model: MODEL, storeId: BRAND, serial: 'FOL-1', revision: 1, deviceKeyId: device.id, clientAddress: '127.0.0.1' })
  t.like(lines[1], { outcome: 'refused', code: 'SV_SERIAL_TAKEN', transport: 'https', serial: 'FOL-1', deviceKeyId: fixtureDeviceKey('evil').id })
  t.like(lines[2], { outcome: 'issued', transport: 'mqtt', serial: 'FOL-2', clientAddress: 'mqtt:fol-1', deviceKeyId: fixtureDeviceKey('impostor').id })
  for (const l of lines) t.regex(String(l.time), /^\d{4}-\d\d-\d\dT/)
  t.false(r.stdout.includes(v.apiKey))
})

test('log follow: --serial filters, lines for people as log query prints them, --recent prints what came before', async (t) => {
  const v = await startTestVault(t, { tls: true, workers: 1 })
  t.is(await register(v, await generateDeviceKey(), 'BEFORE-1'), 200)
  // --recent: the entry from before, at once (and --count 1 ends it there)
  const withRecent = await follow(t, [...(await remote(v)), '--recent', '--count', '1', '--timeout', '60']).done
  t.is(withRecent.code, 0, withRecent.stderr)
  t.regex(withRecent.stdout, /serial=BEFORE-1 /)
  t.is(withRecent.stdout.trim().split('\n').length, 1)

  const f = follow(t, [...(await remote(v)), '--serial', 'WANTED-1', '--count', '1', '--timeout', '60'])
  await streamsOpen(v)
  t.is(await register(v, await generateDeviceKey(), 'OTHER-1'), 200)
  const key = await generateDeviceKey()
  t.is(await register(v, key, 'WANTED-1'), 200)
  const r = await f.done
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+Z  issued {3}\\s+acme-brand/acme-pi-gateway  serial=WANTED-1 rev=1  key=${key.id.slice(0, 12)}  client=127\\.0\\.0\\.1\\n$`))
})

test('log follow: --timeout before --count is reached is exit 1; without --count exit 0; SIGINT ends it with exit 0', async (t) => {
  const v = await startTestVault(t, { tls: true, workers: 1 })
  // bounded whether or not the stream was open by then
  const [short, bounded] = await Promise.all([follow(t, [...(await remote(v)), '--count', '5', '--timeout', '3']).done, follow(t, [...(await remote(v)), '--timeout', '3']).done])
  t.is(short.code, 1, short.stderr)
  t.regex(short.stderr, /\d of 5 entries before the timeout \(3 s\)/)
  t.is(bounded.code, 0, bounded.stderr)

  const open = follow(t, await remote(v))
  await streamsOpen(v)
  t.is(await register(v, await generateDeviceKey(), 'T-1'), 200)
  await until(() => open.stdout().includes('serial=T-1 '), 'the entry printed')
  open.child.kill('SIGINT')
  const o = await open.done
  t.is(o.code, 0, o.stderr)
  t.is(o.stderr, '')
})

test('log follow: a vault restarting under it: reconnects with backoff and prints each entry once', async (t) => {
  const v1 = await startTestVault(undefined, { tls: true, workers: 1 })
  const port = new URL(v1.url).port
  let v2: TestVault | undefined
  t.teardown(async () => {
    await v1.close()
    await v2?.close()
  })
  const f = follow(t, [...(await remote(v1)), '--json', '--count', '2', '--retries', '8', '--timeout', '80'])
  await streamsOpen(v1)
  t.is(await register(v1, await generateDeviceKey(), 'RS-1'), 200)
  // the first entry is out before the vault goes
  await until(() => f.stdout().includes('RS-1'), 'the first entry printed')
  await v1.close()
  await sleep(300)
  v2 = await startTestVault(undefined, { tls: true, workers: 1, dataDir: v1.dataDir, config: { listen: `127.0.0.1:${port}` } })
  t.is(await register(v2, await generateDeviceKey(), 'RS-2'), 200)
  const r = await f.done
  t.is(r.code, 0, r.stderr)
  t.regex(r.stderr, /reconnecting in 1 s \(1\/8\)/)
  const serials = r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { serial: string }).serial)
  t.deepEqual(serials, ['RS-1', 'RS-2'])
})

test('log follow: a refused token is exit 1 at once (no retry); an unreachable vault is exit 3 after --retries', async (t) => {
  const v = await startTestVault(t, { tls: true, workers: 1 })
  const bad = follow(t, ['--url', v.url, '--token', 'not-a-token', '--ca', await caFile(v)])
  const r = await bad.done
  t.is(r.code, 1, r.stderr)
  t.regex(r.stderr, /401.*SV_UNAUTHENTICATED/)
  t.notRegex(r.stderr, /reconnecting/)
  const gone = follow(t, ['--url', 'https://127.0.0.1:1/v1/', '--token', v.adminToken, '--retries', '1'])
  const g = await gone.done
  t.is(g.code, 3, g.stderr)
  t.regex(g.stderr, /reconnecting in 1 s \(1\/1\)/)
  t.regex(g.stderr, /gave up after 1 retry/)
  const usage = follow(t, ['--url', v.url, '--token', v.adminToken, '--count', '0'])
  t.is((await usage.done).code, 2)
})
