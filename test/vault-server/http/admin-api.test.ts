/**
 * The admin API (/v1/admin) over real HTTP against a real vault in this
 * process: bearer tokens, brands (one real RSA-4096 creation, the rest by
 * import of the snapd vectors' keys), models, keys, the signing log (query,
 * paging, export) and the trust export. Each test has its own vault.
 */
import test, { type ExecutionContext } from 'ava'
import { Buffer } from 'node:buffer'
import { readFile } from 'node:fs/promises'
import { decodeAssertion, decodeStream, encodeStream, type ModelAssertion } from '@sv/shared'
import { PI_MODEL_HEADERS, startTestVault, type TestVault, type TestVaultOptions } from '../../helpers/vault.js'
import { endpoint, fetchRequestId, fixtureDeviceKey, generateDeviceKeys, httpRequest, jsonOf, postRequestId, postSerial, registerDevice, type DeviceKey, type RegisterInput } from '../../helpers/device.js'
import { keyId } from '../../helpers/keys.js'
import { vectorPath } from '../../helpers/vectors.js'
import { snapdVerify, tempDir } from '../../helpers/snapd-check.js'
import { hashToken, newToken } from '../../../vault-server/src/cli/vault-commands.js'
import { CSV_COLUMNS } from '../../../vault-server/src/services/log-format.js'
import { admin, adminJson, assertError, logEntries, serialOf, type WireLogEntry } from './api.js'

const BRAND = 'acme-brand'
const MODEL = 'acme-pi-gateway'

async function setup(t: ExecutionContext, o: TestVaultOptions = {}): Promise<TestVault> {
  return startTestVault(t, { store: 'memory', workers: 1, ...o })
}

function reg(v: TestVault, key: DeviceKey, serial: string, extra: Partial<RegisterInput> = {}) {
  return registerDevice(v.url, v.apiKey, { key, brandId: BRAND, model: MODEL, serial, ...extra })
}

/** The vectors' second account, evil-corp: its account and account-key (evil-chain.assert) and key. */
async function evilImport(): Promise<{ pem: string; account: string; accountKey: string; trusted: string[] }> {
  const [account, accountKey] = decodeStream(await readFile(vectorPath('evil-chain.assert')))
  return {
    pem: await readFile(vectorPath('keys/evil.key.pem'), 'utf8'),
    account: account!.text(),
    accountKey: accountKey!.text(),
    trusted: [await readFile(vectorPath('trusted.assert'), 'utf8')],
  }
}

// --- authentication -----------------------------------------------------------------------

test('auth: admin routes without a valid credential are 401 SV_UNAUTHENTICATED, with the reason', async (t) => {
  const v = await setup(t)
  const revoked = newToken()
  await v.vault.store.tokens.put({ hash: hashToken(revoked), kind: 'admin', name: 'old', roles: ['admin'], createdAt: Date.now(), revokedAt: Date.now() })
  const routes: [string, string][] = [
    ['GET', 'admin/brands'],
    ['GET', 'admin/models'],
    ['POST', 'admin/models'],
    ['GET', 'admin/keys'],
    ['POST', `admin/keys/${keyId('brand')}/disable`],
    ['GET', 'admin/log'],
    ['GET', 'admin/log/export'],
    ['GET', 'admin/trust'],
    ['POST', `admin/serials/${BRAND}/${MODEL}/X/release`],
  ]
  for (const [method, path] of routes) {
    const none = await httpRequest(endpoint(v.url, path), { method })
    assertError(t, none, 401, 'SV_UNAUTHENTICATED', { reason: 'missing' })
    t.is(none.headers['www-authenticate'], 'Bearer realm="serial-vault admin"')
    // an Authorization header that is not a well-formed bearer token is a wrong credential, not a missing one
    assertError(t, await httpRequest(endpoint(v.url, path), { method, headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } }), 401, 'SV_UNAUTHENTICATED', { reason: 'malformed' })
    assertError(t, await admin({ url: v.url, adminToken: newToken() }, method, path), 401, 'SV_UNAUTHENTICATED', { reason: 'unknown' })
    assertError(t, await admin({ url: v.url, adminToken: revoked }, method, path), 401, 'SV_UNAUTHENTICATED', { reason: 'revoked' })
  }
  // the device api-key is not an admin token
  assertError(t, await admin({ url: v.url, adminToken: v.apiKey }, 'GET', 'admin/brands'), 401, 'SV_UNAUTHENTICATED', { reason: 'unknown' })
  const ok = await admin(v, 'GET', 'admin/brands')
  t.is(ok.status, 200)
  t.is(ok.headers['content-type'], 'application/json')
  assertError(t, await admin(v, 'GET', 'admin/no-such-route'), 404, 'SV_NOT_FOUND')
  // nothing was disabled by the refused calls
  t.is((await httpRequest(endpoint(v.url, 'ready'))).status, 200)
})

// --- brands ---------------------------------------------------------------------------------

test('brands: create via the API (vault root + brand key, RSA-4096), trust export, and a serial of that brand passes snapd', async (t) => {
  t.timeout(240_000)
  const v = await setup(t)
  assertError(t, await admin(v, 'POST', 'admin/brands', { id: 'Bad_Id', displayName: 'x' }), 400, 'SV_REQUEST_INVALID', { field: 'id' })
  assertError(t, await admin(v, 'POST', 'admin/brands', { id: BRAND, displayName: 'again' }), 409, 'SV_BRAND_EXISTS', { brandId: BRAND })
  assertError(t, await admin(v, 'GET', 'admin/trust'), 404, 'SV_BRAND_UNKNOWN')

  const created = await admin(v, 'POST', 'admin/brands', { id: 'gadget-co', displayName: 'Gadget Co' })
  t.is(created.status, 201, created.body.toString())
  const body = jsonOf<{ brand: { id: string; origin: string }; key: { keyId: string; bits: number } }>(created)
  t.like(body, { brand: { id: 'gadget-co', origin: 'vault-root' }, key: { bits: 4096 } })
  const { brands } = await adminJson<{ brands: { id: string; origin: string }[] }>(v, 'GET', 'admin/brands')
  t.deepEqual(
    brands.map((b) => [b.id, b.origin]).sort(),
    [
      [BRAND, 'imported'],
      ['gadget-co', 'vault-root'],
    ],
  )

  const rootOnly = await admin(v, 'GET', 'admin/trust')
  t.is(rootOnly.status, 200)
  t.is(rootOnly.headers['content-type'], 'application/x.ubuntu.assertion')
  const root = decodeStream(rootOnly.body)
  t.deepEqual(
    root.map((a) => a.typeName),
    ['account', 'account-key'],
  )
  const withBrand = await admin(v, 'GET', 'admin/trust?brand=gadget-co')
  const chain = decodeStream(withBrand.body)
  t.deepEqual(
    chain.map((a) => [a.typeName, a.headerString('account-id')]),
    [
      ['account', root[0]!.headerString('account-id')],
      ['account-key', root[0]!.headerString('account-id')],
      ['account', 'gadget-co'],
      ['account-key', 'gadget-co'],
    ],
  )
  t.is(chain[3]!.headerString('public-key-sha3-384'), body.key.keyId)

  // a model and a device of the new brand; snapd accepts the serial with the exported root as its only anchor
  const { apiKeys, model } = await adminJson<{ apiKeys: string[]; model: { modelAssertion: string; signingKeyId: string } }>(v, 'POST', 'admin/models', { brandId: 'gadget-co', name: 'gadget-one', headers: PI_MODEL_HEADERS })
  t.is(model.signingKeyId, body.key.keyId)
  const r = await registerDevice(v.url, apiKeys[0]!, { key: fixtureDeviceKey('device'), brandId: 'gadget-co', model: 'gadget-one', serial: 'G-1', modelAssertion: model.modelAssertion })
  t.is(serialOf(r).serial.signKeyId, body.key.keyId)
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const verdict = await snapdVerify(dir, { trusted: rootOnly.body, chain: [encodeStream(chain.slice(2)), Buffer.from(model.modelAssertion)], file: r.body })
  t.is(verdict.code, 0, verdict.stdout + verdict.stderr)
  t.true(verdict.lines.length === 3 && verdict.lines.every((l) => l.ok), verdict.stdout)
})

test('brands: import via the API checks the chain and that key, account and account-key belong together', async (t) => {
  const v = await setup(t)
  const evil = await evilImport()
  const acmeKey = await readFile(vectorPath('account-key.assert'), 'utf8')
  // the account-key of another account
  assertError(t, await admin(v, 'POST', 'admin/brands/import', { ...evil, accountKey: acmeKey }), 400, 'SV_KEY_IMPORT_MISMATCH', { account: 'evil-corp', accountKeyAccount: BRAND })
  // the private key of another account-key
  assertError(t, await admin(v, 'POST', 'admin/brands/import', { ...evil, pem: await readFile(vectorPath('keys/impostor.key.pem'), 'utf8') }), 400, 'SV_KEY_IMPORT_MISMATCH')
  // no trusted root given: only Canonical's root is trusted
  const { trusted: _t, ...untrusted } = evil
  assertError(t, await admin(v, 'POST', 'admin/brands/import', untrusted), 400, 'SV_ASSERTION_UNTRUSTED')
  assertError(t, await admin(v, 'POST', 'admin/brands/import', { ...evil, extra: 1 }), 400, 'SV_REQUEST_INVALID')
  t.deepEqual(
    (await adminJson<{ keys: { keyId: string }[] }>(v, 'GET', 'admin/keys')).keys.map((k) => k.keyId),
    [keyId('brand')],
    'nothing was stored by the refused imports',
  )
  const ok = await admin(v, 'POST', 'admin/brands/import', evil)
  t.is(ok.status, 201, ok.body.toString())
  t.like(jsonOf(ok), { brand: { id: 'evil-corp', displayName: 'Evil Corp', origin: 'imported' }, key: { keyId: keyId('evil'), name: 'default', bits: 4096, enabled: true }, store: { id: 'evil-corp', kind: 'base', brandId: 'evil-corp' } })
  // a brand is imported once; more keys of it come through its keys/import
  assertError(t, await admin(v, 'POST', 'admin/brands/import', evil), 409, 'SV_BRAND_EXISTS')
  assertError(t, await admin(v, 'POST', 'admin/brands/evil-corp/keys/import', { pem: evil.pem, accountKey: evil.accountKey, trusted: evil.trusted }), 409, 'SV_KEY_EXISTS')
})

// --- models ---------------------------------------------------------------------------------

test('models: create, read, list and update; API keys are shown once and only as hashes afterwards', async (t) => {
  const v = await setup(t)
  const created = await admin(v, 'POST', 'admin/models', { brandId: BRAND, name: 'acme-new', headers: PI_MODEL_HEADERS, serialPolicy: 'assign:NEW-{n:4}@100', duplicates: 'reissue' })
  t.is(created.status, 201, created.body.toString())
  t.is(created.headers['content-type'], 'application/json')
  const c = jsonOf<{ model: Record<string, unknown> & { apiKeyHashes: string[]; modelAssertion: string }; apiKeys: string[] }>(created)
  t.is(c.apiKeys.length, 1)
  t.like(c.model, { brandId: BRAND, name: 'acme-new', signingKeyId: keyId('brand'), serialPolicy: { kind: 'assign', template: 'NEW-{n:4}', start: 100 }, duplicatePolicy: 'reissue', revision: 0 })
  t.is(c.model.apiKeyHashes.length, 1)
  t.false(JSON.stringify(c.model).includes(c.apiKeys[0]!), 'the model view never holds the API key')
  const a = decodeAssertion(c.model.modelAssertion) as ModelAssertion
  t.is(a.headerString('model'), 'acme-new')
  t.is(a.signKeyId, keyId('brand'))

  const got = await adminJson<{ model: unknown }>(v, 'GET', `admin/models/${BRAND}/acme-new`)
  t.deepEqual(got.model, c.model)
  const { models } = await adminJson<{ models: { name: string }[] }>(v, 'GET', `admin/models?brand=${BRAND}`)
  t.deepEqual(models.map((m) => m.name).sort(), ['acme-new', MODEL])
  t.deepEqual((await adminJson<{ models: unknown[] }>(v, 'GET', 'admin/models?brand=nobody')).models, [])

  // the generated key works on the device API, for this model's serials
  const first = await registerDevice(v.url, c.apiKeys[0]!, { key: fixtureDeviceKey('device'), brandId: BRAND, model: 'acme-new' })
  t.is(serialOf(first).serial.serial, 'NEW-0100')

  const extraKey = 'added-api-key-0123456789'
  const patched = await admin(v, 'PATCH', `admin/models/${BRAND}/acme-new`, { addApiKeys: [extraKey], headers: { ...PI_MODEL_HEADERS, 'display-name': 'ACME New, revised' } })
  t.is(patched.status, 200, patched.body.toString())
  const p = jsonOf<{ model: { revision: number; apiKeyHashes: string[]; modelAssertion: string }; apiKeys: string[] }>(patched)
  t.deepEqual(p.apiKeys, [extraKey])
  t.is(p.model.revision, 1)
  t.is(p.model.apiKeyHashes.length, 2)
  const a2 = decodeAssertion(p.model.modelAssertion)
  t.is(a2.revision, 1)
  t.is(a2.headerString('display-name'), 'ACME New, revised')
  t.is((await postRequestId(v.url, extraKey)).status, 200)
  // removing a key by its hash: the device API refuses it at once (the api-key cache is dropped on every change)
  const keep = p.model.apiKeyHashes.filter((h) => h !== c.model.apiKeyHashes[0])
  const removed = await adminJson<{ model: { apiKeyHashes: string[] } }>(v, 'PATCH', `admin/models/${BRAND}/acme-new`, { removeApiKeyHashes: [c.model.apiKeyHashes[0]] })
  t.deepEqual(removed.model.apiKeyHashes, keep)
  assertError(t, await postRequestId(v.url, c.apiKeys[0]!), 401, 'SV_API_KEY_INVALID')
  assertError(t, await admin(v, 'PATCH', `admin/models/${BRAND}/acme-new`, { removeApiKeyHashes: keep }), 400, 'SV_REQUEST_INVALID', { field: 'apiKeys' })
})

test('models: refusals have their codes (exists, unknown, invalid, key of another brand, bad bodies)', async (t) => {
  const v = await setup(t)
  const create = (body: Record<string, unknown>) => admin(v, 'POST', 'admin/models', { brandId: BRAND, headers: PI_MODEL_HEADERS, ...body })
  assertError(t, await create({ name: MODEL }), 409, 'SV_MODEL_EXISTS', { brandId: BRAND, model: MODEL })
  assertError(t, await admin(v, 'GET', `admin/models/${BRAND}/nope`), 404, 'SV_MODEL_UNKNOWN', { brandId: BRAND, model: 'nope' })
  assertError(t, await admin(v, 'PATCH', `admin/models/${BRAND}/nope`, { duplicates: 'reissue' }), 404, 'SV_MODEL_UNKNOWN')
  assertError(t, await create({ brandId: 'nobody', name: 'x-model' }), 404, 'SV_BRAND_UNKNOWN', { brandId: 'nobody' })
  assertError(t, await create({ name: 'x-model', signingKeyId: 'A'.repeat(64) }), 404, 'SV_KEY_NOT_FOUND')

  // UC22 (base: core22) without a gadget snap
  const noGadget = { ...PI_MODEL_HEADERS, snaps: PI_MODEL_HEADERS.snaps.filter((s) => s.type !== 'gadget') }
  assertError(t, await create({ name: 'no-gadget', headers: noGadget }), 400, 'SV_MODEL_INVALID')
  assertError(t, await create({ name: 'Upper-Case' }), 400, 'SV_MODEL_INVALID', { header: 'model' })
  assertError(t, await create({ name: 'managed', headers: { ...PI_MODEL_HEADERS, 'brand-id': 'evil-corp' } }), 400, 'SV_MODEL_INVALID', { header: 'brand-id' })

  // a key of another account (the vectors' evil-corp, imported)
  t.is((await admin(v, 'POST', 'admin/brands/import', await evilImport())).status, 201)
  const mismatch = { keyId: keyId('evil'), keyAccount: 'evil-corp', brandId: BRAND }
  assertError(t, await create({ name: 'stolen-key', signingKeyId: keyId('evil') }), 400, 'SV_KEY_BRAND_MISMATCH', mismatch)
  assertError(t, await admin(v, 'PATCH', `admin/models/${BRAND}/${MODEL}`, { signingKeyId: keyId('evil') }), 400, 'SV_KEY_BRAND_MISMATCH', mismatch)

  assertError(t, await create({ name: 'x-model', serialPolicy: 'sequential' }), 400, 'SV_REQUEST_INVALID', { field: 'serialPolicy' })
  assertError(t, await create({ name: 'x-model', serialPolicy: 'assign:NO-PLACEHOLDER' }), 400, 'SV_REQUEST_INVALID')
  assertError(t, await create({ name: 'x-model', apiKeys: ['short'] }), 400, 'SV_REQUEST_INVALID', { field: 'apiKey' })
  assertError(t, await create({ name: 'x-model', unknownField: true }), 400, 'SV_REQUEST_INVALID')
  assertError(t, await admin(v, 'POST', 'admin/models', undefined, {}), 415, 'SV_MEDIA_TYPE_UNSUPPORTED')
  const notJson = await httpRequest(endpoint(v.url, 'admin/models'), { method: 'POST', headers: { authorization: `Bearer ${v.adminToken}`, 'content-type': 'application/json' }, body: '{"brandId": ' })
  assertError(t, notJson, 400, 'SV_REQUEST_INVALID', { reason: 'json' })
  // none of that changed anything
  const { models } = await adminJson<{ models: { name: string; revision: number; signingKeyId: string }[] }>(v, 'GET', 'admin/models')
  t.deepEqual(
    models.map((m) => [m.name, m.revision, m.signingKeyId]),
    [[MODEL, 0, keyId('brand')]],
  )
})

// --- keys -----------------------------------------------------------------------------------

test('keys: a disabled signing key makes registrations 503 SV_SIGNING_KEY_UNAVAILABLE with Retry-After (never a 4xx), until enabled again', async (t) => {
  const v = await setup(t)
  const done = await reg(v, fixtureDeviceKey('device'), 'SN-BEFORE')
  t.is(done.status, 200)
  assertError(t, await admin(v, 'POST', `admin/keys/${'B'.repeat(64)}/disable`, { reason: 'x' }), 404, 'SV_KEY_NOT_FOUND')
  // a key that models sign with is not disabled through the API; a reason is required
  assertError(t, await admin(v, 'POST', `admin/keys/${keyId('brand')}/disable`), 400, 'SV_REQUEST_INVALID', { field: 'reason' })
  assertError(t, await admin(v, 'POST', `admin/keys/${keyId('brand')}/disable`, { reason: 'compromised' }), 409, 'SV_KEY_IN_USE', { keyId: keyId('brand') })
  await v.vault.keys.setEnabled(keyId('brand'), { enabled: false, reason: 'compromised' })
  t.like((await adminJson<{ keys: object[] }>(v, 'GET', 'admin/keys')).keys, [{ keyId: keyId('brand'), accountId: BRAND, purpose: 'brand', enabled: false, reason: 'compromised', models: [`${BRAND}/${MODEL}`] }])

  const refused = await reg(v, fixtureDeviceKey('impostor'), 'SN-DURING')
  assertError(t, refused, 503, 'SV_SIGNING_KEY_UNAVAILABLE')
  t.is(refused.headers['retry-after'], '5')
  // a device that already has its serial still gets it (nothing to sign)
  t.true((await postSerial(v.url, v.apiKey, done.sent)).body.equals(done.body))
  t.like(await logEntries(v, { outcome: 'refused' }), [{ code: 'SV_SIGNING_KEY_UNAVAILABLE', serial: 'SN-DURING', deviceKeyId: fixtureDeviceKey('impostor').id }])

  const on = await admin(v, 'POST', `admin/keys/${keyId('brand')}/enable`, { reason: 'rotated' })
  t.like(jsonOf(on), { key: { keyId: keyId('brand'), enabled: true, reason: 'rotated' } })
  // snapd retries a 5xx with a new request-id
  t.is(serialOf(await reg(v, fixtureDeviceKey('impostor'), 'SN-DURING')).serial.serial, 'SN-DURING')
})

// --- the signing log ------------------------------------------------------------------------

/** A vault whose log holds issuances, refusals of several codes and (unlogged) retries. */
async function busyVault(t: ExecutionContext): Promise<{ v: TestVault; all: WireLogEntry[] }> {
  const v = await setup(t, { models: [{ name: 'acme-other' }] })
  const keys = await generateDeviceKeys(6)
  const other = (await v.vault.services.models.get(BRAND, 'acme-other')).modelAssertion
  const telemetry = 'telemetry:\n  boot-ms: 1200\n  keygen-ms: 800\n'
  for (const [i, k] of keys.entries()) t.is((await reg(v, k, `SN-${i}`, { body: telemetry })).status, 200)
  t.is((await reg(v, keys[0]!, 'SN-0', { body: telemetry })).status, 200) // retried: no entry
  t.is((await reg(v, fixtureDeviceKey('impostor'), 'SN-0')).status, 409) // SV_SERIAL_TAKEN
  t.is((await reg(v, fixtureDeviceKey('evil'), 'SN-1')).status, 409)
  t.is((await reg(v, fixtureDeviceKey('device'), 'SN-X', { modelAssertion: other })).status, 400) // SV_MODEL_MISMATCH (a comma in its message)
  t.is((await reg(v, fixtureDeviceKey('device'), 'SN-Y', { model: 'acme-other', modelAssertion: other })).status, 200)
  t.is((await reg(v, fixtureDeviceKey('small/device'), 'SN-Z')).status, 400)
  const all = await logEntries(v)
  t.is(all.length, 6 + 2 + 1 + 1 + 1)
  return { v, all }
}

test('log: pages of any size cover every entry exactly once, in both orders; filters select', async (t) => {
  const { v, all } = await busyVault(t)
  const ids = all.map((e) => e.id)
  t.deepEqual([...ids].sort(), ids, 'oldest first')
  t.is(new Set(ids).size, ids.length)

  for (const [limit, order] of [
    ['1', 'asc'],
    ['3', 'asc'],
    ['4', 'desc'],
    ['11', 'asc'],
    ['1000', 'desc'],
  ] as const) {
    const seen: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const q = new URLSearchParams({ limit, order, ...(cursor ? { cursor } : {}) })
      const page = await adminJson<{ entries: WireLogEntry[]; nextCursor?: string }>(v, 'GET', `admin/log?${q}`)
      t.true(page.entries.length <= Number(limit))
      t.true(page.entries.length > 0 || pages === 0)
      seen.push(...page.entries.map((e) => e.id))
      cursor = page.nextCursor
      pages++
    } while (cursor && pages < 100)
    t.deepEqual(seen, order === 'asc' ? ids : [...ids].reverse(), `limit ${limit} ${order}`)
    t.is(pages, Math.max(1, Math.ceil(ids.length / Number(limit))))
  }

  const sel = async (q: Record<string, string>) => (await logEntries(v, q)).map((e) => e.id)
  const pick = (f: (e: WireLogEntry) => boolean) => all.filter(f).map((e) => e.id)
  t.deepEqual(await sel({ outcome: 'refused' }), pick((e) => e.outcome === 'refused'))
  t.is((await sel({ outcome: 'refused' })).length, 4)
  t.deepEqual(await sel({ outcome: 'retried' }), [])
  t.deepEqual(await sel({ serial: 'SN-0' }), pick((e) => e.serial === 'SN-0'))
  t.deepEqual(await sel({ brand: BRAND, model: 'acme-other' }), pick((e) => e.model === 'acme-other'))
  t.deepEqual(await sel({ brand: BRAND, outcome: 'issued' }), pick((e) => e.brandId === BRAND && e.outcome === 'issued'))
  t.deepEqual(await sel({ brand: 'nobody' }), [])
  // time window: from inclusive, to exclusive (ISO 8601 or epoch ms)
  const mid = all[4]!.time
  t.deepEqual(await sel({ from: mid }), pick((e) => e.time >= mid))
  t.deepEqual(await sel({ to: String(Date.parse(mid)) }), pick((e) => e.time < mid))
  // a filter and paging together
  const issued: string[] = []
  let cursor: string | undefined
  for (let i = 0; i < 20; i++) {
    const page = await adminJson<{ entries: WireLogEntry[]; nextCursor?: string }>(v, 'GET', `admin/log?${new URLSearchParams({ outcome: 'issued', limit: '2', ...(cursor ? { cursor } : {}) })}`)
    issued.push(...page.entries.map((e) => e.id))
    cursor = page.nextCursor
    if (!cursor) break
  }
  t.deepEqual(issued, pick((e) => e.outcome === 'issued'))

  // entries carry what ops needs
  t.like(
    all.find((e) => e.code === 'SV_SERIAL_TAKEN'),
    { outcome: 'refused', brandId: BRAND, model: MODEL, serial: 'SN-0', transport: 'https' },
  )
  t.like(all[0], { outcome: 'issued', serial: 'SN-0', revision: 1, timings: { 'boot-ms': 1200, 'keygen-ms': 800 } })

  for (const [q, field] of [
    ['limit=0', 'limit'],
    ['limit=abc', 'limit'],
    ['limit=1001', 'limit'],
    ['cursor=not-a-cursor', 'cursor'],
    ['outcome=bogus', 'outcome'],
    ['order=sideways', 'order'],
    ['from=yesterday', 'from'],
    ['brand=a&brand=b', 'brand'],
  ] as const) {
    assertError(t, await admin(v, 'GET', `admin/log?${q}`), 400, 'SV_REQUEST_INVALID', { field })
  }
})

/** RFC 4180: quoted fields with "" escapes, CRLF or LF line ends. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++
      else if (ch === '"') quoted = false
      else field += ch
    } else if (ch === '"') quoted = true
    else if (ch === ',') row.push(field), (field = '')
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++
      row.push(field), rows.push(row), (row = []), (field = '')
    } else field += ch
  }
  if (field !== '' || row.length > 0) row.push(field), rows.push(row)
  return rows
}

test('log export: JSON lines and CSV stream every matching entry', async (t) => {
  const { v, all } = await busyVault(t)
  const jsonl = await admin(v, 'GET', 'admin/log/export')
  t.is(jsonl.status, 200)
  t.is(jsonl.headers['content-type'], 'application/x-ndjson')
  t.is(jsonl.headers['transfer-encoding'], 'chunked', 'streamed, not buffered')
  t.is(jsonl.headers['content-disposition'], 'attachment; filename="signing-log.jsonl"')
  const lines = jsonl.body.toString('utf8').split('\n')
  t.is(lines.pop(), '')
  t.deepEqual(
    lines.map((l) => JSON.parse(l) as WireLogEntry),
    all,
  )

  const csv = await admin(v, 'GET', 'admin/log/export?format=csv')
  t.is(csv.status, 200)
  t.regex(String(csv.headers['content-type']), /^text\/csv/)
  t.is(csv.headers['transfer-encoding'], 'chunked')
  const [header, ...rows] = parseCsv(csv.body.toString('utf8'))
  t.deepEqual(header, [...CSV_COLUMNS])
  t.is(rows.length, all.length)
  const col = (name: string) => header!.indexOf(name)
  for (const [i, r] of rows.entries()) {
    const e = all[i]! as WireLogEntry & { timings?: Record<string, number> }
    t.is(r.length, header!.length)
    t.is(r[col('id')], e.id)
    t.is(r[col('time')], e.time)
    t.is(r[col('outcome')], e.outcome)
    t.is(r[col('code')], e.code ?? '')
    t.is(r[col('serial')], e.serial ?? '')
    t.is(r[col('revision')], e.revision === undefined ? '' : String(e.revision))
    t.is(r[col('deviceKeyId')], e.deviceKeyId ?? '')
    t.is(r[col('message')], e.message ?? '')
    t.deepEqual(r[col('timings')] ? JSON.parse(r[col('timings')]!) : undefined, e.timings)
  }
  t.true(rows.some((r) => r[col('message')]!.includes(',')), 'a quoted field with a comma survived')

  const refused = parseCsv((await admin(v, 'GET', 'admin/log/export?format=csv&outcome=refused')).body.toString('utf8')).slice(1)
  t.deepEqual(
    refused.map((r) => r[col('code')]),
    all.filter((e) => e.outcome === 'refused').map((e) => e.code),
  )
  assertError(t, await admin(v, 'GET', 'admin/log/export?format=xml'), 400, 'SV_REQUEST_INVALID', { field: 'format' })
})

// --- trust ----------------------------------------------------------------------------------

test('trust export: an imported brand exports its account and account-keys, which snapd accepts on the vectors root', async (t) => {
  const v = await setup(t)
  assertError(t, await admin(v, 'GET', 'admin/trust'), 404, 'SV_BRAND_UNKNOWN')
  assertError(t, await admin(v, 'GET', 'admin/trust?brand=nobody'), 404, 'SV_BRAND_UNKNOWN', { brandId: 'nobody' })
  const r = await admin(v, 'GET', `admin/trust?brand=${BRAND}`)
  t.is(r.status, 200)
  t.is(r.headers['content-type'], 'application/x.ubuntu.assertion')
  const parts = decodeStream(r.body)
  t.deepEqual(
    parts.map((a) => Buffer.from(a.encode())),
    [await readFile(vectorPath('account.assert')), await readFile(vectorPath('account-key.assert'))],
  )
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const verdict = await snapdVerify(dir, { trusted: await readFile(v.trusted), file: r.body })
  t.is(verdict.code, 0, verdict.stdout + verdict.stderr)
  t.deepEqual(
    verdict.lines.map((l) => l.ok),
    [true, true],
  )
})

test('request-ids and admin tokens are separate: an admin token is no api-key', async (t) => {
  const v = await setup(t)
  assertError(t, await postRequestId(v.url, v.adminToken), 401, 'SV_API_KEY_INVALID')
  t.truthy(await fetchRequestId(v.url, v.apiKey))
})

test('keys: generating, disabling and enabling a brand key are in the audit view of the brand\'s base store, and listings carry the account-key assertion', async (t) => {
  const v = await setup(t, { keyBits: 2048 })
  await adminJson(v, 'POST', 'admin/brands', { id: 'rot-brand', displayName: 'Rotation' })
  const made = await adminJson<{ key: { keyId: string } }>(v, 'POST', 'admin/brands/rot-brand/keys', { name: 'second' })
  await adminJson(v, 'POST', `admin/keys/${made.key.keyId}/disable`, { reason: 'kept in reserve' })
  await adminJson(v, 'POST', `admin/keys/${made.key.keyId}/enable`, { reason: 'rotation day' })
  const view = await adminJson<{ entries: Array<{ action: string; storeId?: string; target?: { id: string } }> }>(v, 'GET', 'admin/audit?store=rot-brand&action=key.')
  t.deepEqual(
    view.entries.filter((e) => e.target?.id === made.key.keyId).map((e) => [e.action, e.storeId]),
    [
      ['key.generated', 'rot-brand'],
      ['key.disabled', 'rot-brand'],
      ['key.enabled', 'rot-brand'],
    ],
  )
  const keys = await adminJson<{ keys: Array<{ keyId: string; accountKeyAssertion?: string }> }>(v, 'GET', 'admin/brands/rot-brand/keys')
  const k = keys.keys.find((x) => x.keyId === made.key.keyId)!
  t.regex(k.accountKeyAssertion!, /^type: account-key\n/)
  t.true(k.accountKeyAssertion!.includes(`public-key-sha3-384: ${made.key.keyId}`))
})
