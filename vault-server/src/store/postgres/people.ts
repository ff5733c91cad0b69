import { VaultError } from '@sv/shared'
import type { AuditSeal, GrantRecord, LoginTransactionRecord, PersonRecord, SessionRecord, TokenRecord } from '../records.js'
import type { GrantRepository, PeopleRepository, SessionRepository, TokenRepository } from '../store.js'
import { type PgContext, appendAudit } from './context.js'
import {
  GRANT_COLUMNS,
  LOGIN_TX_COLUMNS,
  PERSON_COLUMNS,
  SESSION_COLUMNS,
  TOKEN_COLUMNS,
  grantFromRow,
  grantParams,
  insertSql,
  loginTxFromRow,
  loginTxParams,
  personFromRow,
  personParams,
  sessionFromRow,
  sessionParams,
  tokenFromRow,
  tokenParams,
  updateSql,
} from './rows.js'

export class PgPeople implements PeopleRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  create(person: PersonRecord, audit?: AuditSeal): Promise<void> {
    if (person.email !== person.email.toLowerCase()) throw new TypeError('email must be lowercase')
    return this.#c.audited(audit, async (db) => void (await db.query(insertSql('people', PERSON_COLUMNS), personParams(person))), true)
  }

  update(person: PersonRecord, audit?: AuditSeal): Promise<void> {
    return this.#c.audited(
      audit,
      async (db) => {
        const r = await db.query(updateSql('people', PERSON_COLUMNS, 1, ' AND email = $2'), personParams(person))
        if (r.rowCount === 0) {
          // Matched nothing: no such person, or an e-mail change (a caller's mistake, as in LevelStore).
          const found = await db.query('SELECT email FROM people WHERE id = $1', [person.id])
          if (found.rowCount !== 0) throw new TypeError('a person keeps their e-mail')
          throw new VaultError('SV_PERSON_NOT_FOUND', 'no such person', { details: { personId: person.id } })
        }
      },
      true,
    )
  }

  get(id: string): Promise<PersonRecord | undefined> {
    return this.#c.one('SELECT * FROM people WHERE id = $1', [id], personFromRow)
  }

  getByEmail(email: string): Promise<PersonRecord | undefined> {
    return this.#c.one('SELECT * FROM people WHERE email = $1', [email.toLowerCase()], personFromRow)
  }

  list(): Promise<PersonRecord[]> {
    return this.#c.all('SELECT * FROM people ORDER BY email', [], personFromRow)
  }
}

export class PgGrants implements GrantRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  put(grant: GrantRecord, audit?: AuditSeal): Promise<void> {
    const sets = GRANT_COLUMNS.slice(2).map((c) => `${c} = EXCLUDED.${c}`)
    return this.#c.audited(audit, async (db) => void (await db.query(`${insertSql('grants', GRANT_COLUMNS)} ON CONFLICT (person_id, store_id) DO UPDATE SET ${sets.join(', ')}`, grantParams(grant))), true)
  }

  delete(personId: string, storeId: string, audit?: AuditSeal): Promise<GrantRecord | undefined> {
    return this.#c.transaction(async (c) => {
      const r = await c.query('DELETE FROM grants WHERE person_id = $1 AND store_id = $2 RETURNING *', [personId, storeId])
      if (r.rowCount === 0) return undefined
      if (audit) await appendAudit(c, audit)
      return grantFromRow(r.rows[0]!)
    })
  }

  listForPerson(personId: string): Promise<GrantRecord[]> {
    return this.#c.all('SELECT * FROM grants WHERE person_id = $1 ORDER BY store_id', [personId], grantFromRow)
  }

  listForStore(storeId: string): Promise<GrantRecord[]> {
    return this.#c.all('SELECT * FROM grants WHERE store_id = $1 ORDER BY person_id', [storeId], grantFromRow)
  }
}

export class PgTokens implements TokenRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  put(token: TokenRecord, audit?: AuditSeal): Promise<void> {
    return this.#c.audited(audit, async (db) => void (await db.query(insertSql('tokens', TOKEN_COLUMNS), tokenParams(token))), true)
  }

  get(hash: string): Promise<TokenRecord | undefined> {
    return this.#c.one('SELECT * FROM tokens WHERE hash = $1', [hash], tokenFromRow)
  }

  list(filter: { personId?: string; kind?: TokenRecord['kind'] } = {}): Promise<TokenRecord[]> {
    const where: string[] = []
    const params: unknown[] = []
    if (filter.personId !== undefined) where.push(`person_id = $${params.push(filter.personId)}`)
    if (filter.kind !== undefined) where.push(`kind = $${params.push(filter.kind)}`)
    return this.#c.all(`SELECT * FROM tokens ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY hash`, params, tokenFromRow)
  }

  revoke(hash: string, change: { at: number; by: string }, audit?: AuditSeal): Promise<TokenRecord> {
    return this.#c.audited(
      audit,
      async (db) => {
        const r = await db.query('UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2), revoked_by = COALESCE(revoked_by, $3) WHERE hash = $1 RETURNING *', [hash, change.at, change.by])
        if (r.rowCount === 0) throw new VaultError('SV_TOKEN_NOT_FOUND', 'no such token', { details: {} })
        return tokenFromRow(r.rows[0]!)
      },
      true,
    )
  }

  touch(hash: string, at: number): Promise<void> {
    return this.#c.exec('UPDATE tokens SET last_used_at = $2 WHERE hash = $1', [hash, at])
  }
}

export class PgSessions implements SessionRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  create(session: SessionRecord): Promise<void> {
    return this.#c.exec(insertSql('sessions', SESSION_COLUMNS), sessionParams(session))
  }

  get(hash: string): Promise<SessionRecord | undefined> {
    return this.#c.one('SELECT * FROM sessions WHERE hash = $1', [hash], sessionFromRow)
  }

  touch(hash: string, idleExpiresAt: number): Promise<void> {
    return this.#c.run(async (db) => {
      const r = await db.query('UPDATE sessions SET idle_expires_at = $2 WHERE hash = $1', [hash, idleExpiresAt])
      if (r.rowCount === 0) throw new VaultError('SV_SESSION_INVALID', 'the session has ended', { details: { reason: 'gone' } })
    })
  }

  delete(hash: string): Promise<boolean> {
    return this.#c.run(async (db) => ((await db.query('DELETE FROM sessions WHERE hash = $1', [hash])).rowCount ?? 0) > 0)
  }

  deleteForPerson(personId: string): Promise<number> {
    return this.#c.run(async (db) => (await db.query('DELETE FROM sessions WHERE person_id = $1', [personId])).rowCount ?? 0)
  }

  putLoginTransaction(tx: LoginTransactionRecord): Promise<void> {
    return this.#c.exec(insertSql('login_transactions', LOGIN_TX_COLUMNS), loginTxParams(tx))
  }

  takeLoginTransaction(id: string): Promise<LoginTransactionRecord | undefined> {
    // DELETE ... RETURNING: of two instances taking the same id, exactly one gets the row.
    return this.#c.one('DELETE FROM login_transactions WHERE id = $1 RETURNING *', [id], loginTxFromRow)
  }

  purgeExpired(now: number): Promise<number> {
    return this.#c.run(async (db) => {
      const a = (await db.query('DELETE FROM sessions WHERE expires_at < $1', [now])).rowCount ?? 0
      const b = (await db.query('DELETE FROM login_transactions WHERE expires_at < $1', [now])).rowCount ?? 0
      return a + b
    })
  }
}
