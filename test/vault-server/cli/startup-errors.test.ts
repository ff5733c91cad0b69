/**
 * Issue 13, points 2 and 3: what a new user or a factory script meets when
 * `vault-server serve` or `demo` cannot start. Each case is a real process;
 * stderr must be exactly one line `vault-server: ... (SV_CODE)` naming the
 * file, directory or address at fault, with no stack trace, and the exit
 * code must come from the error table: 2 for everything here (a retry would
 * not cure any of it), never 3.
 */
import test, { type ExecutionContext } from 'ava'
import { cp, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { runVaultCli, type CliRun } from '../../helpers/cli.js'
import { demoAddresses } from '../../../vault-server/src/cli/demo.js'

/** MQTT off unless a test turns it on; no VAULT_* from the caller's shell. */
const ENV: Record<string, string> = { VAULT_MQTT_MODE: 'off', VAULT_DATA_DIR: '', VAULT_LISTEN: '', VAULT_MQTT_LISTEN: '', VAULT_MASTER_KEY: '' }

let base = ''
test.before(async () => {
  base = await mkdtemp(join(tmpdir(), 'sv-startup-'))
  const r = await runVaultCli(['init', '--data', join(base, 'vault'), '--json'], { env: ENV })
  if (r.code !== 0) throw new Error(`init failed: ${r.stderr}`)
  const other = await runVaultCli(['init', '--data', join(base, 'other'), '--json'], { env: ENV })
  if (other.code !== 0) throw new Error(`init failed: ${other.stderr}`)
})
test.after.always(() => rm(base, { recursive: true, force: true }))

/** A private copy of the initialised data directory. */
async function dataDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sv-startup-t-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await cp(join(base, 'vault'), join(dir, 'vault'), { recursive: true })
  return join(dir, 'vault')
}

function occupy(): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => resolve(s))
  })
}

/** Exit code 2 and one stderr line naming `names` with `code`. */
function failsTyped(t: ExecutionContext, r: CliRun, code: string, names: string[], exit = 2): void {
  t.is(r.code, exit, r.stderr)
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  t.is(lines.length, 1, r.stderr)
  t.regex(lines[0]!, new RegExp(`^vault-server: .+ \\(${code}\\)$`))
  for (const n of names) t.true(lines[0]!.includes(n), `${n} in ${lines[0]}`)
  t.false(/\n\s+at /.test(r.stderr), 'no stack trace')
}

const serve = (args: string[], env: Record<string, string> = {}) => runVaultCli(['serve', '--listen', '127.0.0.1:0', ...args], { env: { ...ENV, ...env } })

test('serve: an unknown key in --config is SV_CONFIG_INVALID, exit 2, naming the file and the key', async (t) => {
  const data = await dataDir(t)
  const file = join(data, 'bad.yaml')
  await writeFile(file, 'bogus: 1\nlisten: 127.0.0.1:0\n')
  failsTyped(t, await serve(['--data', data, '--config', file]), 'SV_CONFIG_INVALID', [file, 'bogus'])
})

test('serve: a --config that is missing or unreadable (a directory) names the file, exit 2', async (t) => {
  const data = await dataDir(t)
  failsTyped(t, await serve(['--data', data, '--config', join(data, 'nope.yaml')]), 'SV_CONFIG_INVALID', [join(data, 'nope.yaml'), 'not found'])
  failsTyped(t, await serve(['--data', data, '--config', data]), 'SV_CONFIG_INVALID', [data, 'EISDIR'])
})

test('serve: no --data, a bad --listen, no master key: SV_CONFIG_INVALID / SV_MASTER_KEY_INVALID, exit 2', async (t) => {
  failsTyped(t, await runVaultCli(['serve'], { env: ENV }), 'SV_CONFIG_INVALID', ['dataDir'])
  const data = await dataDir(t)
  failsTyped(t, await runVaultCli(['serve', '--data', data, '--listen', 'nowhere'], { env: ENV }), 'SV_CONFIG_INVALID', ['listen'])
  await rm(join(data, 'master.key'))
  failsTyped(t, await serve(['--data', data]), 'SV_MASTER_KEY_INVALID', [join(data, 'master.key')])
})

test('serve: a corrupt LevelDB is SV_STORE_CORRUPT naming the directory and the cause, exit 2 (not 3: a retry never heals it)', async (t) => {
  const data = await dataDir(t)
  const db = join(data, 'db')
  const manifest = (await readdir(db)).find((f) => f.startsWith('MANIFEST-'))!
  await writeFile(join(db, manifest), Buffer.alloc(300, 0x41))
  failsTyped(t, await serve(['--data', data]), 'SV_STORE_CORRUPT', [db, 'Corruption'])
})

test('serve: a data directory held by another process is SV_STORE_LOCKED naming it, exit 2', async (t) => {
  const data = await dataDir(t)
  const holder = new Level(join(data, 'db'))
  await holder.open()
  t.teardown(() => holder.close())
  failsTyped(t, await serve(['--data', data]), 'SV_STORE_LOCKED', [join(data, 'db'), '--url'])
})

test('serve: a garbled TLS certificate or key, or a key of another certificate, names the file, exit 2', async (t) => {
  const data = await dataDir(t)
  const cert = join(data, 'tls/cert.pem')
  const key = join(data, 'tls/key.pem')
  const garbled = join(data, 'garbled.pem')
  await writeFile(garbled, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n')
  failsTyped(t, await serve(['--data', data, '--tls-cert', garbled, '--tls-key', key]), 'SV_CONFIG_INVALID', [garbled, 'certificate'])
  failsTyped(t, await serve(['--data', data, '--tls-cert', cert, '--tls-key', garbled]), 'SV_CONFIG_INVALID', [garbled, 'private key'])
  const r = await serve(['--data', data, '--tls-cert', cert, '--tls-key', join(base, 'other/tls/key.pem')])
  failsTyped(t, r, 'SV_CONFIG_INVALID', [join(base, 'other/tls/key.pem'), cert])
  t.false(r.stderr.includes('PRIVATE KEY'), 'no key material')
})

// A taken HTTPS or MQTT port for serve: serve.test.ts.

// --- demo -------------------------------------------------------------------------------

test('demo: a taken port fails before any key is generated (the data directory is not even made), exit 2', async (t) => {
  const dir = join(await mkdtemp(join(tmpdir(), 'sv-startup-demo-')), 'demo')
  t.teardown(() => rm(join(dir, '..'), { recursive: true, force: true }))
  const taken = await occupy()
  t.teardown(() => taken.close())
  const at = `127.0.0.1:${(taken.address() as AddressInfo).port}`
  failsTyped(t, await runVaultCli(['demo', '--data', dir, '--listen', at, '--idp-listen', '127.0.0.1:0', '--once'], { env: ENV }), 'SV_ADDRESS_UNAVAILABLE', [at, '--listen'])
  // --mqtt-listen moves the embedded broker, and its address is checked as early
  failsTyped(
    t,
    await runVaultCli(['demo', '--data', dir, '--listen', '127.0.0.1:0', '--mqtt-listen', at, '--idp-listen', '127.0.0.1:0', '--once'], { env: { ...ENV, VAULT_MQTT_MODE: 'embedded' } }),
    'SV_ADDRESS_UNAVAILABLE',
    [at, 'MQTT', '--mqtt-listen'],
  )
  failsTyped(t, await runVaultCli(['demo', '--data', dir, '--listen', '127.0.0.1:0', '--idp-listen', at, '--once'], { env: ENV }), 'SV_ADDRESS_UNAVAILABLE', [at, 'identity provider', '--idp-listen'])
  // no key was generated: the data directory was never made
  await t.throwsAsync(stat(dir), { code: 'ENOENT' })
})

test('demo: a garbled or foreign demo.json is SV_CONFIG_INVALID naming the file, exit 2', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sv-startup-demo-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const state = join(dir, 'demo.json')
  await writeFile(state, '{"brand": "demo-brand", ')
  failsTyped(t, await runVaultCli(['demo', '--data', dir, '--listen', '127.0.0.1:0', '--once'], { env: ENV }), 'SV_CONFIG_INVALID', [state, 'JSON'])
  await writeFile(state, '[1, 2]\n')
  failsTyped(t, await runVaultCli(['demo', '--data', dir, '--listen', '127.0.0.1:0', '--once'], { env: ENV }), 'SV_CONFIG_INVALID', [state])
  await rm(state)
  await mkdir(state)
  failsTyped(t, await runVaultCli(['demo', '--data', dir, '--listen', '127.0.0.1:0', '--once'], { env: ENV }), 'SV_CONFIG_INVALID', [state, 'EISDIR'])
})

test('demoAddresses: MQTT and the identity provider follow --listen (port + 440 and + 1) unless given; port 0 stays 0', (t) => {
  t.deepEqual(demoAddresses('127.0.0.1:8443', {}), { mqtt: '127.0.0.1:8883', idp: '127.0.0.1:8444' })
  t.deepEqual(demoAddresses('127.0.0.1:9443', {}), { mqtt: '127.0.0.1:9883', idp: '127.0.0.1:9444' })
  t.deepEqual(demoAddresses('0.0.0.0:0', {}), { mqtt: '0.0.0.0:0', idp: '0.0.0.0:0' })
  t.deepEqual(demoAddresses('[::1]:65500', {}), { mqtt: '[::1]:0', idp: '[::1]:65501' })
  t.deepEqual(demoAddresses('127.0.0.1:9443', { mqttListen: '127.0.0.1:1884', idpListen: '127.0.0.1:7000' }), { mqtt: '127.0.0.1:1884', idp: '127.0.0.1:7000' })
})
