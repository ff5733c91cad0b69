/**
 * Logins: an OpenID Connect code flow (auth/oidc.ts, on openid-client) ends
 * in a session for a person the vault knows. A person is identified by
 * e-mail and must have been invited (given a role in a store) first: the
 * identity provider proves the address, the vault decides what it may do.
 *
 * - The first login binds the provider account (issuer + subject) to the
 *   person; a later login with the same e-mail but another subject at that
 *   issuer (an address given to someone else) is refused.
 * - A session is a random secret in an HttpOnly cookie; the store keeps its
 *   sha256 only. It ends after `sessionMaxMs`, or `sessionIdleMs` unused, or
 *   at logout. Its CSRF token is a MAC of it (AccessService.csrfToken).
 * - Logins, refusals and logouts go into the audit log.
 */
import { randomBytes } from 'node:crypto'
import { VaultError } from '@sv/shared'
import type { Logger } from '../../logger.js'
import type { PersonRecord, SessionRecord, VaultStore } from '../../store/store.js'
import type { OidcLogin, OidcLoginStart } from '../../auth/oidc.js'
import { type AccessService, type Principal, sha256Hex } from '../admin/access.js'
import type { AuditService } from '../admin/audit.js'
import type { RequestContext } from '../admin/core.js'

export interface LoginServiceOptions {
  store: VaultStore
  oidc: OidcLogin | undefined
  access: AccessService
  audit: AuditService
  log: Logger
  now: () => number
  /** absolute life of a session */
  sessionMaxMs: number
}

export interface LoginResult {
  /** the session secret: the cookie's value */
  session: string
  csrfToken: string
  person: PersonRecord
  expiresAt: number
  returnTo?: string
}

export class LoginService {
  readonly #o: LoginServiceOptions

  constructor(options: LoginServiceOptions) {
    this.#o = options
  }

  #oidc(): OidcLogin {
    if (!this.#o.oidc) throw new VaultError('SV_LOGIN_INVALID', 'no OpenID Connect provider is configured (auth.oidc.providers)', { details: { reason: 'provider' } })
    return this.#o.oidc
  }

  providers(): { id: string; displayName: string }[] {
    return this.#o.oidc?.providers() ?? []
  }

  start(providerId: string, returnTo: string | undefined): Promise<OidcLoginStart> {
    return this.#oidc().start(providerId, returnTo === undefined ? {} : { returnTo })
  }

  async #refuse(ctx: RequestContext, email: string, reason: string, message: string): Promise<never> {
    const seal = this.#o.audit.seal({ actor: { kind: 'person', id: email, email }, action: 'login.refused', outcome: 'denied', code: 'SV_LOGIN_REFUSED', after: { reason }, ...(ctx.requestId ? { requestId: ctx.requestId } : {}), source: { ...(ctx.ip ? { ip: ctx.ip } : {}), transport: 'https' } })
    await this.#o.store.audit.append(seal).catch((err: unknown) => this.#o.log.error({ err }, 'login.refused'))
    this.#o.log.info({ email, reason }, 'login.refused')
    throw new VaultError('SV_LOGIN_REFUSED', message, { details: { reason } })
  }

  /** The callback: the provider's answer checked, the person found, a session made. */
  async finish(transactionId: string, callbackUrl: URL, ctx: RequestContext): Promise<LoginResult> {
    const id = await this.#oidc().finish(transactionId, callbackUrl)
    const person = await this.#o.store.people.getByEmail(id.email)
    if (!person) return this.#refuse(ctx, id.email, 'not-invited', `${id.email} has no role in any store of this vault; ask a Store Administrator to invite this address`)
    if (person.disabled) return this.#refuse(ctx, id.email, 'disabled', `${id.email} is disabled in this vault`)
    const bound = person.identities.find((x) => x.issuer === id.issuer)
    if (bound && bound.subject !== id.subject) return this.#refuse(ctx, id.email, 'identity', `${id.email} logged in before with another account of ${id.issuer}`)
    const now = this.#o.now()
    const updated: PersonRecord = { ...person, lastLoginAt: now, updatedAt: now, ...(bound ? {} : { identities: [...person.identities, { providerId: id.providerId, issuer: id.issuer, subject: id.subject }] }), ...(person.displayName === undefined && id.name ? { displayName: id.name } : {}) }
    await this.#o.store.people.update(updated)
    const secret = randomBytes(32).toString('base64url')
    const hash = sha256Hex(secret)
    const session: SessionRecord = {
      hash,
      personId: person.id,
      providerId: id.providerId,
      createdAt: now,
      expiresAt: now + this.#o.sessionMaxMs,
      idleExpiresAt: Math.min(now + this.#o.access.sessionIdleMs, now + this.#o.sessionMaxMs),
      ...(ctx.ip ? { ip: ctx.ip } : {}),
      ...(ctx.userAgent ? { userAgent: ctx.userAgent.slice(0, 200) } : {}),
    }
    await this.#o.store.sessions.create(session)
    await this.#o.store.audit.append(
      this.#o.audit.seal({ actor: { kind: 'person', id: person.id, email: person.email }, action: 'session.created', target: { type: 'person', id: person.id }, after: { providerId: id.providerId, issuer: id.issuer, firstLogin: !bound }, ...(ctx.requestId ? { requestId: ctx.requestId } : {}), source: { ...(ctx.ip ? { ip: ctx.ip } : {}), transport: 'https' } }),
    )
    this.#o.log.info({ personId: person.id, providerId: id.providerId }, 'session.created')
    return { session: secret, csrfToken: this.#o.access.csrfToken(hash), person: updated, expiresAt: session.expiresAt, ...(id.returnTo ? { returnTo: id.returnTo } : {}) }
  }

  /** Ends the caller's session (a session principal; tokens have nothing to end). */
  async logout(p: Principal, ctx: RequestContext): Promise<boolean> {
    if (p.kind !== 'person' || p.via.kind !== 'session') return false
    const ended = await this.#o.store.sessions.delete(p.via.session.hash)
    if (ended) {
      await this.#o.store.audit.append(this.#o.audit.seal({ actor: { kind: 'person', id: p.person.id, email: p.person.email }, action: 'session.ended', target: { type: 'person', id: p.person.id }, ...(ctx.requestId ? { requestId: ctx.requestId } : {}) }))
      this.#o.log.info({ personId: p.person.id }, 'session.ended')
    }
    return ended
  }
}
