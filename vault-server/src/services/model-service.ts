/**
 * Models: the brand's device models, the key that signs each model's serials,
 * its API keys (stored only as sha256 hashes), serial and duplicate policies,
 * and the signed model assertion served to devices and factories.
 *
 * A model can only be saved with a key of its own brand (Canonical
 * serial-vault issue #220: a misconfiguration that was only found on devices).
 */
import { createHash, randomBytes } from 'node:crypto'
import {
  ModelAssertion,
  MODEL_NAME_RE,
  VaultError,
  decodeAssertion,
  formatRfc3339,
  signAssertion,
  type AssertionSigner,
  type HeaderValue,
} from '@sv/shared'
import type { AuditSeal, DuplicatePolicy, ModelRecord, SerialPolicy, StoreRecord, VaultStore } from '../store/store.js'
import { parseSerialTemplate } from './serial-template.js'

/** What the services need from the key store. */
export interface SignerSource {
  /** SV_KEY_NOT_FOUND, SV_SIGNING_KEY_UNAVAILABLE (disabled) */
  signer(keyId: string): Promise<AssertionSigner>
}

export function hashApiKey(apiKey: string): string {
  return createHash('sha256').update(apiKey, 'utf8').digest('hex')
}

/** 32 random bytes, base64url: 43 characters, [A-Za-z0-9_-]. */
export function generateApiKey(): string {
  return randomBytes(32).toString('base64url')
}

/** API keys given by admins: at least 16 characters of a safe alphabet. */
export function checkApiKey(key: string): void {
  if (!/^[A-Za-z0-9._~+/=-]{16,256}$/.test(key)) {
    throw new VaultError('SV_REQUEST_INVALID', 'an API key must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -', { details: { field: 'apiKey' } })
  }
}

/**
 * The default model headers when an admin gives none: a generic UC22 amd64
 * "pc" model with the production snap ids of pc and pc-kernel.
 */
export const DEFAULT_MODEL_HEADERS: Record<string, HeaderValue> = {
  architecture: 'amd64',
  base: 'core22',
  grade: 'signed',
  snaps: [
    { name: 'pc', id: 'UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH', type: 'gadget', 'default-channel': '22/stable' },
    { name: 'pc-kernel', id: 'pYVQrBcKmBa0mZ4CCN7ExT6jH8rY1hza', type: 'kernel', 'default-channel': '22/stable' },
  ],
}

/** Headers the vault sets itself on a model assertion (`store` from the model's store). */
const MANAGED = ['type', 'authority-id', 'brand-id', 'model', 'series', 'sign-key-sha3-384', 'body-length', 'revision', 'store']

/** The audit entry of a model change, made from the records and written with the change. */
export type ModelAudit = (after: ModelRecord, before: ModelRecord | undefined) => AuditSeal

export interface NewModel {
  brandId: string
  name: string
  /** the store the model belongs to (default: the brand's base store, or the store its `store` header names) */
  storeId?: string
  signingKeyId?: string
  apiKeys?: string[]
  serialPolicy?: SerialPolicy
  duplicatePolicy?: DuplicatePolicy
  /** registrations need an open work order (default false) */
  requireWorkOrder?: boolean
  /** model assertion headers (architecture, base, snaps, grade, display-name, ...) */
  headers?: Record<string, HeaderValue>
}

export interface ModelChange {
  /** move the model to another store of its brand (the assertion is re-signed with the new `store` header) */
  storeId?: string
  signingKeyId?: string
  addApiKeys?: string[]
  removeApiKeyHashes?: string[]
  serialPolicy?: SerialPolicy
  duplicatePolicy?: DuplicatePolicy
  requireWorkOrder?: boolean
  headers?: Record<string, HeaderValue>
}

export class ModelService {
  readonly #store: VaultStore
  readonly #keys: SignerSource
  readonly #now: () => number
  /** api-key hash -> models, for the device hot path (request-id at thousands/s) */
  readonly #apiKeyCache = new Map<string, { at: number; models: ModelRecord[] }>()
  /** brand/model -> record, for the device hot path */
  readonly #modelCache = new Map<string, { at: number; model: ModelRecord | undefined }>()
  readonly #cacheMs: number

  constructor(store: VaultStore, keys: SignerSource, options: { now?: () => number; apiKeyCacheMs?: number } = {}) {
    this.#store = store
    this.#keys = keys
    this.#now = options.now ?? Date.now
    this.#cacheMs = options.apiKeyCacheMs ?? 2000
  }

  async #checkKey(brandId: string, keyId: string): Promise<void> {
    const key = await this.#store.keys.get(keyId)
    if (!key) throw new VaultError('SV_KEY_NOT_FOUND', `no signing key ${keyId}`, { details: { keyId } })
    if (key.purpose !== 'brand' || key.accountId !== brandId) {
      throw new VaultError('SV_KEY_BRAND_MISMATCH', `signing key ${keyId} belongs to ${key.accountId}, not to brand ${brandId}`, { details: { keyId, keyAccount: key.accountId, brandId } })
    }
  }

  async #defaultKey(brandId: string): Promise<string> {
    const keys = (await this.#store.keys.list(brandId)).filter((k) => k.purpose === 'brand' && k.enabled)
    if (keys.length === 0) throw new VaultError('SV_KEY_NOT_FOUND', `brand ${brandId} has no enabled signing key`, { details: { brandId } })
    return keys.sort((a, b) => a.createdAt - b.createdAt)[0]!.keyId
  }

  /** The store a new model goes to: the one asked for, the one its `store` header names, or the brand's base store. */
  async #resolveStore(brandId: string, storeId: string | undefined, headers: Record<string, HeaderValue>): Promise<StoreRecord> {
    const named = headers.store
    if (named !== undefined && typeof named !== 'string') throw new VaultError('SV_MODEL_INVALID', 'the "store" header must be a string', { details: { header: 'store' } })
    if (storeId !== undefined && named !== undefined && named !== storeId) {
      throw new VaultError('SV_MODEL_INVALID', `the "store" header names ${named}, but the model goes to store ${storeId}`, { details: { header: 'store' } })
    }
    const want = storeId ?? named
    if (want === undefined) {
      const base = (await this.#store.stores.list({ brandId })).find((st) => st.kind === 'base')
      if (!base) throw new VaultError('SV_STORE_NOT_FOUND', `brand ${brandId} has no base store`, { details: { brandId } })
      return base
    }
    const st = await this.#store.stores.get(want)
    if (!st || st.brandId !== brandId) throw new VaultError('SV_STORE_NOT_FOUND', `no store ${want} of brand ${brandId}`, { details: { storeId: want, brandId } })
    return st
  }

  async #signModel(brandId: string, name: string, storeId: string, keyId: string, headers: Record<string, HeaderValue>, revision: number): Promise<ModelAssertion> {
    for (const h of MANAGED) {
      if (h in headers) throw new VaultError('SV_MODEL_INVALID', `header ${h} is set by the vault`, { details: { header: h } })
    }
    const all = { ...headers, 'authority-id': brandId, series: '16', 'brand-id': brandId, model: name, store: storeId, timestamp: (headers.timestamp as string | undefined) ?? formatRfc3339(this.#now()), ...(revision > 0 ? { revision: String(revision) } : {}) }
    try {
      return (await signAssertion('model', all, undefined, await this.#keys.signer(keyId))) as ModelAssertion
    } catch (e) {
      if (e instanceof VaultError && e.code === 'SV_ASSERTION_INVALID') {
        throw new VaultError('SV_MODEL_INVALID', e.message.replace(/^cannot sign model assertion: /, ''), { details: e.details ?? {} })
      }
      throw e
    }
  }

  /** Creates a model. Resolves with the record and the API keys in clear (shown once). */
  /**
   * Creates a model: checks, signs its model assertion, stores it. With
   * `dryRun` it stops before storing: the same checks and the same errors
   * (a name taken included), nothing written (the dashboard validates as
   * one types).
   */
  async create(m: NewModel, audit?: ModelAudit, o: { dryRun?: boolean } = {}): Promise<{ model: ModelRecord; apiKeys: string[] }> {
    if (!MODEL_NAME_RE.test(m.name) || m.name.toLowerCase() !== m.name) {
      throw new VaultError('SV_MODEL_INVALID', `model name ${JSON.stringify(m.name)} must be lowercase letters, digits and single dashes`, { details: { header: 'model' } })
    }
    if (!(await this.#store.brands.getBrand(m.brandId))) throw new VaultError('SV_BRAND_UNKNOWN', `no brand ${m.brandId}`, { details: { brandId: m.brandId } })
    const { store: _named, ...headers } = m.headers ?? DEFAULT_MODEL_HEADERS
    const store = await this.#resolveStore(m.brandId, m.storeId, m.headers ?? {})
    const keyId = m.signingKeyId ?? (await this.#defaultKey(m.brandId))
    await this.#checkKey(m.brandId, keyId)
    const serialPolicy = m.serialPolicy ?? { kind: 'device' }
    if (serialPolicy.kind === 'assign') parseSerialTemplate(serialPolicy.template)
    const apiKeys = m.apiKeys && m.apiKeys.length > 0 ? m.apiKeys : [generateApiKey()]
    apiKeys.forEach(checkApiKey)
    const assertion = await this.#signModel(m.brandId, m.name, store.id, keyId, headers, 0)
    const now = this.#now()
    const model: ModelRecord = {
      brandId: m.brandId,
      name: m.name,
      storeId: store.id,
      signingKeyId: keyId,
      apiKeyHashes: [...new Set(apiKeys.map(hashApiKey))],
      serialPolicy,
      duplicatePolicy: m.duplicatePolicy ?? 'refuse',
      modelHeaders: stripManaged(assertion.headers),
      modelAssertion: assertion.text(),
      revision: 0,
      createdAt: now,
      updatedAt: now,
    }
    // absent rather than false (records.ts)
    if (m.requireWorkOrder === true) model.requireWorkOrder = true
    if (o.dryRun) {
      if (await this.#store.brands.getModel(m.brandId, m.name)) throw new VaultError('SV_MODEL_EXISTS', 'a model with this name already exists for the brand', { details: { brandId: m.brandId, model: m.name } })
      return { model, apiKeys }
    }
    await this.#store.brands.createModel(model, audit?.(model, undefined))
    this.invalidate()
    return { model, apiKeys }
  }

  /**
   * Changes a model; the model assertion is re-signed with the next revision
   * when its headers, key or store change. Resolves with the new record, the
   * one before, and the API keys added (in clear, shown once).
   */
  async update(brandId: string, name: string, change: ModelChange, audit?: ModelAudit): Promise<{ model: ModelRecord; before: ModelRecord; apiKeys: string[] }> {
    const cur = await this.get(brandId, name)
    const keyId = change.signingKeyId ?? cur.signingKeyId
    if (change.signingKeyId) await this.#checkKey(brandId, keyId)
    if (change.serialPolicy?.kind === 'assign') parseSerialTemplate(change.serialPolicy.template)
    const added = change.addApiKeys ?? []
    added.forEach(checkApiKey)
    let hashes = cur.apiKeyHashes.filter((h) => !(change.removeApiKeyHashes ?? []).includes(h))
    hashes = [...new Set([...hashes, ...added.map(hashApiKey)])]
    if (hashes.length === 0) throw new VaultError('SV_REQUEST_INVALID', 'a model needs at least one API key', { details: { field: 'apiKeys' } })
    let storeId = cur.storeId
    if (change.storeId !== undefined && change.storeId !== cur.storeId) storeId = (await this.#resolveStore(brandId, change.storeId, {})).id
    if (change.headers?.store !== undefined && change.headers.store !== storeId) {
      throw new VaultError('SV_MODEL_INVALID', `the "store" header names ${String(change.headers.store)}, but the model is in store ${storeId}`, { details: { header: 'store' } })
    }
    const next: ModelRecord = { ...cur, storeId, signingKeyId: keyId, apiKeyHashes: hashes, updatedAt: this.#now() }
    if (change.serialPolicy) next.serialPolicy = change.serialPolicy
    if (change.duplicatePolicy) next.duplicatePolicy = change.duplicatePolicy
    if (change.requireWorkOrder === true) next.requireWorkOrder = true
    else if (change.requireWorkOrder === false) delete next.requireWorkOrder
    const assertionStore = ModelService.assertionOf(cur).headerString('store')
    if (change.headers || change.signingKeyId || storeId !== cur.storeId || assertionStore !== storeId) {
      const { timestamp: _t, store: _s, ...rest } = (change.headers ?? cur.modelHeaders) as Record<string, HeaderValue>
      const a = await this.#signModel(brandId, name, storeId, keyId, rest, cur.revision + 1)
      next.modelHeaders = stripManaged(a.headers)
      next.modelAssertion = a.text()
      next.revision = cur.revision + 1
    }
    await this.#store.brands.updateModel(next, audit?.(next, cur))
    this.invalidate()
    return { model: next, before: cur, apiKeys: added }
  }

  /** Forgets the cached models (after a change here; other instances' changes show within the cache time). */
  invalidate(): void {
    this.#apiKeyCache.clear()
    this.#modelCache.clear()
  }

  /** SV_MODEL_UNKNOWN when absent. */
  async get(brandId: string, name: string): Promise<ModelRecord> {
    const m = await this.#store.brands.getModel(brandId, name)
    if (!m) throw new VaultError('SV_MODEL_UNKNOWN', `no model ${name} for brand ${brandId}`, { details: { brandId, model: name } })
    return m
  }

  /**
   * The model through a short-lived cache (`apiKeyCacheMs`, 2 s by default):
   * changes made here invalidate it at once; changes made by another vault
   * instance show within that time.
   */
  async getCached(brandId: string, name: string): Promise<ModelRecord | undefined> {
    const key = `${brandId}/${name}`
    const now = this.#now()
    const hit = this.#modelCache.get(key)
    if (hit && now - hit.at < this.#cacheMs) return hit.model
    const model = await this.#store.brands.getModel(brandId, name)
    if (this.#modelCache.size > 10_000) this.#modelCache.clear()
    this.#modelCache.set(key, { at: now, model })
    return model
  }

  list(filter: { brandId?: string; storeId?: string } = {}): Promise<ModelRecord[]> {
    return this.#store.brands.listModels(filter)
  }

  /** Models accepting this API key, through a short-lived cache (invalidated on every change here). */
  async modelsForApiKey(apiKey: string): Promise<ModelRecord[]> {
    const hash = hashApiKey(apiKey)
    const now = this.#now()
    const hit = this.#apiKeyCache.get(hash)
    if (hit && now - hit.at < this.#cacheMs) return hit.models
    const models = await this.#store.brands.findModelsByApiKeyHash(hash)
    if (this.#apiKeyCache.size > 10_000) this.#apiKeyCache.clear()
    this.#apiKeyCache.set(hash, { at: now, models })
    return models
  }

  /** The decoded model assertion of a record. */
  static assertionOf(model: ModelRecord): ModelAssertion {
    return decodeAssertion(model.modelAssertion) as ModelAssertion
  }
}

function stripManaged(h: Readonly<Record<string, HeaderValue>>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(h)) if (!MANAGED.includes(k)) out[k] = v
  return out
}
