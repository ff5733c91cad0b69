/**
 * Brands and their trust chain.
 *
 * Two ways in:
 *  - import: a brand registered with a store (Canonical's, usually) brings its
 *    private key and the account and account-key assertions the store issued.
 *    They are checked to match each other and the key, and to chain up to a
 *    trusted root (Canonical's built-in root, or anchors given by the admin).
 *  - vault root: for private ecosystems, tests and the demo, the vault holds a
 *    root authority of its own that issues the brand's account and
 *    account-key. Devices then carry the vault root's account and account-key
 *    as trust anchors (`vault-server trust export`), as snapd carries
 *    Canonical's.
 *
 * Keys made here are backdated by a day (`since` = now - 24 h): a device whose
 * clock runs a little behind must still accept them (snapd checks the signing
 * key is valid at the device's current time).
 */
import {
  AccountAssertion,
  AccountKeyAssertion,
  CANONICAL_ACCOUNT,
  CANONICAL_ROOT_ACCOUNT_KEY,
  ACCOUNT_ID_RE,
  PublicKey,
  TrustDb,
  VaultError,
  decodeAssertion,
  decodeStream,
  encodeStream,
  formatRfc3339,
  signAssertion,
  type Assertion,
  type AssertionSigner,
} from '@sv/shared'
import { Buffer } from 'node:buffer'
import { randomBytes } from 'node:crypto'
import type { KeyStore, SigningKeyInfo } from '../keys/keystore.js'
import type { AuditSeal, BrandRecord, StoreRecord, VaultStore } from '../store/store.js'
import { STORE_ID_RE } from '../store/store-migration.js'

/** Audit entries of a brand change, made from the records and written with them. */
export interface BrandAudit {
  key?: (key: SigningKeyInfo) => AuditSeal
  brand?: (brand: BrandRecord, baseStore: StoreRecord) => AuditSeal
}

const ROOT_META = 'root-authority-id'
const DAY = 24 * 3600 * 1000

export interface BrandServiceOptions {
  now?: () => number
  /** key size for generated keys (tests use 2048 to save time) */
  keyBits?: number
  onProgress?: (what: string, elapsedMs: number) => void
}

export interface ImportBrandInput {
  pem: string
  /** encoded account assertion */
  account: string
  /** encoded account-key assertion */
  accountKey: string
  /** extra trust anchors (account / account-key), e.g. a private store's root */
  trusted?: string[]
  /** intermediate assertions (e.g. the store's signing account-key) */
  chain?: string[]
  /** accept assertions that do not chain to a trusted root (private setups); logged by the caller */
  skipChainCheck?: boolean
  /** the base store's id for a new brand (default: the brand id; a store-registered brand's store id) */
  storeId?: string
  /** refuse a brand that exists (SV_BRAND_EXISTS) */
  onlyNew?: boolean
  /** refuse a brand that does not exist (SV_BRAND_UNKNOWN): a key for an existing brand */
  onlyExisting?: boolean
}

export class BrandService {
  readonly #store: VaultStore
  readonly #keys: KeyStore
  readonly #now: () => number
  readonly #bits: number
  readonly #progress: ((what: string, ms: number) => void) | undefined

  constructor(store: VaultStore, keys: KeyStore, options: BrandServiceOptions = {}) {
    this.#store = store
    this.#keys = keys
    this.#now = options.now ?? Date.now
    this.#bits = options.keyBits ?? 4096
    this.#progress = options.onProgress
  }

  /** The vault root's account id, or undefined when no root was made yet. */
  rootId(): Promise<string | undefined> {
    return this.#store.meta.get(ROOT_META)
  }

  /**
   * The vault-held root authority: created on first call (a new RSA key,
   * a self-signed account and account-key), then reused.
   */
  async ensureRoot(id?: string): Promise<string> {
    const existing = await this.rootId()
    if (existing) return existing
    const rootId = id ?? `svroot-${randomBytes(4).toString('hex')}`
    if (!ACCOUNT_ID_RE.test(rootId)) throw new VaultError('SV_REQUEST_INVALID', `invalid root account id ${JSON.stringify(rootId)}`, { details: { field: 'rootId' } })
    const now = this.#now()
    let account = ''
    await this.#keys.generateKey({
      accountId: rootId,
      purpose: 'root',
      name: 'root',
      bits: this.#bits,
      ...(this.#progress ? { onProgress: (ms: number) => this.#progress!('root key', ms) } : {}),
      accountKeyAssertion: async ({ publicKey, signer }) => {
        account = await this.#signAccount(signer, rootId, rootId, `Serial Vault root ${rootId}`, now)
        return this.#signAccountKey(signer, rootId, rootId, 'root', publicKey, now)
      },
    })
    await this.#store.meta.put('root-account', account)
    if (!(await this.#store.meta.put(ROOT_META, rootId, true))) {
      // another process made a root at the same moment: use theirs
      return (await this.rootId())!
    }
    return rootId
  }

  async #rootSigner(): Promise<{ id: string; signer: AssertionSigner }> {
    const id = await this.ensureRoot()
    const key = (await this.#keys.listKeys(id)).find((k) => k.purpose === 'root' && k.enabled)
    if (!key) throw new VaultError('SV_SIGNING_KEY_UNAVAILABLE', `the vault root ${id} has no enabled key`, { details: { rootId: id } })
    return { id, signer: await this.#keys.signer(key.keyId) }
  }

  #signAccount(signer: AssertionSigner, authority: string, accountId: string, displayName: string, now: number): Promise<string> {
    return signAssertion('account', { 'authority-id': authority, 'account-id': accountId, 'display-name': displayName, username: accountId, validation: 'verified', timestamp: formatRfc3339(now) }, undefined, signer).then((a) => a.text())
  }

  #signAccountKey(signer: AssertionSigner, authority: string, accountId: string, name: string, key: PublicKey, now: number): Promise<string> {
    return signAssertion(
      'account-key',
      { 'authority-id': authority, 'account-id': accountId, name, 'public-key-sha3-384': key.id, since: formatRfc3339(now - DAY) },
      key.encode(),
      signer,
    ).then((a) => a.text())
  }

  /** The base store a new brand gets: `storeId`, else the brand id; SV_STORE_EXISTS when taken. */
  async #newBaseStore(brandId: string, displayName: string, storeId: string | undefined): Promise<StoreRecord> {
    const id = storeId ?? brandId
    if (!STORE_ID_RE.test(id)) throw new VaultError('SV_REQUEST_INVALID', `invalid store id ${JSON.stringify(id)}: 1-64 of A-Z a-z 0-9 and inner -`, { details: { field: 'storeId' } })
    if (await this.#store.stores.get(id)) throw new VaultError('SV_STORE_EXISTS', `store ${id} exists`, { details: { storeId: id } })
    const now = this.#now()
    return { id, brandId, kind: 'base', displayName, requirePivotReview: false, createdAt: now, updatedAt: now }
  }

  /** The brand's base store. SV_STORE_NOT_FOUND when the brand has none (it always has, after migration). */
  async baseStore(brandId: string): Promise<StoreRecord> {
    const base = (await this.#store.stores.list({ brandId })).find((st) => st.kind === 'base')
    if (!base) throw new VaultError('SV_STORE_NOT_FOUND', `brand ${brandId} has no base store`, { details: { brandId } })
    return base
  }

  /**
   * A new brand under the vault root, with a new signing key and its base
   * store (id `storeId`, default the brand id). SV_BRAND_EXISTS, SV_STORE_EXISTS.
   */
  async createBrand(input: { id: string; displayName: string; keyName?: string; storeId?: string }, audit: BrandAudit = {}): Promise<{ brand: BrandRecord; key: SigningKeyInfo; store: StoreRecord }> {
    if (!ACCOUNT_ID_RE.test(input.id)) throw new VaultError('SV_REQUEST_INVALID', `invalid brand id ${JSON.stringify(input.id)}: 2-28 of a-z 0-9 -, or 32 alphanumerics`, { details: { field: 'id' } })
    if (!input.displayName.trim() || input.displayName.includes('\n')) throw new VaultError('SV_REQUEST_INVALID', 'the display name must be one non-empty line', { details: { field: 'displayName' } })
    if (await this.#store.brands.getBrand(input.id)) throw new VaultError('SV_BRAND_EXISTS', `brand ${input.id} exists`, { details: { brandId: input.id } })
    const store = await this.#newBaseStore(input.id, input.displayName, input.storeId)
    const root = await this.#rootSigner()
    const now = this.#now()
    const accountAssertion = await this.#signAccount(root.signer, root.id, input.id, input.displayName, now)
    const key = await this.#keys.generateKey({
      accountId: input.id,
      purpose: 'brand',
      name: input.keyName ?? 'default',
      bits: this.#bits,
      ...(this.#progress ? { onProgress: (ms: number) => this.#progress!(`${input.id} key`, ms) } : {}),
      accountKeyAssertion: ({ publicKey }) => this.#signAccountKey(root.signer, root.id, input.id, input.keyName ?? 'default', publicKey, now),
      ...(audit.key ? { audit: audit.key } : {}),
    })
    const brand: BrandRecord = { id: input.id, displayName: input.displayName, origin: 'vault-root', accountAssertion, createdAt: now }
    await this.#store.brands.createBrand(brand, store, audit.brand?.(brand, store))
    return { brand, key, store }
  }

  /** Another signing key for a vault-root brand (key rotation). */
  async addBrandKey(brandId: string, name: string, audit: BrandAudit = {}): Promise<SigningKeyInfo> {
    const brand = await this.getBrand(brandId)
    if (brand.origin !== 'vault-root') throw new VaultError('SV_REQUEST_INVALID', `brand ${brandId} was imported: register new keys with its store, then import them`, { details: { brandId } })
    const root = await this.#rootSigner()
    const now = this.#now()
    return this.#keys.generateKey({
      accountId: brandId,
      purpose: 'brand',
      name,
      bits: this.#bits,
      accountKeyAssertion: ({ publicKey }) => this.#signAccountKey(root.signer, root.id, brandId, name, publicKey, now),
      ...(audit.key ? { audit: audit.key } : {}),
    })
  }

  /**
   * Imports a store-registered brand: the key PEM, its account and account-key
   * assertions. SV_KEY_IMPORT_MISMATCH when they do not belong together,
   * SV_ASSERTION_UNTRUSTED when they do not chain to a trusted root.
   */
  async importBrand(input: ImportBrandInput, audit: BrandAudit = {}): Promise<{ brand: BrandRecord; key: SigningKeyInfo; store: StoreRecord; created: boolean }> {
    const account = decodeAssertion(input.account)
    const accountKey = decodeAssertion(input.accountKey)
    if (!(account instanceof AccountAssertion)) throw new VaultError('SV_KEY_IMPORT_MISMATCH', `expected an account assertion, got ${account.typeName}`, { details: { field: 'account' } })
    if (!(accountKey instanceof AccountKeyAssertion)) throw new VaultError('SV_KEY_IMPORT_MISMATCH', `expected an account-key assertion, got ${accountKey.typeName}`, { details: { field: 'accountKey' } })
    if (accountKey.accountId !== account.accountId) {
      throw new VaultError('SV_KEY_IMPORT_MISMATCH', `the account-key is for ${accountKey.accountId}, the account is ${account.accountId}`, { details: { account: account.accountId, accountKeyAccount: accountKey.accountId } })
    }
    if (!input.skipChainCheck) {
      const anchors: Assertion[] = [decodeAssertion(CANONICAL_ACCOUNT), decodeAssertion(CANONICAL_ROOT_ACCOUNT_KEY)]
      const extra: Assertion[] = []
      for (const t of input.trusted ?? []) for (const a of decodeStream(t)) (a.typeName === 'account' || a.typeName === 'account-key' ? anchors : extra).push(a)
      for (const c of input.chain ?? []) extra.push(...decodeStream(c))
      const db = new TrustDb({ trusted: anchors, now: this.#now })
      const r = await db.addAll([...extra, account, accountKey])
      const failed = r.failed.find((f) => f.assertion === account || f.assertion === accountKey)
      if (failed) {
        throw new VaultError('SV_ASSERTION_UNTRUSTED', `the ${failed.assertion.typeName} assertion does not chain to a trusted root: ${failed.error.message}`, {
          details: { type: failed.assertion.typeName, reason: failed.error.code },
        })
      }
    }
    const existing = await this.#store.brands.getBrand(account.accountId)
    if (existing && input.onlyNew) throw new VaultError('SV_BRAND_EXISTS', `brand ${existing.id} exists; import more keys into it with its keys/import`, { details: { brandId: existing.id } })
    if (!existing && input.onlyExisting) throw new VaultError('SV_BRAND_UNKNOWN', `no brand ${account.accountId}`, { details: { brandId: account.accountId } })
    const store = existing ? await this.baseStore(existing.id) : await this.#newBaseStore(account.accountId, account.displayName, input.storeId)
    const key = await this.#keys.importKey({ pem: input.pem, accountId: account.accountId, purpose: 'brand', name: accountKey.name || 'default', accountKeyAssertion: accountKey.text(), ...(audit.key ? { audit: audit.key } : {}) })
    if (existing) return { brand: existing, key, store, created: false }
    const brand: BrandRecord = { id: account.accountId, displayName: account.displayName, origin: 'imported', accountAssertion: account.text(), createdAt: this.#now() }
    await this.#store.brands.createBrand(brand, store, audit.brand?.(brand, store))
    return { brand, key, store, created: true }
  }

  async getBrand(id: string): Promise<BrandRecord> {
    const b = await this.#store.brands.getBrand(id)
    if (!b) throw new VaultError('SV_BRAND_UNKNOWN', `no brand ${id}`, { details: { brandId: id } })
    return b
  }

  listBrands(): Promise<BrandRecord[]> {
    return this.#store.brands.listBrands()
  }

  /**
   * Trust anchors a device image must carry: the vault root's account and
   * account-key (snapd's format, one stream). With `brandId`, the brand's
   * account and account-keys follow (what a device needs offline).
   */
  async trustExport(brandId?: string): Promise<Buffer> {
    const parts: Assertion[] = []
    const rootId = await this.rootId()
    if (rootId) {
      const acc = await this.#store.meta.get('root-account')
      const key = (await this.#keys.listKeys(rootId)).find((k) => k.purpose === 'root')
      if (acc) parts.push(decodeAssertion(acc))
      if (key) parts.push(decodeAssertion(key.accountKeyAssertion))
    }
    if (brandId) {
      const brand = await this.getBrand(brandId)
      parts.push(decodeAssertion(brand.accountAssertion))
      for (const k of await this.#keys.listKeys(brandId)) parts.push(decodeAssertion(k.accountKeyAssertion))
    }
    if (parts.length === 0) throw new VaultError('SV_BRAND_UNKNOWN', 'this vault has no root authority yet (create a brand first)', { details: {} })
    return Buffer.from(encodeStream(parts))
  }
}
