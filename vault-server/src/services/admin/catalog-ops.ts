/**
 * Admin operations on brands, their keys, models and serial bindings. Each
 * finds its target, asks for the permission in the store it acts in, makes
 * the change with its audit entry in the same write, and invalidates caches.
 */
import { VaultError, decodeAssertion, encodeStream, type AdminWire, type HeaderValue } from '@sv/shared'
import type { SerialBinding } from '../../store/store.js'
import { parseSerialPolicyFlag } from '../serial-template.js'
import { generateApiKey, type ModelAudit } from '../model-service.js'
import { signSystemUser } from '../system-users.js'
import type { BrandAudit } from '../brand-service.js'
import { type Principal } from './access.js'
import { auditView } from './audit.js'
import { type AdminCore, type RequestContext, notFound } from './core.js'
import { keyView, modelView, storeView } from './views.js'

export class CatalogOps {
  readonly #c: AdminCore

  constructor(core: AdminCore) {
    this.#c = core
  }

  /** `storeId`: the brand's base store, when it exists already (key actions show in its audit log). */
  #brandAudit(p: Principal, ctx: RequestContext, action: string, storeId?: string): BrandAudit {
    return {
      key: (k) => this.#c.seal(p, ctx, { action: 'key.generated', brandId: k.accountId, ...(storeId !== undefined ? { storeId } : {}), target: { type: 'key', id: k.keyId }, after: auditView('key', { ...k }) }),
      brand: (b, s) => this.#c.seal(p, ctx, { action, brandId: b.id, storeId: s.id, target: { type: 'brand', id: b.id }, after: { brand: auditView('brand', { ...b }), baseStore: s } }),
    }
  }

  // --- brands ------------------------------------------------------------------------------

  /** Brands the caller can see a store of (every brand for the operator). */
  async listBrands(p: Principal): Promise<Array<{ id: string; displayName: string; origin: string; createdAt: string; baseStore?: string }>> {
    const tree = await this.#c.tree()
    const visible = new Set([...tree.stores.values()].filter((s) => this.#c.d.access.canSee(p, tree, s.id)).map((s) => s.brandId))
    return (await this.#c.d.brands.listBrands())
      .filter((b) => p.kind === 'operator' || visible.has(b.id))
      .map((b) => ({ id: b.id, displayName: b.displayName, origin: b.origin, createdAt: new Date(b.createdAt).toISOString(), ...(tree.baseOf(b.id) ? { baseStore: tree.baseOf(b.id)!.id } : {}) }))
  }

  /** A brand under the vault root (made now, named `rootId` when given, if there is none yet); resolves with the root's account id too. */
  async createBrand(p: Principal, ctx: RequestContext, input: AdminWire.CreateBrandRequest): Promise<{ brand: Record<string, unknown>; key: AdminWire.KeyWire; store: AdminWire.StoreWire; rootId: string }> {
    await this.#c.authorize(p, ctx, await this.#c.tree(), 'brand.create', 'vault', notFound.brand(input.id), 'brand.created')
    if (input.rootId !== undefined) await this.#c.d.brands.ensureRoot(input.rootId)
    const { brand, key, store } = await this.#c.d.brands.createBrand({ id: input.id, displayName: input.displayName, ...(input.storeId ? { storeId: input.storeId } : {}) }, this.#brandAudit(p, ctx, 'brand.created'))
    this.#c.invalidate()
    this.#c.d.log.info({ brandId: brand.id, storeId: store.id, keyId: key.keyId }, 'brand.created')
    return { brand: { id: brand.id, displayName: brand.displayName, origin: brand.origin, createdAt: new Date(brand.createdAt).toISOString() }, key: keyView(key), store: storeView(store), rootId: (await this.#c.d.brands.rootId())! }
  }

  async importBrand(p: Principal, ctx: RequestContext, input: AdminWire.ImportBrandRequest): Promise<{ brand: Record<string, unknown>; key: AdminWire.KeyWire; store: AdminWire.StoreWire }> {
    await this.#c.authorize(p, ctx, await this.#c.tree(), 'brand.create', 'vault', () => new VaultError('SV_BRAND_UNKNOWN', 'no such brand'), 'brand.imported')
    const { brand, key, store } = await this.#c.d.brands.importBrand({ ...stripUndefined(input), onlyNew: true }, this.#brandAudit(p, ctx, 'brand.imported'))
    this.#c.invalidate()
    this.#c.d.log.info({ brandId: brand.id, storeId: store.id, keyId: key.keyId }, 'brand.imported')
    return { brand: { id: brand.id, displayName: brand.displayName, origin: brand.origin }, key: keyView(key), store: storeView(store) }
  }

  // --- keys --------------------------------------------------------------------------------

  /** A new key for a vault-root brand (rotation): key.manage in the brand's base store. */
  async generateKey(p: Principal, ctx: RequestContext, brandId: string, name: string): Promise<AdminWire.KeyWire> {
    const { base } = await this.#c.brand(p, ctx, brandId, 'key.manage', 'key.generated')
    const key = await this.#c.d.brands.addBrandKey(brandId, name, { key: this.#brandAudit(p, ctx, 'brand.created', base.id).key! })
    this.#c.invalidate()
    this.#c.d.log.info({ brandId, keyId: key.keyId }, 'key.generated')
    return keyView(key, [], true)
  }

  /** Another key of an existing brand, with the account-key its store issued: key.manage in the base store. */
  async importKey(p: Principal, ctx: RequestContext, brandId: string, input: AdminWire.ImportKeyRequest): Promise<AdminWire.KeyWire> {
    const { brand, base } = await this.#c.brand(p, ctx, brandId, 'key.manage', 'key.imported')
    const audit: BrandAudit = { key: (k) => this.#c.seal(p, ctx, { action: 'key.imported', brandId, storeId: base.id, target: { type: 'key', id: k.keyId }, after: auditView('key', { ...k }) }) }
    // a vault-root brand's account-keys chain to the vault's own root
    const trusted = [...(input.trusted ?? []), ...(brand.origin === 'vault-root' ? [(await this.#c.d.brands.trustExport()).toString('utf8')] : [])]
    const { key } = await this.#c.d.brands.importBrand({ ...stripUndefined(input), trusted, account: brand.accountAssertion, onlyExisting: true }, audit)
    this.#c.invalidate()
    this.#c.d.log.info({ brandId, keyId: key.keyId }, 'key.imported')
    return keyView(key)
  }

  /** Keys of a brand (key.read in its base store), or of every brand the caller may read keys of. */
  async listKeys(p: Principal, ctx: RequestContext, brandId?: string): Promise<AdminWire.KeyWire[]> {
    if (brandId !== undefined) await this.#c.brand(p, ctx, brandId, 'key.read')
    const tree = await this.#c.tree()
    const keys = await this.#c.d.keys.listKeys(brandId)
    const models = await this.#c.d.store.brands.listModels(brandId ? { brandId } : {})
    return keys
      .filter((k) => {
        if (p.kind === 'operator') return true
        const base = k.purpose === 'brand' ? tree.baseOf(k.accountId) : undefined
        return base !== undefined && this.#c.d.access.allows(p, tree, 'key.read', base.id)
      })
      .map((k) => keyView(k, k.purpose === 'brand' ? models.filter((m) => m.signingKeyId === k.keyId).map((m) => `${m.brandId}/${m.name}`) : undefined, true))
  }

  /** Enable or disable a key, with a reason (required to disable); a key a model signs with is not disabled (SV_KEY_IN_USE). */
  async setKeyEnabled(p: Principal, ctx: RequestContext, keyId: string, enabled: boolean, reason: string | undefined): Promise<AdminWire.KeyWire> {
    const action = enabled ? 'key.enabled' : 'key.disabled'
    const { key: before, base } = await this.#c.key(p, ctx, keyId, 'key.manage', action)
    if (!enabled && reason === undefined) throw new VaultError('SV_REQUEST_INVALID', 'disabling a key needs a reason', { details: { field: 'reason' } })
    if (!enabled) {
      const users = (await this.#c.d.store.brands.listModels({ brandId: before.accountId })).filter((m) => m.signingKeyId === keyId)
      if (users.length > 0) throw new VaultError('SV_KEY_IN_USE', `key ${keyId} signs for ${users.length} model(s): move them to another key first`, { details: { keyId, models: users.slice(0, 20).map((m) => `${m.brandId}/${m.name}`) } })
    }
    const seal = this.#c.seal(p, ctx, { action, brandId: before.accountId, ...(base ? { storeId: base.id } : {}), target: { type: 'key', id: keyId }, before: { enabled: before.enabled, reason: before.reason }, after: { enabled, reason } })
    const after = await this.#c.d.keys.setEnabled(keyId, { enabled, ...(reason !== undefined ? { reason } : {}) }, seal)
    this.#c.invalidate()
    this.#c.d.log.info({ keyId, reason }, action)
    return keyView(after)
  }

  // --- models -------------------------------------------------------------------------------

  #modelAudit(p: Principal, ctx: RequestContext, action: string): ModelAudit {
    return (after, before) =>
      this.#c.seal(p, ctx, { action, brandId: after.brandId, storeId: after.storeId, target: { type: 'model', id: `${after.brandId}/${after.name}` }, ...(before ? { before: auditView('model', { ...before }) } : {}), after: auditView('model', { ...after }) })
  }

  /** Models the caller may read, optionally of one brand or store. */
  async listModels(p: Principal, ctx: RequestContext, filter: { brandId?: string; storeId?: string }): Promise<AdminWire.ModelWire[]> {
    if (filter.storeId !== undefined) await this.#c.store(p, ctx, filter.storeId, 'model.read')
    const tree = await this.#c.tree()
    return (await this.#c.d.models.list(filter)).filter((m) => this.#c.d.access.allows(p, tree, 'model.read', m.storeId)).map(modelView)
  }

  async getModel(p: Principal, ctx: RequestContext, brandId: string, name: string): Promise<AdminWire.ModelWire> {
    return modelView((await this.#c.model(p, ctx, brandId, name, 'model.read')).model)
  }

  /** A new model in a store (model.manage there; default the brand's base store). Resolves with the API keys in clear, shown once. */
  /** A model and its signed assertion. `dryRun`: every check and the same errors, nothing stored or audited (model.manage still asked). */
  async createModel(p: Principal, ctx: RequestContext, input: AdminWire.CreateModelRequest, o: { dryRun?: boolean } = {}): Promise<{ model: AdminWire.ModelWire; apiKeys: string[] }> {
    const tree = await this.#c.tree()
    const named = typeof input.headers?.store === 'string' ? input.headers.store : undefined
    const storeId = input.storeId ?? named ?? tree.baseOf(input.brandId)?.id
    const store = storeId === undefined ? undefined : tree.get(storeId)
    if (!store || store.brandId !== input.brandId) throw (storeId ? notFound.store(storeId) : notFound.brand(input.brandId))()
    await this.#c.authorize(p, ctx, tree, 'model.manage', store, notFound.store(store.id), o.dryRun ? undefined : 'model.created')
    const spec = {
      brandId: input.brandId,
      name: input.name,
      storeId: store.id,
      ...(input.signingKeyId ? { signingKeyId: input.signingKeyId } : {}),
      ...(input.apiKeys ? { apiKeys: input.apiKeys } : {}),
      ...(input.serialPolicy ? { serialPolicy: parseSerialPolicyFlag(input.serialPolicy) } : {}),
      ...(input.duplicates ? { duplicatePolicy: input.duplicates } : {}),
      ...(input.requireWorkOrder !== undefined ? { requireWorkOrder: input.requireWorkOrder } : {}),
      ...(input.headers ? { headers: input.headers as Record<string, HeaderValue> } : {}),
    }
    if (o.dryRun) {
      const { model } = await this.#c.d.models.create(spec, undefined, { dryRun: true })
      return { model: modelView(model), apiKeys: [] }
    }
    const { model, apiKeys } = await this.#c.d.models.create(spec, this.#modelAudit(p, ctx, 'model.created'))
    this.#c.invalidate()
    this.#c.d.log.info({ brandId: model.brandId, model: model.name, storeId: model.storeId }, 'model.created')
    return { model: modelView(model), apiKeys }
  }

  async updateModel(p: Principal, ctx: RequestContext, brandId: string, name: string, input: AdminWire.UpdateModelRequest): Promise<{ model: AdminWire.ModelWire; apiKeys: string[] }> {
    await this.#c.model(p, ctx, brandId, name, 'model.manage', 'model.updated')
    if ((input.addApiKeys || input.removeApiKeyHashes) && p.kind !== 'operator') {
      const { store, tree } = await this.#c.model(p, ctx, brandId, name, 'model.manage')
      await this.#c.authorize(p, ctx, tree, 'apikey.manage', store, notFound.model(brandId, name), 'model.updated')
    }
    const { model, apiKeys } = await this.#c.d.models.update(
      brandId,
      name,
      {
        ...(input.signingKeyId ? { signingKeyId: input.signingKeyId } : {}),
        ...(input.addApiKeys ? { addApiKeys: input.addApiKeys } : {}),
        ...(input.removeApiKeyHashes ? { removeApiKeyHashes: input.removeApiKeyHashes } : {}),
        ...(input.serialPolicy ? { serialPolicy: parseSerialPolicyFlag(input.serialPolicy) } : {}),
        ...(input.duplicates ? { duplicatePolicy: input.duplicates } : {}),
        ...(input.requireWorkOrder !== undefined ? { requireWorkOrder: input.requireWorkOrder } : {}),
        ...(input.headers ? { headers: input.headers as Record<string, HeaderValue> } : {}),
      },
      this.#modelAudit(p, ctx, 'model.updated'),
    )
    this.#c.invalidate()
    this.#c.d.log.info({ brandId, model: name, revision: model.revision }, 'model.updated')
    return { model: modelView(model), apiKeys }
  }

  /** Moves a model to another store of its brand: model.manage in both; the assertion is re-signed naming the new store. */
  async moveModel(p: Principal, ctx: RequestContext, brandId: string, name: string, storeId: string): Promise<AdminWire.ModelWire> {
    const { tree } = await this.#c.model(p, ctx, brandId, name, 'model.manage', 'model.moved')
    const target = tree.get(storeId)
    if (!target || target.brandId !== brandId) throw notFound.store(storeId)()
    await this.#c.authorize(p, ctx, tree, 'model.manage', target, notFound.store(storeId), 'model.moved')
    const { model } = await this.#c.d.models.update(brandId, name, { storeId }, this.#modelAudit(p, ctx, 'model.moved'))
    this.#c.invalidate()
    this.#c.d.log.info({ brandId, model: name, storeId }, 'model.moved')
    return modelView(model)
  }

  /** A new API key for a model (generated unless given), shown once. */
  async addApiKey(p: Principal, ctx: RequestContext, brandId: string, name: string, apiKey: string | undefined): Promise<{ apiKey: string; model: AdminWire.ModelWire }> {
    await this.#c.model(p, ctx, brandId, name, 'apikey.manage', 'apikey.created')
    const key = apiKey ?? generateApiKey()
    const { model } = await this.#c.d.models.update(brandId, name, { addApiKeys: [key] }, this.#modelAudit(p, ctx, 'apikey.created'))
    this.#c.invalidate()
    return { apiKey: key, model: modelView(model) }
  }

  async removeApiKey(p: Principal, ctx: RequestContext, brandId: string, name: string, hash: string): Promise<AdminWire.ModelWire> {
    const { model: cur } = await this.#c.model(p, ctx, brandId, name, 'apikey.manage', 'apikey.removed')
    if (!cur.apiKeyHashes.includes(hash)) throw new VaultError('SV_REQUEST_INVALID', 'the model has no API key with this hash', { details: { field: 'hash' } })
    const { model } = await this.#c.d.models.update(brandId, name, { removeApiKeyHashes: [hash] }, this.#modelAudit(p, ctx, 'apikey.removed'))
    this.#c.invalidate()
    return modelView(model)
  }

  /** The brand's account, the model's key's account-key and the model: what an image build needs (model.download). */
  async modelAssertions(p: Principal, ctx: RequestContext, brandId: string, name: string): Promise<Uint8Array> {
    const { model } = await this.#c.model(p, ctx, brandId, name, 'model.download')
    const brand = await this.#c.d.store.brands.getBrand(brandId)
    const key = await this.#c.d.store.keys.get(model.signingKeyId)
    return encodeStream([brand!.accountAssertion, key!.accountKeyAssertion, model.modelAssertion].map((t) => decodeAssertion(t)))
  }

  /** Trust anchors; with a brand, its chain too (model.download in its base store). */
  async trustExport(p: Principal, ctx: RequestContext, brandId: string | undefined): Promise<Buffer> {
    if (brandId !== undefined) await this.#c.brand(p, ctx, brandId, 'model.download')
    else if (p.kind !== 'operator') throw new VaultError('SV_REQUEST_INVALID', 'name the brand (brand=...) whose trust chain you need', { details: { field: 'brand' } })
    return this.#c.d.brands.trustExport(brandId)
  }

  // --- system users -----------------------------------------------------------------------

  /**
   * A system-user assertion for models of a store (system-user.sign there).
   * Without models it holds for every model of the brand: then the permission
   * is needed in the brand's base store. Signed with the key of the first
   * model (or the brand's oldest enabled key), authority the brand. The
   * password is hashed here and never kept; the audit entry names the user,
   * models and validity, never the hash.
   */
  async signSystemUser(p: Principal, ctx: RequestContext, storeId: string, input: unknown): Promise<{ assertion: string; email: string; username: string; since: string; until: string; signKeyId: string }> {
    const { store, tree } = await this.#c.store(p, ctx, storeId, 'system-user.sign', 'system_user.signed')
    const models = (input !== null && typeof input === 'object' && Array.isArray((input as { models?: unknown }).models) ? (input as { models: unknown[] }).models : []).filter((m): m is string => typeof m === 'string')
    if (models.length === 0) {
      const base = tree.baseOf(store.brandId)!
      await this.#c.authorize(p, ctx, tree, 'system-user.sign', base, notFound.store(base.id), 'system_user.signed')
    }
    const records = []
    for (const m of models) {
      const rec = await this.#c.d.store.brands.getModel(store.brandId, m)
      if (!rec || rec.storeId !== storeId) throw new VaultError('SV_REQUEST_INVALID', `${m} is not a model of store ${storeId}`, { details: { field: 'models' } })
      records.push(rec)
    }
    const keyId = records[0]?.signingKeyId ?? (await this.#c.d.keys.listKeys(store.brandId)).filter((k) => k.purpose === 'brand' && k.enabled).sort((a, b) => a.createdAt - b.createdAt)[0]?.keyId
    if (!keyId) throw new VaultError('SV_SIGNING_KEY_UNAVAILABLE', `brand ${store.brandId} has no enabled signing key`, { details: { brandId: store.brandId } })
    const a = await signSystemUser(input, { brandId: store.brandId, signer: await this.#c.d.keys.signer(keyId), now: this.#c.d.now() })
    const facts = { email: a.email, username: a.username, models: a.models, serials: a.serials, since: new Date(a.since).toISOString(), until: new Date(a.until).toISOString(), revision: a.revision, password: a.password !== '', sshKeys: a.sshKeys.length, signKeyId: a.signKeyId }
    await this.#c.d.store.audit.append(this.#c.seal(p, ctx, { action: 'system_user.signed', brandId: store.brandId, storeId, target: { type: 'system-user', id: `${store.brandId}/${a.email}` }, after: facts }))
    this.#c.d.log.info({ brandId: store.brandId, storeId, email: a.email, username: a.username, models: a.models.length }, 'system_user.signed')
    return { assertion: a.text(), email: a.email, username: a.username, since: facts.since, until: facts.until, signKeyId: a.signKeyId }
  }

  // --- serials -------------------------------------------------------------------------------

  async getSerial(p: Principal, ctx: RequestContext, brandId: string, model: string, serial: string): Promise<SerialBinding & { issuedAtIso: string }> {
    await this.#c.model(p, ctx, brandId, model, 'serial.read')
    const b = await this.#c.d.store.registrations.getBinding(brandId, model, serial)
    if (!b) throw new VaultError('SV_SERIAL_NOT_FOUND', 'no such serial binding', { details: { serial } })
    return { ...b, issuedAtIso: new Date(b.issuedAt).toISOString() }
  }

  /** Lets the next registration of a serial use a new device key (a refused, replaced unit): serial.release. */
  async releaseSerial(p: Principal, ctx: RequestContext, brandId: string, model: string, serial: string): Promise<SerialBinding> {
    const { model: rec } = await this.#c.model(p, ctx, brandId, model, 'serial.release', 'serial.released')
    const before = await this.#c.d.store.registrations.getBinding(brandId, model, serial)
    const seal = this.#c.seal(p, ctx, { action: 'serial.released', brandId, storeId: rec.storeId, target: { type: 'serial', id: `${brandId}/${model}/${serial}` }, before: auditView('binding', before ? { ...before } : undefined), after: { released: true } })
    const b = await this.#c.d.store.registrations.release(brandId, model, serial, seal)
    this.#c.d.log.info({ brandId, model, serial }, 'serial.released')
    return b
  }
}

function stripUndefined<T extends object>(o: T): { [K in keyof T]-?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as never
}
