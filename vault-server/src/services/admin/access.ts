/**
 * Who is calling, and may they: authentication of admin API callers and the
 * one `authorize(principal, permission, scope)` every admin operation asks.
 *
 * Callers:
 * - the operator: a break-glass admin token (`svat_...`, made only by the
 *   CLI on the vault host), allowed everything;
 * - a person through a session cookie (after an OpenID Connect login), which
 *   must bring the session's CSRF token on every state-changing call;
 * - a person through a personal token (`svpt_...`): an expiring subset of
 *   that person's permissions and stores.
 * Anything else is 401 SV_UNAUTHENTICATED (details.reason: missing,
 * malformed, unknown, expired, revoked, disabled).
 *
 * Decisions:
 * - a store the caller has no role in (through a grant there, or an
 *   inheritable grant above it) is invisible: the operation answers the
 *   target's not-found code (404), exactly as for one that does not exist;
 * - a visible store where no role of the caller has the permission (or the
 *   token does not carry it) is 403 SV_FORBIDDEN naming the permission and
 *   the store;
 * - vault permissions are the operator's (403 for everyone else).
 */
import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto'
import { Buffer } from 'node:buffer'
import { VaultError } from '@sv/shared'
import { MAX_STORE_DEPTH, tokenId, type AuditActor, type GrantRecord, type PersonRecord, type Role, type SessionRecord, type StoreRecord, type TokenRecord, type VaultStore } from '../../store/store.js'
import { isStorePermission, roleAllows, type Permission, type StorePermission } from './permissions.js'

export type Principal = OperatorPrincipal | PersonPrincipal

export interface OperatorPrincipal {
  kind: 'operator'
  token: TokenRecord
  /** a command on the vault host (the CLI's in-process admin API), not an admin token */
  cli?: { user: string }
}

export interface PersonPrincipal {
  kind: 'person'
  person: PersonRecord
  /** the person's grants, by store id */
  grants: ReadonlyMap<string, GrantRecord>
  via: { kind: 'session'; session: SessionRecord } | { kind: 'token'; token: TokenRecord }
}

export interface Credentials {
  /** the Authorization header */
  authorization?: string
  /** the session cookie's value */
  session?: string
  /** the X-CSRF-Token header */
  csrf?: string
  /** the HTTP method: a cookie session needs the CSRF token for anything but GET and HEAD */
  method: string
  /** false: a check that is not the person's activity (a live stream's re-check) does not extend the session's idle time */
  touch?: boolean
}

export interface AccessOptions {
  store: VaultStore
  /** master key: the CSRF secret is derived from it */
  masterKey: Buffer | KeyObject
  now?: () => number
  /** how long an unused session lives (default 1 h); the absolute lifetime is the session's expiresAt */
  sessionIdleMs?: number
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
/** session idle expiry and token last-use are written at most this often */
const TOUCH_EVERY_MS = 60_000

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

function unauthenticated(reason: string, message: string): VaultError {
  return new VaultError('SV_UNAUTHENTICATED', message, { details: { reason } })
}

/** The store tree of the vault, from one snapshot of the store records. */
export class StoreTree {
  readonly stores: ReadonlyMap<string, StoreRecord>
  readonly version: number
  readonly #children = new Map<string, string[]>()

  constructor(stores: readonly StoreRecord[], version: number) {
    this.stores = new Map(stores.map((s) => [s.id, s]))
    this.version = version
    for (const s of stores) if (s.parentId !== undefined) this.#children.set(s.parentId, [...(this.#children.get(s.parentId) ?? []), s.id])
  }

  get(id: string): StoreRecord | undefined {
    return this.stores.get(id)
  }

  /** The store and its ancestors, nearest first (bounded by the tree's depth limit). */
  lineage(id: string): StoreRecord[] {
    const out: StoreRecord[] = []
    for (let s = this.stores.get(id); s && out.length <= MAX_STORE_DEPTH; s = s.parentId === undefined ? undefined : this.stores.get(s.parentId)) out.push(s)
    return out
  }

  /** The store and every store below it. */
  subtree(id: string): StoreRecord[] {
    const out: StoreRecord[] = []
    const walk = (sid: string, depth: number): void => {
      const s = this.stores.get(sid)
      if (!s || depth > MAX_STORE_DEPTH) return
      out.push(s)
      for (const c of this.#children.get(sid) ?? []) walk(c, depth + 1)
    }
    walk(id, 0)
    return out
  }

  baseOf(brandId: string): StoreRecord | undefined {
    for (const s of this.stores.values()) if (s.brandId === brandId && s.kind === 'base') return s
    return undefined
  }
}

export class AccessService {
  readonly #store: VaultStore
  readonly #now: () => number
  readonly #idleMs: number
  readonly #csrfKey: Buffer
  /** in-memory operator credentials of CLI commands on the vault host (never stored) */
  readonly #cli = new Map<string, string>()
  #tree: StoreTree | undefined

  constructor(options: AccessOptions) {
    this.#store = options.store
    this.#now = options.now ?? Date.now
    this.#idleMs = options.sessionIdleMs ?? 3_600_000
    this.#csrfKey = Buffer.from(hkdfSync('sha256', options.masterKey, Buffer.alloc(0), 'serial-vault csrf v1', 32))
  }

  /**
   * A bearer credential for a command on the vault host, valid in this
   * process only until `forget` (the CLI runs its admin commands through the
   * admin API of a vault it opened in-process). Audited as actor `cli`.
   */
  cliCredential(user: string): { token: string; forget(): void } {
    const token = `svcl_${randomBytes(32).toString('base64url')}`
    const hash = sha256Hex(token)
    this.#cli.set(hash, user)
    return { token, forget: () => void this.#cli.delete(hash) }
  }

  get sessionIdleMs(): number {
    return this.#idleMs
  }

  /** The CSRF token of a session: a MAC of its hash, so no storage and every instance agrees. */
  csrfToken(sessionHash: string): string {
    return createHmac('sha256', this.#csrfKey).update(sessionHash).digest('base64url')
  }

  /** The store tree, read again only when a store changed (on any instance). */
  async tree(): Promise<StoreTree> {
    const version = await this.#store.stores.version()
    if (this.#tree && this.#tree.version === version) return this.#tree
    const tree = new StoreTree(await this.#store.stores.list(), version)
    this.#tree = tree
    return tree
  }

  /** Forget the cached tree (after a store change in this process). */
  invalidate(): void {
    this.#tree = undefined
  }

  async authenticate(c: Credentials): Promise<Principal> {
    if (c.authorization !== undefined) return this.#bearer(c.authorization)
    if (c.session !== undefined) return this.#session(c)
    throw unauthenticated('missing', 'admin routes need "Authorization: Bearer <token>" or a login session')
  }

  async #bearer(header: string): Promise<Principal> {
    const m = BEARER.exec(header)
    if (!m) throw unauthenticated('malformed', 'the Authorization header is not "Bearer <token>" with a well-formed token')
    const hash = sha256Hex(m[1]!)
    const cliUser = this.#cli.get(hash)
    if (cliUser !== undefined) return { kind: 'operator', token: { hash, kind: 'admin', name: `cli:${cliUser}`, roles: ['admin'], createdAt: 0 }, cli: { user: cliUser } }
    const token = await this.#store.tokens.get(hash)
    if (!token) throw unauthenticated('unknown', 'the bearer token is not valid')
    if (token.revokedAt !== undefined) throw unauthenticated('revoked', 'the bearer token was revoked')
    const now = this.#now()
    if (token.expiresAt !== undefined && token.expiresAt <= now) throw unauthenticated('expired', 'the bearer token has expired')
    if ((token.lastUsedAt ?? 0) + TOUCH_EVERY_MS < now) void this.#store.tokens.touch(token.hash, now).catch(() => {})
    if (token.kind === 'admin') return { kind: 'operator', token }
    const person = token.personId === undefined ? undefined : await this.#store.people.get(token.personId)
    if (!person) throw unauthenticated('unknown', 'the bearer token is not valid')
    if (person.disabled) throw unauthenticated('disabled', 'the person of this token is disabled')
    return { kind: 'person', person, grants: await this.#grants(person.id), via: { kind: 'token', token } }
  }

  async #session(c: Credentials): Promise<Principal> {
    if (!/^[A-Za-z0-9_-]{20,128}$/.test(c.session!)) throw new VaultError('SV_SESSION_INVALID', 'the session cookie is malformed; log in again', { details: { reason: 'malformed' } })
    const hash = sha256Hex(c.session!)
    const session = await this.#store.sessions.get(hash)
    const now = this.#now()
    if (!session) throw new VaultError('SV_SESSION_INVALID', 'the session has ended; log in again', { details: { reason: 'unknown' } })
    if (session.expiresAt <= now || session.idleExpiresAt <= now) {
      void this.#store.sessions.delete(hash).catch(() => {})
      throw new VaultError('SV_SESSION_INVALID', 'the session has expired; log in again', { details: { reason: 'expired' } })
    }
    if (!SAFE_METHODS.has(c.method.toUpperCase())) {
      const want = Buffer.from(this.csrfToken(hash))
      const got = Buffer.from(c.csrf ?? '')
      if (got.length !== want.length || !timingSafeEqual(got, want)) {
        throw new VaultError('SV_CSRF_INVALID', 'a state-changing call with a session cookie needs the X-CSRF-Token header of that session', { details: { header: 'x-csrf-token' } })
      }
    }
    const person = await this.#store.people.get(session.personId)
    if (!person || person.disabled) throw new VaultError('SV_SESSION_INVALID', 'the session has ended; log in again', { details: { reason: 'disabled' } })
    const idle = Math.min(session.expiresAt, now + this.#idleMs)
    if (c.touch !== false && idle - session.idleExpiresAt > TOUCH_EVERY_MS) void this.#store.sessions.touch(hash, idle).catch(() => {})
    return { kind: 'person', person, grants: await this.#grants(person.id), via: { kind: 'session', session } }
  }

  async #grants(personId: string): Promise<Map<string, GrantRecord>> {
    return new Map((await this.#store.grants.listForPerson(personId)).map((g) => [g.storeId, g]))
  }

  /** The roles a person holds in a store: its own grant, and inheritable grants above it. */
  rolesIn(p: PersonPrincipal, tree: StoreTree, storeId: string): Role[] {
    const roles: Role[] = []
    const lineage = tree.lineage(storeId)
    for (let i = 0; i < lineage.length; i++) {
      const g = p.grants.get(lineage[i]!.id)
      if (g && (i === 0 || g.inheritable)) roles.push(g.role)
    }
    return roles
  }

  /** Whether the caller can see the store at all (any role there, within a token's stores). */
  canSee(p: Principal, tree: StoreTree, storeId: string): boolean {
    if (p.kind === 'operator') return tree.get(storeId) !== undefined
    if (p.via.kind === 'token' && p.via.token.stores !== undefined && !p.via.token.stores.includes(storeId)) return false
    return this.rolesIn(p, tree, storeId).length > 0
  }

  /** Whether the caller holds `permission` in the store (visibility included). */
  allows(p: Principal, tree: StoreTree, permission: StorePermission, storeId: string): boolean {
    if (p.kind === 'operator') return tree.get(storeId) !== undefined
    if (!this.canSee(p, tree, storeId)) return false
    if (!tokenCarries(p, permission)) return false
    return this.rolesIn(p, tree, storeId).some((r) => roleAllows(r, permission))
  }

  /**
   * The decision. `scope` is the store the operation acts in, or 'vault'.
   * `notFound` makes the target's own 404 (a store the caller cannot see
   * answers exactly as one that does not exist).
   */
  authorize(p: Principal, tree: StoreTree, permission: Permission, scope: StoreRecord | 'vault', notFound: () => VaultError): void {
    if (p.kind === 'operator') return
    if (scope === 'vault' || !isStorePermission(permission)) {
      throw new VaultError('SV_FORBIDDEN', `${permission} is the operator's (the vault's admin token)`, { details: { permission, scope: 'vault' } })
    }
    if (!this.canSee(p, tree, scope.id)) throw notFound()
    if (!tokenCarries(p, permission) || !this.rolesIn(p, tree, scope.id).some((r) => roleAllows(r, permission))) {
      throw new VaultError('SV_FORBIDDEN', `${permission} is not allowed in store ${scope.id}`, { details: { permission, store: scope.id } })
    }
  }
}

function tokenCarries(p: PersonPrincipal, permission: StorePermission): boolean {
  if (p.via.kind !== 'token') return true
  const perms = p.via.token.permissions ?? []
  return perms.includes('*') || perms.includes(permission)
}

/** The audit actor of a principal. */
export function actorOf(p: Principal): AuditActor {
  if (p.kind === 'operator') return p.cli ? { kind: 'cli', id: p.cli.user } : { kind: 'admin-token', id: tokenId(p.token.hash), name: p.token.name }
  if (p.via.kind === 'token') return { kind: 'personal-token', id: p.person.id, email: p.person.email, tokenId: tokenId(p.via.token.hash) }
  return { kind: 'person', id: p.person.id, email: p.person.email }
}

/** A short label of a principal for records (grantedBy, revokedBy, ...). */
export function labelOf(p: Principal): string {
  return p.kind === 'operator' ? `token:${p.token.name}` : p.person.email
}
