/**
 * Device agent benchmark, in one run:
 *  1. RSA-4096 device key generation in the agent's worker thread (the built
 *     agent's generateKeyPkcs8, worker start included, as the agent pays it):
 *     median of N runs, and the main thread's timer lag meanwhile, against
 *     two controls: the same probe with nothing running, and one generation
 *     on the main thread (what the worker avoids).
 *  2. Provisioning on loopback, key pre-generated (each run gets one of the
 *     keys from 1, written to a fresh state directory as a factory would):
 *     the BUILT agent process (`node device-agent/dist/main.js provision
 *     --once`) against a real vault over HTTPS in this process. Reported:
 *     provisioning time inside the agent (its `agent.started` to
 *     `provision.done` log lines) and the whole process wall time (Node start
 *     and exit included). Goal: provisioning <= 300 ms.
 *  3. The agent's peak RSS over the same runs, from `/usr/bin/time -v`
 *     ("Maximum resident set size"). Goal: <= 80 MB.
 *
 *   npm run bench -- agent [--runs 7] [--no-build]
 *
 * The agent is built first (`tsc -b shared device-agent`) unless --no-build.
 */
import { execFile, spawn } from 'node:child_process'
import { generateKeyPair, generateKeyPairSync } from 'node:crypto'
import { promisify } from 'node:util'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodePem } from '@sv/shared'
import { arg, median, report, type BenchResult } from './lib.js'
import { startTestVault } from '../test/helpers/vault.js'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const DIST_MAIN = join(ROOT, 'device-agent/dist/main.js')
const TIME = '/usr/bin/time'

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: ROOT, maxBuffer: 16 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`)) : resolve()))
  })
}

interface AgentRun {
  code: number | null
  wallMs: number
  provisionMs: number
  /** durationMs of the request-id and serial steps, from the agent's own log */
  requestIdMs: number
  serialMs: number
  maxRssKb: number
  stderr: string
}

/** Runs the built agent under /usr/bin/time -v; parses its log lines and the peak RSS. */
function runAgent(args: string[]): Promise<AgentRun> {
  return new Promise((resolve, reject) => {
    const useTime = existsSync(TIME)
    const cmd = useTime ? TIME : process.execPath
    const argv = useTime ? ['-v', process.execPath, DIST_MAIN, ...args] : [DIST_MAIN, ...args]
    const started = performance.now()
    const child = spawn(cmd, argv, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.stdout.resume()
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      const wallMs = performance.now() - started
      const lines = stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; time: string; step?: string; durationMs?: number })
      const at = (msg: string) => Date.parse(lines.find((l) => l.msg === msg)?.time ?? '')
      const step = (name: string) => lines.find((l) => l.msg === 'provision.step.completed' && l.step === name)?.durationMs ?? Number.NaN
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)
      resolve({ code, wallMs, provisionMs: at('provision.done') - at('agent.started'), requestIdMs: step('request-id'), serialMs: step('serial'), maxRssKb: rss ? Number(rss[1]) : Number.NaN, stderr })
    })
  })
}

/** Runs `fn` under a 10 ms timer and resolves with the worst lag of that timer (event-loop blocking), in ms. */
async function withLagProbe(fn: () => Promise<unknown>): Promise<number> {
  let last = performance.now()
  let worst = 0
  const probe = setInterval(() => {
    const now = performance.now()
    worst = Math.max(worst, now - last - 10)
    last = now
  }, 10)
  try {
    await fn()
  } finally {
    clearInterval(probe)
  }
  return worst
}

export async function agentBench(argv: string[]): Promise<BenchResult> {
  const runs = Number(arg(argv, '--runs', '7'))
  if (!argv.includes('--no-build')) await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'shared', 'device-agent'])
  if (!existsSync(DIST_MAIN)) throw new Error(`${DIST_MAIN} is missing: build with npx tsc -b shared device-agent`)

  // 1. key generation in the agent's worker (the built module: a plain JS worker, as on a device)
  const { generateKeyPkcs8 } = (await import(join(ROOT, 'device-agent/dist/identity/device-key.js'))) as typeof import('../device-agent/src/identity/device-key.js')
  // control: the same timer probe with nothing else going on in this process (a loaded machine lags anyway)
  const idleLag = await withLagProbe(() => new Promise((r) => setTimeout(r, 2000)))
  const keygenMs: number[] = []
  const lagMs: number[] = []
  const keys: Uint8Array[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    lagMs.push(await withLagProbe(async () => void keys.push(await generateKeyPkcs8(4096))))
    keygenMs.push(performance.now() - t0)
  }

  // for comparison, once: the same generation on the main thread (what the worker avoids)
  const inThreadLag = await (async () => {
    return withLagProbe(async () => {
      await new Promise((r) => setTimeout(r, 20))
      generateKeyPairSync('rsa', { modulusLength: 4096, publicExponent: 0x10001 })
      await new Promise((r) => setTimeout(r, 20))
    })
  })()

  // 2 and 3. provisioning with a pre-generated key, built agent, HTTPS vault in this process
  const vault = await startTestVault(undefined, { tls: true })
  const work = await mkdtemp(join(tmpdir(), 'sv-bench-agent-'))
  const results: AgentRun[] = []
  try {
    const ca = join(work, 'ca.pem')
    await writeFile(ca, vault.caPem!)
    // one warm-up run, not counted (the vault's first TLS handshake and signing warm its JIT)
    const warm = await promisify(generateKeyPair)('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'der' }, publicKeyEncoding: { type: 'spki', format: 'der' } })
    for (let i = -1; i < runs; i++) {
      const stateDir = join(work, `device-${i}`)
      await mkdir(stateDir, { mode: 0o700 })
      await writeFile(join(stateDir, 'device-key.pem'), encodePem('PRIVATE KEY', i < 0 ? warm.privateKey : keys[i]!), { mode: 0o600 })
      const r = await runAgent([
        'provision',
        '--once',
        '--url',
        vault.url,
        '--api-key',
        vault.apiKey,
        '--brand',
        'acme-brand',
        '--model',
        'acme-pi-gateway',
        '--serial-value',
        `BENCH-${process.pid}-${i}`,
        '--ca',
        ca,
        '--trusted',
        vault.trusted,
        '--state-dir',
        stateDir,
      ])
      if (r.code !== 0) throw new Error(`agent run ${i} exited ${r.code}:\n${r.stderr}`)
      if (i >= 0) results.push(r)
    }
  } finally {
    await vault.close()
    await rm(work, { recursive: true, force: true })
    await rm(vault.dataDir, { recursive: true, force: true })
  }
  for (const k of keys) k.fill(0)

  const prov = results.map((r) => r.provisionMs)
  const wall = results.map((r) => r.wallMs)
  const rss = results.map((r) => r.maxRssKb / 1024)
  return report(
    'agent',
    [
      { metric: 'provisioning, key pre-generated (agent.started -> provision.done), median', value: median(prov), unit: 'ms', goal: { max: 300 } },
      { metric: 'provisioning, slowest run', value: Math.max(...prov), unit: 'ms' },
      { metric: '  of which request-id round trip (HTTPS), median', value: median(results.map((r) => r.requestIdMs)), unit: 'ms' },
      { metric: '  of which serial round trip (vault signs RSA-4096), median', value: median(results.map((r) => r.serialMs)), unit: 'ms' },
      { metric: 'agent process wall time incl. node start/exit, median', value: median(wall), unit: 'ms' },
      { metric: 'agent peak RSS (built, /usr/bin/time -v), max of runs', value: Math.max(...rss), unit: 'MB', goal: { max: 80 } },
      { metric: 'agent peak RSS, median', value: median(rss), unit: 'MB' },
      { metric: 'RSA-4096 key generation in the worker, median', value: median(keygenMs), unit: 'ms' },
      { metric: 'RSA-4096 key generation, min', value: Math.min(...keygenMs), unit: 'ms' },
      { metric: 'RSA-4096 key generation, max', value: Math.max(...keygenMs), unit: 'ms' },
      { metric: 'main-thread timer lag during key generation (worker), median of runs', value: median(lagMs), unit: 'ms' },
      { metric: 'main-thread timer lag during key generation (worker), worst', value: Math.max(...lagMs), unit: 'ms' },
      { metric: 'main-thread timer lag, generating on the main thread (1 run)', value: inThreadLag, unit: 'ms' },
      { metric: 'main-thread timer lag, 2 s with no key generation (control)', value: idleLag, unit: 'ms' },
    ],
    { runs, keygenMs: keygenMs.map(Math.round), provisionMs: prov, wallMs: wall.map(Math.round), rssMb: rss.map((x) => Math.round(x * 10) / 10), tls: true, rssSource: existsSync(TIME) ? '/usr/bin/time -v' : 'n/a' },
  )
}
