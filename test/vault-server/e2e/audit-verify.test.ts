/**
 * `vault-server audit verify` (a real CLI process) on a real audit log, in
 * LevelDB and in PostgreSQL: it passes on the log as written, and fails,
 * naming the entry and the kind, after each kind of tampering done to the
 * storage underneath: a changed byte, a removed entry, two entries swapped,
 * the newest entry cut off, and a chain recomputed without the master key.
 */
import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { cp, mkdtemp, rm, writeFile, readFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import pg from 'pg'
import { VaultConfigSchema } from '../../../vault-server/src/config.js'
import { createLogger } from '../../../vault-server/src/logger.js'
import { openVault } from '../../../vault-server/src/vault.js'
import { entryHash } from '../../../vault-server/src/services/admin/audit.js'
import type { AuditEntry } from '../../../vault-server/src/store/store.js'
import { REPO_ROOT } from '../../helpers/vectors.js'
import { runVaultCli } from '../../helpers/cli.js'

const PG_URL = process.env.SV_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

const cli = (args: string[], env: Record<string, string>) => runVaultCli(args, { env, timeoutMs: 90_000 })

/** Writes audit entries through the admin service (as the CLI on the host would): a store, three roles. */
async function writeEntries(env: Record<string, string>, dataDir: string): Promise<void> {
  const config = VaultConfigSchema.parse({
    dataDir,
    tls: { plainHttp: true },
    masterKey: { file: env.VAULT_MASTER_KEY_FILE },
    store: env.VAULT_STORE_DRIVER === 'postgres' ? { driver: 'postgres', url: env.VAULT_STORE_URL, schema: env.VAULT_STORE_SCHEMA } : { driver: 'level' },
    mqtt: { mode: 'off' },
    log: { level: 'silent' },
  })
  const v = await openVault(config, createLogger('silent'), { workers: 1 })
  try {
    const admin = v.services.admin
    const cred = admin.core.d.access.cliCredential('audit-test')
    const p = await admin.authenticate({ authorization: `Bearer ${cred.token}`, method: 'POST' })
    const ctx = { transport: 'cli' }
    await admin.people.createStore(p, ctx, { id: 'fx-sub', parent: env.BASE!, kind: 'product', displayName: 'Sub' })
    for (const [email, role] of [['a@example.com', 'admin'], ['b@example.com', 'viewer'], ['c@example.com', 'reviewer']] as const) await admin.people.setMember(p, ctx, 'fx-sub', email, { role })
    cred.forget()
  } finally {
    await v.close()
  }
}

interface Backend {
  env: Record<string, string>
  dataDir: string
  /** reads the entries in seq order */
  read(): Promise<AuditEntry[]>
  /** replaces entry `seq` (undefined: deletes it) */
  write(seq: number, e: AuditEntry | undefined): Promise<void>
}

function expectBroken(t: ExecutionContext, r: { code: number | null; stdout: string; stderr: string }, kind: string, seq: number): void {
  t.is(r.code, 1, r.stdout + r.stderr)
  const report = JSON.parse(r.stdout) as { ok: boolean; problems: Array<{ seq: number; kind: string }> }
  t.false(report.ok)
  t.true(
    report.problems.some((p) => p.kind === kind && p.seq === seq),
    `${kind} at ${seq}: ${JSON.stringify(report.problems)}`,
  )
}

/** Runs every tampering case against a fresh copy made by `fresh`. */
async function tamperCases(t: ExecutionContext, fresh: () => Promise<Backend>): Promise<void> {
  const verify = (b: Backend) => cli(['audit', 'verify', '--data', b.dataDir, '--json'], b.env)

  const pristine = await fresh()
  const ok = await verify(pristine)
  t.is(ok.code, 0, ok.stdout + ok.stderr)
  t.like(JSON.parse(ok.stdout), { ok: true, entries: 7, head: { seq: 7 }, macChecked: true })
  const human = await cli(['audit', 'verify', '--data', pristine.dataDir], pristine.env)
  t.regex(human.stdout, /^audit log OK: 7 entries, head 7 [0-9a-f]{64}\n$/)

  const cases: Array<[string, (b: Backend, entries: AuditEntry[]) => Promise<void>, string, number]> = [
    ['a changed byte', async (b, es) => b.write(3, { ...es[2]!, after: { ...(es[2]!.after as object), role: (es[2]!.after as { role: string }).role === 'admin' ? 'viewer' : 'admin' } }), 'changed', 3],
    ['a removed entry', async (b) => b.write(4, undefined), 'removed', 5],
    [
      'two entries swapped',
      async (b, es) => {
        await b.write(4, { ...es[4]!, seq: 4 })
        await b.write(5, { ...es[3]!, seq: 5 })
      },
      'reordered',
      4,
    ],
    ['the newest entry cut off', async (b) => b.write(7, undefined), 'truncated', 7],
    [
      'a chain recomputed without the master key',
      async (b, es) => {
        // change entry 6 and rehash 6 and 7 so that the chain itself holds; the macs cannot be made
        let prev = es[4]!.hash
        for (const i of [5, 6]) {
          const { hash: _h, mac, ...body } = i === 5 ? { ...es[i]!, after: { forged: true } } : { ...es[i]!, prevHash: prev }
          const forged = { ...body, prevHash: prev } as Omit<AuditEntry, 'hash' | 'mac'>
          const hash = entryHash(prev, forged)
          await b.write(i + 1, { ...forged, hash, mac })
          prev = hash
        }
        await b.write(-1, { seq: 7, hash: prev } as AuditEntry) // the head
      },
      'mac',
      6,
    ],
  ]
  for (const [name, tamper, kind, seq] of cases) {
    const b = await fresh()
    await tamper(b, await b.read())
    expectBroken(t, await verify(b), kind, seq)
    t.log(`${name}: refused as ${kind} at entry ${seq}`)
  }
}

async function fixtureDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sv-audit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

test('audit verify (LevelDB): passes on the log as written, fails on every kind of tampering', async (t) => {
  t.timeout(300_000)
  const root = await fixtureDir(t)
  await new Promise<void>((resolve, reject) => spawn('tar', ['-C', root, '-xzf', join(REPO_ROOT, 'fixtures/upgrade/level-layout-1.tar.gz')]).once('close', (c) => (c === 0 ? resolve() : reject(new Error(`tar ${c}`)))))
  const base = join(root, 'level-layout-1/data')
  const env = { VAULT_MASTER_KEY_FILE: join(base, 'master.key'), BASE: 'fixture-store', VAULT_MQTT_MODE: 'off' }
  await writeEntries(env, base)
  let n = 0
  await tamperCases(t, async () => {
    const dataDir = join(root, `copy-${n++}`)
    await cp(base, dataDir, { recursive: true })
    const path = join(dataDir, 'db')
    const withDb = async <T>(fn: (audit: ReturnType<Level<string, string>['sublevel']>, sys: ReturnType<Level<string, string>['sublevel']>) => Promise<T>): Promise<T> => {
      const db = new Level<string, string>(path)
      await db.open()
      try {
        return await fn(db.sublevel<string, AuditEntry>('audit', { valueEncoding: 'json' }) as never, db.sublevel<string, string>('sys', {}) as never)
      } finally {
        await db.close()
      }
    }
    return {
      env: { ...env, VAULT_MASTER_KEY_FILE: join(dataDir, 'master.key') },
      dataDir,
      read: () => withDb(async (audit) => (await audit.values().all()) as unknown as AuditEntry[]),
      write: (seq, e) =>
        withDb(async (audit, sys) => {
          if (seq === -1) return sys.put('audit-head', JSON.stringify({ seq: e!.seq, hash: e!.hash }))
          const key = String(seq).padStart(16, '0')
          if (e === undefined) await audit.del(key)
          else await audit.put(key, e as never)
        }),
    }
  })
})

test('audit verify (PostgreSQL): passes on the log as written, fails on every kind of tampering', async (t) => {
  t.timeout(300_000)
  const adminPool = new pg.Pool({ connectionString: PG_URL, max: 2 })
  t.teardown(() => adminPool.end())
  const dir = await fixtureDir(t)
  const keyFile = join(dir, 'master.key')
  await writeFile(keyFile, await readFile(join(REPO_ROOT, 'fixtures/upgrade/pg-schema-1.master.key')), { mode: 0o600 })
  const dump = await readFile(join(REPO_ROOT, 'fixtures/upgrade/pg-schema-1.sql'), 'utf8')
  /** a schema loaded from the previous release's dump, migrated and given audit entries */
  const load = async (schema: string): Promise<void> => {
    t.teardown(() => adminPool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).then(() => undefined))
    const c = await adminPool.connect()
    try {
      await c.query(dump.replaceAll('sv_fixture_v1', schema).replace(/^SELECT pg_catalog\.set_config\('search_path'.*$/m, '').replace(/^\\.*$/gm, ''))
    } finally {
      c.release()
    }
  }
  const pristine = `sv_audit_${randomBytes(5).toString('hex')}`
  await load(pristine)
  const envOf = (schema: string) => ({ VAULT_STORE_DRIVER: 'postgres', VAULT_STORE_URL: PG_URL, VAULT_STORE_SCHEMA: schema, VAULT_MASTER_KEY_FILE: keyFile, BASE: 'fixture-brand', VAULT_MQTT_MODE: 'off' })
  await writeEntries(envOf(pristine), dir)
  await tamperCases(t, async () => {
    // a copy of the pristine schema, entries and head included
    const schema = `sv_audit_${randomBytes(5).toString('hex')}`
    await load(schema)
    await writeEntries(envOf(schema), dir)
    const q = (sql: string, params: unknown[] = []) => adminPool.query(sql.replaceAll('S.', `${schema}.`), params)
    t.is((await q('SELECT count(*)::int AS n FROM S.audit_log')).rows[0].n, 7)
    return {
      env: envOf(schema),
      dataDir: dir,
      read: async () => (await q('SELECT entry FROM S.audit_log ORDER BY seq')).rows.map((r) => r.entry as AuditEntry),
      write: async (seq, e) => {
        if (seq === -1) {
          await q('UPDATE S.audit_head SET seq = $1, hash = $2', [e!.seq, e!.hash])
          return
        }
        if (e === undefined) await q('DELETE FROM S.audit_log WHERE seq = $1', [seq])
        else await q('UPDATE S.audit_log SET entry = $2 WHERE seq = $1', [seq, JSON.stringify(e)])
      },
    }
  })
})
