/**
 * How docs and printed hints tell people to run our two commands: never
 * through plain `npx`, which fetches a package of that name from the public
 * registry when node_modules is missing (issue 13, point 9). The ways that
 * stay local are `npm exec --no -- vault-server`, the workspace bin path
 * (`node vault-server/bin/vault-server.js`) and npm scripts. The walk covers
 * every doc, source, script and packaging file of the repository, so a
 * printed hint in vault-server/src or device-agent/src counts as well.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import test from 'ava'
import { REPO_ROOT } from './helpers/vectors.js'

/** `npx` (with any of its flags) running vault-server or device-agent, scoped or not. */
const NPX_OURS = /\bnpx\s+(?:-{1,2}[\w-]+(?:=\S+)?\s+)*(?:@sv\/)?(?:vault-server|device-agent)\b/

const SKIP_DIRS = new Set(['node_modules', '.git', 'dist', '.cache', '.data', 'coverage'])
const TEXT = /\.(?:md|ts|tsx|mjs|cjs|js|json|ya?ml|sh|service|html|txt)$/
const MAX_FILES = 5000
const SELF = fileURLToPath(import.meta.url)

function textFiles(): string[] {
  const out: string[] = []
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (out.length > MAX_FILES) throw new Error(`more than ${MAX_FILES} files under ${REPO_ROOT}`)
      const p = path.join(dir, e.name)
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name) && !(dir === path.join(REPO_ROOT, 'vault-server', 'dashboard') && e.name === 'dist')) walk(p)
      } else if (e.isFile() && (TEXT.test(e.name) || (path.basename(dir) === '.ci' && !e.name.includes('.'))) && p !== SELF) {
        // lock files and generated bundles are not docs
        if (e.name !== 'package-lock.json' && statSync(p).size < 2 << 20) out.push(p)
      }
    }
  }
  walk(REPO_ROOT)
  return out
}

function offenders(files: string[]): string[] {
  const found: string[] = []
  for (const f of files) {
    const lines = readFileSync(f, 'utf8').split('\n')
    lines.forEach((line, i) => {
      if (NPX_OURS.test(line)) found.push(`${path.relative(REPO_ROOT, f)}:${i + 1}: ${line.trim()}`)
    })
  }
  return found
}

test('commands in docs: no doc, script or printed hint runs vault-server or device-agent through plain npx', (t) => {
  const files = textFiles()
  const rel = files.map((f) => path.relative(REPO_ROOT, f))
  // the walk reached what matters
  for (const f of ['README.md', 'device-agent/README.md', 'docs/deployment.md', 'package.json', '.ci/run', '.ci/snapd-check.mjs', 'vault-server/src/cli/demo.ts', 'device-agent/src/main.ts']) t.true(rel.includes(f), f)
  t.deepEqual(offenders(files), [])
})

test('commands in docs: the checker sees the forms that reach the registry, and passes the local ones', (t) => {
  for (const bad of ['npx vault-server init', '  $ npx device-agent provision', 'npx -y vault-server', 'npx --yes @sv/device-agent status', 'run `npx vault-server serve`']) t.true(NPX_OURS.test(bad), bad)
  for (const good of ['npm exec --no -- vault-server init', 'node vault-server/bin/vault-server.js serve', 'npx tsc -b shared device-agent', 'npx ava test/device-agent/main.test.ts', 'vault-server token create']) t.false(NPX_OURS.test(good), good)
})
