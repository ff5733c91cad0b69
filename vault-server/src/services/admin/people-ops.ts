/**
 * Admin operations on stores, their people and roles, and personal tokens.
 */
import { randomBytes } from 'node:crypto'
import { VaultError, type AdminWire } from '@sv/shared'
import { MAX_STORE_DEPTH, tokenId, type GrantRecord, type PersonRecord, type StoreRecord, type TokenRecord } from '../../store/store.js'
import { type PersonPrincipal, type Principal, type StoreTree, labelOf, sha256Hex } from './access.js'
import { auditView } from './audit.js'
import { type AdminCore, type RequestContext, notFound } from './core.js'
import { ALL_STORE_PERMISSIONS, isStorePermission } from './permissions.js'
import { memberView, storeView, tokenView } from './views.js'

const DAY = 86_400_000

/** A new person id: `prs_` + 20 random base32 characters. */
export function newPersonId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  return `prs_${[...randomBytes(20)].map((b) => alphabet[b & 31]).join('')}`
}

/** Personal tokens: `svpt_` + 32 random bytes base64url (admin tokens are `svat_`). */
export function newPersonalToken(): string {
  return `svpt_${randomBytes(32).toString('base64url')}`
}

function tokenNotFound(id: string): VaultError {
  return new VaultError('SV_TOKEN_NOT_FOUND', `no token ${id}`, { details: { tokenId: id } })
}

export class PeopleOps {
  readonly #c: AdminCore

  constructor(core: AdminCore) {
    this.#c = core
  }

  // --- stores ------------------------------------------------------------------------------

  /** Stores the caller can see, with the caller's roles in each. */
  async listStores(p: Principal, filter: { brandId?: string } = {}): Promise<AdminWire.StoreWire[]> {
    const tree = await this.#c.tree()
    return [...tree.stores.values()]
      .filter((s) => (filter.brandId === undefined || s.brandId === filter.brandId) && this.#c.d.access.canSee(p, tree, s.id))
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((s) => storeView(s, p.kind === 'person' ? this.#c.d.access.rolesIn(p, tree, s.id) : undefined))
  }

  async getStore(p: Principal, ctx: RequestContext, id: string): Promise<AdminWire.StoreWire> {
    const { store, tree } = await this.#c.store(p, ctx, id, 'store.read')
    return storeView(store, p.kind === 'person' ? this.#c.d.access.rolesIn(p, tree, id) : undefined)
  }

  /** A product or ecosystem store under `parent` (store.manage there). */
  async createStore(p: Principal, ctx: RequestContext, input: AdminWire.CreateStoreRequest): Promise<AdminWire.StoreWire> {
    const { store: parent, tree } = await this.#c.store(p, ctx, input.parent, 'store.manage', 'store.created')
    if (tree.lineage(parent.id).length >= MAX_STORE_DEPTH + 1) throw new VaultError('SV_REQUEST_INVALID', `stores nest at most ${MAX_STORE_DEPTH} deep`, { details: { field: 'parent' } })
    const now = this.#c.d.now()
    const store: StoreRecord = {
      id: input.id,
      brandId: parent.brandId,
      kind: input.kind,
      parentId: parent.id,
      displayName: input.displayName,
      ...(input.partner ? { partner: input.partner } : {}),
      requirePivotReview: input.requirePivotReview ?? false,
      createdAt: now,
      updatedAt: now,
    }
    await this.#c.d.store.stores.create(store, this.#c.seal(p, ctx, { action: 'store.created', brandId: store.brandId, storeId: store.id, target: { type: 'store', id: store.id }, after: store }))
    this.#c.invalidate()
    this.#c.d.log.info({ storeId: store.id, parent: parent.id, kind: store.kind }, 'store.created')
    return storeView(store)
  }

  async updateStore(p: Principal, ctx: RequestContext, id: string, input: AdminWire.UpdateStoreRequest): Promise<AdminWire.StoreWire> {
    const { store: cur } = await this.#c.store(p, ctx, id, 'store.manage', 'store.updated')
    if (input.partner && cur.kind !== 'ecosystem') throw new VaultError('SV_REQUEST_INVALID', 'only ecosystem stores have a partner', { details: { field: 'partner' } })
    const next: StoreRecord = { ...cur, updatedAt: this.#c.d.now() }
    if (input.displayName !== undefined) next.displayName = input.displayName
    if (input.requirePivotReview !== undefined) next.requirePivotReview = input.requirePivotReview
    if (input.partner === null) delete next.partner
    else if (input.partner !== undefined) next.partner = input.partner
    await this.#c.d.store.stores.update(next, this.#c.seal(p, ctx, { action: 'store.updated', brandId: cur.brandId, storeId: id, target: { type: 'store', id }, before: cur, after: next }))
    this.#c.invalidate()
    this.#c.d.log.info({ storeId: id }, 'store.updated')
    return storeView(next)
  }

  // --- members -------------------------------------------------------------------------------

  async listMembers(p: Principal, ctx: RequestContext, storeId: string): Promise<AdminWire.MemberWire[]> {
    await this.#c.store(p, ctx, storeId, 'member.read')
    const out: AdminWire.MemberWire[] = []
    for (const g of await this.#c.d.store.grants.listForStore(storeId)) {
      const person = await this.#c.d.store.people.get(g.personId)
      if (person) out.push(memberView(g, person))
    }
    return out.sort((a, b) => (a.email < b.email ? -1 : 1))
  }

  /**
   * Gives `email` a role in the store (member.manage), replacing the role
   * they had there; invites the person first when the vault does not know
   * the e-mail (they log in with it through OpenID Connect).
   */
  async setMember(p: Principal, ctx: RequestContext, storeId: string, email: string, input: AdminWire.SetMemberRequest): Promise<AdminWire.MemberWire> {
    const { store } = await this.#c.store(p, ctx, storeId, 'member.manage', 'grant.changed')
    const address = email.toLowerCase()
    if (!/^[^\s@<>()[\]\\,;:"]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$/.test(address) || address.length > 254) throw new VaultError('SV_REQUEST_INVALID', 'not an e-mail address', { details: { field: 'email' } })
    let person = await this.#c.d.store.people.getByEmail(address)
    const now = this.#c.d.now()
    if (!person) {
      person = { id: newPersonId(), email: address, ...(input.displayName ? { displayName: input.displayName } : {}), disabled: false, identities: [], createdAt: now, updatedAt: now }
      await this.#c.d.store.people.create(person, this.#c.seal(p, ctx, { action: 'person.invited', brandId: store.brandId, storeId, target: { type: 'person', id: person.id }, after: auditView('person', { ...person }) }))
      this.#c.d.log.info({ personId: person.id, storeId }, 'person.invited')
    }
    const before = (await this.#c.d.store.grants.listForPerson(person.id)).find((g) => g.storeId === storeId)
    const grant: GrantRecord = { personId: person.id, storeId, role: input.role, inheritable: input.inheritable ?? false, grantedBy: labelOf(p), createdAt: now }
    await this.#c.d.store.grants.put(grant, this.#c.seal(p, ctx, { action: 'grant.changed', brandId: store.brandId, storeId, target: { type: 'person', id: person.id }, ...(before ? { before } : {}), after: { ...grant, email: address } }))
    this.#c.d.log.info({ personId: person.id, storeId, role: grant.role, inheritable: grant.inheritable }, 'grant.changed')
    return memberView(grant, person)
  }

  async removeMember(p: Principal, ctx: RequestContext, storeId: string, email: string): Promise<{ removed: boolean }> {
    const { store } = await this.#c.store(p, ctx, storeId, 'member.manage', 'grant.removed')
    const person = await this.#c.d.store.people.getByEmail(email)
    if (!person) throw new VaultError('SV_PERSON_NOT_FOUND', `no person ${email} in store ${storeId}`, { details: { email } })
    const removed = await this.#c.d.store.grants.delete(person.id, storeId, this.#c.seal(p, ctx, { action: 'grant.removed', brandId: store.brandId, storeId, target: { type: 'person', id: person.id }, after: { email: person.email } }))
    if (!removed) throw new VaultError('SV_PERSON_NOT_FOUND', `${email} has no role in store ${storeId}`, { details: { email } })
    this.#c.d.log.info({ personId: person.id, storeId }, 'grant.removed')
    return { removed: true }
  }

  /** Everyone the vault knows (the operator's: people.read). */
  async listPeople(p: Principal, ctx: RequestContext): Promise<Array<{ id: string; email: string; displayName?: string; disabled: boolean; createdAt: string; lastLoginAt?: string; stores: Array<{ storeId: string; role: string; inheritable: boolean }> }>> {
    await this.#c.authorize(p, ctx, await this.#c.tree(), 'people.read', 'vault', () => new VaultError('SV_PERSON_NOT_FOUND', 'no such person'), undefined)
    const out = []
    for (const person of await this.#c.d.store.people.list()) {
      const grants = await this.#c.d.store.grants.listForPerson(person.id)
      out.push({
        id: person.id,
        email: person.email,
        ...(person.displayName ? { displayName: person.displayName } : {}),
        disabled: person.disabled,
        createdAt: new Date(person.createdAt).toISOString(),
        ...(person.lastLoginAt ? { lastLoginAt: new Date(person.lastLoginAt).toISOString() } : {}),
        stores: grants.map((g) => ({ storeId: g.storeId, role: g.role, inheritable: g.inheritable })),
      })
    }
    return out
  }

  // --- tokens ---------------------------------------------------------------------------------

  /** The caller's own tokens (the operator: the admin tokens). */
  async listTokens(p: Principal): Promise<AdminWire.TokenWire[]> {
    if (p.kind === 'operator') return (await this.#c.d.store.tokens.list({ kind: 'admin' })).map((t) => tokenView(t))
    return (await this.#c.d.store.tokens.list({ personId: p.person.id })).map((t) => tokenView(t, p.person.email))
  }

  /**
   * A personal token for the caller: a subset of their permissions ('*' for
   * all of them) and of the stores they can see, expiring in 1-365 days.
   * Resolves with the token in clear, shown once. Admin tokens are made only
   * by the CLI on the vault host.
   */
  async createToken(p: Principal, ctx: RequestContext, input: AdminWire.CreateTokenRequest): Promise<{ token: string; record: AdminWire.TokenWire }> {
    if (p.kind !== 'person') throw new VaultError('SV_FORBIDDEN', 'admin tokens are made on the vault host with `vault-server token create`; personal tokens belong to people', { details: { permission: 'token.create', scope: 'person' } })
    if (p.via.kind === 'token') throw new VaultError('SV_FORBIDDEN', 'a personal token cannot make another one: log in', { details: { permission: 'token.create', scope: 'person' } })
    for (const perm of input.permissions) {
      if (perm !== '*' && !isStorePermission(perm)) throw new VaultError('SV_REQUEST_INVALID', `no permission ${perm}; one of: *, ${ALL_STORE_PERMISSIONS.join(', ')}`, { details: { field: 'permissions' } })
    }
    const tree = await this.#c.tree()
    for (const s of input.stores ?? []) if (!this.#c.d.access.canSee(p, tree, s)) throw notFound.store(s)()
    const now = this.#c.d.now()
    const secret = newPersonalToken()
    const record: TokenRecord = {
      hash: sha256Hex(secret),
      kind: 'personal',
      name: input.name,
      roles: [],
      personId: p.person.id,
      permissions: [...new Set(input.permissions)],
      ...(input.stores ? { stores: [...new Set(input.stores)] } : {}),
      expiresAt: now + input.expiresInDays * DAY,
      createdAt: now,
    }
    await this.#c.d.store.tokens.put(record, this.#c.seal(p, ctx, { action: 'token.created', target: { type: 'token', id: tokenId(record.hash) }, after: auditView('token', { ...record }) }))
    this.#c.d.log.info({ personId: p.person.id, tokenId: tokenId(record.hash) }, 'token.created')
    return { token: secret, record: tokenView(record, p.person.email) }
  }

  /** Tokens of the store's people (token.manage there). */
  async listStoreTokens(p: Principal, ctx: RequestContext, storeId: string): Promise<AdminWire.TokenWire[]> {
    await this.#c.store(p, ctx, storeId, 'token.manage')
    const out: AdminWire.TokenWire[] = []
    for (const g of await this.#c.d.store.grants.listForStore(storeId)) {
      const person = await this.#c.d.store.people.get(g.personId)
      for (const t of await this.#c.d.store.tokens.list({ personId: g.personId })) out.push(tokenView(t, person?.email))
    }
    return out
  }

  /**
   * Revokes a token by id: one's own; or a person's, with token.manage in a
   * store where that person holds a role; the operator any. A token the
   * caller may not revoke reads as missing.
   */
  async revokeToken(p: Principal, ctx: RequestContext, id: string): Promise<AdminWire.TokenWire> {
    if (!/^[0-9a-f]{12}$/.test(id)) throw tokenNotFound(id)
    const candidates = p.kind === 'person' ? await this.#c.d.store.tokens.list({ personId: p.person.id }) : []
    let token = candidates.find((t) => tokenId(t.hash) === id)
    if (!token) {
      const all = (await this.#c.d.store.tokens.list()).filter((t) => tokenId(t.hash) === id)
      token = all[0]
      if (!token) throw tokenNotFound(id)
      if (p.kind === 'person' && !(await this.#mayManageTokensOf(p, token, await this.#c.tree()))) throw tokenNotFound(id)
    }
    const revoked = await this.#c.d.store.tokens.revoke(token.hash, { at: this.#c.d.now(), by: labelOf(p) }, this.#c.seal(p, ctx, { action: 'token.revoked', target: { type: 'token', id }, before: auditView('token', { ...token }) }))
    this.#c.d.log.info({ tokenId: id }, 'token.revoked')
    return tokenView(revoked)
  }

  async #mayManageTokensOf(p: PersonPrincipal, token: TokenRecord, tree: StoreTree): Promise<boolean> {
    if (token.personId === undefined) return false
    const grants = await this.#c.d.store.grants.listForPerson(token.personId)
    return grants.some((g) => this.#c.d.access.allows(p, tree, 'token.manage', g.storeId))
  }

  /** The caller: who, how, and what they hold in each store they can see. */
  async me(p: Principal, csrfToken?: string): Promise<AdminWire.MeWire> {
    const tree = await this.#c.tree()
    const stores = [...tree.stores.values()]
      .filter((s) => this.#c.d.access.canSee(p, tree, s.id))
      .map((s) => ({
        id: s.id,
        brandId: s.brandId,
        kind: s.kind,
        roles: p.kind === 'person' ? this.#c.d.access.rolesIn(p, tree, s.id) : [],
        permissions: ALL_STORE_PERMISSIONS.filter((perm) => this.#c.d.access.allows(p, tree, perm, s.id)),
      }))
    if (p.kind === 'operator') return { kind: 'operator', via: 'admin-token', token: { id: tokenId(p.token.hash), name: p.token.name }, stores }
    const person: PersonRecord = p.person
    const base = { kind: 'person' as const, person: { id: person.id, email: person.email, ...(person.displayName ? { displayName: person.displayName } : {}) }, stores }
    if (p.via.kind === 'session') return { ...base, via: 'session', ...(csrfToken ? { csrfToken } : {}) }
    const t = p.via.token
    return { ...base, via: 'personal-token', token: { id: tokenId(t.hash), name: t.name, ...(t.permissions ? { permissions: t.permissions } : {}), ...(t.stores ? { stores: t.stores } : {}), ...(t.expiresAt ? { expiresAt: new Date(t.expiresAt).toISOString() } : {}) } }
  }
}
