#!/usr/bin/env node
// Entry point of the `device-agent` command. Runs the compiled code in dist/
// (`npm run build`); when dist/ is missing it runs the TypeScript sources
// through tsx (development checkouts).
import { existsSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const built = join(root, 'dist', 'main.js')
if (existsSync(built) && !process.env.SV_FROM_SOURCE) {
  process.stdout.on('error', (e) => { if (e.code === 'EPIPE') process.exit(0); throw e })
  const { run } = await import(pathToFileURL(built).href)
  process.exitCode = await run(process.argv.slice(2))
} else {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', join(root, 'src', 'main.ts'), ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig))
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)))
}
