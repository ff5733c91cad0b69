/**
 * The dependency lists say what the code uses (issue 13, point 11; the
 * decisions are in docs/design.md, "Dependencies"):
 * - each workspace's `dependencies` are exactly the packages its src/ and
 *   bin/ import: none unused (a device install carries every one), none
 *   reached only through another package;
 * - no meta-package beside its own parts: the agent imports serialport's
 *   parts (@serialport/stream, bindings-cpp, parser-readline), so the
 *   `serialport` meta-package is only the tests' (its SerialPortMock and
 *   SerialPort), and binding-mock comes with it;
 * - `allowScripts` (npm's install-script approvals) names exactly the
 *   installed packages that have an install script, read from the lock file.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import path from 'node:path'
import test from 'ava'
import { REPO_ROOT } from './helpers/vectors.js'

interface Manifest {
  name: string
  dependencies?: Record<string, string>
  devDependencies?: Record<string, string>
  allowScripts?: Record<string, boolean>
}

const WORKSPACES = ['shared', 'vault-server', 'device-agent']
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, m.split('/')[0]!]))
const MAX_FILES = 2000

const manifest = (dir: string): Manifest => JSON.parse(readFileSync(path.join(REPO_ROOT, dir, 'package.json'), 'utf8')) as Manifest
const packageOf = (spec: string): string => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/')

/** Every module specifier of a source file: static imports and re-exports (type-only too), import(), require(). */
function specifiers(source: string): string[] {
  const out: string[] = []
  const patterns = [/^\s*(?:import|export)\s[^'"]*?\sfrom\s*['"]([^'"]+)['"]/gm, /^\s*import\s*['"]([^'"]+)['"]/gm, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g, /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g]
  for (const re of patterns) for (const m of source.matchAll(re)) out.push(m[1]!)
  return out
}

/** The packages (not builtins, not relative paths) that the .ts/.js/.mjs files under `dirs` import. */
function importedPackages(dirs: string[]): Set<string> {
  const found = new Set<string>()
  let files = 0
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (/\.(?:ts|mjs|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) {
        if (++files > MAX_FILES) throw new Error(`more than ${MAX_FILES} files under ${dirs.join(', ')}`)
        for (const s of specifiers(readFileSync(p, 'utf8'))) {
          if (s.startsWith('.') || s.startsWith('node:') || BUILTINS.has(s) || BUILTINS.has(s.split('/')[0]!)) continue
          found.add(packageOf(s))
        }
      }
    }
  }
  for (const d of dirs) walk(path.join(REPO_ROOT, d))
  return found
}

for (const ws of WORKSPACES) {
  test(`dependencies: ${ws}'s dependencies are exactly what its src/ and bin/ import`, (t) => {
    const declared = Object.keys(manifest(ws).dependencies ?? {}).sort()
    const dirs = [`${ws}/src`, ...(ws === 'shared' ? [] : [`${ws}/bin`])]
    const imported = [...importedPackages(dirs)].sort()
    t.true(imported.length >= 2, 'the walk found imports')
    t.deepEqual(declared.filter((d) => !imported.includes(d)), [], 'declared, never imported')
    t.deepEqual(imported.filter((i) => !declared.includes(i)), [], 'imported, not declared')
  })
}

test('dependencies: no workspace lists the serialport meta-package beside its parts; it and binding-mock are the tests\' alone', (t) => {
  const product = WORKSPACES.flatMap((ws) => Object.keys(manifest(ws).dependencies ?? {}))
  t.false(product.includes('serialport'))
  t.false(product.includes('@serialport/binding-mock'))
  t.deepEqual(product.filter((d) => d.startsWith('@serialport/')).sort(), ['@serialport/bindings-cpp', '@serialport/parser-readline', '@serialport/stream'])
  const dev = Object.keys(manifest('.').devDependencies ?? {})
  t.true(dev.includes('serialport'))
  t.deepEqual(dev.filter((d) => d.startsWith('@serialport/')), [], 'binding-mock comes with serialport (which pins 10.2.2, its latest)')
  t.true(importedPackages(['test']).has('serialport'))
})

test('dependencies: allowScripts names exactly the installed packages with an install script (package-lock.json)', (t) => {
  const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> }
  const withScripts = [...new Set(Object.entries(lock.packages).filter(([, v]) => v.hasInstallScript === true).map(([k]) => k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length)))].sort()
  t.true(withScripts.length > 0)
  t.deepEqual(Object.keys(manifest('.').allowScripts ?? {}).sort(), withScripts)
  t.true(Object.values(manifest('.').allowScripts ?? {}).every((v) => v === true))
})
