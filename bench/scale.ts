/**
 * Scale-out and MQTT benchmark. Every figure comes from one run on the same
 * machine, so the ratios compare like with like. Real `vault-server serve`
 * processes, HTTPS with keep-alive, C clients in a closed loop each run:
 *
 *  A. one vault on LevelDB with its embedded broker (aedes, MQTT 3.1.1 over
 *     TLS with the vault's certificate) and one vault on PostgreSQL with a
 *     Mosquitto of its own (TLS, external mode, $share group), both up;
 *     each round times HTTPS and MQTT on each (four runs, the order turned
 *     every round, so a change in the machine's background load hits all
 *     alike);
 *  B. a second PostgreSQL instance on the same schema, master key and
 *     broker group (the LevelDB vault stopped); each round times HTTPS to
 *     one instance, HTTPS with the clients alternating between the two ports
 *     (the "load balancer"), and MQTT through the shared subscription.
 *
 * Ratios are the median over the rounds of the ratio of two runs of the same
 * round: MQTT / HTTPS on each store (goal >= 0.9), PostgreSQL / LevelDB
 * (HTTPS), two instances / one (HTTPS; MQTT against phase A). CPU time per
 * serial of the vaults (all threads), the broker and this load generator is
 * read from /proc around each run: on a shared, loaded machine it says more
 * than throughput. The RSA-4096 signing ceiling (crypto.sign on every core)
 * is measured before and after: two instances on the same cores share it.
 *
 * Serial-requests are prepared before each timed run (request-ids fetched
 * over HTTPS, signed with 2048-bit device keys), so the timed phase measures
 * the vault. MQTT clients are as lean as the HTTPS ones: C persistent
 * connections, one request in flight each, replies matched by token. The
 * vaults' per-client MQTT rate limit (20/s) is raised in their vault.yaml:
 * C bench clients stand for thousands of devices that register once each.
 *
 *   npm run bench -- scale [--registrations N] [--clients C] [--rounds R]
 *
 * Needs PostgreSQL (SV_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/test;
 * a fresh schema, dropped at the end) and the mosquitto binary (a private
 * broker on a spare port: the machine's shared one may carry test traffic).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPair, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { connect as netConnect, createServer } from 'node:net'
import { Buffer } from 'node:buffer'
import { Pool } from 'undici'
import pg from 'pg'
import mqtt, { type MqttClient } from 'mqtt'
import { encodeStream, replyFilter, requestTopic, signAssertion } from '@sv/shared'
import { NodeKeySigner } from '@sv/shared/node'
import { VaultConfigSchema } from '../vault-server/src/config.js'
import { generateSelfSigned } from '../vault-server/src/tls.js'
import { VECTORS, arg, median, prepareVault, processCpuMs, report, signingCeiling, type BenchResult, type Metric } from './lib.js'

const ROOT = new URL('../', import.meta.url).pathname
const PG_URL = process.env.SV_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const KEYS = 64


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

async function waitFor(what: string, out: () => string, re: RegExp, child: ChildProcess, ms: number): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    const m = re.exec(out())
    if (m) return m
    if (child.exitCode !== null) throw new Error(`${what} exited: ${out()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  child.kill('SIGKILL')
  throw new Error(`${what} did not start: ${out()}`)
}

interface Serve {
  child: ChildProcess
  origin: string
  stop(): Promise<void>
}

async function startServe(name: string, dataDir: string, env: Record<string, string>): Promise<Serve> {
  // SV_BENCH_PROF=DIR writes CPU profiles of the vaults' main threads there (as bench/vault.ts)
  const prof = process.env.SV_BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SV_BENCH_PROF}`] : []
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', '--conditions=source', join(ROOT, 'vault-server/src/main.ts'), 'serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--tls-cert', join(dataDir, 'cert.pem'), '--tls-key', join(dataDir, 'key.pem'), '--log-level', 'warn'], {
    env: { ...process.env, VAULT_MAX_CONCURRENT_SERIAL: '4096', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  child.stderr!.on('data', (d) => (err = (err + d).slice(-20_000)))
  const m = await waitFor(`vault ${name}`, () => err, /serving https:\/\/127\.0\.0\.1:(\d+)\/v1\//, child, 40_000)
  return {
    child,
    origin: `https://127.0.0.1:${m[1]}`,
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(t)
    },
  }
}

/**
 * A Mosquitto with TLS on a spare port, anonymous (a private bench broker).
 * `user` is this user: started as root, Mosquitto would otherwise switch to
 * `mosquitto` and could not read the 0700 temp directory.
 */
async function startMosquitto(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  await writeFile(conf, [`listener ${port} 127.0.0.1`, `certfile ${join(dir, 'cert.pem')}`, `keyfile ${join(dir, 'key.pem')}`, 'allow_anonymous true', 'persistence false', `user ${userInfo().username}`, 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice', ''].join('\n'))
  const child = spawn(process.env.SV_MOSQUITTO ?? 'mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d) => (err = (err + d).slice(-20_000)))
  child.on('error', (e) => (err += `\n${e.message}`))
  // ready when the port accepts a connection
  const deadline = Date.now() + 10_000
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = netConnect(port, '127.0.0.1')
      s.once('connect', () => (s.destroy(), resolve(true)))
      s.once('error', () => resolve(false))
    })
    if (up) break
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`mosquitto did not start: ${err}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return { url: `mqtts://127.0.0.1:${port}`, child }
}

interface Result {
  rate: number
  latencies: number[]
  /** CPU ms per serial: the vault processes (all threads), the broker, this load generator */
  cpu?: { vault: number; broker: number; client: number }
}


/** Runs `fn` (which sends `n` serials) and adds the CPU cost per serial of each party. */
async function withCpu(n: number, vaults: ChildProcess[], broker: ChildProcess | undefined, fn: () => Promise<Result>): Promise<Result> {
  const v0 = await Promise.all(vaults.map((c) => processCpuMs(c.pid)))
  const b0 = await processCpuMs(broker?.pid)
  const c0 = process.cpuUsage()
  const r = await fn()
  const c1 = process.cpuUsage(c0)
  const v1 = await Promise.all(vaults.map((c) => processCpuMs(c.pid)))
  const b1 = await processCpuMs(broker?.pid)
  const vault = v1.reduce((a, x, i) => a + x - v0[i]!, 0)
  return { ...r, cpu: { vault: vault / n, broker: (b1 - b0) / n, client: (c1.user + c1.system) / 1000 / n } }
}

export async function scaleBench(argv: string[]): Promise<BenchResult> {
  const perRun = Number(arg(argv, '--registrations', '600'))
  const clients = Number(arg(argv, '--clients', '64'))
  const brandPem = await readFile(join(VECTORS, 'keys/brand.key.pem'), 'utf8')
  const masterKey = randomBytes(32).toString('hex')
  const apiKey = `bench-api-key-${randomBytes(8).toString('hex')}`
  const dirs = await Promise.all([0, 1, 2, 3].map(() => mkdtemp(join(tmpdir(), 'sv-bench-scale-'))))
  const [levelDir, pgDir1, pgDir2, brokerDir] = dirs as [string, string, string, string]
  const schema = `sv_bench_${randomBytes(5).toString('hex')}`
  const rounds = Number(arg(argv, '--rounds', '3'))
  // registrations: warm-ups (2.5 runs), phase A (4 runs a round), phase B (3 runs a round)
  const models = Math.ceil(((2.5 + 7 * rounds) * perRun) / KEYS) + 2
  const admin = new pg.Client({ connectionString: PG_URL })
  await admin.connect()
  const children: ChildProcess[] = []
  try {
    // --- data: the vectors' brand and the models, on LevelDB and on PostgreSQL ---------
    const { certPem, keyPem } = await generateSelfSigned()
    for (const d of dirs) {
      await writeFile(join(d, 'cert.pem'), certPem)
      await writeFile(join(d, 'key.pem'), keyPem, { mode: 0o600 })
      await writeFile(join(d, 'vault.yaml'), 'mqtt:\n  ratePerSecond: 100000\n  rateBurst: 100000\n')
    }
    for (const store of [{ driver: 'level' }, { driver: 'postgres', url: PG_URL, schema }]) {
      const config = VaultConfigSchema.parse({ dataDir: levelDir, masterKey: { value: masterKey }, tls: { plainHttp: true }, log: { level: 'silent' }, mqtt: { mode: 'off' }, store })
      await prepareVault(config, { models, prefix: 'scale-', apiKey })
    }
    const deviceKeys = await Promise.all(
      Array.from({ length: KEYS }, () => new Promise<NodeKeySigner>((resolve, reject) => {
        generateKeyPair('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }, (e, _pub, priv) => (e ? reject(e) : resolve(NodeKeySigner.fromPem(priv))))
      })),
    )
    const ceilingBefore = await signingCeiling(brandPem, 3)

    // --- clients -----------------------------------------------------------------------------
    const connect = { rejectUnauthorized: false }
    let serialNo = 0
    /** `n` serial-request streams with fresh request-ids (fetched from `origins`, in turn). */
    const prepare = async (n: number, origins: string[]): Promise<Buffer[]> => {
      const pools = origins.map((o) => new Pool(o, { connections: 16, connect }))
      const ids: string[] = []
      const one = async (i: number) => {
        const r = await pools[i % pools.length]!.request({ path: '/v1/request-id', method: 'POST', headers: { 'api-key': apiKey } })
        const j = (await r.body.json()) as { 'request-id': string }
        ids.push(j['request-id'])
      }
      for (let i = 0; i < n; i += 32) await Promise.all(Array.from({ length: Math.min(32, n - i) }, (_, k) => one(i + k)))
      await Promise.all(pools.map((p) => p.close()))
      const bodies: Buffer[] = []
      for (let i = 0; i < n; i++) {
        const signer = deviceKeys[serialNo % KEYS]!
        const model = `scale-${Math.floor(serialNo / KEYS)}`
        if (Math.floor(serialNo / KEYS) >= models) throw new Error('out of models: raise `models`')
        const sreq = await signAssertion('serial-request', { 'brand-id': 'acme-brand', model, 'request-id': ids[i]!, 'device-key': signer.publicKey.encode(), serial: `B${serialNo}` }, `serial: B${serialNo}\n`, signer)
        serialNo++
        bodies.push(Buffer.from(encodeStream([sreq])))
      }
      return bodies
    }

    /** C clients in a closed loop; each request goes to the next origin in turn (the "load balancer"). */
    const runHttps = async (origins: string[], bodies: Buffer[]): Promise<Result> => {
      const pools = origins.map((o) => new Pool(o, { connections: Math.ceil(clients / origins.length), connect }))
      // open the connections (TLS handshakes) before the clock starts
      await Promise.all(Array.from({ length: clients }, async (_, i) => (await pools[i % pools.length]!.request({ path: '/v1/version', method: 'GET' })).body.dump()))
      const queue = [...bodies]
      const latencies: number[] = []
      let turn = 0
      const t0 = performance.now()
      await Promise.all(
        Array.from({ length: clients }, async () => {
          for (let b = queue.shift(); b; b = queue.shift()) {
            const pool = pools[turn++ % pools.length]!
            const s = performance.now()
            const r = await pool.request({ path: '/v1/serial', method: 'POST', headers: { 'api-key': apiKey, 'content-type': 'application/x.ubuntu.assertion' }, body: b })
            const text = await r.body.text()
            if (r.statusCode !== 200) throw new Error(`serial answered ${r.statusCode}: ${text.slice(0, 200)}`)
            latencies.push(performance.now() - s)
          }
        }),
      )
      const rate = bodies.length / ((performance.now() - t0) / 1000)
      await Promise.all(pools.map((p) => p.close()))
      return { rate, latencies }
    }

    /** C MQTT clients (persistent, QoS 1), one request in flight each, replies matched by token. */
    const runMqtt = async (url: string, bodies: Buffer[]): Promise<Result> => {
      const run = randomBytes(3).toString('hex')
      const conns: { c: MqttClient; id: string; waiting: Map<string, (m: { topic: string; payload: Buffer }) => void> }[] = []
      for (let i = 0; i < clients; i++) {
        const id = `bench-${run}-${i}`
        const c = await mqtt.connectAsync(url, { clientId: id, username: id, password: apiKey, protocolVersion: 4, reconnectPeriod: 0, ca: certPem, connectTimeout: 10_000 })
        const waiting = new Map<string, (m: { topic: string; payload: Buffer }) => void>()
        c.on('message', (topic, payload) => {
          // the vault writes the token first: read it from the head, not by parsing ~5 KB of JSON
          const token = /^\{"token":"([^"]+)"/.exec(payload.toString('latin1', 0, 160))?.[1]
          const w = token ? waiting.get(token) : undefined
          if (w) {
            waiting.delete(token!)
            w({ topic, payload })
          }
        })
        await c.subscribeAsync(replyFilter(id), { qos: 1 })
        conns.push({ c, id, waiting })
      }
      const queue = [...bodies]
      const latencies: number[] = []
      let tokenNo = 0
      const t0 = performance.now()
      await Promise.all(
        conns.map(async ({ c, id, waiting }) => {
          for (let b = queue.shift(); b; b = queue.shift()) {
            const token = `t${tokenNo++}`
            const s = performance.now()
            const reply = new Promise<{ topic: string; payload: Buffer }>((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error(`no MQTT reply for ${token} within 60 s`)), 60_000)
              waiting.set(token, (m) => {
                clearTimeout(timer)
                resolve(m)
              })
            })
            c.publish(requestTopic('serial'), JSON.stringify({ client: id, token, 'api-key': apiKey, body: b.toString('utf8') }), { qos: 1 })
            const m = await reply
            if (!m.topic.endsWith('/accepted')) throw new Error(`serial rejected over MQTT: ${m.payload.toString('utf8').slice(0, 200)}`)
            latencies.push(performance.now() - s)
          }
        }),
      )
      const rate = bodies.length / ((performance.now() - t0) / 1000)
      await Promise.all(conns.map(({ c }) => c.endAsync()))
      return { rate, latencies }
    }

    const avg = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length
    const mean = (rs: Result[]): Result => ({
      rate: avg(rs.map((r) => r.rate)),
      latencies: rs.flatMap((r) => r.latencies),
      cpu: { vault: avg(rs.map((r) => r.cpu!.vault)), broker: avg(rs.map((r) => r.cpu!.broker)), client: avg(rs.map((r) => r.cpu!.client)) },
    })

    /** Prepares `perRun` serial-requests (request-ids from `idFrom`), then times one run with CPU accounting. */
    const measure = async (vaults: Serve[], brokerProc: ChildProcess | undefined, idFrom: string[], fn: (bodies: Buffer[]) => Promise<Result>): Promise<Result> => {
      const bodies = await prepare(perRun, idFrom)
      return withCpu(perRun, vaults.map((v) => v.child), brokerProc, () => fn(bodies))
    }

    // --- the vaults: LevelDB with its embedded broker; PostgreSQL with a Mosquitto --------------
    const mqttPort = await freePort()
    const level = await startServe('level', levelDir, { VAULT_MASTER_KEY: masterKey, VAULT_MQTT_MODE: 'embedded', VAULT_MQTT_LISTEN: `127.0.0.1:${mqttPort}` })
    children.push(level.child)
    const levelMqtt = `mqtts://127.0.0.1:${mqttPort}`
    const broker = await startMosquitto(brokerDir)
    children.push(broker.child)
    await writeFile(join(brokerDir, 'ca.pem'), certPem)
    const group = `bench-${randomBytes(6).toString('hex')}`
    const pgEnv = { VAULT_MASTER_KEY: masterKey, VAULT_STORE_DRIVER: 'postgres', VAULT_STORE_URL: PG_URL, VAULT_STORE_SCHEMA: schema, VAULT_MQTT_MODE: 'external', VAULT_MQTT_URL: broker.url, VAULT_MQTT_CA: join(brokerDir, 'ca.pem'), VAULT_MQTT_GROUP: group }
    const p1 = await startServe('pg-1', pgDir1, pgEnv)
    children.push(p1.child)
    // warm-up: JIT, TLS sessions, signing keys loaded into the workers
    await runHttps([level.origin], await prepare(perRun / 2, [level.origin]))
    await runMqtt(levelMqtt, await prepare(perRun / 2, [level.origin]))
    await runHttps([p1.origin], await prepare(perRun / 2, [p1.origin]))
    await runMqtt(broker.url, await prepare(perRun / 2, [p1.origin]))

    // --- phase A: one instance each, runs interleaved so that a change in the machine's
    // background load hits all four alike; the order turns each round ------------------------------
    const A = { levelH: [] as Result[], levelM: [] as Result[], pgH: [] as Result[], pgM: [] as Result[] }
    const stepsA: [keyof typeof A, () => Promise<Result>][] = [
      ['levelH', () => measure([level], undefined, [level.origin], (b) => runHttps([level.origin], b))],
      ['levelM', () => measure([level], undefined, [level.origin], (b) => runMqtt(levelMqtt, b))],
      ['pgH', () => measure([p1], broker.child, [p1.origin], (b) => runHttps([p1.origin], b))],
      ['pgM', () => measure([p1], broker.child, [p1.origin], (b) => runMqtt(broker.url, b))],
    ]
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? stepsA : [...stepsA].reverse()
      for (const [k, step] of order) A[k].push(await step())
    }

    // --- phase B: a second instance on the same schema, master key and broker group --------------
    // (the level vault stops: two instances and Mosquitto have the two cores)
    await level.stop()
    const p2 = await startServe('pg-2', pgDir2, pgEnv)
    children.push(p2.child)
    const both = [p1.origin, p2.origin]
    await runHttps([p2.origin], await prepare(perRun / 2, both))
    const B = { oneH: [] as Result[], twoH: [] as Result[], twoM: [] as Result[] }
    const stepsB: [keyof typeof B, () => Promise<Result>][] = [
      // one instance: every request to pg-1 (pg-2 idles)
      ['oneH', () => measure([p1, p2], broker.child, both, (b) => runHttps([p1.origin], b))],
      ['twoH', () => measure([p1, p2], broker.child, both, (b) => runHttps(both, b))],
      ['twoM', () => measure([p1, p2], broker.child, both, (b) => runMqtt(broker.url, b))],
    ]
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? stepsB : [...stepsB].reverse()
      for (const [k, step] of order) B[k].push(await step())
    }
    await Promise.all([p1.stop(), p2.stop()])
    broker.child.kill('SIGTERM')
    const ceilingAfter = await signingCeiling(brandPem, 3)
    const ceiling = (ceilingBefore + ceilingAfter) / 2

    /** median over the rounds of the ratio of two runs of the same round */
    const ratio = (xs: Result[], ys: Result[]) => median(xs.map((x, i) => x.rate / ys[i]!.rate))
    const lh = mean(A.levelH)
    const lm = mean(A.levelM)
    const ph = mean(A.pgH)
    const pm = mean(A.pgM)
    const oneH = mean(B.oneH)
    const twoH = mean(B.twoH)
    const twoM = mean(B.twoM)
    const metrics: Metric[] = [
      { metric: `raw RSA-4096 signing ceiling, ${availableParallelism()} cores (before/after mean)`, value: ceiling, unit: 'signs/s' },
      { metric: `LevelDB, 1 instance: HTTPS /v1/serial, ${clients} clients`, value: lh.rate, unit: 'serials/s' },
      { metric: `LevelDB, 1 instance: MQTT embedded (aedes, TLS), ${clients} clients`, value: lm.rate, unit: 'serials/s' },
      { metric: 'LevelDB: MQTT embedded / HTTPS (goal >= 0.9)', value: ratio(A.levelM, A.levelH), unit: 'ratio', goal: { min: 0.9 } },
      { metric: `PostgreSQL, 1 instance: HTTPS, ${clients} clients`, value: ph.rate, unit: 'serials/s' },
      { metric: `PostgreSQL, 1 instance: MQTT via Mosquitto (TLS), ${clients} clients`, value: pm.rate, unit: 'serials/s' },
      { metric: 'PostgreSQL: MQTT via Mosquitto / HTTPS (goal >= 0.9)', value: ratio(A.pgM, A.pgH), unit: 'ratio', goal: { min: 0.9 } },
      { metric: 'HTTPS, 1 instance: PostgreSQL / LevelDB', value: ratio(A.pgH, A.levelH), unit: 'ratio' },
      { metric: `PostgreSQL, 1 of 2 instances: HTTPS, ${clients} clients`, value: oneH.rate, unit: 'serials/s' },
      { metric: `PostgreSQL, 2 instances: HTTPS alternating ports, ${clients} clients`, value: twoH.rate, unit: 'serials/s' },
      { metric: 'PostgreSQL HTTPS: 2 instances / 1 (same 2 cores)', value: ratio(B.twoH, B.oneH), unit: 'ratio' },
      { metric: `PostgreSQL, 2 instances: MQTT via Mosquitto $share, ${clients} clients`, value: twoM.rate, unit: 'serials/s' },
      { metric: 'PostgreSQL MQTT: 2 instances / 1 (phase A, same 2 cores)', value: twoM.rate / pm.rate, unit: 'ratio' },
      { metric: 'LevelDB HTTPS, 1 instance / signing ceiling', value: lh.rate / ceiling, unit: 'ratio' },
      { metric: 'PostgreSQL HTTPS, 1 instance / signing ceiling', value: ph.rate / ceiling, unit: 'ratio' },
      { metric: 'vault CPU per serial, LevelDB HTTPS (all threads)', value: lh.cpu!.vault, unit: 'ms' },
      { metric: 'vault CPU per serial, LevelDB MQTT embedded (broker included)', value: lm.cpu!.vault, unit: 'ms' },
      { metric: 'vault CPU per serial, PostgreSQL HTTPS', value: ph.cpu!.vault, unit: 'ms' },
      { metric: 'vault CPU per serial, PostgreSQL MQTT', value: pm.cpu!.vault, unit: 'ms' },
      { metric: 'Mosquitto CPU per serial, PostgreSQL MQTT', value: pm.cpu!.broker, unit: 'ms' },
      { metric: 'vaults CPU per serial, 2 instances HTTPS', value: twoH.cpu!.vault, unit: 'ms' },
      { metric: 'vaults CPU per serial, 2 instances MQTT', value: twoM.cpu!.vault, unit: 'ms' },
      { metric: 'load generator CPU per serial, HTTPS (LevelDB runs)', value: lh.cpu!.client, unit: 'ms' },
      { metric: 'load generator CPU per serial, MQTT (LevelDB runs)', value: lm.cpu!.client, unit: 'ms' },
      { metric: 'latency p50, LevelDB HTTPS', value: median(lh.latencies), unit: 'ms' },
      { metric: 'latency p50, LevelDB MQTT embedded', value: median(lm.latencies), unit: 'ms' },
      { metric: 'latency p50, PostgreSQL HTTPS', value: median(ph.latencies), unit: 'ms' },
      { metric: 'latency p50, PostgreSQL MQTT via Mosquitto', value: median(pm.latencies), unit: 'ms' },
      { metric: 'latency p50, 2 instances HTTPS', value: median(twoH.latencies), unit: 'ms' },
      { metric: 'latency p50, 2 instances MQTT', value: median(twoM.latencies), unit: 'ms' },
    ]
    const rates = (rs: Result[]) => rs.map((r) => Math.round(r.rate))
    return report('scale', metrics, {
      registrationsPerRun: perRun,
      rounds,
      clients,
      ceilingBefore,
      ceilingAfter,
      runs: Object.fromEntries([...Object.entries(A), ...Object.entries(B)].map(([k, v]) => [k, rates(v)])),
      signingWorkersPerInstance: availableParallelism(),
    })
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined)
    await admin.end()
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  }
}
