/** Shared helpers for the benchmarks: argument reading, statistics, reporting. */
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { readFile, readdir } from 'node:fs/promises'
import { Worker } from 'node:worker_threads'
import type { VaultConfig } from '../vault-server/src/config.js'
import { createLogger } from '../vault-server/src/logger.js'
import { openVault } from '../vault-server/src/vault.js'

/** snapd's own test vectors: the brand (acme-brand) the benchmarks sign with. */
export const VECTORS = new URL('../fixtures/snapd-vectors/', import.meta.url).pathname

/**
 * Prepares a vault's store for a benchmark: the vectors' brand (key, account,
 * account-key, trust anchor) and models `${prefix}0` .. `${prefix}${models - 1}`
 * for `apiKey`, through the vault's own services; closed afterwards. With
 * `vaultRoot`, through the services of the build in that checkout (a
 * baseline's data directory, in the layout that build writes).
 */
export async function prepareVault(config: VaultConfig, o: { models: number; prefix: string; apiKey: string; vaultRoot?: string }): Promise<void> {
  // another build's own code (--baseline): its data layout may differ from ours
  const open = o.vaultRoot ? ((await import(`${o.vaultRoot}/vault-server/dist/vault.js`)) as { openVault: typeof openVault }).openVault : openVault
  const v = await open(config, createLogger('silent'), { workers: 1 })
  try {
    await v.services.brands.importBrand({
      pem: await readFile(`${VECTORS}keys/brand.key.pem`, 'utf8'),
      account: await readFile(`${VECTORS}account.assert`, 'utf8'),
      accountKey: await readFile(`${VECTORS}account-key.assert`, 'utf8'),
      trusted: [await readFile(`${VECTORS}trusted.assert`, 'utf8')],
    })
    for (let m = 0; m < o.models; m++) await v.services.models.create({ brandId: 'acme-brand', name: `${o.prefix}${m}`, apiKeys: [o.apiKey] })
  } finally {
    await v.close()
  }
}

export interface Metric {
  metric: string
  value: number
  unit: string
  goal?: { min?: number; max?: number }
}

export interface BenchResult {
  name: string
  metrics: Metric[]
  params: Record<string, unknown>
  /** false when a metric misses its goal */
  ok: boolean
}

export function arg(argv: string[], name: string, defl: string): string {
  const i = argv.indexOf(name)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : defl
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

function fmt(v: number): string {
  if (Math.abs(v) >= 1000) return v.toFixed(0)
  if (Math.abs(v) >= 10) return v.toFixed(1)
  return v.toFixed(3)
}

/** Prints a table, writes bench/results/NAME.json, returns the result. */
export function report(name: string, metrics: Metric[], params: Record<string, unknown> = {}): BenchResult {
  let ok = true
  const lines = [`\n## ${name}  (${cpus().length} cores, load ${loadavg()[0]!.toFixed(2)}, node ${process.version})`]
  for (const m of metrics) {
    let verdict = ''
    if (m.goal) {
      const pass = (m.goal.min === undefined || m.value >= m.goal.min) && (m.goal.max === undefined || m.value <= m.goal.max)
      ok &&= pass
      verdict = pass ? '  PASS' : '  MISS'
    }
    lines.push(`| ${m.metric.padEnd(58)} | ${fmt(m.value).padStart(10)} ${m.unit.padEnd(14)} |${verdict}`)
  }
  console.log(lines.join('\n'))
  const result: BenchResult = { name, metrics, params, ok }
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
  writeFileSync(new URL(`./results/${name}.json`, import.meta.url), `${JSON.stringify({ ...result, at: new Date().toISOString() }, null, 2)}\n`)
  return result
}

/**
 * The machine's raw RSA signing ceiling: signatures per second of
 * crypto.sign('sha512') with `pem` in one worker thread per core at once, for
 * `seconds`. What the vault benchmarks divide by.
 */
export async function signingCeiling(pem: string, seconds: number): Promise<number> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { createPrivateKey, sign } = require('node:crypto')
    const key = createPrivateKey(workerData.pem)
    const data = Buffer.alloc(2100, 1)
    for (let i = 0; i < 3; i++) sign('sha512', data, key)
    const end = Date.now() + workerData.ms
    let count = 0
    while (Date.now() < end) { sign('sha512', data, key); count++ }
    parentPort.postMessage(count)`
  const counts = await Promise.all(
    Array.from(
      { length: availableParallelism() },
      () =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { pem, ms: seconds * 1000 } })
          w.once('message', resolve)
          w.once('error', reject)
        }),
    ),
  )
  return counts.reduce((a, b) => a + b, 0) / seconds
}

/** CPU time (user + system, all threads) of a process so far, in ms, from Linux /proc (0 when it is gone). */
export async function processCpuMs(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0
  return statCpuMs(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''))
}

/**
 * CPU time (ms) of a process's threads by kind: the main thread, threads
 * running below normal priority (the vault's signing workers run at nice 10),
 * and the rest (libuv's pool for LevelDB and fs, V8's GC and compiler threads).
 */
export async function threadCpuSplit(pid: number | undefined): Promise<{ main: number; niced: number; other: number }> {
  const split = { main: 0, niced: 0, other: 0 }
  if (pid === undefined) return split
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[])
  for (const tid of tids) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '')
    if (!stat) continue
    const ms = statCpuMs(stat)
    const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
    if (tid === String(pid)) split.main += ms
    else if (nice > 0) split.niced += ms
    else split.other += ms
  }
  return split
}

function statCpuMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are the 14th and 15th fields of the line, in clock ticks (100 per second)
  return ((Number(fields[11]) || 0) + (Number(fields[12]) || 0)) * 10
}
