/**
 * Vault benchmark, everything in one run so the ratios are fair on a noisy
 * machine:
 *  1. the raw RSA-4096 signing ceiling of this machine: crypto.sign in one
 *     worker thread per core, measured before and after the vault runs, and
 *     before each round of step 2;
 *  2. POST /v1/serial throughput with 4 and 16 concurrent HTTPS clients
 *     (keep-alive), in rounds, each against the ceiling measured just before
 *     it (goal >= 0.7; the median of the rounds), and with 64 clients once.
 *     The serial-requests are prepared beforehand (request-ids fetched and
 *     signed with 2048-bit device keys), so the timed phase measures the
 *     vault, not the client;
 *  3. p99 latency at half of the peak load (open loop, fixed arrival rate);
 *  4. POST /v1/request-id throughput with 16 clients (goal >= 5,000/s).
 * The vault is a real `vault-server serve` process, built (`tsc -b`, as
 * deployed; --no-build to skip), LevelDB, HTTPS, one signing worker per core,
 * on a fresh data directory. Runs are long enough (about 12,000
 * registrations) to measure the steady state.
 *
 *   npm run bench -- vault [--registrations N] [--warmup N] [--rounds R] [--per-round N] [--seconds S] [--no-build]
 *   npm run bench -- vault --baseline DIR [--rounds N] [--per-phase N]   (see compareWithBaseline)
 *   npm run bench -- vault --live N [--rounds R] [--per-phase N] [--stall-seconds S]   (see compareLive)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { request as httpsRequest } from 'node:https'
import type { ClientRequest } from 'node:http'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Buffer } from 'node:buffer'
import { Pool } from 'undici'
import { encodeStream, signAssertion } from '@sv/shared'
import { NodeKeySigner } from '@sv/shared/node'
import { VaultConfigSchema } from '../vault-server/src/config.js'
import { generateSelfSigned } from '../vault-server/src/tls.js'
import { VECTORS, arg, median, percentile, prepareVault, processCpuMs, report, threadCpuSplit, signingCeiling, type BenchResult, type Metric } from './lib.js'

const ROOT = new URL('../', import.meta.url).pathname
const connectOpts = { rejectUnauthorized: false }



interface Prepared {
  bodies: Buffer[]
}

const BASELINE_WARMUP = 300

interface PhaseResult {
  rate: number
  latencies: number[]
  vaultCpuMs: number
  threads: { main: number; niced: number; other: number }
  clientCpuMs: number
  vaultMs: number
  signingMs: number
}

/** Rounds of one load as one: the median rate, all latencies, mean per-serial figures. */
function mergePhases(phases: PhaseResult[]): PhaseResult {
  const mean = (f: (p: PhaseResult) => number) => phases.reduce((a, p) => a + f(p), 0) / phases.length
  return {
    rate: median(phases.map((p) => p.rate)),
    latencies: phases.flatMap((p) => p.latencies),
    vaultCpuMs: mean((p) => p.vaultCpuMs),
    threads: { main: mean((p) => p.threads.main), niced: mean((p) => p.threads.niced), other: mean((p) => p.threads.other) },
    clientCpuMs: mean((p) => p.clientCpuMs),
    vaultMs: mean((p) => p.vaultMs),
    signingMs: mean((p) => p.signingMs),
  }
}

type Session = (origin: string, child: ChildProcess) => {
  prepare(n: number, pool: Pool): Promise<Prepared>
  closedLoop(clients: number, prepared: Prepared): Promise<{ rate: number; threads: { main: number; niced: number; other: number }; vaultMs: number; signingMs: number }>
}

/**
 * --baseline DIR: the built vault of another checkout (DIR/vault-server/dist,
 * e.g. a `git worktree` of an earlier commit) against this one, in
 * alternating rounds on the same data directory (ABBA order), so that the
 * machine's drift falls on both alike. Per round and vault: a fresh
 * process, a warm-up, then 4 and 16 clients. Reports the medians and the
 * ratios current / baseline, and each against the signing ceiling.
 */
async function compareWithBaseline(o: { baseline: string; brandPem: string; dataDir: string; baselineDir: string; masterKey: string; session: Session; rounds: number; perPhase: number }): Promise<BenchResult> {
  // each build on a data directory of its own, prepared by its own code (their layouts may differ)
  const variants = [
    { name: 'baseline', main: join(o.baseline, 'vault-server/dist/main.js'), dir: o.baselineDir },
    { name: 'current', main: join(ROOT, 'vault-server/dist/main.js'), dir: o.dataDir },
  ]
  const got: Record<string, { at4: number[]; at16: number[]; main16: number[] }> = { baseline: { at4: [], at16: [], main16: [] }, current: { at4: [], at16: [], main16: [] } }
  const ceilingBefore = await signingCeiling(o.brandPem, 3)
  for (let round = 0; round < o.rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse()
    for (const v of order) {
      const port = 20000 + Math.floor(Math.random() * 20000)
      const child = await startServe(v.dir, o.masterKey, port, v.main)
      const origin = `https://127.0.0.1:${port}`
      try {
        const { prepare, closedLoop } = o.session(origin, child)
        const pool = new Pool(origin, { connections: 16, connect: connectOpts })
        await closedLoop(16, await prepare(BASELINE_WARMUP, pool))
        const at4 = await closedLoop(4, await prepare(o.perPhase, pool))
        const at16 = await closedLoop(16, await prepare(o.perPhase, pool))
        await pool.close()
        got[v.name]!.at4.push(at4.rate)
        got[v.name]!.at16.push(at16.rate)
        got[v.name]!.main16.push(at16.threads.main)
        console.log(`round ${round + 1} ${v.name.padEnd(8)}: 4 clients ${at4.rate.toFixed(1)}/s (in the vault ${at4.vaultMs.toFixed(2)} ms, signing ${at4.signingMs.toFixed(2)} ms), 16 clients ${at16.rate.toFixed(1)}/s, main thread ${at16.threads.main.toFixed(3)} ms/serial`)
      } finally {
        child.kill('SIGTERM')
        await new Promise((r) => child.once('exit', r))
      }
    }
  }
  const ceiling = (ceilingBefore + (await signingCeiling(o.brandPem, 3))) / 2
  const b = got.baseline!
  const c = got.current!
  const metrics: Metric[] = [
    { metric: `raw RSA-4096 signing ceiling, ${availableParallelism()} cores (before/after mean)`, value: ceiling, unit: 'signs/s' },
    { metric: '4 clients: baseline / ceiling (median of rounds)', value: median(b.at4) / ceiling, unit: 'ratio' },
    { metric: '4 clients: current / ceiling (goal >= 0.7)', value: median(c.at4) / ceiling, unit: 'ratio', goal: { min: 0.7 } },
    { metric: '4 clients: current / baseline', value: median(c.at4) / median(b.at4), unit: 'ratio' },
    { metric: '16 clients: baseline / ceiling', value: median(b.at16) / ceiling, unit: 'ratio' },
    { metric: '16 clients: current / ceiling (goal >= 0.7)', value: median(c.at16) / ceiling, unit: 'ratio', goal: { min: 0.7 } },
    { metric: '16 clients: current / baseline', value: median(c.at16) / median(b.at16), unit: 'ratio' },
    { metric: 'main thread CPU per serial, 16 clients: baseline', value: median(b.main16), unit: 'ms' },
    { metric: 'main thread CPU per serial, 16 clients: current', value: median(c.main16), unit: 'ms' },
  ]
  return report('vault-baseline', metrics, { baseline: o.baseline, rounds: o.rounds, perPhase: o.perPhase, runs: got })
}

/**
 * --live N: what open Live pages cost registrations. One vault, rounds of
 * two phases in ABBA order, each 16 clients registering `perPhase` serials:
 * "quiet" (no stream open) and "live" (N streams of the operator's Live
 * page, each reading everything: every store, every entry). The ratio
 * live / quiet of the medians is the cost (goal >= 0.95).
 *
 * Then memory: the N readers stay and the clients keep registering for
 * --stall-seconds (default 40), first as they are (the reference), then
 * with one more stream that is opened and never read. The vault's RSS and
 * sv_live_stream_buffered_bytes_max are sampled all along: the kernel's
 * socket buffers fill first (a few MB on loopback, outside the process),
 * then the hub skips the stalled stream while more than 256 KiB wait in its
 * socket (and would cut it off after 60 s without progress: the unit test
 * shows that). The readers must still get every entry.
 */
async function compareLive(o: { dataDir: string; masterKey: string; session: Session; rounds: number; perPhase: number; streams: number; stallSeconds: number }): Promise<BenchResult> {
  const made = spawnSync(process.execPath, [join(ROOT, 'vault-server/dist/main.js'), 'token', 'create', '--data', o.dataDir, '--name', 'bench-live', '--json'], { env: { ...process.env, VAULT_MASTER_KEY: o.masterKey }, encoding: 'utf8' })
  if (made.status !== 0) throw new Error(`token create: ${made.stderr}`)
  const token = (JSON.parse(made.stdout) as { token: string }).token
  const port = 20000 + Math.floor(Math.random() * 20000)
  const child = await startServe(o.dataDir, o.masterKey, port)
  const origin = `https://127.0.0.1:${port}`
  const rss = async (): Promise<number> => {
    const st = await readFile(`/proc/${child.pid}/status`, 'utf8')
    return Number(/VmRSS:\s+(\d+) kB/.exec(st)![1]) / 1024
  }
  interface Stream {
    req: ClientRequest
    bytes: number
    events: number
  }
  const open = (read: boolean): Promise<Stream> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(`${origin}/v1/admin/live`, { headers: { authorization: `Bearer ${token}` }, rejectUnauthorized: false, agent: false }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`live answered ${res.statusCode}`))
        const st: Stream = { req, bytes: 0, events: 0 }
        if (read) {
          res.on('data', (c: Buffer) => {
            st.bytes += c.length
            for (let i = c.indexOf('event: entry'); i >= 0; i = c.indexOf('event: entry', i + 1)) st.events++
          })
        } else {
          res.pause()
        }
        resolve(st)
      })
      req.on('error', reject)
      req.end()
    })
  const metric = async (pool: Pool, name: string): Promise<number> => {
    const r = await pool.request({ path: '/metrics', method: 'GET' })
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(await r.body.text())
    return m ? Number(m[1]) : NaN
  }
  const got = { quiet: [] as number[], live: [] as number[], quietMain: [] as number[], liveMain: [] as number[] }
  let delivered = 0
  let streamBytes = 0
  try {
    const { prepare, closedLoop } = o.session(origin, child)
    const pool = new Pool(origin, { connections: 16, connect: connectOpts })
    await closedLoop(16, await prepare(BASELINE_WARMUP, pool))
    for (let round = 0; round < o.rounds; round++) {
      for (const phase of round % 2 === 0 ? (['quiet', 'live'] as const) : (['live', 'quiet'] as const)) {
        const prepared = await prepare(o.perPhase, pool)
        const streams = phase === 'live' ? await Promise.all(Array.from({ length: o.streams }, () => open(true))) : []
        if (phase === 'live') await new Promise((r) => setTimeout(r, 500))
        const r = await closedLoop(16, prepared)
        if (phase === 'live') {
          await new Promise((r2) => setTimeout(r2, 600))
          delivered = Math.min(...streams.map((s) => s.events))
          streamBytes = streams.reduce((a, s) => a + s.bytes, 0)
          for (const s of streams) s.req.destroy()
          if (delivered < o.perPhase) throw new Error(`a live stream got ${delivered} of ${o.perPhase} entries`)
        }
        got[phase].push(r.rate)
        got[phase === 'quiet' ? 'quietMain' : 'liveMain'].push(r.threads.main)
        console.log(`round ${round + 1} ${phase.padEnd(5)}: 16 clients ${r.rate.toFixed(1)}/s, main thread ${r.threads.main.toFixed(3)} ms/serial${phase === 'live' ? `, ${o.streams} streams got every entry (${(streamBytes / 1e6).toFixed(1)} MB)` : ''}`)
      }
    }
    // memory: a phase with the readers only (the reference), then the same with a stream that stopped reading
    const readers = await Promise.all(Array.from({ length: o.streams }, () => open(true)))
    const memoryPhase = async (seconds: number): Promise<{ rssGrowth: number; peakMax: number; serials: number }> => {
      const rss0 = await rss()
      let peakRss = rss0
      let peakMax = 0
      let sampling = true
      const sampler = (async () => {
        while (sampling) {
          peakRss = Math.max(peakRss, await rss())
          peakMax = Math.max(peakMax, await metric(pool, 'sv_live_stream_buffered_bytes_max'))
          await new Promise((r) => setTimeout(r, 200))
        }
      })()
      const end = Date.now() + seconds * 1000
      let serials = 0
      while (Date.now() < end) {
        await closedLoop(16, await prepare(500, pool))
        serials += 500
      }
      sampling = false
      await sampler
      return { rssGrowth: peakRss - rss0, peakMax, serials }
    }
    const reference = await memoryPhase(o.stallSeconds)
    const stalled = await open(false)
    const withStalled = await memoryPhase(o.stallSeconds)
    await new Promise((r) => setTimeout(r, 1200))
    const readerEntries = Math.min(...readers.map((r) => r.events))
    const streamsOpen = await metric(pool, 'sv_live_streams')
    for (const s of [...readers, stalled]) s.req.destroy()
    await pool.close()
    const metrics: Metric[] = [
      { metric: `16 clients, quiet (median of ${o.rounds} rounds)`, value: median(got.quiet), unit: 'serials/s' },
      { metric: `16 clients, ${o.streams} Live streams open`, value: median(got.live), unit: 'serials/s' },
      { metric: `live / quiet (goal >= 0.95)`, value: median(got.live) / median(got.quiet), unit: 'ratio', goal: { min: 0.95 } },
      { metric: 'main thread CPU per serial: quiet', value: median(got.quietMain), unit: 'ms' },
      { metric: `main thread CPU per serial: ${o.streams} streams`, value: median(got.liveMain), unit: 'ms' },
      { metric: 'entries every stream received in a live phase (of perPhase)', value: delivered, unit: 'entries' },
      { metric: `${o.streams} readers, ${o.stallSeconds} s (${reference.serials} serials): vault RSS growth`, value: reference.rssGrowth, unit: 'MB' },
      { metric: `the same + a stream that stopped reading (${withStalled.serials} serials): vault RSS growth`, value: withStalled.rssGrowth, unit: 'MB' },
      { metric: 'the stalled stream: peak bytes waiting in one stream (bound 256 KiB + one flush)', value: withStalled.peakMax / 1024, unit: 'KiB', goal: { max: 256 + 512 } },
      { metric: 'streams open at the end (the readers and the stalled one)', value: streamsOpen, unit: 'streams' },
      { metric: `entries the slowest reader received in both memory phases (of ${reference.serials + withStalled.serials})`, value: readerEntries, unit: 'entries', goal: { min: reference.serials + withStalled.serials } },
    ]
    return report('vault-live', metrics, { rounds: o.rounds, perPhase: o.perPhase, streams: o.streams, runs: got })
  } finally {
    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
  }
}

async function startServe(dataDir: string, masterKey: string, port: number, mainJs = join(ROOT, 'vault-server/dist/main.js')): Promise<ChildProcess> {
  // SV_BENCH_PROF=DIR writes a CPU profile of the vault's main thread there
  const prof = process.env.SV_BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SV_BENCH_PROF}`] : []
  // the built vault, as deployed (no TypeScript loader in the process)
  const child = spawn(process.execPath, [...prof, mainJs, 'serve', '--data', dataDir, '--listen', `127.0.0.1:${port}`, '--tls-cert', join(dataDir, 'cert.pem'), '--tls-key', join(dataDir, 'key.pem'), '--log-level', 'warn'], {
    env: { ...process.env, VAULT_MASTER_KEY: masterKey, VAULT_MAX_CONCURRENT_SERIAL: '4096', VAULT_MQTT_MODE: 'off', ...(process.env.VAULT_SIGNING_WORKERS ? { VAULT_SIGNING_WORKERS: process.env.VAULT_SIGNING_WORKERS } : {}) },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if (err.includes('serving')) return child
    if (child.exitCode !== null) throw new Error(`vault exited: ${err}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  child.kill('SIGKILL')
  throw new Error(`vault did not start: ${err}`)
}

export async function vaultBench(argv: string[]): Promise<BenchResult> {
  if (!argv.includes('--no-build')) {
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'shared', 'vault-server'], { cwd: ROOT, stdio: 'inherit' })
    if (tsc.status !== 0) throw new Error('the build failed (tsc -b shared vault-server)')
  }
  const registrations = Number(arg(argv, '--registrations', '8000'))
  const warmup = Number(arg(argv, '--warmup', '300'))
  const roundCount = Number(arg(argv, '--rounds', '4'))
  const perRound = Number(arg(argv, '--per-round', '1000'))
  const seconds = Number(arg(argv, '--seconds', '5'))
  const brandPem = await readFile(join(VECTORS, 'keys/brand.key.pem'), 'utf8')
  const dataDir = await mkdtemp(join(tmpdir(), 'sv-bench-'))
  const masterKey = randomBytes(32).toString('hex')
  const apiKey = `bench-api-key-${randomBytes(8).toString('hex')}`

  // --- prepare the data directory: brand (the vectors' chain), models, TLS ---
  const keysPerModel = 32
  // every registration needs its own (model, device key) pair: enough models for the run
  const baselineRounds = arg(argv, '--baseline', '') ? Number(arg(argv, '--rounds', '3')) * 2 * (BASELINE_WARMUP + 2 * Number(arg(argv, '--per-phase', '1500'))) : 0
  // (the stall phase registers for --stall-seconds: at most 400/s on this kind of machine)
  const liveRounds = Number(arg(argv, '--live', '0')) > 0 ? BASELINE_WARMUP + Number(arg(argv, '--rounds', '4')) * 2 * Number(arg(argv, '--per-phase', '1500')) + 2 * 400 * Number(arg(argv, '--stall-seconds', '40')) : 0
  const models = Math.ceil(Math.max(registrations + warmup + 2 * roundCount * perRound, baselineRounds, liveRounds) / keysPerModel)
  const baselineDir = await mkdtemp(join(tmpdir(), 'sv-bench-baseline-'))
  {
    const { certPem, keyPem } = await generateSelfSigned()
    for (const [dir, root] of [[dataDir, undefined], ...(arg(argv, '--baseline', '') ? [[baselineDir, arg(argv, '--baseline', '')]] : [])] as Array<[string, string | undefined]>) {
      const config = VaultConfigSchema.parse({ dataDir: dir, masterKey: { value: masterKey }, tls: { plainHttp: true }, log: { level: 'silent' } })
      await prepareVault(config, { models, prefix: 'bench-', apiKey, ...(root ? { vaultRoot: root } : {}) })
      await writeFile(join(dir, 'cert.pem'), certPem)
      await writeFile(join(dir, 'key.pem'), keyPem, { mode: 0o600 })
    }
  }
  const deviceKeys = Array.from({ length: keysPerModel }, () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
    return NodeKeySigner.fromPem(pem)
  })

  let serialNo = 0
  /** A running vault and the load to drive it: the same code for the main run and for --baseline rounds. */
  const session = (origin: string, child: ChildProcess) => {
    const fetchIds = async (n: number, pool: Pool): Promise<string[]> => {
      const ids: string[] = []
      const one = async () => {
        const r = await pool.request({ path: '/v1/request-id', method: 'POST', headers: { 'api-key': apiKey } })
        const j = (await r.body.json()) as { 'request-id': string }
        ids.push(j['request-id'])
      }
      for (let i = 0; i < n; i += 32) await Promise.all(Array.from({ length: Math.min(32, n - i) }, one))
      return ids
    }
    const prepare = async (n: number, pool: Pool): Promise<Prepared> => {
      const ids = await fetchIds(n, pool)
      const bodies: Buffer[] = []
      for (let i = 0; i < n; i++) {
        const signer = deviceKeys[serialNo % keysPerModel]!
        const model = `bench-${Math.floor(serialNo / keysPerModel) % models}`
        const sreq = await signAssertion(
          'serial-request',
          { 'brand-id': 'acme-brand', model, 'request-id': ids[i]!, 'device-key': signer.publicKey.encode(), serial: `B${serialNo.toString().padStart(8, '0')}` },
          `serial: B${serialNo}\n`,
          signer,
        )
        serialNo++
        bodies.push(Buffer.from(encodeStream([sreq])))
      }
      return { bodies }
    }
    const post = async (pool: Pool, body: Buffer): Promise<number> => {
      const t0 = performance.now()
      const r = await pool.request({ path: '/v1/serial', method: 'POST', headers: { 'api-key': apiKey, 'content-type': 'application/x.ubuntu.assertion' }, body })
      const text = await r.body.text()
      if (r.statusCode !== 200) throw new Error(`serial answered ${r.statusCode}: ${text.slice(0, 200)}`)
      return performance.now() - t0
    }
    /** sum and count of the vault's histograms that time a registration inside the vault */
    const vaultTimes = async (pool: Pool): Promise<Record<string, number>> => {
      const r = await pool.request({ path: '/metrics', method: 'GET' })
      const text = await r.body.text()
      const out: Record<string, number> = {}
      for (const m of text.matchAll(/^(sv_(?:registration|signing)_duration_seconds_(?:sum|count))(?:\{[^}]*\})? (\S+)$/gm)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2])
      return out
    }
    const closedLoop = async (clients: number, prepared: Prepared): Promise<PhaseResult> => {
      const pool = new Pool(origin, { connections: clients, connect: connectOpts })
      const times0 = await vaultTimes(pool)
      const queue = [...prepared.bodies]
      const latencies: number[] = []
      const vaultCpu0 = await processCpuMs(child.pid)
      const threads0 = await threadCpuSplit(child.pid)
      const clientCpu0 = process.cpuUsage()
      const t0 = performance.now()
      await Promise.all(
        Array.from({ length: clients }, async () => {
          for (let b = queue.shift(); b; b = queue.shift()) latencies.push(await post(pool, b))
        }),
      )
      const elapsed = (performance.now() - t0) / 1000
      const n = prepared.bodies.length
      const vaultCpuMs = ((await processCpuMs(child.pid)) - vaultCpu0) / n
      const threads1 = await threadCpuSplit(child.pid)
      const threads = { main: (threads1.main - threads0.main) / n, niced: (threads1.niced - threads0.niced) / n, other: (threads1.other - threads0.other) / n }
      const c = process.cpuUsage(clientCpu0)
      const times1 = await vaultTimes(pool)
      const mean = (name: string) => (1000 * ((times1[`${name}_sum`] ?? 0) - (times0[`${name}_sum`] ?? 0))) / ((times1[`${name}_count`] ?? 0) - (times0[`${name}_count`] ?? 0))
      await pool.close()
      return { rate: n / elapsed, latencies, vaultCpuMs, threads, clientCpuMs: (c.user + c.system) / 1000 / n, vaultMs: mean('sv_registration_duration_seconds'), signingMs: mean('sv_signing_duration_seconds') }
    }

    return { fetchIds, prepare, post, closedLoop }
  }

  const liveStreams = Number(arg(argv, '--live', '0'))
  if (liveStreams > 0) return compareLive({ dataDir, masterKey, session, rounds: Number(arg(argv, '--rounds', '4')), perPhase: Number(arg(argv, '--per-phase', '1500')), streams: liveStreams, stallSeconds: Number(arg(argv, '--stall-seconds', '40')) })
  const baseline = arg(argv, '--baseline', '')
  if (baseline) return compareWithBaseline({ baseline, brandPem, dataDir, baselineDir, masterKey, session, rounds: Number(arg(argv, '--rounds', '3')), perPhase: Number(arg(argv, '--per-phase', '1500')) })

  const ceilingBefore = await signingCeiling(brandPem, 3)
  const port = 20000 + Math.floor(Math.random() * 20000)
  const child = await startServe(dataDir, masterKey, port)
  const origin = `https://127.0.0.1:${port}`
  try {
    const { prepare, post, closedLoop } = session(origin, child)
    const setupPool = new Pool(origin, { connections: 16, connect: connectOpts })
    // warm-up: JIT, worker key loading, TLS sessions
    // warm-up long enough for the JIT to settle (TurboFan keeps compiling for a few hundred requests)
    await closedLoop(16, await prepare(warmup, setupPool))
    const perRun = Math.floor(registrations / 4)
    // 4 and 16 clients in rounds, each round after its own ceiling measurement
    // (the vault idle meanwhile): this machine's speed drifts by 10% within
    // minutes, so each ratio divides by the ceiling of its own moment, and the
    // medians of the rounds are reported.
    const rounds: { ceiling: number; at4: PhaseResult; at16: PhaseResult }[] = []
    for (let r = 0; r < roundCount; r++) {
      const ceiling = await signingCeiling(brandPem, 2)
      const at4 = await closedLoop(4, await prepare(perRound, setupPool))
      const at16 = await closedLoop(16, await prepare(perRound, setupPool))
      rounds.push({ ceiling, at4, at16 })
      console.log(`round ${r + 1}: ceiling ${ceiling.toFixed(0)}/s; 4 clients ${at4.rate.toFixed(0)}/s = ${(at4.rate / ceiling).toFixed(3)}; 16 clients ${at16.rate.toFixed(0)}/s = ${(at16.rate / ceiling).toFixed(3)}`)
    }
    const at4 = mergePhases(rounds.map((x) => x.at4))
    const at16 = mergePhases(rounds.map((x) => x.at16))
    const ratio4 = median(rounds.map((x) => x.at4.rate / x.ceiling))
    const ratio16 = median(rounds.map((x) => x.at16.rate / x.ceiling))
    const at64 = await closedLoop(64, await prepare(perRun, setupPool))
    const peak = Math.max(at4.rate, at16.rate, at64.rate)

    // p99 at half of peak: open loop, arrivals every 1/(peak/2) s
    const half = peak / 2
    const openN = Math.min(perRun, Math.floor(half * 6))
    const openPrepared = await prepare(openN, setupPool)
    const openPool = new Pool(origin, { connections: 64, connect: connectOpts })
    const openLat: number[] = []
    const started = performance.now()
    await Promise.all(
      openPrepared.bodies.map(async (b, i) => {
        const due = started + (i / half) * 1000
        const wait = due - performance.now()
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
        openLat.push(await post(openPool, b))
      }),
    )
    await openPool.close()

    // request-id throughput, 16 clients, closed loop for `seconds`
    const ridPool = new Pool(origin, { connections: 16, connect: connectOpts })
    let ridCount = 0
    const ridEnd = performance.now() + seconds * 1000
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (performance.now() < ridEnd) {
          const r = await ridPool.request({ path: '/v1/request-id', method: 'POST', headers: { 'api-key': apiKey } })
          await r.body.dump()
          if (r.statusCode !== 200) throw new Error(`request-id answered ${r.statusCode}`)
          ridCount++
        }
      }),
    )
    const ridRate = ridCount / seconds
    await ridPool.close()
    await setupPool.close()

    child.kill('SIGTERM')
    await new Promise((r) => child.once('exit', r))
    const ceilingAfter = await signingCeiling(brandPem, 3)
    const ceiling = (ceilingBefore + ceilingAfter) / 2
    const metrics: Metric[] = [
      { metric: `raw RSA-4096 signing ceiling, ${availableParallelism()} cores (before/after mean)`, value: ceiling, unit: 'signs/s' },
      { metric: `/v1/serial throughput, 4 clients (median of ${roundCount} rounds)`, value: at4.rate, unit: 'serials/s' },
      { metric: '/v1/serial, 4 clients / ceiling of the round (goal >= 0.7)', value: ratio4, unit: 'ratio', goal: { min: 0.7 } },
      { metric: `/v1/serial throughput, 16 clients (median of ${roundCount} rounds)`, value: at16.rate, unit: 'serials/s' },
      { metric: '/v1/serial, 16 clients / ceiling of the round (goal >= 0.7)', value: ratio16, unit: 'ratio', goal: { min: 0.7 } },
      { metric: '/v1/serial throughput, 64 clients (information: the peak)', value: at64.rate, unit: 'serials/s' },
      { metric: '/v1/serial, 64 clients / ceiling', value: at64.rate / ceiling, unit: 'ratio' },
      { metric: '/v1/serial latency p50, 16 clients (closed loop)', value: median(at16.latencies), unit: 'ms' },
      { metric: '4 clients: mean latency seen by the client', value: at4.latencies.reduce((a, b) => a + b, 0) / at4.latencies.length, unit: 'ms' },
      { metric: '  of which in the vault (body read to answer)', value: at4.vaultMs, unit: 'ms' },
      { metric: '  of which signing (queue for a worker + RSA)', value: at4.signingMs, unit: 'ms' },
      { metric: 'vault process CPU per serial, 16 clients (all threads)', value: at16.vaultCpuMs, unit: 'ms' },
      { metric: '  of which the main thread (HTTP, TLS, checks, store calls)', value: at16.threads.main, unit: 'ms' },
      { metric: '  of which the signing workers', value: at16.threads.niced, unit: 'ms' },
      { metric: "  of which other threads (libuv's pool: LevelDB, fsync; V8)", value: at16.threads.other, unit: 'ms' },
      { metric: 'raw RSA-4096 signature CPU (2 cores / ceiling)', value: (availableParallelism() * 1000) / ceiling, unit: 'ms' },
      { metric: 'benchmark client CPU per serial (same machine)', value: at16.clientCpuMs, unit: 'ms' },
      { metric: `/v1/serial latency p50 at half of peak (${half.toFixed(0)}/s, open loop)`, value: median(openLat), unit: 'ms' },
      { metric: '/v1/serial latency p99 at half of peak', value: percentile(openLat, 99), unit: 'ms' },
      { metric: '/v1/request-id throughput, 16 clients (goal >= 5000)', value: ridRate, unit: 'requests/s', goal: { min: 5000 } },
    ]
    return report('vault', metrics, { registrations, seconds, ceilingBefore, ceilingAfter, openLoopRequests: openN, models, keysPerModel, rounds: rounds.map((x) => ({ ceiling: x.ceiling, at4: x.at4.rate, at16: x.at16.rate })) })
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
    await rm(dataDir, { recursive: true, force: true })
    await rm(baselineDir, { recursive: true, force: true })
  }
}

