import type { Pool } from 'pg'
import { VaultError } from '@sv/shared'
import { MIGRATIONS, type Migration } from './migrations/index.js'

/** First key of the two-int advisory lock; the second is hashtext(schema). 0x5356 = "SV". */
const MIGRATION_LOCK_CLASS = 0x5356

/** Quotes an identifier that has already passed `isSchemaName`. */
function quoteIdent(name: string): string {
  return `"${name}"`
}

/** Lowercase SQL identifiers only: they go into `search_path` and DDL unescaped. */
export function isSchemaName(name: string): boolean {
  return /^[a-z_][a-z0-9_]{0,62}$/.test(name)
}

/**
 * Brings `schema` up to the latest migration, in one transaction under a
 * transaction-level advisory lock, so that several vault instances starting
 * at once apply each migration exactly once and a failed migration leaves
 * nothing behind. Applied versions are recorded in `schema_migrations`.
 * A database already migrated past what this code knows is refused.
 */
export async function migrate(pool: Pool, schema: string, migrations: readonly Migration[] = MIGRATIONS, now: () => number = Date.now): Promise<{ from: number; to: number }> {
  const client = await pool.connect()
  let broken = false
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [MIGRATION_LOCK_CLASS, schema])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`)
    await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`)
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version    integer NOT NULL PRIMARY KEY,
         name       text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    )
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations')
    const applied = new Set(rows.map((r) => r.version))
    const known = Math.max(0, ...migrations.map((m) => m.version))
    const newer = [...applied].filter((v) => v > known)
    if (newer.length > 0) {
      throw new VaultError('SV_STORE_TOO_NEW', 'the database schema is newer than this vault', {
        details: { schema, applied: Math.max(...newer), known },
      })
    }
    const from = Math.max(0, ...applied)
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue
      for (const step of m.steps) {
        if (typeof step === 'string') await client.query(step)
        else await step(client, now())
      }
      await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name])
    }
    await client.query('COMMIT')
    return { from, to: Math.max(from, known) }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      broken = true
    })
    throw err
  } finally {
    client.release(broken)
  }
}
