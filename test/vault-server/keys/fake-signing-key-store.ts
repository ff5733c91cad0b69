/**
 * FAKE, for the key store tests only: an in-memory SigningKeyRepository (what
 * SealedKeyStore uses). The real stores (LevelStore, PostgresStore) are
 * tested by the store conformance suite; this fake only keeps the contract
 * those tests rely on: records go in and out as JSON (as they would through
 * a real backend), SV_KEY_EXISTS on a taken key id, SV_KEY_NOT_FOUND when
 * enabling a missing key. Audit seals are not written here.
 */
import { VaultError } from '@sv/shared'
import type { SigningKeyRecord, SigningKeyRepository } from '../../../vault-server/src/store/store.js'

export class FakeSigningKeyStore implements SigningKeyRepository {
  /** Stored records as the JSON text a backend would hold. */
  readonly rows = new Map<string, string>()

  async put(key: SigningKeyRecord): Promise<void> {
    if (this.rows.has(key.keyId)) throw new VaultError('SV_KEY_EXISTS', 'a signing key with this id already exists', { details: { keyId: key.keyId } })
    this.rows.set(key.keyId, JSON.stringify(key))
  }

  async get(keyId: string): Promise<SigningKeyRecord | undefined> {
    const row = this.rows.get(keyId)
    return row === undefined ? undefined : (JSON.parse(row) as SigningKeyRecord)
  }

  async list(accountId?: string): Promise<SigningKeyRecord[]> {
    return [...this.rows.values()]
      .map((row) => JSON.parse(row) as SigningKeyRecord)
      .filter((r) => accountId === undefined || r.accountId === accountId)
      .sort((a, b) => (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0))
  }

  async setEnabled(keyId: string, change: { enabled: boolean; reason?: string; at: number }): Promise<SigningKeyRecord> {
    const record = await this.get(keyId)
    if (!record) throw new VaultError('SV_KEY_NOT_FOUND', 'no such signing key', { details: { keyId } })
    const next = { ...record, enabled: change.enabled, changedAt: change.at, ...(change.reason !== undefined ? { reason: change.reason } : {}) }
    this.rows.set(keyId, JSON.stringify(next))
    return next
  }
}
