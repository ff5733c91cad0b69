/**
 * FAKE, for the key store tests only: an in-memory stand-in for the four
 * SigningKeyRecord methods of VaultStore that SealedKeyStore uses. The real
 * stores (LevelStore, PostgresStore) are tested by the store conformance
 * suite; this fake only keeps the contract those tests rely on: records go in
 * and out as JSON (as they would through a real backend), SV_KEY_EXISTS on a
 * taken key id, SV_KEY_NOT_FOUND when enabling a missing key.
 */
import { VaultError } from '@sv/shared'
import type { SigningKeyRecord } from '../../../vault-server/src/store/store.js'
import type { SigningKeyRepository } from '../../../vault-server/src/keys/sealed-key-store.js'

export class FakeSigningKeyStore implements SigningKeyRepository {
  /** Stored records as the JSON text a backend would hold. */
  readonly rows = new Map<string, string>()

  async putSigningKey(key: SigningKeyRecord): Promise<void> {
    if (this.rows.has(key.keyId)) throw new VaultError('SV_KEY_EXISTS', 'a signing key with this id already exists', { details: { keyId: key.keyId } })
    this.rows.set(key.keyId, JSON.stringify(key))
  }

  async getSigningKey(keyId: string): Promise<SigningKeyRecord | undefined> {
    const row = this.rows.get(keyId)
    return row === undefined ? undefined : (JSON.parse(row) as SigningKeyRecord)
  }

  async listSigningKeys(accountId?: string): Promise<SigningKeyRecord[]> {
    return [...this.rows.values()]
      .map((row) => JSON.parse(row) as SigningKeyRecord)
      .filter((r) => accountId === undefined || r.accountId === accountId)
      .sort((a, b) => (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0))
  }

  async setSigningKeyEnabled(keyId: string, enabled: boolean): Promise<void> {
    const record = await this.getSigningKey(keyId)
    if (!record) throw new VaultError('SV_KEY_NOT_FOUND', 'no such signing key', { details: { keyId } })
    this.rows.set(keyId, JSON.stringify({ ...record, enabled }))
  }
}
