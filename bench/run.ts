/**
 * One command for every benchmark:
 *   npm run bench                  # all of them
 *   npm run bench -- codec [opts]  # one
 * Results print as tables (ratios measured in the same run) and are written
 * to bench/results/NAME.json; docs/benchmarks.md records them with commands.
 */
import type { BenchResult } from './lib.js'

type Bench = (argv: string[]) => Promise<BenchResult>

const BENCHES: Record<string, () => Promise<Bench>> = {
  codec: async () => (await import('./codec.js')).codecBench,
  vault: async () => (await import('./vault.js')).vaultBench,
  scale: async () => (await import('./scale.js')).scaleBench,
  agent: async () => (await import('./agent.js')).agentBench,
  permissions: async () => (await import('./permissions.js')).permissionsBench,
}

const argv = process.argv.slice(2)
const names = argv.filter((a) => !a.startsWith('-') && a in BENCHES)
const selected = names.length > 0 ? names : Object.keys(BENCHES)
let failed = false
for (const name of selected) {
  const bench = await BENCHES[name]!()
  const r = await bench(argv)
  failed ||= !r.ok
}
process.exitCode = failed ? 1 : 0
