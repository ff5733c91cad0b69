/**
 * The signing workers run below normal priority (nice 10) and the rest of the
 * process does not: signing is throughput work and must not hold the main
 * thread's latency work (parse, verify, durable write, answer) behind a time
 * slice of RSA (bench/vault.ts, docs/benchmarks.md). Linux: per-thread nice.
 */
import test from 'ava'
import { readdir, readFile } from 'node:fs/promises'
import { SignerPool } from '../../../vault-server/src/keys/signer-pool.js'

async function niceOfThreads(): Promise<number[]> {
  const tids = await readdir('/proc/self/task')
  const nice: number[] = []
  for (const tid of tids) {
    const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8').catch(() => '')
    if (!stat) continue
    nice.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]))
  }
  return nice
}

test('signer pool: its worker threads run at nice 10, the main thread stays at 0', async (t) => {
  const before = (await niceOfThreads()).filter((n) => n === 10).length
  const pool = new SignerPool({ size: 2 })
  t.teardown(() => pool.close())
  await pool.ready()
  const nice = await niceOfThreads()
  t.is(nice.filter((n) => n === 10).length - before, 2, `thread nice values: ${nice.join(' ')}`)
  const mainStat = await readFile('/proc/self/stat', 'utf8')
  t.is(Number(mainStat.slice(mainStat.lastIndexOf(')') + 2).split(' ')[16]), 0)
})
