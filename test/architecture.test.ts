/**
 * Architecture rules checked cheaply, read from the sources (STYLE.md §2.5,
 * docs/design.md "Two entries"):
 * - the `@sv/shared` main entry imports no Node-only module, so a browser
 *   bundle of it builds; the Node platform lives in `@sv/shared/node`, and
 *   the vault's and the agent's composition roots install it;
 * - routes (http/routes) and the MQTT router never import a store: they
 *   parse, call a service and answer;
 * - no service or route reaches a concrete store (only the store's own
 *   modules name LevelStore or PostgresStore);
 * - every log event declared in shared/src/log-events.ts is emitted
 *   somewhere, and every event a log call names is declared.
 */
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { builtinModules } from 'node:module'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import test from 'ava'
import { LOG_EVENTS } from '@sv/shared'
import { REPO_ROOT } from './helpers/vectors.js'
import { SHARED_ENTRY, bundleShared } from './helpers/browser-bundle.js'

const run = promisify(execFile)

const SHARED_SRC = path.join(REPO_ROOT, 'shared', 'src')
const NODE_ONLY_PACKAGES = ['@peculiar/webcrypto']
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, m.split('/')[0]!]))

/** Every module specifier of a TypeScript source: static imports and re-exports (type-only ones too), import(), require(). */
function specifiers(source: string): string[] {
  const out: string[] = []
  const patterns = [/^\s*(?:import|export)\s[^'"]*?\sfrom\s*['"]([^'"]+)['"]/gm, /^\s*import\s*['"]([^'"]+)['"]/gm, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g, /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g]
  for (const re of patterns) for (const m of source.matchAll(re)) out.push(m[1]!)
  return out
}

/** The files reachable from `entry` through relative imports, and the bare specifiers they name. */
function importGraph(entry: string): { files: string[]; bare: Map<string, string[]> } {
  const files: string[] = []
  const bare = new Map<string, string[]>()
  const seen = new Set<string>()
  const visit = (file: string): void => {
    if (seen.has(file)) return
    seen.add(file)
    files.push(file)
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'))
        if (!existsSync(target)) throw new Error(`${path.relative(REPO_ROOT, file)}: cannot resolve ${spec}`)
        visit(target)
      } else {
        bare.set(spec, [...(bare.get(spec) ?? []), path.relative(REPO_ROOT, file)])
      }
    }
  }
  visit(entry)
  return { files, bare }
}

function isNodeOnly(spec: string): boolean {
  return spec.startsWith('node:') || BUILTINS.has(spec) || BUILTINS.has(spec.split('/')[0]!) || NODE_ONLY_PACKAGES.some((p) => spec === p || spec.startsWith(`${p}/`))
}

test('architecture: the @sv/shared main entry imports no Node builtin and no Node-only package', (t) => {
  const { files, bare } = importGraph(SHARED_ENTRY)
  t.true(files.length > 20, 'the walk followed the relative imports')
  const offenders = [...bare].filter(([spec]) => isNodeOnly(spec)).map(([spec, from]) => `${spec} (from ${from.join(', ')})`)
  t.deepEqual(offenders, [])
  t.deepEqual(
    files.filter((f) => f.startsWith(path.join(SHARED_SRC, 'node') + path.sep)).map((f) => path.relative(REPO_ROOT, f)),
    [],
    'the main entry does not reach @sv/shared/node',
  )
  // what it does import: our dependencies, nothing else
  const deps = Object.keys((JSON.parse(readFileSync(path.join(REPO_ROOT, 'shared', 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies)
  const packageOf = (spec: string) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/')
  t.deepEqual([...bare.keys()].filter((s) => !deps.includes(packageOf(s))), [])
  t.true(bare.has('@noble/hashes/sha3.js'))
})

test('architecture: the checker itself sees Node imports (node: prefix, bare builtins, @peculiar/webcrypto)', (t) => {
  for (const s of ['node:crypto', 'crypto', 'buffer', 'fs', 'fs/promises', 'worker_threads', 'module', '@peculiar/webcrypto']) t.true(isNodeOnly(s), s)
  for (const s of ['zod', '@noble/hashes/sha2.js', 'yaml']) t.false(isNodeOnly(s), s)
  t.deepEqual(specifiers("import { a } from 'x'\nimport type { B } from 'node:crypto'\nexport { c } from './c.js'\nimport 'side'\nconst m = await import('dyn')\nrequire('req')"), ['x', 'node:crypto', './c.js', 'side', 'dyn', 'req'])
})

test('architecture: outside crypto/bytes.ts the main entry does not name Buffer or process', (t) => {
  const { files } = importGraph(SHARED_ENTRY)
  const offenders = files
    .filter((f) => !f.endsWith(path.join('crypto', 'bytes.ts')))
    .flatMap((f) => readFileSync(f, 'utf8').split('\n').map((line, i) => ({ f, i, line })))
    .filter(({ line }) => /\bBuffer\b|\bprocess\./.test(line))
    .map(({ f, i, line }) => `${path.relative(REPO_ROOT, f)}:${i + 1}: ${line.trim()}`)
  t.deepEqual(offenders, [])
})

test('architecture: esbuild bundles the @sv/shared main entry for a browser', async (t) => {
  const { code, metafile } = await bundleShared('esm')
  t.true(code.length > 10_000)
  const inputs = Object.keys(metafile.inputs)
  t.false(
    inputs.some((f) => f.includes('@peculiar') || f.startsWith('node:') || f.includes('shared/src/node/')),
    inputs.join('\n'),
  )
  t.true(inputs.some((f) => f.includes('@noble/hashes')))
})

test('architecture: @sv/shared/node is an entry of the exports map, like "."', (t) => {
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'shared', 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string>> }
  t.deepEqual(Object.keys(pkg.exports), ['.', './node'])
  t.deepEqual(pkg.exports['./node'], { source: './src/node/index.ts', types: './dist/node/index.d.ts', default: './dist/node/index.js' })
  t.deepEqual(Object.keys(pkg.exports['.']!), Object.keys(pkg.exports['./node']!))
})

test('architecture: the vault and agent composition roots import @sv/shared/node', (t) => {
  for (const main of ['vault-server/src/main.ts', 'device-agent/src/main.ts']) {
    const specs = specifiers(readFileSync(path.join(REPO_ROOT, main), 'utf8'))
    t.true(specs.includes('@sv/shared/node'), `${main} imports @sv/shared/node`)
  }
})

/** The crypto platform's name in a fresh process after importing `modules` (from source). */
async function platformAfter(modules: string[]): Promise<string> {
  const script = `${modules.map((m) => `await import(${JSON.stringify(m)});`).join('')} const s = await import('@sv/shared'); process.stdout.write(s.getCryptoPlatform().name)`
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--conditions=source', '--input-type=module', '-e', script], { cwd: REPO_ROOT, timeout: 60_000 })
  return stdout
}

test('architecture: the main entry alone runs on WebCrypto; @sv/shared/node and both composition roots install node:crypto', async (t) => {
  t.timeout(120_000)
  const [alone, node, vault, agent] = await Promise.all([
    platformAfter([]),
    platformAfter(['@sv/shared/node']),
    platformAfter([pathToFileURL(path.join(REPO_ROOT, 'vault-server/src/main.ts')).href]),
    platformAfter([pathToFileURL(path.join(REPO_ROOT, 'device-agent/src/main.ts')).href]),
  ])
  t.is(alone, 'webcrypto')
  t.is(node, 'node')
  t.is(vault, 'node', 'vault-server/src/main.ts')
  t.is(agent, 'node', 'device-agent/src/main.ts')
})

// --- the vault: routes, stores, log events ------------------------------------------------

async function sources(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(path.join(REPO_ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) out.push(path.relative(REPO_ROOT, path.join(e.parentPath, e.name)))
  }
  return out.sort()
}

test('architecture: routes and the MQTT router never import a store', async (t) => {
  const files = [...(await sources('vault-server/src/http')), 'vault-server/src/mqtt/router.ts']
  t.true(files.length > 5)
  const bad: string[] = []
  for (const f of files) {
    for (const spec of specifiers(await readFile(path.join(REPO_ROOT, f), 'utf8'))) {
      // type-only record shapes are not a store: only store/store.ts's repositories and the backends are
      if (/\/store\/(?!records\.js$)/.test(spec)) bad.push(`${f} imports ${spec}`)
    }
  }
  t.deepEqual(bad, [])
})

test('architecture: only the composition roots name a concrete store', async (t) => {
  const allowed = new Set(['vault-server/src/store/open-store.ts', 'vault-server/src/store/level-store.ts', 'vault-server/src/store/postgres-store.ts'])
  const bad: string[] = []
  for (const f of await sources('vault-server/src')) {
    if (allowed.has(f) || f.startsWith('vault-server/src/store/level/') || f.startsWith('vault-server/src/store/postgres/')) continue
    for (const spec of specifiers(await readFile(path.join(REPO_ROOT, f), 'utf8'))) if (/(level|postgres)-store\.js$|\/store\/(level|postgres)\//.test(spec)) bad.push(`${f} imports ${spec}`)
  }
  t.deepEqual(bad, [])
})

test('architecture: every declared log event is emitted somewhere, and every event emitted is declared', async (t) => {
  const files = [...(await sources('vault-server/src')), ...(await sources('device-agent/src'))]
  const text = (await Promise.all(files.map((f) => readFile(path.join(REPO_ROOT, f), 'utf8')))).join('\n')
  // an event is emitted where its name is written as a string: in a log call, or as the action a log call is given
  const silent = LOG_EVENTS.filter((e) => !text.includes(`'${e}'`))
  t.deepEqual(silent, [], 'declared in shared/src/log-events.ts but never emitted')
  // log calls with a literal event: log.info({...}, 'event'), logEvent(log, 'info', 'event', ...)
  const used = new Set<string>()
  for (const m of text.matchAll(/\.(?:fatal|error|warn|info|debug|trace)\((?:[^()]|\([^()]*\))*?,\s*'([a-z_]+(?:\.[a-z_]+)+)'\s*\)/g)) used.add(m[1]!)
  for (const m of text.matchAll(/logEvent\([^,]+,\s*'[a-z]+',\s*'([a-z_.]+)'/g)) used.add(m[1]!)
  t.true(used.size > 40, `found ${used.size} log calls`)
  const declared = new Set<string>(LOG_EVENTS)
  t.deepEqual([...used].filter((e) => !declared.has(e)).sort(), [], 'emitted but not declared')
})
