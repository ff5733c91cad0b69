/**
 * The vault's own commands as an operator runs them: real `vault-server`
 * processes (async spawn with a timeout: a vault under test may run in this
 * process), their output, files and exit codes (0 ok, 1 refused, 2 usage or
 * bad input, 3 unreachable).
 */
import test, { type ExecutionContext } from 'ava'
import { runVaultCli, serveDataDir, type CliOptions, type CliRun } from '../../helpers/cli.js'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { progressTo } from '../../../vault-server/src/cli/vault-commands.js'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { ERRORS, ERROR_EXIT_CODES, decodeStream, encodeStream } from '@sv/shared'
import { PI_MODEL_HEADERS, startTestVault } from '../../helpers/vault.js'
import { vectorPath } from '../../helpers/vectors.js'
import { keyId } from '../../helpers/keys.js'
import { snapdVerify } from '../../helpers/snapd-check.js'
import { fixtureDeviceKey, generateDeviceKeys, httpRequest, endpoint, registerDevice } from '../../helpers/device.js'
import { logEntries, serialOf } from '../http/api.js'

type Run = CliRun

/** Runs `vault-server ARGS` to its end (bounded) and collects its output. */
const cli = (args: string[], o: CliOptions = {}): Promise<Run> => runVaultCli(args, o)

async function tmp(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sv-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const ok = (t: ExecutionContext, r: Run, what: string) => t.is(r.code, 0, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`)

/** init (plain HTTP unless tls) + brand import of the snapd vectors' brand. */
async function dataDirWithBrand(t: ExecutionContext, o: { tls?: boolean } = {}): Promise<string> {
  const data = join(await tmp(t), 'data')
  ok(t, await cli(['init', '--data', data, ...(o.tls ? [] : ['--plain-http'])]), 'init')
  ok(t, await cli(['brand', 'import', '--data', data, '--key', vectorPath('keys/brand.key.pem'), '--account', vectorPath('account.assert'), '--account-key', vectorPath('account-key.assert'), '--trusted', vectorPath('trusted.assert')]), 'brand import')
  return data
}

// --- init -----------------------------------------------------------------------------------

test('init: creates the master key and TLS key with mode 0600, prints the admin token once; a second init keeps the master key', async (t) => {
  const data = join(await tmp(t), 'data')
  const r = await cli(['init', '--data', data, '--json'])
  ok(t, r, 'init')
  const out = JSON.parse(r.stdout) as { dataDir: string; created: string[]; adminToken: string | null }
  t.is(out.dataDir, data)
  t.deepEqual(out.created, [join(data, 'master.key'), join(data, 'tls/cert.pem'), join(data, 'tls/key.pem')])
  t.regex(out.adminToken ?? '', /^svat_[A-Za-z0-9_-]{43}$/)
  const mode = async (p: string) => (await stat(join(data, p))).mode & 0o777
  t.is(await mode('master.key'), 0o600)
  t.is(await mode('tls/key.pem'), 0o600)
  t.is(await mode('tls/cert.pem'), 0o644)
  t.is(await mode('.'), 0o700)
  const masterKey = await readFile(join(data, 'master.key'))

  const again = await cli(['init', '--data', data])
  ok(t, again, 'second init')
  t.false(again.stdout.includes('svat_'), 'no second token')
  t.false(again.stdout.includes(out.adminToken!))
  t.true((await readFile(join(data, 'master.key'))).equals(masterKey), 'the master key is kept')
  const json = JSON.parse((await cli(['init', '--data', data, '--json'])).stdout) as { created: string[]; adminToken: null }
  t.deepEqual(json, { dataDir: data, created: [], adminToken: null })

  // the token is kept only as a hash: token list never shows it
  const list = await cli(['token', 'list', '--data', data, '--json'])
  ok(t, list, 'token list')
  t.false(list.stdout.includes(out.adminToken!))
  t.like(JSON.parse(list.stdout), { tokens: [{ name: 'init', roles: ['admin'] }] })
})

test('init: text output shows the token once, plain HTTP makes no TLS files', async (t) => {
  const data = join(await tmp(t), 'data')
  const r = await cli(['init', '--data', data, '--plain-http'])
  ok(t, r, 'init')
  t.is(r.stdout.match(/svat_[A-Za-z0-9_-]{43}/g)?.length, 1)
  await t.throwsAsync(stat(join(data, 'tls')), { code: 'ENOENT' })
  t.is((await stat(join(data, 'master.key'))).mode & 0o777, 0o600)
})

// --- brands, models, trust --------------------------------------------------------------------

test('brand import: the vectors brand imports; a key that is not the account-key is exit 2 SV_KEY_IMPORT_MISMATCH', async (t) => {
  const data = join(await tmp(t), 'data')
  ok(t, await cli(['init', '--data', data, '--plain-http']), 'init')
  const base = ['brand', 'import', '--data', data, '--account', vectorPath('account.assert'), '--account-key', vectorPath('account-key.assert'), '--trusted', vectorPath('trusted.assert')]
  const bad = await cli([...base, '--key', vectorPath('keys/evil.key.pem')])
  t.is(bad.code, 2, bad.stderr)
  t.regex(bad.stderr, /\(SV_KEY_IMPORT_MISMATCH\)/)
  const missing = await cli([...base, '--key', join(data, 'no-such.pem')])
  t.is(missing.code, 2)
  t.regex(missing.stderr, /cannot read key/)
  const untrusted = await cli(['brand', 'import', '--data', data, '--account', vectorPath('account.assert'), '--account-key', vectorPath('account-key.assert'), '--key', vectorPath('keys/brand.key.pem')])
  // the chain does not verify against Canonical's root: the answer is no (exit 1 from the error table)
  t.is(untrusted.code, 1)
  t.regex(untrusted.stderr, /\(SV_ASSERTION_UNTRUSTED\)/)
  const good = await cli([...base, '--key', vectorPath('keys/brand.key.pem'), '--json'])
  ok(t, good, 'brand import')
  t.deepEqual(JSON.parse(good.stdout), { brand: 'acme-brand', keyId: keyId('brand') })
  const brands = JSON.parse((await cli(['brand', 'list', '--data', data, '--json'])).stdout) as { brands: unknown[] }
  t.deepEqual(brands, { brands: [{ id: 'acme-brand', displayName: 'ACME Devices Inc.', origin: 'imported', keys: [{ keyId: keyId('brand'), name: 'default', enabled: true }] }] })
  // trust: no vault root here, the brand's chain only with --brand
  // (through the admin API, as with --url: the vault's 404 is "the answer is no", exit 1)
  const noRoot = await cli(['trust', 'export', '--data', data])
  t.is(noRoot.code, 1)
  t.regex(noRoot.stderr, /\(SV_BRAND_UNKNOWN\)/)
  const out = join(data, 'trust.assert')
  ok(t, await cli(['trust', 'export', '--data', data, '--brand', 'acme-brand', '--out', out]), 'trust export')
  t.deepEqual(
    decodeStream(await readFile(out)).map((a) => Buffer.from(a.encode())),
    [await readFile(vectorPath('account.assert')), await readFile(vectorPath('account-key.assert'))],
  )
})

test('model add: --headers YAML and --serial-policy assign:ACME-{n:6}; model list --json and model show', async (t) => {
  const data = await dataDirWithBrand(t)
  const headers = join(data, 'model.yaml')
  await writeFile(
    headers,
    ['display-name: ACME Pi Gateway (YAML)', 'architecture: arm64', 'base: core22', 'grade: signed', 'snaps:', ...PI_MODEL_HEADERS.snaps.flatMap((s) => [`  - name: ${s.name}`, `    id: ${s.id}`, `    type: ${s.type}`, `    default-channel: ${s['default-channel']}`]), ''].join('\n'),
  )
  const r = await cli(['model', 'add', '--data', data, '--brand', 'acme-brand', '--model', 'acme-yaml', '--headers', headers, '--serial-policy', 'assign:ACME-{n:6}', '--json'])
  ok(t, r, 'model add')
  const out = JSON.parse(r.stdout) as { apiKeys: string[] }
  t.like(out, { brand: 'acme-brand', model: 'acme-yaml', signingKeyId: keyId('brand'), serialPolicy: { kind: 'assign', template: 'ACME-{n:6}', start: 1 }, duplicatePolicy: 'refuse' })
  t.is(out.apiKeys.length, 1)
  t.regex(out.apiKeys[0]!, /^[A-Za-z0-9_-]{43}$/)

  // no --headers: refused, nothing signed; --default-headers signs the generic model and says which headers (issue 13)
  const bare = await cli(['model', 'add', '--data', data, '--brand', 'acme-brand', '--model', 'acme-given'])
  t.is(bare.code, 2, bare.stderr)
  t.regex(bare.stderr, /--headers FILE is required.*--default-headers/)
  const given = await cli(['model', 'add', '--data', data, '--brand', 'acme-brand', '--model', 'acme-given', '--default-headers', '--api-key', 'given-api-key-0123456789', '--duplicates', 'reissue', '--json'])
  ok(t, given, 'model add --api-key')
  t.like(JSON.parse(given.stdout), { model: 'acme-given', duplicatePolicy: 'reissue', serialPolicy: { kind: 'device' }, apiKeys: [] })
  t.regex(given.stderr, /^vault-server: --default-headers: signing the generic model headers architecture amd64, base core22, grade signed, snaps pc \(gadget\), pc-kernel \(kernel\); give --headers FILE for a real device\n$/)
  const generic = decodeStream((await cli(['model', 'show', '--data', data, '--brand', 'acme-brand', '--model', 'acme-given'])).stdout)[0]!
  t.deepEqual([generic.headerString('architecture'), generic.headerString('base')], ['amd64', 'core22'])
  t.is((await cli(['model', 'add', '--data', data, '--brand', 'acme-brand', '--model', 'acme-both', '--default-headers', '--headers', headers])).code, 2)

  const list = await cli(['model', 'list', '--data', data, '--json'])
  ok(t, list, 'model list')
  t.false(list.stdout.includes(out.apiKeys[0]!))
  const models = (JSON.parse(list.stdout) as { models: { brand: string; model: string; apiKeys: number; serialPolicy: { kind: string } }[] }).models
  t.deepEqual(
    models.map((m) => [m.brand, m.model, m.serialPolicy.kind, m.apiKeys]).sort(),
    [
      ['acme-brand', 'acme-given', 'device', 1],
      ['acme-brand', 'acme-yaml', 'assign', 1],
    ],
  )
  const show = await cli(['model', 'show', '--data', data, '--brand', 'acme-brand', '--model', 'acme-yaml'])
  ok(t, show, 'model show')
  const [m] = decodeStream(show.stdout)
  t.is(m!.headerString('display-name'), 'ACME Pi Gateway (YAML)')
  t.is(m!.headerString('base'), 'core22')
  t.is(m!.signKeyId, keyId('brand'))

  // exit codes from the error table, as for the same refusal through --url: bad input 2, "no" 1
  for (const [args, code, exit] of [
    [['--serial-policy', 'assign:NO-PLACEHOLDER'], 'SV_REQUEST_INVALID', 2],
    [['--model', 'acme-yaml'], 'SV_MODEL_EXISTS', 1],
    [['--brand', 'nobody'], 'SV_BRAND_UNKNOWN', 1],
  ] as const) {
    const bad = await cli(['model', 'add', '--data', data, '--brand', 'acme-brand', '--model', 'acme-bad', '--headers', headers, ...args])
    t.is(bad.code, exit, `${args.join(' ')}: ${bad.stderr}`)
    t.true(bad.stderr.includes(`(${code})`), bad.stderr)
  }
  const dup = await cli(['model', 'add', '--data', data, '--brand', 'acme-brand', '--model', 'acme-bad', '--default-headers', '--duplicates', 'sometimes'])
  t.is(dup.code, 2)
})

test('brand create: a vault root and a brand (two RSA-4096 keys); trust export gives anchors snapd accepts', async (t) => {
  t.timeout(300_000)
  const data = join(await tmp(t), 'data')
  ok(t, await cli(['init', '--data', data, '--plain-http']), 'init')
  const r = await cli(['brand', 'create', '--data', data, '--id', 'gadget-co', '--display-name', 'Gadget Co', '--root-id', 'gadget-root', '--json'], { timeoutMs: 240_000 })
  ok(t, r, 'brand create')
  // stderr is a pipe here: plain progress lines, one per key, no carriage returns (issue 13)
  t.false(r.stderr.includes('\r'), JSON.stringify(r.stderr))
  t.deepEqual(r.stderr.split('\n').filter((l) => l.includes('generating')).map((l) => l.trim().split(' (')[0]), ['generating root key', 'generating gadget-co key'])
  const out = JSON.parse(r.stdout) as { brand: string; keyId: string; rootId: string }
  t.like(out, { brand: 'gadget-co', rootId: 'gadget-root' })
  const rootExport = await cli(['trust', 'export', '--data', data])
  ok(t, rootExport, 'trust export')
  const root = decodeStream(rootExport.stdout)
  t.deepEqual(
    root.map((a) => [a.typeName, a.headerString('account-id')]),
    [
      ['account', 'gadget-root'],
      ['account-key', 'gadget-root'],
    ],
  )
  const full = decodeStream((await cli(['trust', 'export', '--data', data, '--brand', 'gadget-co'])).stdout)
  t.deepEqual(
    full.map((a) => [a.typeName, a.headerString('account-id')]),
    [
      ['account', 'gadget-root'],
      ['account-key', 'gadget-root'],
      ['account', 'gadget-co'],
      ['account-key', 'gadget-co'],
    ],
  )
  t.is(full[3]!.headerString('public-key-sha3-384'), out.keyId)
  const keys = JSON.parse((await cli(['key', 'list', '--data', data, '--json'])).stdout) as { keys: { purpose: string; bits: number }[] }
  t.deepEqual(keys.keys.map((k) => [k.purpose, k.bits]).sort(), [
    ['brand', 4096],
    ['root', 4096],
  ])
  // snapd accepts the brand's account and account-key on the exported root
  const dir = await tmp(t)
  const verdict = await snapdVerify(dir, { trusted: encodeStream(root), file: encodeStream(full.slice(2)) })
  t.is(verdict.code, 0, verdict.stdout + verdict.stderr)
  t.deepEqual(
    verdict.lines.map((l) => l.ok),
    [true, true],
  )
})

// --- serve ------------------------------------------------------------------------------------

test('serve --print-config: the resolved configuration with VAULT_MASTER_KEY and the store URL redacted', async (t) => {
  const data = join(await tmp(t), 'data')
  const secretKey = 'c0ffee'.repeat(10) + 'abcd'
  const secretUrl = 'postgres://vault:s3cret-pw@db.example:5432/vault'
  const r = await cli(['serve', '--data', data, '--listen', '127.0.0.1:9999', '--print-config'], { env: { VAULT_MASTER_KEY: secretKey, VAULT_STORE_URL: secretUrl, VAULT_STORE_DRIVER: 'postgres' } })
  ok(t, r, 'serve --print-config')
  t.false(r.stdout.includes(secretKey))
  t.false(r.stdout.includes('s3cret-pw'))
  t.false(r.stdout.includes(secretUrl))
  t.false(r.stderr.includes(secretKey))
  const config = JSON.parse(r.stdout) as { dataDir: string; listen: string; store: { driver: string; url: string }; masterKey: { value: string } }
  t.like(config, { dataDir: data, listen: '127.0.0.1:9999', store: { driver: 'postgres' } })
  t.is(typeof config.store.url, 'string')
  t.is(typeof config.masterKey.value, 'string')
  t.not(config.masterKey.value, secretKey)
  // nothing was created: --print-config only prints
  await t.throwsAsync(stat(data), { code: 'ENOENT' })

  // start-up defaults resolved (issue 13): the worker count, the TLS files, the master key file and the LevelDB directory
  const level = await cli(['serve', '--data', data, '--print-config'], { env: { VAULT_STORE_DRIVER: 'level' } })
  ok(t, level, 'serve --print-config (level)')
  const resolved = JSON.parse(level.stdout) as { signing: { workers: number }; tls: { cert: string; key: string }; masterKey: { file: string }; store: { path: string } }
  t.is(resolved.signing.workers, Math.max(1, availableParallelism()))
  t.deepEqual(resolved.tls, { plainHttp: false, cert: join(data, 'tls/cert.pem'), key: join(data, 'tls/key.pem') })
  t.is(resolved.masterKey.file, join(data, 'master.key'))
  t.is(resolved.store.path, join(data, 'db'))
  const given = JSON.parse((await cli(['serve', '--data', data, '--print-config', '--tls-cert', '/etc/ssl/v.pem', '--tls-key', '/etc/ssl/v.key'], { env: { VAULT_SIGNING_WORKERS: '3' } })).stdout) as typeof resolved
  t.is(given.signing.workers, 3)
  t.like(given.tls, { cert: '/etc/ssl/v.pem', key: '/etc/ssl/v.key' })
})

test('serve: a data directory made by the CLI serves devices over HTTPS; log query and log export --format csv read its log; SIGTERM stops it', async (t) => {
  t.timeout(180_000)
  const data = join(await tmp(t), 'data')
  const init = await cli(['init', '--data', data, '--json'])
  ok(t, init, 'init')
  const token = (JSON.parse(init.stdout) as { adminToken: string }).adminToken
  ok(t, await cli(['brand', 'import', '--data', data, '--key', vectorPath('keys/brand.key.pem'), '--account', vectorPath('account.assert'), '--account-key', vectorPath('account-key.assert'), '--trusted', vectorPath('trusted.assert')]), 'brand import')
  const added = await cli(['model', 'add', '--data', data, '--brand', 'acme-brand', '--model', 'acme-pi-gateway', '--default-headers', '--serial-policy', 'assign:ACME-{n:6}', '--json'])
  ok(t, added, 'model add')
  const apiKey = (JSON.parse(added.stdout) as { apiKeys: string[] }).apiKeys[0]!
  const ca = join(data, 'tls/cert.pem')
  const caPem = await readFile(ca, 'utf8')

  const s = await serveDataDir(t, data)
  const keys = [fixtureDeviceKey('device'), ...(await generateDeviceKeys(2))]
  const serials: string[] = []
  for (const key of keys) {
    const r = await registerDevice(s.url, apiKey, { key, brandId: 'acme-brand', model: 'acme-pi-gateway', ca: caPem })
    serials.push(serialOf(r).serial.serial)
  }
  t.deepEqual(serials, ['ACME-000001', 'ACME-000002', 'ACME-000003'])

  const remote = ['--url', s.url, '--token', token, '--ca', ca]
  const q = await cli(['log', 'query', ...remote, '--json', '--all', '--limit', '2'])
  ok(t, q, 'log query')
  const entries = (JSON.parse(q.stdout) as { entries: { outcome: string; serial?: string }[] }).entries
  t.deepEqual(
    entries.map((e) => [e.outcome, e.serial]),
    serials.map((x) => ['issued', x]),
  )
  const text = await cli(['log', 'query', ...remote, '--serial', 'ACME-000002'])
  ok(t, text, 'log query text')
  t.is(text.stdout.trim().split('\n').length, 1)
  t.regex(text.stdout, /issued .*acme-brand\/acme-pi-gateway\s+serial=ACME-000002 rev=1/)
  const page = JSON.parse((await cli(['log', 'query', ...remote, '--json', '--limit', '2'])).stdout) as { entries: unknown[]; nextCursor?: string }
  t.is(page.entries.length, 2)
  t.truthy(page.nextCursor)

  const csv = await cli(['log', 'export', ...remote, '--format', 'csv'])
  ok(t, csv, 'log export csv')
  const rows = csv.stdout.trimEnd().split('\r\n')
  t.true(rows[0]!.startsWith('id,time,outcome,code,brandId,model,storeId,serial,'))
  t.deepEqual(
    rows.slice(1).map((r) => r.split(',')[7]),
    serials,
  )
  const outFile = join(data, 'log.jsonl')
  ok(t, await cli(['log', 'export', ...remote, '--outcome', 'issued', '--out', outFile]), 'log export --out')
  t.deepEqual(
    (await readFile(outFile, 'utf8')).trimEnd().split('\n').map((l) => (JSON.parse(l) as { serial: string }).serial),
    serials,
  )

  // refusals of the admin API and of the network are exit codes, not stack traces
  const badToken = await cli(['log', 'query', '--url', s.url, '--token', 'svat_wrongwrongwrongwrongwrong', '--ca', ca])
  t.is(badToken.code, 1)
  t.regex(badToken.stderr, /401.*SV_UNAUTHENTICATED/)
  const untrusted = await cli(['log', 'query', '--url', s.url, '--token', token])
  t.is(untrusted.code, 3, 'the development certificate is not trusted without --ca')
  const insecure = await cli(['log', 'query', '--url', s.url, '--token', token, '--insecure', '--json'])
  ok(t, insecure, 'log query --insecure')
  t.regex(insecure.stderr, /--insecure/)
  t.is((await cli(['log', 'query', '--token', token])).code, 2, 'no --url')

  s.child.kill('SIGTERM')
  const code = await Promise.race([s.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000).unref())])
  t.is(code, 0)
  const down = await cli(['log', 'query', ...remote])
  t.is(down.code, 3)
  t.regex(down.stderr, /cannot reach the vault/)
})

test('log query: works against an in-process vault over plain HTTP too', async (t) => {
  const v = await startTestVault(t, { store: 'memory', workers: 1 })
  const r = await registerDevice(v.url, v.apiKey, { key: fixtureDeviceKey('device'), brandId: 'acme-brand', model: 'acme-pi-gateway', serial: 'SN-CLI' })
  t.is(r.status, 200)
  const q = await cli(['log', 'query', '--url', v.url, '--token', v.adminToken, '--json'])
  ok(t, q, 'log query')
  t.deepEqual(
    (JSON.parse(q.stdout) as { entries: unknown[] }).entries,
    (await logEntries(v)) as unknown[],
  )
  t.is((await httpRequest(endpoint(v.url, 'health'))).status, 200)
})

// --- tokens ---------------------------------------------------------------------------------

test('token create, list and revoke', async (t) => {
  const data = join(await tmp(t), 'data')
  ok(t, await cli(['init', '--data', data, '--plain-http']), 'init')
  const created = await cli(['token', 'create', '--data', data, '--name', 'ci', '--role', 'admin', 'viewer', '--json'])
  ok(t, created, 'token create')
  const tok = JSON.parse(created.stdout) as { name: string; roles: string[]; token: string }
  t.like(tok, { name: 'ci', roles: ['admin', 'viewer'] })
  t.regex(tok.token, /^svat_/)
  const list = await cli(['token', 'list', '--data', data, '--json'])
  ok(t, list, 'token list')
  t.false(list.stdout.includes(tok.token))
  const tokens = (JSON.parse(list.stdout) as { tokens: { id: string; name: string; roles: string[] }[] }).tokens
  t.deepEqual(tokens.map((x) => x.name).sort(), ['ci', 'init'])
  const ci = tokens.find((x) => x.name === 'ci')!
  t.regex(ci.id, /^[0-9a-f]{12}$/)

  const unknown = await cli(['token', 'revoke', '--data', data, '--id', 'ffffffffffff'])
  t.is(unknown.code, 1)
  t.regex(unknown.stderr, /404.*\(SV_TOKEN_NOT_FOUND\)/)
  const unknownPrefix = await cli(['token', 'revoke', '--data', data, '--id', 'ffff'])
  t.is(unknownPrefix.code, 1)
  t.regex(unknownPrefix.stderr, /no token with id ffff/)
  const notAnId = await cli(['token', 'revoke', '--data', data, '--id', 'ci'])
  t.is(notAnId.code, 2)
  const revoked = await cli(['token', 'revoke', '--data', data, '--id', ci.id.slice(0, 6)])
  ok(t, revoked, 'token revoke')
  t.is(revoked.stdout, `revoked ci (${ci.id})\n`)
  t.deepEqual(
    (JSON.parse((await cli(['token', 'list', '--data', data, '--json'])).stdout) as { tokens: { name: string }[] }).tokens.map((x) => x.name),
    ['init'],
  )
  // both are in the audit log, as the operator on the host (cli), without the secret
  const audit = await cli(['audit', 'query', '--data', data, '--action', 'token.', '--json'])
  ok(t, audit, 'audit query')
  t.false(audit.stdout.includes(tok.token))
  const entries = (JSON.parse(audit.stdout) as { entries: { action: string; outcome: string; actor: { kind: string }; target: { id: string } }[] }).entries
  t.deepEqual(entries.map((e) => [e.action, e.outcome, e.actor.kind, e.target.id]), [
    ['token.created', 'ok', 'cli', ci.id],
    ['token.revoked', 'ok', 'cli', ci.id],
  ])
})

// --- errors and usage ----------------------------------------------------------------------------

test('progressTo: on a terminal one redrawn line per key; elsewhere one plain line per key', (t) => {
  const lines = (tty: boolean): string => {
    let err = ''
    const p = progressTo({ out: () => {}, err: (x) => void (err += x), readFile: async () => Buffer.alloc(0), env: {}, errIsTTY: tty })
    for (const [what, ms] of [['root key', 0], ['root key', 400], ['root key', 1200], ['acme key', 0], ['acme key', 2100]] as const) p(what, ms)
    return err
  }
  t.is(lines(false), '  generating root key (RSA-4096 takes seconds, up to a minute on slow hardware)...\n  generating acme key (RSA-4096 takes seconds, up to a minute on slow hardware)...\n')
  const tty = lines(true)
  t.is(tty.split('\r').length - 1, 4, tty)
  t.regex(tty, /generating root key .*\.\.\. 1 s\n\r {2}generating acme key .*\.\.\. 0 s\r {2}generating acme key .*\.\.\. 2 s$/)
})

test('errors --markdown: one table row per code with its HTTP status and exit code', async (t) => {
  const r = await cli(['errors', '--markdown'])
  ok(t, r, 'errors')
  const lines = r.stdout.trimEnd().split('\n')
  t.is(lines[0], '| code | HTTP | MQTT reason | exit | meaning |')
  t.is(lines[1], '|---|---|---|---|---|')
  const rows = lines.slice(2).map((l) => /^\| `(SV_[A-Z_]+)` \| (\d{3}) \| 0x[0-9a-f]{2} \| ([123]) \| (.+) \|$/.exec(l))
  t.true(rows.every((m) => m !== null), r.stdout)
  t.deepEqual(
    rows.map((m) => [m![1], Number(m![2]), Number(m![3])]),
    Object.entries(ERRORS).map(([code, e]) => [code, e.status, ERROR_EXIT_CODES[code as keyof typeof ERRORS]]),
  )
  const plain = await cli(['errors'])
  ok(t, plain, 'errors')
  t.is(plain.stdout.trimEnd().split('\n').length, Object.keys(ERRORS).length)
})

test('errors --json: the table for scripts, one object per code', async (t) => {
  const r = await cli(['errors', '--json'])
  ok(t, r, 'errors --json')
  const { errors } = JSON.parse(r.stdout) as { errors: Array<{ code: string; status: number; mqtt: number; exit: number; summary: string }> }
  t.deepEqual(
    errors,
    Object.entries(ERRORS).map(([code, e]) => ({ code, status: e.status, mqtt: e.mqtt, exit: ERROR_EXIT_CODES[code as keyof typeof ERRORS], summary: e.summary })),
  )
  const both = await cli(['errors', '--json', '--markdown'])
  t.is(both.code, 2)
})

test('usage: unknown flags, unknown commands and missing options exit 2', async (t) => {
  // Regression: an unknown option of a subcommand exited 1 (commander's own exit),
  // because the exit override was set on the program after its subcommands were made.
  const cases = [
    ['init', '--bogus'],
    ['serve', '--nope'],
    ['model', 'list', '--what'],
    ['log', 'export', '--format-x', 'csv'],
    ['assertion', 'verify', '--bogus'],
    ['frobnicate'],
    ['brand', 'import', '--data', '/nonexistent'],
    ['init'],
  ]
  for (const args of cases) {
    const r = await cli(args)
    t.is(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`)
    t.true(r.stderr.length > 0)
  }
  const help = await cli(['model', 'add', '--help'])
  t.is(help.code, 0)
  t.regex(help.stdout, /--serial-policy/)
})
