/**
 * System-user assertions through the admin API: a Store Administrator signs
 * one for a model of their store; snapd's checks accept it with the brand's
 * chain; the password reaches neither the audit log nor the vault's log; a
 * model of another store is refused, and a user for every model of the brand
 * needs the permission in the brand's base store.
 */
import test from 'ava'
import { readFile } from 'node:fs/promises'
import { decodeAssertion, decodeStream, type SystemUserAssertion } from '@sv/shared'
import { PI_MODEL_HEADERS, startTestVault } from '../../helpers/vault.js'
import { snapdVerify, tempDir } from '../../helpers/snapd-check.js'
import { admin, adminJson, assertError } from './api.js'

const BRAND = 'acme-brand'

test('system-users: signed through the API for a store\'s model, accepted by snapd; the password stays secret', async (t) => {
  const logLines: Record<string, unknown>[] = []
  const v = await startTestVault(t, { store: 'memory', workers: 1, logLines })
  await adminJson(v, 'POST', 'admin/stores', { id: 'acme-field', parent: BRAND, kind: 'product', displayName: 'Field units' })
  await adminJson(v, 'POST', 'admin/models', { brandId: BRAND, name: 'acme-field-unit', storeId: 'acme-field', apiKeys: [v.apiKey], headers: PI_MODEL_HEADERS })
  const password = 'correct horse battery staple 42'
  const r = await admin(v, 'POST', 'admin/stores/acme-field/system-users', { email: 'ops@acme.example', username: 'ops', name: 'Field Ops', password, models: ['acme-field-unit'], serials: ['SN-1', 'SN-2'], forcePasswordChange: true })
  t.is(r.status, 201, r.body.toString())
  const body = JSON.parse(r.body.toString()) as { assertion: string; email: string }
  const a = decodeAssertion(body.assertion) as SystemUserAssertion
  t.is(a.typeName, 'system-user')
  t.is(a.brandId, BRAND)
  t.deepEqual(a.models, ['acme-field-unit'])
  t.deepEqual(a.serials, ['SN-1', 'SN-2'])
  t.regex(a.password, /^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/)

  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const chain = decodeStream(await readFile(v.chainFile)).filter((x) => x.typeName !== 'model')
  const verdict = await snapdVerify(dir, { trusted: await readFile(v.trusted), chain: chain.map((x) => x.encode()), file: Buffer.from(body.assertion) })
  t.is(verdict.code, 0, verdict.stdout + verdict.stderr)
  t.deepEqual(verdict.lines.map((l) => l.ok), [true])

  // audited without the password or its hash; never in the log either
  const audit = await adminJson<{ entries: Array<{ action: string; after: Record<string, unknown> }> }>(v, 'GET', 'admin/audit?action=system_user.signed')
  t.like(audit.entries, [{ action: 'system_user.signed', after: { email: 'ops@acme.example', username: 'ops', models: ['acme-field-unit'], password: true } }])
  const everything = JSON.stringify(audit) + JSON.stringify(logLines)
  t.false(everything.includes(password))
  t.false(everything.includes(a.password))

  // a model of another store, and a user for every model from a sub-store admin
  assertError(t, await admin(v, 'POST', 'admin/stores/acme-field/system-users', { email: 'x@acme.example', username: 'x', password, models: ['acme-pi-gateway'] }), 400, 'SV_REQUEST_INVALID', { field: 'models' })
  assertError(t, await admin(v, 'POST', 'admin/stores/acme-field/system-users', { email: 'x@acme.example', username: 'x', password, models: [], serials: ['A'] }), 400, 'SV_SYSTEM_USER_INVALID')
})
