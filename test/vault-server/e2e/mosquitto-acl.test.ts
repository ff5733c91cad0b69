/**
 * The Mosquitto example of docs/deployment.md, for real: the configuration
 * and ACL blocks are read from the document (ports and paths rewritten), a
 * password file is made with mosquitto_passwd, and a second Mosquitto starts
 * on spare ports with them. A vault in this process joins its vault listener
 * as `serial-vault` (external mode, group serial-vault); devices with their
 * own accounts use the device listener (TLS). Checked: a device registers;
 * another device reads none of its replies (its reply topics, serial-vault/v1/#,
 * #, a shared subscription, or connecting under its client id); replies
 * cannot be forged; anonymous and wrong passwords are refused.
 *
 * Found here: Mosquitto grants every SUBSCRIBE and applies `read` only at
 * delivery, so a device that joins the vault's shared-subscription group gets
 * its turn in the round robin and the requests it is dealt are dropped by the
 * ACL, unanswered. The group name must therefore be a secret
 * (VAULT_MQTT_GROUP); the vault here uses a random one, and a serial test
 * shows what a device that knows it does. Fails (never skips) without the
 * mosquitto binaries.
 */
import test, { type ExecutionContext } from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { connect as netConnect, createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Buffer } from 'node:buffer'
import { replyFilter, replyTopic, requestTopic } from '@sv/shared'
import { ROOT, startTestVault, type TestVault } from '../../helpers/vault.js'
import { generateDeviceKey, serialRequestStream } from '../../helpers/device.js'
import { generateSelfSigned } from '../../../vault-server/src/tls.js'
import { connectMqtt, connectRefusal, inboxOf, mqttRequest, mqttRequestId, sleep, subscribeGranted, subscribeReplies } from '../mqtt/mqtt-helpers.js'

const MOSQUITTO = process.env.SV_MOSQUITTO ?? 'mosquitto'
const MOSQUITTO_PASSWD = process.env.SV_MOSQUITTO_PASSWD ?? 'mosquitto_passwd'
const ACCOUNTS: Record<string, string> = { 'serial-vault': 'vault-secret', 'dev-a': 'pw-a', 'dev-b': 'pw-b', 'dev-c': 'pw-c', 'dev-d': 'pw-d', 'dev-e': 'pw-e', 'dev-f': 'pw-f' }

/** The fenced block after `<!-- mosquitto-acl-test: NAME -->` in docs/deployment.md. */
function docBlock(md: string, name: string): string {
  const marker = `<!-- mosquitto-acl-test: ${name} -->`
  const at = md.indexOf(marker)
  if (at < 0) throw new Error(`docs/deployment.md has no ${marker}`)
  const m = /```[a-z]*\n([\s\S]*?)```/.exec(md.slice(at))
  if (!m) throw new Error(`no fenced block after ${marker}`)
  return m[1]!
}

function replaceOnce(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to)
  if (out === text) throw new Error(`the documented configuration no longer has ${String(from)}: update this test with the document`)
  return out
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    c.stderr!.on('data', (d) => (err += d))
    c.on('error', (e) => reject(new Error(`${cmd}: ${e.message} (install mosquitto; SV_MOSQUITTO_PASSWD overrides the path)`)))
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))))
  })
}

interface Broker {
  devUrl: string
  vaultUrl: string
  caPem: string
  child: ChildProcess
  log(): string
}

let dir: string | undefined
let broker: Broker | undefined
let vault: TestVault | undefined
const logLines: Record<string, unknown>[] = []
/** the vault's shared-subscription group: secret, as docs/deployment.md requires */
const GROUP = `serial-vault-${randomBytes(8).toString('hex')}`

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sv-mosquitto-acl-'))
  const md = await readFile(join(ROOT, 'docs/deployment.md'), 'utf8')
  const [devPort, vaultPort] = [await freePort(), await freePort()]
  let conf = docBlock(md, 'conf')
  conf = replaceOnce(conf, /^listener 8883$/m, `listener ${devPort} 127.0.0.1`)
  conf = replaceOnce(conf, /^listener 8884 10\.0\.0\.10$/m, `listener ${vaultPort} 127.0.0.1`)
  conf = replaceOnce(conf, /\/var\/lib\/mosquitto\//g, `${dir}/data/`)
  conf = replaceOnce(conf, /\/etc\/mosquitto\//g, `${dir}/`)
  // this user (not `mosquitto`: the temp dir is 0700); log to stderr for failures
  conf += `\nuser ${userInfo().username}\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type subscribe\n`
  await mkdir(join(dir, 'data'))
  await mkdir(join(dir, 'certs'))
  await writeFile(join(dir, 'mosquitto.conf'), conf)
  await writeFile(join(dir, 'serial-vault.acl'), docBlock(md, 'acl'))
  const { certPem, keyPem } = await generateSelfSigned()
  await writeFile(join(dir, 'certs/broker.crt'), certPem)
  await writeFile(join(dir, 'certs/broker.key'), keyPem, { mode: 0o600 })
  const passwd = join(dir, 'serial-vault.passwd')
  let first = true
  for (const [user, password] of Object.entries(ACCOUNTS)) {
    await run(MOSQUITTO_PASSWD, [...(first ? ['-c'] : []), '-b', passwd, user, password])
    first = false
  }

  const child = spawn(MOSQUITTO, ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let out = ''
  child.stderr!.on('data', (d) => (out = (out + d).slice(-50_000)))
  child.on('error', (e) => (out += `\nspawn: ${e.message}`))
  broker = { devUrl: `mqtts://127.0.0.1:${devPort}`, vaultUrl: `mqtts://127.0.0.1:${vaultPort}`, caPem: certPem, child, log: () => out }
  const deadline = Date.now() + 10_000
  for (;;) {
    const up = await Promise.all(
      [devPort, vaultPort].map(
        (port) =>
          new Promise<boolean>((resolve) => {
            const s = netConnect(port, '127.0.0.1')
            s.once('connect', () => (s.destroy(), resolve(true)))
            s.once('error', () => resolve(false))
          }),
      ),
    )
    if (up.every(Boolean)) break
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`mosquitto with the documented configuration did not start:\n${out}`)
    await sleep(100)
  }
  vault = await startTestVault(undefined, {
    store: 'memory',
    workers: 1,
    logLines,
    config: { mqtt: { mode: 'external', url: broker.vaultUrl, username: 'serial-vault', password: ACCOUNTS['serial-vault'], ca: join(dir, 'certs/broker.crt'), group: GROUP } },
  })
})

test.after.always(async () => {
  await vault?.close()
  if (broker && broker.child.exitCode === null) {
    const exited = new Promise((r) => broker!.child.once('exit', r))
    broker.child.kill('SIGTERM')
    await Promise.race([exited, sleep(5000)])
  }
  if (dir) await rm(dir, { recursive: true, force: true })
})

function device(t: ExecutionContext, user: string, o: { clientId?: string; protocolVersion?: 4 | 5 } = {}) {
  return connectMqtt(t, broker!.devUrl, { clientId: o.clientId ?? user, username: user, password: ACCOUNTS[user]!, ca: broker!.caPem, protocolVersion: o.protocolVersion ?? 4 })
}

test('mosquitto ACL: a device cannot read, forge or divert another device\'s replies or requests', async (t) => {
  const v = vault!
  const victim = await device(t, 'dev-a')
  t.is(await subscribeReplies(victim), 1)

  // snooping: the victim's reply topics, everything, and a shared subscription of its replies
  const snoop = await device(t, 'dev-b', { protocolVersion: 5 })
  await subscribeGranted(snoop, [replyFilter('dev-a'), replyTopic('serial', 'dev-a', 'accepted'), 'serial-vault/v1/#', '#', '$share/snoops/serial-vault/v1/+/dev-a/+'])
  // impersonation: another account connecting under the victim's client id is renamed to its username
  const thief = await device(t, 'dev-c', { clientId: 'dev-a' })
  await subscribeGranted(thief, [replyFilter('dev-a')])
  // diversion: a device guessing the vault's group (the default name, and others)
  const diverter = await device(t, 'dev-d', { protocolVersion: 5 })
  await subscribeGranted(diverter, ['serial-vault', 'sv', 'vault'].flatMap((g) => [`$share/${g}/serial-vault/v1/serial`, `$share/${g}/serial-vault/v1/request-id`]))
  await sleep(200)
  t.true(victim.connected, 'the victim was not disconnected by a client claiming its id')

  // every request of the victim reaches the vault and is answered
  for (let i = 0; i < 6; i++) t.is((await mqttRequest(victim, 'request-id', { 'api-key': v.apiKey }, { timeoutMs: 10_000 })).kind, 'accepted', `request-id ${i}`)
  const key = await generateDeviceKey()
  const body = await serialRequestStream({ key, brandId: 'acme-brand', model: 'acme-pi-gateway', requestId: await mqttRequestId(victim, v.apiKey), serial: 'ACL-1' })
  const serial = await mqttRequest(victim, 'serial', { 'api-key': v.apiKey, body: body.toString('utf8') }, { timeoutMs: 15_000 })
  t.is(serial.kind, 'accepted')
  t.regex(serial.body.assertions as string, /^type: serial\n/)

  // forging: a device publishing on the victim's reply topic
  // (bounded: a refused QoS 1 publish may never be acknowledged)
  await Promise.race([snoop.publishAsync(replyTopic('serial', 'dev-a', 'accepted'), JSON.stringify({ token: 'forged', assertions: 'type: serial\n' }), { qos: 1 }).catch(() => undefined), sleep(2000)])
  await Promise.race([snoop.publishAsync('serial-vault/v1/anything', 'x', { qos: 1 }).catch(() => undefined), sleep(2000)])
  await sleep(500)
  t.is(inboxOf(victim).count((m) => m.json?.token === 'forged'), 0, 'a forged reply reached the victim')
  t.deepEqual(inboxOf(snoop).messages.map((m) => m.topic), [], 'the snoop read replies')
  t.deepEqual(inboxOf(thief).messages.map((m) => m.topic), [], 'the impersonator read replies')
  t.deepEqual(inboxOf(diverter).messages.map((m) => m.topic), [], 'the diverter received requests')
  t.true(inboxOf(victim).messages.length >= 8)
})

test('mosquitto ACL: anonymous and wrong passwords are refused; an MQTT 5 device gets replies on a response topic its ACL allows', async (t) => {
  const v = vault!
  t.is(await connectRefusal(broker!.devUrl, { clientId: 'anon', ca: broker!.caPem }), 5)
  t.is(await connectRefusal(broker!.devUrl, { clientId: 'dev-e', username: 'dev-e', password: 'wrong', ca: broker!.caPem }), 5)
  t.is(await connectRefusal(broker!.vaultUrl, { clientId: 'anon', ca: broker!.caPem }), 5)

  const d = await device(t, 'dev-e', { protocolVersion: 5 })
  const responseTopic = 'serial-vault/v1/response/dev-e/1'
  await d.subscribeAsync(responseTopic, { qos: 1 })
  const got = inboxOf(d).wait((m) => m.topic === responseTopic, 10_000)
  await d.publishAsync(requestTopic('request-id'), JSON.stringify({ 'api-key': v.apiKey }), { qos: 1, properties: { responseTopic, correlationData: Buffer.from('c1') } })
  const m = await got
  t.is(m.json?.result, 'accepted')
  t.deepEqual(Buffer.from(m.packet.properties!.correlationData as Buffer), Buffer.from('c1'))

  // max_packet_size: a packet over it disconnects its sender
  const big = await device(t, 'dev-f')
  const closed = new Promise<boolean>((resolve) => {
    big.once('close', () => resolve(true))
    setTimeout(() => resolve(false), 5000)
  })
  big.publish(requestTopic('serial'), Buffer.alloc(400 * 1024, 0x61), { qos: 0 })
  t.true(await closed, 'a 400 KiB packet did not disconnect its sender')
})

test.serial('mosquitto ACL (hazard): a device that knows the vault\'s group takes its turn and those requests go unanswered; keep VAULT_MQTT_GROUP secret', async (t) => {
  // runs before the concurrent tests (AVA runs serial tests first), alone with the vault
  const v = vault!
  const victim = await device(t, 'dev-a', { clientId: 'dev-a' })
  await subscribeReplies(victim)
  const diverter = await device(t, 'dev-d', { protocolVersion: 5 })
  await subscribeGranted(diverter, [`$share/${GROUP}/serial-vault/v1/request-id`])
  const kinds = await Promise.all(
    Array.from({ length: 6 }, () => mqttRequest(victim, 'request-id', { 'api-key': v.apiKey }, { timeoutMs: 3000 }).then((r) => r.kind, () => 'lost')),
  )
  t.log(`answered: ${kinds.filter((k) => k === 'accepted').length} of ${kinds.length}`)
  t.true(kinds.includes('lost'), 'no request was lost: Mosquitto may now check subscriptions; revisit docs/deployment.md')
  t.is(inboxOf(diverter).messages.length, 0, 'the ACL still keeps the requests from the device')
  await diverter.endAsync(true)
})
