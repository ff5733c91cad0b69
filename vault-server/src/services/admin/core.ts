/**
 * What every admin operation shares: its dependencies, finding the target of
 * an operation together with the store it acts in, the authorization
 * decision (denied writes are audited), audit seals with the caller and the
 * request, and cache invalidation after a change.
 */
import { VaultError } from '@sv/shared'
import type { Logger } from '../../logger.js'
import type { KeyStore, SigningKeyInfo } from '../../keys/keystore.js'
import type { AuditSeal, BrandRecord, ModelRecord, StoreRecord, VaultStore } from '../../store/store.js'
import type { BrandService } from '../brand-service.js'
import type { ModelService } from '../model-service.js'
import type { RegistrationService } from '../registration/registration-service.js'
import type { LiveHub } from '../live/live-hub.js'
import { type AccessService, type Principal, type StoreTree, actorOf } from './access.js'
import type { AuditDraft, AuditService } from './audit.js'
import type { Permission, StorePermission } from './permissions.js'

/** Where an admin call comes from, for the audit log. */
export interface RequestContext {
  requestId?: string
  ip?: string
  userAgent?: string
  /** 'https' for the admin API, 'cli' for commands on the vault host */
  transport?: string
}

export interface AdminDeps {
  store: VaultStore
  access: AccessService
  audit: AuditService
  brands: BrandService
  models: ModelService
  keys: KeyStore
  registration: RegistrationService
  /** the live streams of this instance (the Live page); absent in the CLI */
  live?: LiveHub
  log: Logger
  now: () => number
}

export const notFound = {
  store: (id: string) => () => new VaultError('SV_STORE_NOT_FOUND', `no store ${id}`, { details: { storeId: id } }),
  brand: (id: string) => () => new VaultError('SV_BRAND_UNKNOWN', `no brand ${id}`, { details: { brandId: id } }),
  model: (brandId: string, model: string) => () => new VaultError('SV_MODEL_UNKNOWN', `no model ${model} for brand ${brandId}`, { details: { brandId, model } }),
  key: (keyId: string) => () => new VaultError('SV_KEY_NOT_FOUND', `no signing key ${keyId}`, { details: { keyId } }),
}

export class AdminCore {
  readonly d: AdminDeps

  constructor(deps: AdminDeps) {
    this.d = deps
  }

  tree(): Promise<StoreTree> {
    return this.d.access.tree()
  }

  /**
   * The decision for one operation. A refused write (403) is audited as
   * `denied` before the refusal goes out (best effort: the refusal is
   * answered even if the audit write fails, and that failure is logged).
   */
  async authorize(p: Principal, ctx: RequestContext, tree: StoreTree, permission: Permission, scope: StoreRecord | 'vault', nf: () => VaultError, write: string | undefined): Promise<void> {
    try {
      this.d.access.authorize(p, tree, permission, scope, nf)
    } catch (e) {
      if (write && e instanceof VaultError && e.code === 'SV_FORBIDDEN') {
        const seal = this.seal(p, ctx, { action: write, outcome: 'denied', code: e.code, ...(scope !== 'vault' ? { storeId: scope.id, brandId: scope.brandId } : {}), after: { permission } })
        await this.d.store.audit.append(seal).catch((err: unknown) => this.d.log.error({ err, action: write }, 'admin.denied'))
      }
      if (e instanceof VaultError && e.code === 'SV_FORBIDDEN') this.d.log.info({ permission, store: scope === 'vault' ? 'vault' : scope.id, actor: actorOf(p).id, requestId: ctx.requestId }, 'admin.denied')
      throw e
    }
  }

  /** A store by id, checked for `permission` (an invisible store reads as missing). */
  async store(p: Principal, ctx: RequestContext, id: string, permission: StorePermission, write?: string): Promise<{ store: StoreRecord; tree: StoreTree }> {
    const tree = await this.tree()
    const store = tree.get(id)
    if (!store) throw notFound.store(id)()
    await this.authorize(p, ctx, tree, permission, store, notFound.store(id), write)
    return { store, tree }
  }

  /** A model, checked for `permission` in its store. */
  async model(p: Principal, ctx: RequestContext, brandId: string, name: string, permission: StorePermission, write?: string): Promise<{ model: ModelRecord; store: StoreRecord; tree: StoreTree }> {
    const model = await this.d.store.brands.getModel(brandId, name)
    if (!model) throw notFound.model(brandId, name)()
    const tree = await this.tree()
    const store = tree.get(model.storeId)
    if (!store) throw notFound.model(brandId, name)()
    await this.authorize(p, ctx, tree, permission, store, notFound.model(brandId, name), write)
    return { model, store, tree }
  }

  /** A brand and its base store, checked for `permission` there. */
  async brand(p: Principal, ctx: RequestContext, brandId: string, permission: StorePermission, write?: string): Promise<{ brand: BrandRecord; base: StoreRecord; tree: StoreTree }> {
    const brand = await this.d.store.brands.getBrand(brandId)
    const tree = await this.tree()
    const base = tree.baseOf(brandId)
    if (!brand || !base) throw notFound.brand(brandId)()
    await this.authorize(p, ctx, tree, permission, base, notFound.brand(brandId), write)
    return { brand, base, tree }
  }

  /** A signing key, checked for `permission` in its brand's base store (root keys: the operator's). */
  async key(p: Principal, ctx: RequestContext, keyId: string, permission: StorePermission, write?: string): Promise<{ key: SigningKeyInfo; base: StoreRecord | undefined }> {
    const key = (await this.d.keys.listKeys()).find((k) => k.keyId === keyId)
    if (!key) throw notFound.key(keyId)()
    const tree = await this.tree()
    const base = key.purpose === 'brand' ? tree.baseOf(key.accountId) : undefined
    await this.authorize(p, ctx, tree, permission, base ?? 'vault', notFound.key(keyId), write)
    return { key, base }
  }

  /** An audit seal for an action of `p` in this request. */
  seal(p: Principal, ctx: RequestContext, draft: Omit<AuditDraft, 'actor' | 'source' | 'requestId'>): AuditSeal {
    const source: AuditDraft['source'] = {}
    if (ctx.ip !== undefined) source.ip = ctx.ip
    if (ctx.userAgent !== undefined) source.userAgent = ctx.userAgent.slice(0, 200)
    if (ctx.transport !== undefined) source.transport = ctx.transport
    return this.d.audit.seal({ ...draft, actor: actorOf(p), ...(Object.keys(source).length ? { source } : {}), ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}) })
  }

  /** After a change of stores, models or keys: the caches of this process forget. */
  invalidate(): void {
    this.d.registration.invalidate()
    this.d.access.invalidate()
  }
}
