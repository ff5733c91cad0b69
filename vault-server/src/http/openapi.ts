/**
 * docs/openapi.yaml, kept true to the code: the device and ops paths and the
 * shared components are written by hand in the file; the admin and login
 * paths are generated here from the route table (http/routes/admin.ts, with
 * each route's permission from the permission table) and the request schemas
 * of the wire protocol (shared/src/protocol/admin.ts, through zod's JSON
 * Schema). `vault-server openapi --write docs/openapi.yaml` regenerates them;
 * test/vault-server/http/openapi.test.ts fails when the file lags behind.
 */
import { parse, stringify } from 'yaml'
import { z } from 'zod'
import { ADMIN_QUERY_PARAMS, ADMIN_REQUEST_SCHEMAS, ADMIN_ROUTES } from './routes/admin.js'
import { AUTH_ROUTES } from './routes/auth.js'
import { STORE_PERMISSIONS, VAULT_PERMISSIONS, ROLE_NAMES, roleAllows, isStorePermission } from '../services/admin/permissions.js'
type Role = keyof typeof ROLE_NAMES

type Doc = { paths: Record<string, Record<string, unknown>>; [k: string]: unknown }

const CREATED = new Set(['post /brands', 'post /brands/import', 'post /brands/:brand/keys', 'post /brands/:brand/keys/import', 'post /stores', 'post /tokens', 'post /models', 'post /models/:brand/:model/api-keys', 'post /stores/:store/pivots', 'post /stores/:store/system-users'])

const QUERY_DOCS: Record<string, string> = {
  store: 'the store whose view to read (required for people; the operator may leave it out)',
  subtree: 'true: the stores below it too (where the caller holds the permission)',
  brand: 'brand id',
  model: 'model name',
  serial: 'serial number',
  deviceKey: 'device key id (sha3-384)',
  outcome: 'outcome filter',
  from: 'from this time (ISO 8601 or epoch ms), inclusive',
  to: 'until this time, exclusive',
  limit: 'page size 1..1000 (default 100)',
  cursor: 'nextCursor of the previous page',
  order: 'asc (default) or desc',
  format: 'jsonl or csv',
  status: 'pending, accepted or rejected',
  actor: 'actor id (person, token, device key, cli user)',
  action: 'an action, or a prefix ending in "."',
}

function who(permission: string): string {
  if (permission === 'self') return 'Any logged-in caller, on their own things.'
  if (!isStorePermission(permission)) return `Permission \`${permission}\`: ${VAULT_PERMISSIONS[permission as keyof typeof VAULT_PERMISSIONS] ?? ''}. The operator's admin token only.`
  const roles = (Object.keys(ROLE_NAMES) as Role[]).filter((r) => roleAllows(r, permission)).map((r) => ROLE_NAMES[r])
  return `Permission \`${permission}\` (${STORE_PERMISSIONS[permission]}) in the store it acts in: ${roles.join(', ')}; and the operator.`
}

function jsonSchema(s: z.ZodType): unknown {
  const js = z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
  delete js.$schema
  return js
}

function adminPaths(): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {}
  // answers that are not JSON
  const MEDIA: Record<string, Record<string, unknown>> = {
    'get /live': { 'text/event-stream': { schema: { type: 'string', description: 'server-sent events: hello, entry, alert, ack, gap, end (docs/dashboard.md)' } } },
    'get /log/export': { 'application/x-ndjson': {}, 'text/csv': {} },
    'get /audit/export': { 'application/x-ndjson': {} },
    'get /models/:brand/:model/assertion': { 'application/x.ubuntu.assertion': {} },
    'get /trust': { 'application/x.ubuntu.assertion': {} },
  }
  for (const r of ADMIN_ROUTES) {
    const key = `${r.method} ${r.path}`
    const path = `/v1/admin${r.path.replace(/:([a-zA-Z]+)/g, '{$1}')}`
    const params = [...r.path.matchAll(/:([a-zA-Z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }))
    for (const q of ADMIN_QUERY_PARAMS[key] ?? []) params.push({ name: q, in: 'query', required: false, schema: { type: 'string' }, description: QUERY_DOCS[q] } as never)
    const schema = ADMIN_REQUEST_SCHEMAS[key]
    const ok = CREATED.has(key) ? '201' : '200'
    const op: Record<string, unknown> = {
      tags: ['admin'],
      summary: r.summary,
      description: who(r.permission),
      'x-permission': r.permission,
      security: [{ bearer: [] }, { session: [] }],
      ...(params.length ? { parameters: params } : {}),
      ...(schema ? { requestBody: { required: r.method !== 'post' || !/enable|disable|accept|reject|api-keys|acknowledge/.test(r.path), content: { 'application/json': { schema: jsonSchema(schema) } } } } : {}),
      responses: {
        [ok]: { description: 'done', content: MEDIA[key] ?? { 'application/json': { schema: { type: 'object' } } } },
        ...(schema ? { '400': { $ref: '#/components/responses/Error' } } : {}),
        '401': { $ref: '#/components/responses/Error' },
        '403': { $ref: '#/components/responses/Error' },
        '404': { $ref: '#/components/responses/Error' },
      },
    }
    out[path] = { ...(out[path] ?? {}), [r.method]: op }
  }
  return out
}

function authPaths(): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {}
  for (const r of AUTH_ROUTES) {
    const path = r.path.replace(/:([a-zA-Z]+)/g, '{$1}')
    const params = [...r.path.matchAll(/:([a-zA-Z]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }))
    for (const q of r.query ?? []) params.push({ name: q, in: 'query', required: false, schema: { type: 'string' } } as never)
    out[path] = { ...(out[path] ?? {}), [r.method]: { tags: ['login'], summary: r.summary, ...(params.length ? { parameters: params } : {}), responses: { [r.status]: { description: r.answer }, '400': { $ref: '#/components/responses/Error' }, '401': { $ref: '#/components/responses/Error' }, '403': { $ref: '#/components/responses/Error' }, '503': { $ref: '#/components/responses/Unavailable' } } } }
  }
  return out
}

/** The document: the hand-written parts of `current`, the admin and login paths from the code. */
export function generateOpenApi(current: string): string {
  const doc = parse(current) as Doc
  const kept = Object.fromEntries(Object.entries(doc.paths).filter(([p]) => !p.startsWith('/v1/admin') && !p.startsWith('/v1/auth')))
  doc.paths = { ...kept, ...authPaths(), ...adminPaths() }
  return stringify(doc, { lineWidth: 0 })
}
