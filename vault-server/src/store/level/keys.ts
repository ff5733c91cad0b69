import { VaultError } from '@sv/shared'
import type { AuditSeal, SigningKeyRecord } from '../records.js'
import type { SigningKeyRepository } from '../store.js'
import { type LevelContext, defined, put, requireStrings } from './context.js'
import { lastComponent, prefixRange, tupleKey } from './layout.js'

export class LevelKeys implements SigningKeyRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  put(key: SigningKeyRecord, audit?: AuditSeal): Promise<void> {
    requireStrings({ keyId: key.keyId, accountId: key.accountId })
    return this.#c.locked(
      [tupleKey('key', key.keyId)],
      async (s) => {
        if (await s.key.has(key.keyId)) throw new VaultError('SV_KEY_EXISTS', 'a signing key with this id already exists', { details: { keyId: key.keyId } })
        await this.#c.commit(s, [put(s.key, key.keyId, key), put(s.keyByAccount, tupleKey(key.accountId, key.keyId), '')], audit)
      },
      audit !== undefined,
    )
  }

  get(keyId: string): Promise<SigningKeyRecord | undefined> {
    return this.#c.run((s) => s.key.get(keyId))
  }

  list(accountId?: string): Promise<SigningKeyRecord[]> {
    return this.#c.run(async (s) => {
      if (accountId === undefined) return s.key.values().all()
      const ids = (await s.keyByAccount.keys(prefixRange(accountId)).all()).map(lastComponent)
      return defined(await s.key.getMany(ids))
    })
  }

  setEnabled(keyId: string, change: { enabled: boolean; reason?: string; at: number }, audit?: AuditSeal): Promise<SigningKeyRecord> {
    return this.#c.locked(
      [tupleKey('key', keyId)],
      async (s) => {
        const key = (await s.key.get(keyId)) as SigningKeyRecord | undefined
        if (key === undefined) throw new VaultError('SV_KEY_NOT_FOUND', 'no such signing key', { details: { keyId } })
        const { reason: _old, ...rest } = key
        const next: SigningKeyRecord = { ...rest, enabled: change.enabled, changedAt: change.at, ...(change.reason !== undefined ? { reason: change.reason } : {}) }
        await this.#c.commit(s, [put(s.key, keyId, next)], audit)
        return next
      },
      audit !== undefined,
    )
  }
}
