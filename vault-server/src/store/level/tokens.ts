import { VaultError } from '@sv/shared'
import type { AuditSeal, TokenRecord } from '../records.js'
import type { TokenRepository } from '../store.js'
import { type LevelContext, defined, put, requireStrings } from './context.js'
import { lastComponent, prefixRange, tupleKey } from './layout.js'

export class LevelTokens implements TokenRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  put(token: TokenRecord, audit?: AuditSeal): Promise<void> {
    requireStrings({ hash: token.hash })
    return this.#c.locked(
      [tupleKey('token', token.hash)],
      async (s) => {
        if (await s.token.has(token.hash)) throw new VaultError('SV_TOKEN_EXISTS', 'a token with this hash already exists', { details: {} })
        const ops = [put(s.token, token.hash, token)]
        if (token.personId !== undefined) ops.push(put(s.tokenByPerson, tupleKey(token.personId, token.hash), ''))
        await this.#c.commit(s, ops, audit)
      },
      audit !== undefined,
    )
  }

  get(hash: string): Promise<TokenRecord | undefined> {
    return this.#c.run((s) => s.token.get(hash))
  }

  list(filter: { personId?: string; kind?: TokenRecord['kind'] } = {}): Promise<TokenRecord[]> {
    return this.#c.run(async (s) => {
      const all: TokenRecord[] =
        filter.personId === undefined ? await s.token.values().all() : defined(await s.token.getMany((await s.tokenByPerson.keys(prefixRange(filter.personId)).all()).map(lastComponent)))
      return filter.kind === undefined ? all : all.filter((t) => t.kind === filter.kind)
    })
  }

  revoke(hash: string, change: { at: number; by: string }, audit?: AuditSeal): Promise<TokenRecord> {
    return this.#c.locked(
      [tupleKey('token', hash)],
      async (s) => {
        const old = (await s.token.get(hash)) as TokenRecord | undefined
        if (old === undefined) throw new VaultError('SV_TOKEN_NOT_FOUND', 'no such token', { details: {} })
        const next: TokenRecord = old.revokedAt !== undefined ? old : { ...old, revokedAt: change.at, revokedBy: change.by }
        await this.#c.commit(s, [put(s.token, hash, next)], audit)
        return next
      },
      audit !== undefined,
    )
  }

  touch(hash: string, at: number): Promise<void> {
    return this.#c.locked([tupleKey('token', hash)], async (s) => {
      const old = (await s.token.get(hash)) as TokenRecord | undefined
      if (old === undefined) return
      // Not synced: a lost "last used" time is harmless.
      await this.#c.db.batch<string, unknown>([put(s.token, hash, { ...old, lastUsedAt: at })], {})
    })
  }
}
