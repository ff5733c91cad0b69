/**
 * `vault-server demo` (what `npm start` runs) as a new user meets it: a real
 * process on a fresh data directory. The instructions it prints work: snapd's
 * own client registers with the printed command line, a person logs in with
 * the printed e-mail and password at the printed login URL (through the
 * demo's development identity provider) and sees their role, and the printed
 * personal token shows only that person's stores.
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT } from '../../helpers/vectors.js'
import { runSnapdCheck } from '../../helpers/snapd-check.js'
import { endpoint, httpRequest, jsonOf } from '../../helpers/device.js'
import { driveLogin } from '../../helpers/oidc.js'
import { runVaultCli } from '../../helpers/cli.js'

const MAIN = join(REPO_ROOT, 'vault-server/src/main.ts')

test('demo: the printed instructions work: snapd registers, a person logs in with the printed password, a token sees its stores', async (t) => {
  t.timeout(300_000)
  const dir = await mkdtemp(join(tmpdir(), 'sv-demo-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const port = 20000 + Math.floor(Math.random() * 20000)
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', MAIN, 'demo', '--data', dir, '--listen', `127.0.0.1:${port}`, '--idp-listen', `127.0.0.1:${port + 1}`], {
    cwd: REPO_ROOT,
    env: { ...process.env, VAULT_MQTT_MODE: 'off', VAULT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise((r) => child.once('exit', r))
  t.teardown(async () => {
    child.kill('SIGTERM')
    await exited
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (c: Buffer) => (out += c))
  child.stderr.on('data', (c: Buffer) => (err += c))
  const deadline = Date.now() + 240_000
  while (!out.includes('Ctrl-C stops the vault') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
  t.true(out.includes('Ctrl-C stops the vault'), err)
  // our commands as printed never go through plain npx (it would fetch from the registry without node_modules)
  t.false(/\bnpx\b/.test(out), out)
  t.regex(out, /^ {4}npm exec --no -- device-agent provision --once /m)

  const ca = join(dir, 'tls/cert.pem')
  const caPem = (await import('node:fs')).readFileSync(ca, 'utf8')
  const url = `https://127.0.0.1:${port}/v1/`

  // snapd's client, with the command line as printed
  const printed = /\.cache\/snapd-check\/snapd-check (register .*)\\\n\s+(.*)\n/.exec(out)!
  const args = `${printed[1]} ${printed[2]}`.trim().split(/\s+/)
  const reg = await runSnapdCheck([...args, '--key-bits', '2048'], { timeoutMs: 120_000 })
  t.regex(reg.stdout, /register: OK serial=DEMO-0002/, reg.stdout + reg.stderr)

  // every role has a person; the viewer logs in with the printed password
  const people = [...out.matchAll(/^ {4}(\w+)\s+(\S+@demo\.example)\s+password (\S+)\s+in (\S+)$/gm)].map((m) => ({ role: m[1]!, email: m[2]!, password: m[3]!, store: m[4]! }))
  t.deepEqual(people.map((p) => p.role).sort(), ['admin', 'collaborator', 'publisher', 'reviewer', 'viewer'])
  const viewer = people.find((p) => p.role === 'viewer')!
  const loginUrl = /or at (\S+) with/.exec(out)![1]!
  // the printed dashboard address serves the dashboard
  const dashboard = await httpRequest(/Dashboard\s+(\S+)/.exec(out)![1]!, { ca: caPem })
  t.is(dashboard.status, 200)
  t.regex(dashboard.body.toString(), /<div id="app"|<script type="module"/)
  const start = await httpRequest(loginUrl, { ca: caPem })
  t.is(start.status, 302)
  const loginCookie = /sv_login=([^;]+)/.exec(String(start.headers['set-cookie']))![1]!
  const back = await driveLogin(String(start.headers.location), { email: viewer.email, password: viewer.password }, `https://127.0.0.1:${port}/v1/auth/callback`)
  const done = await httpRequest(endpoint(url, `auth/callback${back.search}`), { ca: caPem, headers: { cookie: `sv_login=${loginCookie}` } })
  t.is(done.status, 303, done.body.toString())
  const session = /sv_session=([^;]+)/.exec(String(done.headers['set-cookie']))![1]!
  const me = jsonOf<{ person: { email: string }; stores: Array<{ id: string; roles: string[] }> }>(await httpRequest(endpoint(url, 'admin/me'), { ca: caPem, headers: { cookie: `sv_session=${session}` } }))
  t.is(me.person.email, 'viewer@demo.example')
  t.deepEqual(me.stores.map((s) => [s.id, s.roles]), [['demo-partner', ['viewer']]])

  // the printed personal token: the Viewer's stores only
  const tokenLine = /store list --url \S+ --ca \S+ --token (\S+)/.exec(out)!
  const listed = jsonOf<{ stores: Array<{ id: string }> }>(await httpRequest(endpoint(url, 'admin/stores'), { ca: caPem, headers: { authorization: `Bearer ${tokenLine[1]}` } }))
  t.deepEqual(listed.stores.map((s) => s.id), ['demo-partner'])

  // Issue 13: a rerun suggests serials not bound yet in this data directory.
  // DEMO-0003 is taken by hand here, so the next free pair is 0004 and 0005
  // (counting on from the last banner alone would suggest 0003: a 409).
  const byHand = args.map((a) => (a === 'DEMO-0002' ? 'DEMO-0003' : a))
  t.regex((await runSnapdCheck([...byHand, '--key-bits', '2048'], { timeoutMs: 120_000 })).stdout, /register: OK serial=DEMO-0003/)
  child.kill('SIGTERM')
  await exited
  // and the embedded broker moves with --mqtt-listen (here an ephemeral port), shown in the banner
  const again = await runVaultCli(['demo', '--data', dir, '--listen', `127.0.0.1:${port}`, '--idp-listen', `127.0.0.1:${port + 1}`, '--mqtt-listen', '127.0.0.1:0', '--once'], {
    env: { VAULT_MQTT_MODE: 'embedded', VAULT_LOG_LEVEL: 'warn' },
    timeoutMs: 120_000,
  })
  t.is(again.code, 0, again.stderr)
  t.regex(again.stdout, /--serial-value DEMO-0004 /)
  t.regex(again.stdout, /--serial DEMO-0005 /)
  const mqtt = /MQTT\s+mqtts:\/\/127\.0\.0\.1:(\d+)/.exec(again.stdout)
  t.truthy(mqtt, again.stdout)
  t.not(Number(mqtt![1]), 0)
  t.false(again.stderr.includes('\r'), 'no carriage returns when stderr is not a terminal')
})
