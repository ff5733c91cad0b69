/**
 * PostgresStore against a real PostgreSQL: SV_TEST_PG_URL, default
 * postgres://postgres@127.0.0.1:5432/test. Unlike the hardware runs, this file
 * does not skip when the server is missing: the `before` hook fails, and with
 * it every test here, so a broken database can never pass silently.
 *
 * Each test gets its own schema with a random name, dropped in teardown, so
 * tests (and AVA workers) never share tables.
 */
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { PostgresStore, type PostgresStoreOptions } from '../../../vault-server/src/store/postgres-store.js'
import { T0, auditDraft, auditEntries, baseStoreRecord, binding, brandRecord, chainProblems, issuedLog, logEntry, loginTransaction, pivotRequest, seal, storeSuite } from '../../conformance/store-suite.js'

const url = process.env.SV_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** Used only to create the check and to drop schemas. */
let admin: pg.Pool | undefined

test.before(async () => {
  admin = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 5000 })
  admin.on('error', () => {})
  try {
    await admin.query('SELECT 1')
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${url.replace(/:[^:@/]*@/, ':***@')} (set SV_TEST_PG_URL, or start it with ` +
        '`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`): ' +
        String((err as Error).message),
    )
  }
})

test.after.always(async () => {
  await admin?.end()
})

/**
 * At most this many tests hold PostgreSQL connections at once (each store
 * pool has up to POOL_MAX), to stay well below max_connections (100 by
 * default) while AVA starts every test of the file together.
 */
const MAX_ACTIVE_TESTS = 6
const POOL_MAX = 4
let active = 0
const waiting: Array<() => void> = []

async function slot(t: ExecutionContext): Promise<void> {
  if (active >= MAX_ACTIVE_TESTS) await new Promise<void>((resolve) => waiting.push(resolve))
  else active++
  t.teardown(() => {
    const next = waiting.shift()
    if (next) next()
    else active--
  })
}

/** A fresh schema name, dropped (with everything in it) in teardown. */
function freshSchema(t: ExecutionContext): string {
  const schema = `sv_test_${randomBytes(6).toString('hex')}`
  t.teardown(async () => {
    await admin!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  })
  return schema
}

function newStore(schema: string, extra: Partial<PostgresStoreOptions> = {}): PostgresStore {
  return new PostgresStore({ connectionString: url, schema, max: POOL_MAX, ...extra })
}

storeSuite(test, {
  name: 'PostgresStore',
  factory: async (t) => {
    await slot(t)
    return newStore(freshSchema(t))
  },
  supports: { reopen: true, multiProcess: true },
})

/** Two stores (two pools) on one schema, standing for two vault instances. */
async function twoInstances(t: ExecutionContext): Promise<[PostgresStore, PostgresStore]> {
  await slot(t)
  const schema = freshSchema(t)
  const a = newStore(schema)
  const b = newStore(schema)
  t.teardown(() => Promise.all([a.close(), b.close()]))
  // Opened together: the advisory lock makes the migration run once.
  await Promise.all([a.open(), b.open()])
  return [a, b]
}

test('PostgresStore: two instances racing bind for one serial: exactly one wins', async (t) => {
  const [a, b] = await twoInstances(t)
  const contenders = Array.from({ length: 16 }, (_, i) => binding('SN-RACE', `dk-${i}`))
  const settled = await Promise.allSettled(
    contenders.map((c, i) => (i % 2 === 0 ? a : b).registrations.bind(c, logEntry(Date.now(), { serial: c.serial }), 0).then(() => c)),
  )
  const won = settled.filter((s) => s.status === 'fulfilled')
  const lost = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected')
  t.is(won.length, 1)
  t.deepEqual(new Set(lost.map((s) => (s.reason as { code?: string }).code)), new Set(['SV_SERIAL_TAKEN']))
  t.deepEqual(await b.registrations.getBinding('acme', 'widget', 'SN-RACE'), (won[0] as PromiseFulfilledResult<unknown>).value)
  t.is((await a.signingLog.query({ serial: 'SN-RACE' })).entries.length, 1)
})

test('PostgresStore: two instances racing consumeRequestId for one id: exactly one wins', async (t) => {
  const [a, b] = await twoInstances(t)
  for (let round = 0; round < 5; round++) {
    const settled = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).registrations.consumeRequestId(`req-${round}`, Date.now() + 60_000)),
    )
    t.is(settled.filter((s) => s.status === 'fulfilled').length, 1, `round ${round}`)
    for (const s of settled) {
      if (s.status === 'rejected') t.is((s.reason as { code?: string }).code, 'SV_REQUEST_ID_USED')
    }
  }
})

test('PostgresStore: two instances share one serial-number sequence without repeats', async (t) => {
  const [a, b] = await twoInstances(t)
  const numbers = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).registrations.nextSerialNumber('acme', 'widget', 1)))
  t.is(new Set(numbers).size, 100)
})

test('PostgresStore: two instances appending to the audit chain make one chain without gaps', async (t) => {
  const [a, b] = await twoInstances(t)
  await Promise.all(
    Array.from({ length: 40 }, (_, i) => {
      const store = i % 2 === 0 ? a : b
      if (i % 4 === 1) {
        const bd = binding(`SN-${i}`, `dk-${i}`)
        return store.registrations.bind(bd, issuedLog(bd), 0, { audit: seal(auditDraft({ action: `write.${i}` })) })
      }
      return store.audit.append(seal(auditDraft({ action: `write.${i}`, time: T0 + i })))
    }),
  )
  const entries = await auditEntries(a)
  t.deepEqual(entries.map((e) => e.seq), Array.from({ length: 40 }, (_, i) => i + 1))
  t.deepEqual(chainProblems(entries), [])
  t.deepEqual(await b.audit.head(), { seq: 40, hash: entries[39]!.hash })
})

test('PostgresStore: two instances racing for one login transaction and one pivot decision: exactly one wins each', async (t) => {
  const [a, b] = await twoInstances(t)
  for (let round = 0; round < 5; round++) {
    await a.sessions.putLoginTransaction(loginTransaction(`ltx-${round}`))
    await b.pivots.createRequest(pivotRequest(`req-${round}`))
    const taken = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).sessions.takeLoginTransaction(`ltx-${round}`)))
    t.is(taken.filter((x) => x !== undefined).length, 1, `round ${round}`)
    const decided = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? a : b).pivots.decideRequest(`req-${round}`, { status: 'accepted', at: T0, by: `prs_${i}` })),
    )
    t.is(decided.filter((s) => s.status === 'fulfilled').length, 1, `round ${round}`)
    for (const s of decided) if (s.status === 'rejected') t.is((s.reason as { code?: string }).code, 'SV_PIVOT_DECIDED')
  }
})

test('PostgresStore: a write on one instance moves stores.version() on the other', async (t) => {
  const [a, b] = await twoInstances(t)
  const v0 = await b.stores.version()
  await a.brands.createBrand(brandRecord('acme'), baseStoreRecord('acme'))
  t.true((await b.stores.version()) > v0)
})

test('PostgresStore: migrations are recorded once and not re-applied on the next open', async (t) => {
  await slot(t)
  const schema = freshSchema(t)
  const first = newStore(schema)
  await first.open()
  await first.meta.put('root-authority', 'acme')
  await first.close()
  const second = newStore(schema)
  t.teardown(() => second.close())
  await second.open()
  t.is(await second.meta.get('root-authority'), 'acme')
  const { rows } = await admin!.query(`SELECT version, name FROM "${schema}".schema_migrations ORDER BY version`)
  t.deepEqual(rows, [
    { version: 1, name: 'initial' },
    { version: 2, name: 'stores' },
    { version: 3, name: 'work-orders' },
  ])
})

test('PostgresStore: refuses a schema migrated past what it knows', async (t) => {
  await slot(t)
  const schema = freshSchema(t)
  const first = newStore(schema)
  await first.open()
  await first.close()
  await admin!.query(`INSERT INTO "${schema}".schema_migrations (version, name) VALUES (999, 'future')`)
  const store = newStore(schema)
  t.teardown(() => store.close())
  await t.throwsAsync(store.open(), { code: 'SV_STORE_TOO_NEW' })
  await t.throwsAsync(store.ping(), { code: 'SV_STORE_NOT_OPEN' })
})

test('PostgresStore: an unreachable server rejects SV_STORE_UNAVAILABLE', async (t) => {
  // Port 1 on loopback: nothing listens there, the connection is refused at once.
  const store = new PostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/test', connectionTimeoutMillis: 2000 })
  t.teardown(() => store.close())
  await t.throwsAsync(store.open(), { code: 'SV_STORE_UNAVAILABLE' })
  await t.throwsAsync(store.ping(), { code: 'SV_STORE_NOT_OPEN' })
})

test('PostgresStore: a connection killed mid-query is SV_STORE_UNAVAILABLE, and the pool recovers', async (t) => {
  await slot(t)
  const schema = freshSchema(t)
  const applicationName = `sv-test-${randomBytes(4).toString('hex')}`
  const store = newStore(schema, { applicationName })
  t.teardown(() => store.close())
  await store.open()
  await store.meta.put('k', 'v1')
  // Hold the row lock so that the store's next write waits inside the server.
  const locker = await admin!.connect()
  t.teardown(() => locker.release())
  await locker.query('BEGIN')
  await locker.query(`SELECT * FROM "${schema}".meta WHERE name = 'k' FOR UPDATE`)
  const write = store.meta.put('k', 'v2')
  let waiting = 0
  for (let i = 0; i < 100 && waiting === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    const r = await admin!.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
      [applicationName],
    )
    waiting = r.rows[0].n
  }
  t.is(waiting, 1)
  await admin!.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [applicationName])
  await t.throwsAsync(write, { code: 'SV_STORE_UNAVAILABLE' })
  await locker.query('ROLLBACK')
  await t.notThrowsAsync(store.ping())
  t.is(await store.meta.get('k'), 'v1')
})

test('PostgresStore: rejects a schema name that is not a plain identifier', (t) => {
  t.throws(() => new PostgresStore({ connectionString: url, schema: 'x"; DROP TABLE y; --' }), { instanceOf: TypeError })
})
