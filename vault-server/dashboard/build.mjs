#!/usr/bin/env node
/**
 * Builds the dashboard (vite, vite.config.ts) into vault-server/dashboard/dist.
 *
 *   node vault-server/dashboard/build.mjs              build
 *   node vault-server/dashboard/build.mjs --if-stale   build only when dist/index.html is older
 *                                                      than a file of src/, index.html or vite.config.ts
 */
import { readdirSync, statSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('.', import.meta.url))
const out = join(root, 'dist', 'index.html')

function newest(path) {
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  let m = 0
  for (const e of readdirSync(path)) m = Math.max(m, newest(join(path, e)))
  return m
}

function stale() {
  if (!existsSync(out)) return true
  const built = statSync(out).mtimeMs
  const inputs = [join(root, 'src'), join(root, 'index.html'), join(root, 'vite.config.ts')]
  return inputs.some((p) => existsSync(p) && newest(p) > built)
}

if (process.argv.includes('--if-stale') && !stale()) {
  console.log('dashboard: up to date (vault-server/dashboard/dist)')
  process.exit(0)
}

const { build } = await import('vite')
try {
  await build({ configFile: join(root, 'vite.config.ts'), root, logLevel: process.argv.includes('--quiet') ? 'warn' : 'info' })
} catch (err) {
  console.error(err)
  process.exit(1)
}
