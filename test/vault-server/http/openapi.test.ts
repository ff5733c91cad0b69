/**
 * docs/openapi.yaml describes exactly the routes the app serves: every
 * documented path and method is routed (never SV_NOT_FOUND), and every route
 * the app registers is documented.
 */
import test from 'ava'
import { readFile } from 'node:fs/promises'
import { parse } from 'yaml'
import { startTestVault } from '../../helpers/vault.js'
import { generateOpenApi } from '../../../vault-server/src/http/openapi.js'
import { ADMIN_ROUTES } from '../../../vault-server/src/http/routes/admin.js'

const ROOT = new URL('../../../', import.meta.url)
const METHODS = ['get', 'post', 'put', 'patch', 'delete']

interface Doc {
  paths: Record<string, Record<string, unknown>>
}

async function documented(): Promise<Set<string>> {
  const doc = parse(await readFile(new URL('docs/openapi.yaml', ROOT), 'utf8')) as Doc
  const out = new Set<string>()
  for (const [path, ops] of Object.entries(doc.paths)) for (const m of Object.keys(ops)) if (METHODS.includes(m)) out.add(`${m.toUpperCase()} ${path}`)
  return out
}

test('openapi: every route the app registers is documented, and nothing else', async (t) => {
  const v = await startTestVault(t)
  const server = v.vault.server.server
  const app = (server.listeners('request')[0] as unknown as { express: { router: { stack: { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: unknown[] } }[] } } }).express
  const routes = new Set<string>()
  const walk = (stack: { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: unknown[] } }[]) => {
    for (const layer of stack) {
      if (layer.route) for (const m of Object.keys(layer.route.methods)) routes.add(`${m.toUpperCase()} ${layer.route.path.replace(/:([a-zA-Z]+)/g, '{$1}').replace(/\{\/\*([a-zA-Z]+)\}/g, '/{$1}')}`)
      else if (layer.handle?.stack) walk(layer.handle.stack as typeof stack)
    }
  }
  walk(app.router.stack)
  t.true(routes.size > 10, 'found the routes')
  t.deepEqual([...routes].sort(), [...(await documented())].sort())
})

test('openapi: every documented path answers with something other than SV_NOT_FOUND', async (t) => {
  const v = await startTestVault(t)
  const base = v.url.replace(/\/v1\/$/, '')
  for (const op of await documented()) {
    const [method, path] = op.split(' ') as [string, string]
    const url = base + path.replace(/\{[a-zA-Z]+\}/g, 'x')
    const res = await fetch(url, { method, headers: { authorization: `Bearer ${v.adminToken}` } })
    if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
      // a stream that does not end (the Live page's): routed
      await res.body?.cancel()
      continue
    }
    const body = await res.text()
    t.false(body.includes('SV_NOT_FOUND') && res.status === 404 && body.includes('no route'), `${op} is not routed`)
  }
})

test('openapi: the admin and login paths are what the code generates (vault-server openapi --write), each with its permission', async (t) => {
  const v = await startTestVault(t)
  t.truthy(v)
  const current = await readFile(new URL('docs/openapi.yaml', ROOT), 'utf8')
  t.is(generateOpenApi(current), current, 'regenerate with: vault-server openapi --write')
  const doc = parse(current) as { paths: Record<string, Record<string, { 'x-permission'?: string }>> }
  for (const r of ADMIN_ROUTES) t.is(doc.paths[`/v1/admin${r.path.replace(/:([a-zA-Z]+)/g, '{$1}')}`]?.[r.method]?.['x-permission'], r.permission, `${r.method} ${r.path}`)
})
