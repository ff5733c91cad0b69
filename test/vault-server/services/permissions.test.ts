/**
 * The permission table's documents: docs/roles.md carries exactly what
 * `vault-server roles --markdown` prints from the code, and the admin API's
 * GET /v1/admin/roles answers the same table.
 */
import test from 'ava'
import { readFile } from 'node:fs/promises'
import { rolesMarkdown, permissionTable, ROLE_PERMISSIONS } from '../../../vault-server/src/services/admin/permissions.js'
import { run } from '../../../vault-server/src/main.js'
import { startTestVault } from '../../helpers/vault.js'
import { adminJson } from '../http/api.js'
import { REPO_ROOT } from '../../helpers/vectors.js'

test('permissions: docs/roles.md ends with the table the code makes (vault-server roles --markdown)', async (t) => {
  const doc = await readFile(`${REPO_ROOT}/docs/roles.md`, 'utf8')
  t.true(doc.endsWith(rolesMarkdown()), 'regenerate the table in docs/roles.md with: vault-server roles --markdown')
  let out = ''
  t.is(await run(['roles', '--markdown'], { out: (s) => void (out += s), err: () => {}, readFile: (p) => readFile(p), env: {} }), 0)
  t.is(out, rolesMarkdown())
})

test('permissions: GET /v1/admin/roles answers the table', async (t) => {
  const v = await startTestVault(t, { store: 'memory', workers: 1 })
  const r = await adminJson<{ roles: Record<string, { permissions: string[] }>; routes: unknown[] }>(v, 'GET', 'admin/roles')
  t.deepEqual(r.roles, JSON.parse(JSON.stringify(permissionTable().roles)))
  t.deepEqual(r.roles.viewer!.permissions.sort(), [...ROLE_PERMISSIONS.viewer].sort())
  t.true(r.routes.length > 40)
})
