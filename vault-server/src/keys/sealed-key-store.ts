/**
 * SealedKeyStore: the KeyStore that keeps private keys in the VaultStore,
 * sealed with the master key (sealing.ts), and signs with them in the
 * SignerPool.
 *
 * A private key exists in clear only briefly in this thread (while being
 * imported, generated or unsealed, zeroed right after) and otherwise only as
 * KeyObjects inside the pool. The record the VaultStore gets holds the
 * envelope, whose AAD is `signing-key:<keyId>`, so an envelope moved to
 * another record does not open.
 *
 * Keys are unsealed on first use and stay loaded until disabled. Disabling
 * acts on this process only: with several vault processes on one PostgreSQL,
 * the others keep a key they already loaded until they restart (their
 * signing-service still reads `enabled` from the model's key record).
 */
import { Buffer } from 'node:buffer'
import { constants, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import {
  AccountKeyAssertion,
  PublicKey,
  VaultError,
  decodeAssertion,
  loadPrivateKeyPem,
  type AssertionSigner,
} from '@sv/shared'
import type { AuditSeal, SigningKeyRecord, SigningKeyRepository } from '../store/store.js'
import type { GenerateKeyInput, ImportKeyInput, KeyPurpose, KeyStore, SigningKeyInfo } from './keystore.js'
import type { MasterKey } from './master-key.js'
import type { SignerPool } from './signer-pool.js'
import { generateRsaKey, type GeneratedKey, type GenerateRsaKeyOptions } from './keygen.js'
import { seal, unseal } from './sealing.js'

export type { SigningKeyRepository }

/** Smallest RSA key accepted unless `allowSmallKeys`: what snapd's own tooling generates. */
export const MIN_KEY_BITS = 4096

export interface SealedKeyStoreOptions {
  store: SigningKeyRepository
  masterKey: MasterKey
  /** Owned by the caller, who closes it. */
  pool: SignerPool
  /** Accept keys under MIN_KEY_BITS (tests and the 1024-bit vectors only). Default false. */
  allowSmallKeys?: boolean
  /** Epoch ms for `createdAt`. Default Date.now. */
  now?: () => number
  /** Key generator. Default generateRsaKey. */
  generate?: (bits: number, options: GenerateRsaKeyOptions) => Promise<GeneratedKey>
}

const PURPOSES: readonly KeyPurpose[] = ['brand', 'root']
const PROBE = Buffer.from('serial-vault key pair check')

function sealContext(keyId: string): string {
  return `signing-key:${keyId}`
}

function info(record: SigningKeyRecord): SigningKeyInfo {
  const { sealed: _sealed, ...rest } = record
  return rest
}

function mismatch(reason: string, message: string, details: Record<string, unknown> = {}): never {
  throw new VaultError('SV_KEY_IMPORT_MISMATCH', message, { details: { reason, ...details } })
}

/** How stale a loaded key's `enabled` flag may get when another instance disables it. */
const ENABLED_RECHECK_MS = 2000

export class SealedKeyStore implements KeyStore {
  readonly #store: SigningKeyRepository
  readonly #masterKey: MasterKey
  readonly #pool: SignerPool
  readonly #minBits: number
  readonly #now: () => number
  readonly #generate: (bits: number, options: GenerateRsaKeyOptions) => Promise<GeneratedKey>
  readonly #signers = new Map<string, Promise<AssertionSigner>>()
  readonly #publicKeys = new Map<string, PublicKey>()
  /** Bumped when a key is disabled, so a load that was already running does not re-add it. */
  readonly #epochs = new Map<string, number>()
  /** when each loaded key's `enabled` flag was last read from the store */
  readonly #checkedAt = new Map<string, number>()

  constructor(options: SealedKeyStoreOptions) {
    this.#store = options.store
    this.#masterKey = options.masterKey
    this.#pool = options.pool
    this.#minBits = options.allowSmallKeys ? 0 : MIN_KEY_BITS
    this.#now = options.now ?? Date.now
    this.#generate = options.generate ?? generateRsaKey
  }

  async importKey(input: ImportKeyInput): Promise<SigningKeyInfo> {
    checkInput(input)
    if (typeof input.pem !== 'string') throw new TypeError('importKey: pem must be a string')
    const loaded = loadPrivateKeyPem(input.pem)
    const { publicKey } = loaded
    const pkcs8 = Buffer.from(loaded.pkcs8.buffer, loaded.pkcs8.byteOffset, loaded.pkcs8.byteLength) // a view: zeroing it zeroes the key
    try {
      this.#checkSize(publicKey.bits)
      checkKeyPair(pkcs8, publicKey)
      const accountKey = checkAccountKey(input.accountKeyAssertion, publicKey, input.accountId, input.name)
      return await this.#put(input, publicKey, pkcs8, accountKey, input.audit)
    } finally {
      pkcs8.fill(0)
    }
  }

  async generateKey(input: GenerateKeyInput): Promise<SigningKeyInfo> {
    checkInput(input)
    const bits = input.bits ?? MIN_KEY_BITS
    this.#checkSize(bits)
    const options: GenerateRsaKeyOptions = {}
    if (input.signal) options.signal = input.signal
    if (input.onProgress) options.onProgress = input.onProgress
    const { pkcs8, publicKey } = await this.#generate(bits, options)
    const keyId = publicKey.id
    let stored = false
    try {
      // Loaded under its id at once: the account-key callback may need the
      // key itself to sign (a root key's self-signed account-key).
      this.#pool.addKey(keyId, pkcs8)
      const signer = this.#pool.signer(keyId, publicKey)
      const accountKey = checkAccountKey(await input.accountKeyAssertion({ publicKey, signer }), publicKey, input.accountId, input.name)
      input.signal?.throwIfAborted()
      const result = await this.#put(input, publicKey, pkcs8, accountKey, input.audit)
      stored = true
      this.#signers.set(keyId, Promise.resolve(signer))
      return result
    } finally {
      pkcs8.fill(0)
      if (!stored) this.#pool.removeKey(keyId)
    }
  }

  signer(keyId: string): Promise<AssertionSigner> {
    let loading = this.#signers.get(keyId)
    if (loading && this.#now() - (this.#checkedAt.get(keyId) ?? 0) >= ENABLED_RECHECK_MS) return this.#recheck(keyId, loading)
    if (!loading) {
      loading = this.#load(keyId)
      this.#signers.set(keyId, loading)
      const entry = loading
      // A failed load is not cached: the next call tries again (the key may be enabled by then).
      entry.catch(() => {
        if (this.#signers.get(keyId) === entry) this.#signers.delete(keyId)
      })
    }
    return loading
  }

  /**
   * Several vault instances share the store: a key disabled through another
   * instance was unloaded only there, and this one kept signing with it until
   * restarted. So a loaded key's `enabled` flag is read again from the store
   * at most every ENABLED_RECHECK_MS (one caller reads, the others meanwhile
   * use the loaded signer).
   */
  async #recheck(keyId: string, loaded: Promise<AssertionSigner>): Promise<AssertionSigner> {
    this.#checkedAt.set(keyId, this.#now())
    const record = await this.#store.get(keyId)
    if (record?.enabled) return loaded
    this.#unload(keyId)
    throw new VaultError('SV_SIGNING_KEY_UNAVAILABLE', 'signing key is disabled', { details: { keyId } })
  }

  #unload(keyId: string): void {
    this.#epochs.set(keyId, (this.#epochs.get(keyId) ?? 0) + 1)
    this.#signers.delete(keyId)
    this.#checkedAt.delete(keyId)
    this.#pool.removeKey(keyId)
  }

  async publicKey(keyId: string): Promise<PublicKey> {
    const cached = this.#publicKeys.get(keyId)
    if (cached) return cached
    return this.#publicKeyOf(await this.#record(keyId))
  }

  async setEnabled(keyId: string, change: { enabled: boolean; reason?: string }, audit?: AuditSeal): Promise<SigningKeyInfo> {
    if (!change.enabled) {
      // Unload first: whatever happens to the store write, the key stops signing now.
      this.#unload(keyId)
    }
    return info(await this.#store.setEnabled(keyId, { ...change, at: this.#now() }, audit))
  }

  async listKeys(accountId?: string): Promise<SigningKeyInfo[]> {
    return (await this.#store.list(accountId)).map(info)
  }

  async #load(keyId: string): Promise<AssertionSigner> {
    const epoch = this.#epochs.get(keyId) ?? 0
    const record = await this.#record(keyId)
    if (!record.enabled) throw new VaultError('SV_SIGNING_KEY_UNAVAILABLE', 'signing key is disabled', { details: { keyId } })
    this.#checkedAt.set(keyId, this.#now())
    const publicKey = this.#publicKeyOf(record)
    const pkcs8 = unseal(this.#masterKey, record.sealed, sealContext(keyId))
    try {
      this.#pool.addKey(keyId, pkcs8)
    } finally {
      pkcs8.fill(0)
    }
    if ((this.#epochs.get(keyId) ?? 0) !== epoch) {
      this.#pool.removeKey(keyId)
      throw new VaultError('SV_SIGNING_KEY_UNAVAILABLE', 'signing key was disabled while loading', { details: { keyId } })
    }
    try {
      return this.#pool.signer(keyId, publicKey)
    } catch (err) {
      this.#pool.removeKey(keyId)
      throw err
    }
  }

  async #record(keyId: string): Promise<SigningKeyRecord> {
    const record = await this.#store.get(keyId)
    if (!record) throw new VaultError('SV_KEY_NOT_FOUND', 'no such signing key', { details: { keyId } })
    return record
  }

  #publicKeyOf(record: SigningKeyRecord): PublicKey {
    const a = decodeAssertion(record.accountKeyAssertion)
    if (!(a instanceof AccountKeyAssertion) || a.publicKeyId !== record.keyId) {
      throw new VaultError('SV_INTERNAL', 'stored signing key record has an account-key assertion of another key', { details: { keyId: record.keyId } })
    }
    this.#publicKeys.set(record.keyId, a.publicKey)
    return a.publicKey
  }

  #checkSize(bits: number): void {
    if (bits < this.#minBits) {
      throw new VaultError('SV_KEY_TOO_SMALL', `RSA key of ${bits} bits is smaller than the minimum of ${this.#minBits} bits`, {
        details: { bits, minBits: this.#minBits },
      })
    }
  }

  async #put(input: ImportKeyInput | GenerateKeyInput, publicKey: PublicKey, pkcs8: Buffer, accountKey: AccountKeyAssertion, audit: ((record: SigningKeyInfo) => AuditSeal) | undefined): Promise<SigningKeyInfo> {
    const keyId = publicKey.id
    const record: SigningKeyRecord = {
      keyId,
      accountId: input.accountId,
      purpose: input.purpose,
      name: input.name,
      bits: publicKey.bits,
      accountKeyAssertion: accountKey.text(),
      enabled: true,
      sealed: seal(this.#masterKey, pkcs8, sealContext(keyId)),
      createdAt: this.#now(),
    }
    await this.#store.put(record, audit?.(info(record)))
    this.#publicKeys.set(keyId, publicKey)
    return info(record)
  }
}

function checkInput(input: { accountId: unknown; purpose: unknown; name: unknown }): void {
  if (typeof input.accountId !== 'string' || input.accountId === '') throw new TypeError('accountId must be a non-empty string')
  if (typeof input.name !== 'string' || input.name === '') throw new TypeError('name must be a non-empty string')
  if (!PURPOSES.includes(input.purpose as KeyPurpose)) throw new TypeError(`purpose must be one of ${PURPOSES.join(', ')}`)
}

/**
 * Signs and verifies a probe: catches a PEM whose private numbers do not
 * belong to its modulus (a corrupted or hand-edited key), which would
 * otherwise only show up as signatures that no device accepts.
 */
function checkKeyPair(pkcs8: Buffer, publicKey: PublicKey): void {
  let ok = false
  try {
    const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
    const sig = sign('sha512', PROBE, { key: privateKey, padding: constants.RSA_PKCS1_PADDING })
    const pub = createPublicKey({ key: publicKey.toJwk(), format: 'jwk' })
    ok = verify('sha512', PROBE, { key: pub, padding: constants.RSA_PKCS1_PADDING }, sig)
  } catch {
    ok = false
  }
  if (!ok) throw new VaultError('SV_KEY_INVALID', 'private key is inconsistent: it does not sign for its own public key', { details: { reason: 'inconsistent key' } })
}

function checkAccountKey(text: string, publicKey: PublicKey, accountId: string, name: string): AccountKeyAssertion {
  if (typeof text !== 'string') throw new TypeError('accountKeyAssertion must be a string')
  const a = decodeAssertion(text)
  if (!(a instanceof AccountKeyAssertion)) mismatch('type', `expected an account-key assertion, got ${a.typeName}`, { type: a.typeName })
  if (a.publicKeyId !== publicKey.id) {
    mismatch('public-key', 'the account-key assertion is for another key than the private key', { keyId: publicKey.id, assertionKeyId: a.publicKeyId })
  }
  if (a.accountId !== accountId) mismatch('account-id', `the account-key assertion is for account ${a.accountId}, not ${accountId}`, { accountId, assertionAccountId: a.accountId })
  if (a.header('name') !== undefined && a.name !== name) mismatch('name', `the account-key assertion names the key ${a.name}, not ${name}`, { name, assertionName: a.name })
  return a
}
