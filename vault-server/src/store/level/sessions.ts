import { VaultError } from '@sv/shared'
import type { LoginTransactionRecord, SessionRecord } from '../records.js'
import type { SessionRepository } from '../store.js'
import { type LevelContext, type Op, type Sublevels, SCAN_BATCH, del, put, requireStrings, requireTime } from './context.js'
import { lastComponent, padNumber, prefixRange, tupleKey } from './layout.js'

export class LevelSessions implements SessionRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  create(session: SessionRecord): Promise<void> {
    requireStrings({ hash: session.hash, personId: session.personId })
    requireTime('expiresAt', session.expiresAt)
    return this.#c.locked([tupleKey('session', session.hash)], async (s) => {
      await this.#c.write([
        put(s.session, session.hash, session),
        put(s.sessionByPerson, tupleKey(session.personId, session.hash), ''),
        put(s.sessionByExpiry, tupleKey(padNumber(session.expiresAt), session.hash), ''),
      ])
    })
  }

  get(hash: string): Promise<SessionRecord | undefined> {
    return this.#c.run((s) => s.session.get(hash))
  }

  touch(hash: string, idleExpiresAt: number): Promise<void> {
    return this.#c.locked([tupleKey('session', hash)], async (s) => {
      const old = (await s.session.get(hash)) as SessionRecord | undefined
      if (old === undefined) throw new VaultError('SV_SESSION_INVALID', 'the session has ended', { details: { reason: 'gone' } })
      // Not synced: after a crash the session merely expires a little earlier.
      await this.#c.db.batch<string, unknown>([put(s.session, hash, { ...old, idleExpiresAt })], {})
    })
  }

  delete(hash: string): Promise<boolean> {
    return this.#c.locked([tupleKey('session', hash)], async (s) => {
      const old = (await s.session.get(hash)) as SessionRecord | undefined
      if (old === undefined) return false
      await this.#c.write(sessionDelOps(s, old))
      return true
    })
  }

  deleteForPerson(personId: string): Promise<number> {
    return this.#c.run(async (s) => {
      const hashes = (await s.sessionByPerson.keys(prefixRange(personId)).all()).map(lastComponent)
      if (hashes.length === 0) return 0
      // Under each session's lock: a touch in flight must not write a deleted session back.
      return this.#c.mutex.run(
        hashes.map((hash) => tupleKey('session', hash)),
        async () => {
          const ops: Op[] = []
          let deleted = 0
          for (const hash of hashes) {
            const old = (await s.session.get(hash)) as SessionRecord | undefined
            if (old) {
              ops.push(...sessionDelOps(s, old))
              deleted++
            } else ops.push(del(s.sessionByPerson, tupleKey(personId, hash)))
          }
          await this.#c.write(ops)
          return deleted
        },
      )
    })
  }

  putLoginTransaction(tx: LoginTransactionRecord): Promise<void> {
    requireStrings({ id: tx.id })
    requireTime('expiresAt', tx.expiresAt)
    return this.#c.locked([tupleKey('login-tx', tx.id)], async (s) => {
      await this.#c.write([put(s.loginTx, tx.id, tx), put(s.loginTxByExpiry, tupleKey(padNumber(tx.expiresAt), tx.id), '')])
    })
  }

  takeLoginTransaction(id: string): Promise<LoginTransactionRecord | undefined> {
    return this.#c.locked([tupleKey('login-tx', id)], async (s) => {
      const tx = (await s.loginTx.get(id)) as LoginTransactionRecord | undefined
      if (tx === undefined) return undefined
      await this.#c.write([del(s.loginTx, id), del(s.loginTxByExpiry, tupleKey(padNumber(tx.expiresAt), id))])
      return tx
    })
  }

  purgeExpired(now: number): Promise<number> {
    requireTime('now', now)
    return this.#c.run(async (s) => {
      let purged = 0
      // absolute expiry from the index; idle expiry is checked on use (get), and such
      // sessions go when their absolute expiry passes
      for (const [index, lock] of [
        [s.sessionByExpiry, 'session'],
        [s.loginTxByExpiry, 'login-tx'],
      ] as const) {
        const it = index.keys({ lt: tupleKey(padNumber(now)) })
        try {
          for (;;) {
            const keys = await it.nextv(SCAN_BATCH)
            if (keys.length === 0) break
            const ids = keys.map(lastComponent)
            // Under the records' locks, as delete and takeLoginTransaction: a touch in
            // flight must not write a purged session back.
            await this.#c.mutex.run(
              ids.map((id) => tupleKey(lock, id)),
              async () => {
                const ops: Op[] = keys.map((key) => del(index, key))
                for (const id of ids) {
                  if (lock === 'session') {
                    const old = (await s.session.get(id)) as SessionRecord | undefined
                    if (old) ops.push(del(s.session, id), del(s.sessionByPerson, tupleKey(old.personId, id)))
                  } else ops.push(del(s.loginTx, id))
                }
                // Not synced: a purge lost in a crash is simply done again.
                await this.#c.db.batch<string, unknown>(ops, {})
              },
            )
            purged += keys.length
          }
        } finally {
          await it.close()
        }
      }
      return purged
    })
  }
}

function sessionDelOps(s: Sublevels, old: SessionRecord): Op[] {
  return [del(s.session, old.hash), del(s.sessionByPerson, tupleKey(old.personId, old.hash)), del(s.sessionByExpiry, tupleKey(padNumber(old.expiresAt), old.hash))]
}

