/**
 * Architecture rules, read from the sources:
 * - routes (http/routes) and the MQTT router never import a store: they
 *   parse, call a service and answer;
 * - no service or route reaches a concrete store (only main.ts, vault.ts and
 *   store/open-store.ts name LevelStore or PostgresStore);
 * - every log event declared in shared/src/log-events.ts is emitted
 *   somewhere, and every event a log call names is declared.
 */
import test from 'ava'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { LOG_EVENTS } from '@sv/shared'
import { REPO_ROOT } from './helpers/vectors.js'

async function sources(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(join(REPO_ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) out.push(relative(REPO_ROOT, join(e.parentPath, e.name)))
  }
  return out.sort()
}

function imports(text: string): string[] {
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gm), ...text.matchAll(/import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]!)
}

test('architecture: routes and the MQTT router never import a store', async (t) => {
  const files = [...(await sources('vault-server/src/http')), 'vault-server/src/mqtt/router.ts']
  t.true(files.length > 5)
  const bad: string[] = []
  for (const f of files) {
    for (const spec of imports(await readFile(join(REPO_ROOT, f), 'utf8'))) {
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
    for (const spec of imports(await readFile(join(REPO_ROOT, f), 'utf8'))) if (/(level|postgres)-store\.js$|\/store\/(level|postgres)\//.test(spec)) bad.push(`${f} imports ${spec}`)
  }
  t.deepEqual(bad, [])
})

test('architecture: every declared log event is emitted somewhere, and every event emitted is declared', async (t) => {
  const files = [...(await sources('vault-server/src')), ...(await sources('device-agent/src'))]
  const text = (await Promise.all(files.map((f) => readFile(join(REPO_ROOT, f), 'utf8')))).join('\n')
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
