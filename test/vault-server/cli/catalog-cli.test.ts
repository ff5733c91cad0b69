/**
 * brand, key, model, trust and token commands against a running vault
 * (issue 13, point 6): real `vault-server` processes with --url against a
 * real `vault-server serve` (HTTPS, its development certificate as --ca) and
 * against an in-process vault's HTTPS listener; their --json answers, human
 * lines and exit codes (0 ok, 1 refused, 2 bad input, 3 unreachable or
 * locked); the audit entries they leave; a Viewer's personal token refused
 * with SV_FORBIDDEN; --data on a directory a running vault holds answered
 * with the one-line --url hint; the brand's private key never echoed.
 */
import test, { type ExecutionContext } from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeStream } from '@sv/shared'
import { runVaultCli, serveDataDir, type CliRun } from '../../helpers/cli.js'
import { PI_MODEL_HEADERS, startTestVault } from '../../helpers/vault.js'
import { vectorPath } from '../../helpers/vectors.js'
import { keyId } from '../../helpers/keys.js'

const ok = (t: ExecutionContext, r: CliRun, what: string): void => {
  t.is(r.code, 0, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`)
}
const json = <T>(r: CliRun): T => JSON.parse(r.stdout) as T

async function tmp(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sv-catalog-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

test('brand import, brand/key/model/trust commands and token list with --url against a running `vault-server serve`; --data while it runs gives the --url hint', async (t) => {
  t.timeout(180_000)
  const data = join(await tmp(t), 'data')
  const init = await runVaultCli(['init', '--data', data, '--json'])
  ok(t, init, 'init')
  const adminToken = json<{ adminToken: string }>(init).adminToken
  const { url } = await serveDataDir(t, data)
  const ca = join(data, 'tls', 'cert.pem')
  const remote = ['--url', url, '--token', adminToken, '--ca', ca]
  const cli = (args: string[], env?: Record<string, string>): Promise<CliRun> => runVaultCli([...args, ...remote], env ? { env } : {})
  const brandKeyPem = await readFile(vectorPath('keys/brand.key.pem'), 'utf8')
  const pemLine = brandKeyPem.split('\n')[5]!

  // brand import over the admin API: a key that is not the account-key's is bad input (exit 2), the key never echoed
  const importArgs = ['brand', 'import', '--account', vectorPath('account.assert'), '--account-key', vectorPath('account-key.assert'), '--trusted', vectorPath('trusted.assert')]
  const mismatch = await cli([...importArgs, '--key', vectorPath('keys/evil.key.pem')])
  t.is(mismatch.code, 2, mismatch.stderr)
  t.regex(mismatch.stderr, /400.*\(SV_KEY_IMPORT_MISMATCH\)/)
  const imported = await cli([...importArgs, '--key', vectorPath('keys/brand.key.pem'), '--json'])
  ok(t, imported, 'brand import --url')
  t.deepEqual(json(imported), { brand: 'acme-brand', keyId: keyId('brand') })
  t.false(imported.stdout.includes(pemLine) || imported.stderr.includes(pemLine), 'the private key is not in the answer')
  const again = await cli([...importArgs, '--key', vectorPath('keys/brand.key.pem')])
  t.is(again.code, 1, again.stderr)
  t.regex(again.stderr, /409.*\(SV_BRAND_EXISTS\)/)

  // brand list and key list (text and --json)
  const brands = await cli(['brand', 'list', '--json'])
  ok(t, brands, 'brand list --url')
  t.deepEqual(json(brands), { brands: [{ id: 'acme-brand', displayName: 'ACME Devices Inc.', origin: 'imported', keys: [{ keyId: keyId('brand'), name: 'default', enabled: true }] }] })
  t.is((await cli(['brand', 'list'])).stdout, `acme-brand\timported\tACME Devices Inc.\n  key ${keyId('brand')} default\n`)
  const keys = await cli(['key', 'list', '--account', 'acme-brand', '--json'])
  ok(t, keys, 'key list --url')
  t.deepEqual(json(keys), { keys: [{ keyId: keyId('brand'), accountId: 'acme-brand', purpose: 'brand', name: 'default', bits: 4096, enabled: true }] })
  t.is((await cli(['key', 'list', '--account', 'nobody'])).stdout, 'no keys\n')

  // model add / list / show
  const headers = join(data, '..', 'model.json')
  await writeFile(headers, JSON.stringify(PI_MODEL_HEADERS))
  const added = await cli(['model', 'add', '--brand', 'acme-brand', '--model', 'acme-remote', '--headers', headers, '--serial-policy', 'assign:RM-{n:4}', '--json'])
  ok(t, added, 'model add --url')
  const addedJson = json<{ apiKeys: string[] }>(added)
  t.like(addedJson, { brand: 'acme-brand', model: 'acme-remote', signingKeyId: keyId('brand'), serialPolicy: { kind: 'assign', template: 'RM-{n:4}', start: 1 }, duplicatePolicy: 'refuse' })
  t.is(addedJson.apiKeys.length, 1)
  const dup = await cli(['model', 'add', '--brand', 'acme-brand', '--model', 'acme-remote', '--headers', headers])
  t.is(dup.code, 1, dup.stderr)
  t.regex(dup.stderr, /409.*\(SV_MODEL_EXISTS\)/)
  const badPolicy = await cli(['model', 'add', '--brand', 'acme-brand', '--model', 'acme-x', '--serial-policy', 'assign:NO-PLACEHOLDER', '--default-headers'])
  t.is(badPolicy.code, 2, badPolicy.stderr)
  t.regex(badPolicy.stderr, /SV_REQUEST_INVALID/)
  const models = await cli(['model', 'list', '--json'])
  ok(t, models, 'model list --url')
  t.false(models.stdout.includes(addedJson.apiKeys[0]!), 'the API key is shown once, at creation')
  t.like(json<{ models: object[] }>(models).models, [{ brand: 'acme-brand', model: 'acme-remote', storeId: 'acme-brand', serialPolicy: { kind: 'assign' }, apiKeys: 1, revision: 0 }])
  t.regex((await cli(['model', 'list'])).stdout, /^acme-brand\/acme-remote\tstore acme-brand\tassign\trefuse\tkey /)
  const shown = await cli(['model', 'show', '--brand', 'acme-brand', '--model', 'acme-remote'])
  ok(t, shown, 'model show --url')
  const [assertion] = decodeStream(shown.stdout)
  t.is(assertion!.typeName, 'model')
  t.is(assertion!.headerString('model'), 'acme-remote')
  t.is(assertion!.signKeyId, keyId('brand'))
  const missing = await cli(['model', 'show', '--brand', 'acme-brand', '--model', 'nope'])
  t.is(missing.code, 1)
  t.regex(missing.stderr, /404.*\(SV_MODEL_UNKNOWN\)/)

  // trust export: the brand's chain (no vault root in this vault)
  const trust = await cli(['trust', 'export', '--brand', 'acme-brand'])
  ok(t, trust, 'trust export --url')
  t.deepEqual(decodeStream(trust.stdout).map((a) => a.typeName), ['account', 'account-key'])

  // key disable: a reason is required; a key a model signs with is refused
  const noReason = await cli(['key', 'disable', '--key-id', keyId('brand')])
  t.is(noReason.code, 2)
  t.regex(noReason.stderr, /--reason/)
  const inUse = await cli(['key', 'disable', '--key-id', keyId('brand'), '--reason', 'rotation'])
  t.is(inUse.code, 1, inUse.stderr)
  t.regex(inUse.stderr, /409.*\(SV_KEY_IN_USE\)/)
  const enabled = await cli(['key', 'enable', '--key-id', keyId('brand'), '--reason', 'check', '--json'])
  ok(t, enabled, 'key enable --url')
  t.like(json<{ key: object }>(enabled).key, { keyId: keyId('brand'), enabled: true })

  // tokens: listed over the API; an admin token is never made over it
  const tokens = await cli(['token', 'list', '--json'])
  ok(t, tokens, 'token list --url')
  t.deepEqual(json<{ tokens: Array<{ kind: string; name: string }> }>(tokens).tokens.map((x) => [x.kind, x.name]), [['admin', 'init']])
  t.false(tokens.stdout.includes(adminToken))
  const remoteCreate = await cli(['token', 'create', '--name', 'x'])
  t.is(remoteCreate.code, 2, remoteCreate.stderr)
  t.regex(remoteCreate.stderr, /only on the vault host: give --data/)

  // VAULT_URL / VAULT_TOKEN stand in for the flags
  const byEnv = await runVaultCli(['model', 'list', '--ca', ca, '--json'], { env: { VAULT_URL: url, VAULT_TOKEN: adminToken } })
  ok(t, byEnv, 'model list with VAULT_URL')
  t.is(json<{ models: unknown[] }>(byEnv).models.length, 1)

  // the audit log: each change as the admin token, the imported key nowhere in it
  const audit = await cli(['audit', 'export'])
  ok(t, audit, 'audit export')
  const entries = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { action: string; outcome: string; actor: { kind: string; name?: string } })
  const mine = entries.filter((e) => e.actor.kind === 'admin-token')
  t.deepEqual(
    mine.map((e) => [e.action, e.outcome]),
    [
      // (an imported brand's key is audited under key.generated too, as for a created brand)
      ['key.generated', 'ok'],
      ['brand.imported', 'ok'],
      ['model.created', 'ok'],
      ['key.enabled', 'ok'],
    ],
  )
  t.true(mine.every((e) => e.actor.name === 'init'))
  t.false(audit.stdout.includes(pemLine), 'the private key is not in the audit log')

  // --data on the directory the running vault holds: one line, the --url to use, exit 3
  const env = { VAULT_MQTT_MODE: 'off' }
  const locked = await runVaultCli(['model', 'list', '--data', data], { env })
  t.is(locked.code, 2, locked.stderr)
  t.regex(locked.stderr, /^vault-server: \S+ is in use by a running vault \(SV_STORE_LOCKED\): run this command against it with --url https:\/\/127\.0\.0\.1:8443\/v1\/ --token TOKEN \(or VAULT_URL and VAULT_TOKEN\)\n$/)
  const lockedList = await runVaultCli(['token', 'list', '--data', data], { env })
  t.is(lockedList.code, 2)
  t.regex(lockedList.stderr, /--url https:\/\/127\.0\.0\.1:8443\/v1\/ --token TOKEN/)
  const lockedCreate = await runVaultCli(['token', 'create', '--data', data, '--name', 'x'], { env })
  t.is(lockedCreate.code, 2)
  t.regex(lockedCreate.stderr, /admin tokens are made only on the vault host with the vault stopped/)
  t.is(lockedCreate.stderr.split('\n').length, 2, 'one line')
})

test("brand create, key and model commands over an in-process vault's HTTPS listener; a Viewer's personal token is refused with SV_FORBIDDEN, and the refusals are audited", async (t) => {
  t.timeout(120_000)
  const v = await startTestVault(t, { tls: true, keyBits: 2048 })
  const dir = await tmp(t)
  const ca = join(dir, 'ca.pem')
  await writeFile(ca, v.caPem!)
  const asAdmin = (args: string[]): Promise<CliRun> => runVaultCli([...args, '--url', v.url, '--token', v.adminToken, '--ca', ca])

  const created = await asAdmin(['brand', 'create', '--id', 'gadget-co', '--display-name', 'Gadget Co', '--root-id', 'gadget-root', '--json'])
  ok(t, created, 'brand create --url')
  const brand = json<{ brand: string; displayName: string; keyId: string; rootId: string }>(created)
  t.like(brand, { brand: 'gadget-co', displayName: 'Gadget Co', rootId: 'gadget-root' })
  t.regex(brand.keyId, /^[A-Za-z0-9_-]{64}$/)
  const rootKeys = json<{ keys: Array<{ purpose: string; accountId: string }> }>(await asAdmin(['key', 'list', '--account', 'gadget-root', '--json'])).keys
  t.deepEqual(rootKeys.map((k) => [k.purpose, k.accountId]), [['root', 'gadget-root']])
  const anchors = decodeStream((await asAdmin(['trust', 'export'])).stdout)
  t.deepEqual(anchors.map((a) => [a.typeName, a.headerString('account-id')]), [['account', 'gadget-root'], ['account-key', 'gadget-root']])

  // Vera, a Viewer in the acme-brand base store, with a personal token carrying every permission
  ok(t, await asAdmin(['role', 'set', '--store', 'acme-brand', '--email', 'vera@example.com', '--role', 'viewer']), 'role set')
  const vera = (await v.vault.store.people.getByEmail('vera@example.com'))!
  const veraToken = `svpt_${randomBytes(24).toString('base64url')}`
  await v.vault.store.tokens.put({ hash: createHash('sha256').update(veraToken).digest('hex'), kind: 'personal', name: 'cli', roles: [], personId: vera.id, permissions: ['*'], expiresAt: Date.now() + 3_600_000, createdAt: Date.now() })
  const asVera = (args: string[]): Promise<CliRun> => runVaultCli([...args, '--url', v.url, '--token', veraToken, '--ca', ca])

  // what a Viewer may do: read models, download the trust chain
  const models = await asVera(['model', 'list', '--json'])
  ok(t, models, 'model list as viewer')
  t.deepEqual(json<{ models: Array<{ model: string }> }>(models).models.map((m) => m.model), ['acme-pi-gateway'])
  ok(t, await asVera(['model', 'show', '--brand', 'acme-brand', '--model', 'acme-pi-gateway']), 'model show as viewer')
  ok(t, await asVera(['trust', 'export', '--brand', 'acme-brand']), 'trust export as viewer')
  t.is((await asVera(['key', 'list'])).stdout, 'no keys\n', 'key.read is not a Viewer permission: no key is shown')
  t.deepEqual(json<{ brands: Array<{ id: string }> }>(await asVera(['brand', 'list', '--json'])).brands.map((b) => b.id), ['acme-brand'])

  // what a Viewer may not: each is 403 SV_FORBIDDEN naming the permission, exit 1
  for (const [args, permission] of [
    [['model', 'add', '--brand', 'acme-brand', '--model', 'vera-model', '--default-headers'], 'model.manage is not allowed in store acme-brand'],
    [['key', 'disable', '--key-id', keyId('brand'), '--reason', 'x'], 'key.manage is not allowed in store acme-brand'],
    [['brand', 'create', '--id', 'vera-co', '--display-name', 'Vera Co'], "brand.create is the operator's"],
    [['brand', 'import', '--key', vectorPath('keys/brand.key.pem'), '--account', vectorPath('account.assert'), '--account-key', vectorPath('account-key.assert')], "brand.create is the operator's"],
  ] as const) {
    const r = await asVera([...args])
    t.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, /the vault answered 403: .*\(SV_FORBIDDEN\)\n$/, args.join(' '))
    t.true(r.stderr.includes(permission), r.stderr)
  }
  const noBrand = await asVera(['trust', 'export'])
  t.is(noBrand.code, 2, 'a person names the brand whose chain they need')
  t.regex(noBrand.stderr, /SV_REQUEST_INVALID/)

  // the audit log: brand.created by the admin token; Vera's refused writes as denied
  const entries = (await v.vault.store.audit.query({ limit: 1000 })).entries
  const created1 = entries.find((e) => e.action === 'brand.created')
  t.like(created1, { outcome: 'ok', brandId: 'gadget-co', actor: { kind: 'admin-token', name: 'test' } })
  const denied = entries.filter((e) => e.outcome === 'denied').map((e) => [e.action, e.actor.kind, e.code])
  t.deepEqual(denied, [
    ['model.created', 'personal-token', 'SV_FORBIDDEN'],
    ['key.disabled', 'personal-token', 'SV_FORBIDDEN'],
    ['brand.created', 'personal-token', 'SV_FORBIDDEN'],
    ['brand.imported', 'personal-token', 'SV_FORBIDDEN'],
  ])
})

test('brand import refuses to send the private key over plain HTTP to another host (exit 2, nothing sent)', async (t) => {
  // 192.0.2.1 is TEST-NET-1: nothing answers there, and nothing is tried
  const r = await runVaultCli(['brand', 'import', '--url', 'http://192.0.2.1:8443/v1/', '--token', 'svat_xxxxxxxxxxxxxxxxxxxx', '--key', vectorPath('keys/brand.key.pem'), '--account', vectorPath('account.assert'), '--account-key', vectorPath('account-key.assert')], { timeoutMs: 30_000 })
  t.is(r.code, 2, r.stderr)
  t.is(r.stderr, "vault-server: brand import sends the brand's private key: use an https:// --url (not http://192.0.2.1:8443), or run it on the vault host with --data\n")
})
