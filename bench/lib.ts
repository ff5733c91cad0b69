/** Shared helpers for the benchmarks: argument reading, statistics, reporting. */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'

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
