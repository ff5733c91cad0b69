/**
 * Scale-out: two real `vault-server serve` processes on ONE PostgreSQL schema
 * (a fresh random one, dropped at the end) and ONE Mosquitto (SV_TEST_MQTT_URL,
 * external mode, both in the same $share group, under a topic prefix of this
 * test's own), sharing the master key.
 *
 * 280 registrations are prepared (request-ids fetched from one instance, or
 * over MQTT) and then sent all at once: over HTTPS alternately to the other
 * instance, and over MQTT (whichever instance the broker hands them to).
 * Among them:
 *  - 10 serials asked for by two different keys at the same moment (one over
 *    HTTPS to each instance, or HTTPS and MQTT): exactly one wins, the other
 *    gets 409 SV_SERIAL_TAKEN;
 *  - 10 request-ids each used twice at the same moment (two keys, two
 *    serials, two instances): at most one success, the other SV_REQUEST_ID_USED.
 * Then, from PostgreSQL: one binding per serial holding the bytes its winner
 * received, no request-id behind two bindings or two issuances, the log
 * agreeing with the answers, and every client answered (every wait bounded).
 *
 * The schema is set up in this process first (openVault on it: the vectors'
 * brand, the models), then closed, before the processes start. Missing
 * PostgreSQL or Mosquitto fails the test.
 */
import test, { type ExecutionContext } from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { MqttClient } from 'mqtt'
import { VaultConfigSchema } from '../../../vault-server/src/config.js'
import { createLogger } from '../../../vault-server/src/logger.js'
import { openVault } from '../../../vault-server/src/vault.js'
import { generateSelfSigned } from '../../../vault-server/src/tls.js'
import { ROOT, VECTORS, startTestVault } from '../../helpers/vault.js'
import { fetchRequestId, generateDeviceKeys, httpRequest, jsonOf, postSerial, registerDevice, serialRequestStream, type DeviceKey } from '../../helpers/device.js'
import { admin as adminCall, metricValue } from '../http/api.js'
import { PG_URL, SHARED_MQTT_URL, connectMqtt, mqttRequest, mqttRequestId, requireBroker, subscribeReplies, testPrefix } from '../mqtt/mqtt-helpers.js'

const BRAND = 'acme-brand'
const KEYS = 32
const REGULAR_MODELS = 8
const REGULAR = 240
const RACES = 10
const RID_PAIRS = 10
/** every answer is awaited at most this long */
const ANSWER_MS = 30_000

interface Instance {
  name: string
  url: string
  child: ChildProcess
  output(): string
}

async function spawnServe(t: ExecutionContext, name: string, dataDir: string, env: Record<string, string>): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', join(ROOT, 'vault-server/src/main.ts'), 'serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--tls-cert', join(dataDir, 'cert.pem'), '--tls-key', join(dataDir, 'key.pem')], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const keep = (c: Buffer) => {
    out = (out + c.toString('utf8')).slice(-20_000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${name} did not start within 40 s:\n${out}`)), 40_000)
    const poll = setInterval(() => {
      const m = /serving (https:\/\/127\.0\.0\.1:\d+\/v1\/)/.exec(out)
      if (m) done(undefined, m[1])
      else if (child.exitCode !== null) done(new Error(`${name} exited with ${child.exitCode}:\n${out}`))
    }, 50)
    function done(err?: Error, u?: string) {
      clearTimeout(timer)
      clearInterval(poll)
      if (err) reject(err)
      else resolve(u!)
    }
  })
  return { name, url, child, output: () => out }
}

/** What one client got: an HTTP status or an MQTT reply, or nothing within ANSWER_MS. */
interface Answer {
  answered: boolean
  ok: boolean
  code?: string
  /** the serial stream a success carried */
  assertions?: string
  via: string
}

interface Job {
  model: string
  serial: string
  key: DeviceKey
  requestId: string
  /** 'A' | 'B': HTTPS to that instance; 'mqtt': over the broker */
  to: 'A' | 'B' | 'mqtt'
  body?: Buffer
  group?: string
}

test('scale-out: two vault-server processes on one PostgreSQL schema and one Mosquitto: 280 concurrent registrations, races resolved by the store', async (t) => {
  await requireBroker()
  // fail loudly without PostgreSQL
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 })
  await admin.connect().catch((e: Error) => {
    throw new Error(`PostgreSQL at ${PG_URL} (SV_TEST_PG_URL) is not reachable: ${e.message}`)
  })
  t.teardown(() => admin.end())
  const schema = `sv_scale_${randomBytes(6).toString('hex')}`
  t.teardown(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  })
  const dirs = await Promise.all([0, 1, 2].map(() => mkdtemp(join(tmpdir(), 'sv-scale-'))))
  t.teardown(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))).then(() => undefined))
  const masterKey = randomBytes(32).toString('hex')
  const apiKey = `scale-api-key-${randomBytes(8).toString('hex')}`
  const keysP = generateDeviceKeys(KEYS)

  // --- the shared schema: brand and models, in this process, then closed -----------
  const models = [...Array.from({ length: REGULAR_MODELS }, (_, m) => `scale-${m}`), 'scale-race', 'scale-rid']
  {
    const config = VaultConfigSchema.parse({ dataDir: dirs[0], masterKey: { value: masterKey }, tls: { plainHttp: true }, log: { level: 'silent' }, mqtt: { mode: 'off' }, store: { driver: 'postgres', url: PG_URL, schema } })
    const v = await openVault(config, createLogger('silent'), { workers: 1 })
    try {
      await v.services.brands.importBrand({
        pem: await readFile(join(VECTORS, 'keys/brand.key.pem'), 'utf8'),
        account: await readFile(join(VECTORS, 'account.assert'), 'utf8'),
        accountKey: await readFile(join(VECTORS, 'account-key.assert'), 'utf8'),
        trusted: [await readFile(join(VECTORS, 'trusted.assert'), 'utf8')],
      })
      for (const name of models) await v.services.models.create({ brandId: BRAND, name, apiKeys: [apiKey] })
    } finally {
      await v.close()
    }
  }
  const { certPem, keyPem } = await generateSelfSigned()
  for (const d of dirs.slice(1)) {
    await writeFile(join(d, 'cert.pem'), certPem)
    await writeFile(join(d, 'key.pem'), keyPem, { mode: 0o600 })
  }

  // --- two instances, one broker group (under a topic prefix of this test's own) -------
  const group = `sv-scale-${randomBytes(4).toString('hex')}`
  const prefix = testPrefix()
  const env = {
    VAULT_MASTER_KEY: masterKey,
    VAULT_STORE_DRIVER: 'postgres',
    VAULT_STORE_URL: PG_URL,
    VAULT_STORE_SCHEMA: schema,
    VAULT_MQTT_MODE: 'external',
    VAULT_MQTT_URL: SHARED_MQTT_URL,
    VAULT_MQTT_GROUP: group,
    VAULT_MQTT_TOPIC_PREFIX: prefix,
    VAULT_SIGNING_WORKERS: '1',
    // This test is about races, not deadlines: on a loaded machine one signing
    // worker per instance may take longer than the default 10 s for 280
    // registrations; answers must still come within ANSWER_MS.
    VAULT_REQUEST_TIMEOUT_MS: String(ANSWER_MS - 5000),
    VAULT_LOG_LEVEL: 'warn',
  }
  const [A, B] = await Promise.all([spawnServe(t, 'A', dirs[1]!, env), spawnServe(t, 'B', dirs[2]!, env)])
  const urlOf = { A: A.url, B: B.url }
  const keys = await keysP

  // --- the registrations --------------------------------------------------------------
  const jobs: Job[] = []
  for (let i = 0; i < REGULAR; i++) {
    const to = (['A', 'B', 'mqtt'] as const)[i % 3]!
    jobs.push({ model: `scale-${Math.floor(i / KEYS)}`, serial: `S${i}`, key: keys[i % KEYS]!, requestId: '', to })
  }
  for (let r = 0; r < RACES; r++) {
    // one serial, two keys: over HTTPS to each instance, or HTTPS and MQTT
    const second = r % 2 === 0 ? 'B' : 'mqtt'
    jobs.push({ model: 'scale-race', serial: `RACE${r}`, key: keys[2 * r]!, requestId: '', to: 'A', group: `race${r}` })
    jobs.push({ model: 'scale-race', serial: `RACE${r}`, key: keys[2 * r + 1]!, requestId: '', to: second, group: `race${r}` })
  }
  const sharedIds: string[] = []
  for (let p = 0; p < RID_PAIRS; p++) {
    const id = await fetchRequestId(p % 2 ? A.url : B.url, apiKey)
    sharedIds.push(id)
    jobs.push({ model: 'scale-rid', serial: `RID${p}a`, key: keys[2 * p]!, requestId: id, to: 'A', group: `rid${p}` })
    jobs.push({ model: 'scale-rid', serial: `RID${p}b`, key: keys[2 * p + 1]!, requestId: id, to: p % 2 ? 'B' : 'mqtt', group: `rid${p}` })
  }

  // MQTT devices: one connection per device, client id = device
  const mqttJobs = jobs.map((j, i) => ({ j, i })).filter(({ j }) => j.to === 'mqtt')
  const clients = new Map<number, MqttClient>()
  await Promise.all(
    mqttJobs.map(async ({ i }) => {
      const c = await connectMqtt(t, SHARED_MQTT_URL, { clientId: `scale-dev-${group}-${i}` })
      await subscribeReplies(c, { prefix })
      clients.set(i, c)
    }),
  )

  // request-ids: an HTTPS device gets its id from the OTHER instance than the one it posts to
  await Promise.all(
    jobs.map(async (j, i) => {
      if (!j.requestId) j.requestId = j.to === 'mqtt' ? await mqttRequestId(clients.get(i)!, apiKey, { prefix }) : await fetchRequestId(j.to === 'A' ? B.url : A.url, apiKey)
      j.body = await serialRequestStream({ key: j.key, brandId: BRAND, model: j.model, requestId: j.requestId, serial: j.serial })
    }),
  )

  // everything at once
  const started = performance.now()
  const answers: Answer[] = await Promise.all(
    jobs.map(async (j, i): Promise<Answer> => {
      try {
        if (j.to === 'mqtt') {
          const r = await mqttRequest(clients.get(i)!, 'serial', { 'api-key': apiKey, body: j.body!.toString('utf8') }, { timeoutMs: ANSWER_MS, prefix })
          return { answered: true, ok: r.kind === 'accepted', via: 'mqtt', ...(r.kind === 'accepted' ? { assertions: r.body.assertions as string } : { code: r.body.code as string }) }
        }
        const r = await postSerial(urlOf[j.to], apiKey, j.body!, { timeoutMs: ANSWER_MS })
        const text = r.body.toString('utf8')
        return { answered: true, ok: r.status === 200, via: `https-${j.to}`, ...(r.status === 200 ? { assertions: text } : { code: (JSON.parse(text) as { code: string }).code }) }
      } catch (e) {
        return { answered: false, ok: false, via: j.to, code: (e as Error).message }
      }
    }),
  )
  const elapsed = (performance.now() - started) / 1000
  t.log(`${jobs.length} registrations in ${elapsed.toFixed(1)} s (${(jobs.length / elapsed).toFixed(0)}/s) on two instances`)

  // every client got an answer
  const unanswered = answers.filter((a) => !a.answered)
  t.deepEqual(unanswered, [], 'every client got an HTTP status or an MQTT reply')

  // regular registrations: all served
  const regular = answers.slice(0, REGULAR)
  t.deepEqual(
    regular.filter((a) => !a.ok),
    [],
  )
  // races: exactly one winner, the loser SV_SERIAL_TAKEN
  for (let r = 0; r < RACES; r++) {
    const pair = answers.filter((_, i) => jobs[i]!.group === `race${r}`)
    t.is(pair.filter((a) => a.ok).length, 1, `race ${r}: ${JSON.stringify(pair.map((a) => a.code ?? 'ok'))}`)
    t.deepEqual(
      pair.filter((a) => !a.ok).map((a) => a.code),
      ['SV_SERIAL_TAKEN'],
    )
  }
  // one request-id used twice: at most one success, the other SV_REQUEST_ID_USED
  for (let p = 0; p < RID_PAIRS; p++) {
    const pair = answers.filter((_, i) => jobs[i]!.group === `rid${p}`)
    t.true(pair.filter((a) => a.ok).length <= 1, `request-id pair ${p}: ${JSON.stringify(pair.map((a) => a.code ?? 'ok'))}`)
    for (const a of pair.filter((x) => !x.ok)) t.is(a.code, 'SV_REQUEST_ID_USED')
  }

  // --- the store's view -------------------------------------------------------------------
  const q = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => (await admin.query<T>(sql.replaceAll('$S.', `${schema}.`), params)).rows
  const bindings = await q<{ model: string; serial: string; device_key_id: string; serial_assertion: string; request_id: string }>('SELECT model, serial, device_key_id, serial_assertion, request_id FROM $S.serial_bindings')
  const successes = answers.filter((a) => a.ok)
  t.is(bindings.length, successes.length, 'one binding per success')
  t.deepEqual(await q('SELECT brand_id, model, serial FROM $S.serial_bindings GROUP BY 1, 2, 3 HAVING count(*) > 1'), [], 'one binding per serial')
  t.deepEqual(await q('SELECT request_id FROM $S.serial_bindings GROUP BY 1 HAVING count(*) > 1'), [], 'no request-id behind two bindings')
  t.deepEqual(await q("SELECT request_id FROM $S.signing_log WHERE outcome = 'issued' GROUP BY 1 HAVING count(*) > 1"), [], 'no request-id behind two issuances')
  t.deepEqual(await q('SELECT b.request_id FROM $S.serial_bindings b LEFT JOIN $S.consumed_request_ids c ON c.id = b.request_id WHERE c.id IS NULL'), [], 'every binding consumed its request-id')
  const consumed = await q<{ id: string }>('SELECT id FROM $S.consumed_request_ids WHERE id = ANY($1)', [sharedIds])
  t.is(consumed.length, RID_PAIRS, 'each shared request-id consumed once')

  // each success's bytes are the binding of its serial, for the key that asked
  const byKey = new Map(bindings.map((b) => [`${b.model}|${b.serial}`, b]))
  answers.forEach((a, i) => {
    if (!a.ok) return
    const j = jobs[i]!
    const b = byKey.get(`${j.model}|${j.serial}`)
    t.truthy(b, `${j.model}/${j.serial} has a binding`)
    t.is(b?.device_key_id, j.key.id, `${j.model}/${j.serial} is bound to the key that got it`)
    t.true(a.assertions!.startsWith(b!.serial_assertion), `${j.model}/${j.serial}: the bytes received are the stored serial`)
  })

  // the log agrees: issuances = bindings; each refusal logged with its code
  const outcomes = await q<{ outcome: string; code: string | null; n: string }>('SELECT outcome, code, count(*) AS n FROM $S.signing_log GROUP BY 1, 2')
  const count = (outcome: string, code: string | null = null) => Number(outcomes.find((o) => o.outcome === outcome && o.code === code)?.n ?? 0)
  t.is(count('issued'), bindings.length)
  t.is(count('refused', 'SV_SERIAL_TAKEN'), answers.filter((a) => a.code === 'SV_SERIAL_TAKEN').length)
  t.is(count('refused', 'SV_REQUEST_ID_USED'), answers.filter((a) => a.code === 'SV_REQUEST_ID_USED').length)

  // both instances did work on both transports (the broker shares the MQTT requests out)
  for (const inst of [A, B]) {
    const metrics = (await httpRequest(new URL('/metrics', inst.url), { timeoutMs: 10_000 })).body.toString('utf8')
    t.true(metricValue(metrics, 'sv_serial_outcomes_total', { transport: 'https' }) > 0, `${inst.name} served HTTPS`)
    t.true(metricValue(metrics, 'sv_mqtt_messages_total', { op: 'serial' }) > 0, `${inst.name} took MQTT requests`)
  }
})

/** A PostgreSQL client for a fresh random schema, dropped (and the client ended) at teardown. */
async function freshSchema(t: ExecutionContext, prefix: string): Promise<{ db: pg.Client; schema: string }> {
  const db = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 })
  await db.connect().catch((e: Error) => {
    throw new Error(`PostgreSQL at ${PG_URL} (SV_TEST_PG_URL) is not reachable: ${e.message}`)
  })
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`
  t.teardown(async () => {
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await db.end()
  })
  return { db, schema }
}

test('scale-out: a signing key disabled through one instance stops signing on the other within seconds, and comes back when enabled', async (t) => {
  const { schema } = await freshSchema(t, 'sv_keyoff')
  const store = { driver: 'postgres', url: PG_URL, schema }
  // two independent vaults in this process (own pools, signer workers, caches) on one schema and master key
  const a = await startTestVault(t, { workers: 1, config: { store } })
  const b = await startTestVault(t, { workers: 1, dataDir: a.dataDir, config: { store } })
  const keys = await generateDeviceKeys(10)
  let n = 0
  const register = (url: string) => {
    const key = keys[n]!
    if (!key) throw new Error('out of device keys')
    return registerDevice(url, a.apiKey, { key, brandId: BRAND, model: 'acme-pi-gateway', serial: `OFF${n++}` })
  }
  t.is((await register(b.url)).status, 200, 'B has the signing key loaded')
  const keyId = (await a.vault.services.models.get(BRAND, 'acme-pi-gateway')).signingKeyId
  // (the admin API keeps a key that models sign with; A's key store disables it, as an emergency would)
  await a.vault.keys.setEnabled(keyId, { enabled: false, reason: 'test' })
  const onA = await register(a.url)
  t.is(onA.status, 503)
  t.is(jsonOf(onA).code, 'SV_SIGNING_KEY_UNAVAILABLE')
  // B learns it from the shared store within its re-check interval
  const until = Date.now() + 6000
  let onB = await register(b.url)
  while (onB.status === 200 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 1000))
    onB = await register(b.url)
  }
  t.is(onB.status, 503, 'B still signs with a key disabled through A')
  t.is(jsonOf(onB).code, 'SV_SIGNING_KEY_UNAVAILABLE')
  t.is((await adminCall(b, 'POST', `admin/keys/${keyId}/enable`)).status, 200)
  t.is((await register(a.url)).status, 200, 'A signs again once the key is enabled through B')
})
