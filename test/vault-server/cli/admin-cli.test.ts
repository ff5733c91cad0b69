/**
 * The store administration commands as the store team and the operator run
 * them: real `vault-server` processes against a running vault (--url with an
 * admin token, then with a person's token), their --json answers, human
 * lines and exit codes (0 ok, 1 refused, 2 bad input, 3 unreachable), and the
 * audit trail they leave, read back with `audit query` and `audit verify`.
 */
import test from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { decodeStream } from '@sv/shared'
import { runVaultCli, type CliRun } from '../../helpers/cli.js'
import { startTestVault } from '../../helpers/vault.js'
import { snapdVerify } from '../../helpers/snapd-check.js'

const ok = (t: import('ava').ExecutionContext, r: CliRun, what: string): void => {
  t.is(r.code, 0, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`)
}
const json = <T>(r: CliRun): T => JSON.parse(r.stdout) as T

test('store, role, model move, pivot, system-user and audit commands against a running vault; a person token sees only its store', async (t) => {
  const v = await startTestVault(t, { models: [{ name: 'acme-kiosk-model' }] })
  const remote = ['--url', v.url, '--token', v.adminToken]
  const cli = (args: string[]): Promise<CliRun> => runVaultCli([...args, ...remote])

  // stores: the brand's base store, then a product sub-store under it
  const stores = await cli(['store', 'list', '--json'])
  ok(t, stores, 'store list')
  const base = json<{ stores: Array<{ id: string; kind: string; brandId: string }> }>(stores).stores.find((s) => s.brandId === 'acme-brand')
  t.is(base?.kind, 'base')
  const created = await cli(['store', 'create', '--id', 'acme-kiosks', '--parent', base!.id, '--kind', 'product', '--display-name', 'ACME kiosks', '--json'])
  ok(t, created, 'store create')
  t.like(json<{ store: object }>(created).store, { id: 'acme-kiosks', kind: 'product', parentId: base!.id, brandId: 'acme-brand' })
  const again = await cli(['store', 'create', '--id', 'acme-kiosks', '--parent', base!.id, '--kind', 'product', '--display-name', 'again'])
  t.is(again.code, 1, again.stderr)
  t.regex(again.stderr, /SV_STORE_EXISTS/)
  const badKind = await cli(['store', 'create', '--id', 'acme-x', '--parent', base!.id, '--kind', 'warehouse', '--display-name', 'x'])
  t.is(badKind.code, 2, badKind.stderr)
  const shown = await cli(['store', 'show', '--store', 'acme-kiosks'])
  ok(t, shown, 'store show')
  t.regex(shown.stdout, /^acme-kiosks\tproduct\tacme-brand\t/)
  const missing = await cli(['store', 'show', '--store', 'no-such-store'])
  t.is(missing.code, 1)
  t.regex(missing.stderr, /404.*SV_STORE_NOT_FOUND/)

  // roles: invite a viewer into the sub-store; an unknown role is bad input
  const set = await cli(['role', 'set', '--store', 'acme-kiosks', '--email', 'Vera@Example.com', '--role', 'viewer', '--display-name', 'Vera'])
  ok(t, set, 'role set')
  t.is(set.stdout, 'vera@example.com is viewer in acme-kiosks\n')
  const badRole = await cli(['role', 'set', '--store', 'acme-kiosks', '--email', 'x@example.com', '--role', 'owner'])
  t.is(badRole.code, 2, badRole.stderr)
  t.regex(badRole.stderr, /SV_REQUEST_INVALID/)
  const members = json<{ members: Array<{ email: string; role: string; inheritable: boolean }> }>(await cli(['role', 'list', '--store', 'acme-kiosks', '--json'])).members
  t.deepEqual(members.map((m) => [m.email, m.role, m.inheritable]), [['vera@example.com', 'viewer', false]])
  const people = json<{ people: Array<{ email: string; stores: Array<{ storeId: string; role: string }> }> }>(await cli(['user', 'list', '--json'])).people
  t.deepEqual(people.find((p) => p.email === 'vera@example.com')?.stores, [{ storeId: 'acme-kiosks', role: 'viewer', inheritable: false }])

  // a model moves into the sub-store: its assertion is re-signed with the store header
  const moved = await cli(['model', 'move', '--brand', 'acme-brand', '--model', 'acme-kiosk-model', '--store', 'acme-kiosks'])
  ok(t, moved, 'model move')
  t.regex(moved.stdout, /^acme-brand\/acme-kiosk-model is in store acme-kiosks \(model assertion revision 1\)\n$/)
  const model = await v.vault.services.models.get('acme-brand', 'acme-kiosk-model')
  t.is(decodeStream(model.modelAssertion)[0]!.header('store'), 'acme-kiosks')

  // pivots: allow acme-pi-gateway -> acme-kiosk-model into the sub-store, list, remove
  const allowed = await cli(['pivot', 'allow', '--store', 'acme-kiosks', '--from-model', 'acme-pi-gateway', '--to-model', 'acme-kiosk-model', '--serial', 'SN-1', '--json'])
  ok(t, allowed, 'pivot allow')
  const rule = json<{ pivot: { id: string; fromModel: string; toModel: string; serial: string } }>(allowed).pivot
  t.like(rule, { fromModel: 'acme-pi-gateway', toModel: 'acme-kiosk-model', serial: 'SN-1' })
  const listed = await cli(['pivot', 'list', '--store', 'acme-kiosks'])
  t.is(listed.stdout, `${rule.id}\tacme-pi-gateway -> acme-kiosk-model\tSN-1\tacme-kiosks\n`)
  const wrongStore = await cli(['pivot', 'allow', '--store', base!.id, '--from-model', 'acme-pi-gateway', '--to-model', 'acme-kiosk-model'])
  t.is(wrongStore.code, 2, `the new model must be in the store the rule is made in: ${wrongStore.stderr}`)
  t.regex(wrongStore.stderr, /400.*toModel|400.*store/, wrongStore.stderr)
  ok(t, await cli(['pivot', 'remove', '--store', 'acme-kiosks', '--id', rule.id]), 'pivot remove')
  t.is((await cli(['pivot', 'list', '--store', 'acme-kiosks'])).stdout, 'no pivots\n')

  // a system-user assertion for the sub-store's model, the password read from a file; snapd accepts it
  const dir = await mkdtemp(join(tmpdir(), 'sv-admin-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const pwFile = join(dir, 'pw')
  await writeFile(pwFile, 'correct horse battery\n', { mode: 0o600 })
  const out = join(dir, 'system-user.assert')
  const signed = await cli(['system-user', 'sign', '--store', 'acme-kiosks', '--email', 'field@example.com', '--username', 'field', '--password-file', pwFile, '--model', 'acme-kiosk-model', '--until', new Date(Date.now() + 86_400_000).toISOString(), '--out', out])
  ok(t, signed, 'system-user sign')
  const text = await readFile(out, 'utf8')
  t.false(text.includes('correct horse'), 'the password never appears, only its hash')
  t.regex(decodeStream(text)[0]!.header('password') as string, /^\$6\$/)
  const chain = decodeStream(await readFile(v.chainFile)).filter((x) => x.typeName !== 'model')
  const verdict = await snapdVerify(dir, { trusted: await readFile(v.trusted), chain: chain.map((x) => x.encode()), file: Buffer.from(text) })
  t.is(verdict.code, 0, verdict.stdout + verdict.stderr)
  t.deepEqual(verdict.lines.map((l) => l.ok), [true])
  const notHisModel = await cli(['system-user', 'sign', '--store', 'acme-kiosks', '--email', 'f@example.com', '--username', 'f', '--password-file', pwFile, '--model', 'acme-pi-gateway'])
  t.is(notHisModel.code, 2, `a model of another store is refused: ${notHisModel.stderr}`)

  // the audit trail of all of the above, and the chain verifies
  const audit = json<{ entries: Array<{ action: string; storeId?: string; actor: { kind: string } }> }>(await cli(['audit', 'query', '--store', base!.id, '--subtree', '--all', '--json']))
  const actions = audit.entries.map((e) => e.action)
  for (const a of ['store.created', 'person.invited', 'grant.changed', 'model.moved', 'pivot.allowed', 'pivot.removed', 'system_user.signed']) t.true(actions.includes(a), `${a} in ${actions.join(',')}`)
  t.true(audit.entries.every((e) => e.actor.kind === 'admin-token'), JSON.stringify(audit.entries.map((e) => e.actor)))
  const verified = await cli(['audit', 'verify', '--json'])
  ok(t, verified, 'audit verify')
  t.like(json<{ ok: boolean }>(verified), { ok: true })

  // Vera's personal token (viewer in acme-kiosks only): she reads her store, not the base store, and cannot administer
  const vera = (await v.vault.store.people.getByEmail('vera@example.com'))!
  const veraToken = `svp_${randomBytes(24).toString('hex')}`
  await v.vault.store.tokens.put({ hash: createHash('sha256').update(veraToken).digest('hex'), kind: 'personal', name: 'cli', roles: [], personId: vera.id, permissions: ['*'], expiresAt: Date.now() + 3_600_000, createdAt: Date.now() })
  const asVera = (args: string[]): Promise<CliRun> => runVaultCli([...args, '--url', v.url, '--token', veraToken])
  const veraStores = json<{ stores: Array<{ id: string }> }>(await asVera(['store', 'list', '--json'])).stores
  t.deepEqual(veraStores.map((s) => s.id), ['acme-kiosks'])
  const hidden = await asVera(['store', 'show', '--store', base!.id])
  t.is(hidden.code, 1)
  t.regex(hidden.stderr, /404.*SV_STORE_NOT_FOUND/, 'a store she cannot see is the same as one that does not exist')
  const forbidden = await asVera(['role', 'set', '--store', 'acme-kiosks', '--email', 'x@example.com', '--role', 'admin'])
  t.is(forbidden.code, 1)
  t.regex(forbidden.stderr, /403.*SV_FORBIDDEN/)
  t.regex(forbidden.stderr, /member\.manage is not allowed in store acme-kiosks/, 'names the permission and the store')
  const noToken = await runVaultCli(['store', 'list', '--url', v.url, '--token', 'svp_not-a-token'])
  t.is(noToken.code, 1)
  t.regex(noToken.stderr, /401.*SV_UNAUTHENTICATED/)
  const unreachable = await runVaultCli(['store', 'list', '--url', 'http://127.0.0.1:9/v1/', '--token', v.adminToken])
  t.is(unreachable.code, 3, unreachable.stderr)
})

test('store commands on the data directory (--data) run the same checks and are audited as the cli operator', async (t) => {
  const v = await startTestVault(t)
  const dataDir = v.dataDir
  await v.close()
  const env = { VAULT_MASTER_KEY: v.masterKey }
  const created = await runVaultCli(['store', 'create', '--data', dataDir, '--id', 'acme-partner', '--parent', 'acme-brand', '--kind', 'ecosystem', '--display-name', 'Partner', '--partner-name', 'Globex', '--partner-relation', 'reseller', '--json'], { env })
  ok(t, created, 'store create --data')
  t.like(json<{ store: object }>(created).store, { id: 'acme-partner', kind: 'ecosystem', partner: { name: 'Globex', relation: 'reseller' } })
  const halfPartner = await runVaultCli(['store', 'create', '--data', dataDir, '--id', 'acme-p2', '--parent', 'acme-brand', '--kind', 'ecosystem', '--display-name', 'P2', '--partner-name', 'Initech'], { env })
  t.is(halfPartner.code, 2, halfPartner.stderr)
  t.regex(halfPartner.stderr, /--partner-name and --partner-relation go together/)
  const audit = await runVaultCli(['audit', 'query', '--data', dataDir, '--store', 'acme-partner', '--json'], { env })
  ok(t, audit, 'audit query --data')
  const entries = json<{ entries: Array<{ action: string; actor: { kind: string; id: string } }> }>(audit).entries
  t.deepEqual(entries.map((e) => [e.action, e.actor.kind]), [['store.created', 'cli']])
  const verified = await runVaultCli(['audit', 'verify', '--data', dataDir], { env })
  ok(t, verified, 'audit verify --data')
})

// Issue 13: the exit code of an answer comes from its SV_* code in the error
// table, not from its status. A vault in front of a broken store answers 500
// SV_CONFIG_INVALID (exit 2, not 3); a 400 SV_SIGNATURE_INVALID is "no" (1,
// not 2); an answer without one of our codes (a proxy's 502) falls back on
// its status. The answers come from a small HTTP server, to inject them.
test('admin client: the exit code follows the answer\'s SV_* code, then its status', async (t) => {
  const answers: Record<string, [number, unknown]> = {
    '/v1/admin/stores': [500, { code: 'SV_CONFIG_INVALID', message: 'internal error' }],
    '/v1/admin/stores/sig': [400, { code: 'SV_SIGNATURE_INVALID', message: 'bad signature' }],
    '/v1/admin/stores/busy': [503, { code: 'SV_OVERLOADED', message: 'busy' }],
    '/v1/admin/stores/proxy': [502, 'Bad Gateway'],
  }
  const server = createServer((req, res) => {
    const [status, body] = answers[new URL(req.url!, 'http://x').pathname] ?? [404, { code: 'SV_NOT_FOUND', message: 'no' }]
    res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' })
    res.end(typeof body === 'string' ? body : JSON.stringify(body))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`
  const run = (args: string[]) => runVaultCli([...args, '--url', url, '--token', 'svat_x'])
  const cases: Array<[string[], number, RegExp]> = [
    [['store', 'list'], 2, /500.*SV_CONFIG_INVALID/],
    [['store', 'show', '--store', 'sig'], 1, /400.*SV_SIGNATURE_INVALID/],
    [['store', 'show', '--store', 'busy'], 3, /503.*SV_OVERLOADED/],
    [['store', 'show', '--store', 'proxy'], 3, /502.*Bad Gateway/],
    [['store', 'show', '--store', 'unknown-route/x'], 2, /404.*SV_NOT_FOUND/],
  ]
  for (const [args, exit, said] of cases) {
    const r = await run(args)
    t.is(r.code, exit, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, said)
    t.false(r.stderr.includes('svat_x'), 'the token is never printed')
  }
})
