/**
 * The OpenID Connect client core of the admin login: people log in with an
 * e-mail address at any OpenID provider (Ubuntu One, Google, Keycloak, Azure
 * AD / Entra ID), by the authorization code flow with PKCE (S256), `state`
 * and `nonce`. This module returns data and throws VaultErrors; it does not
 * log, set cookies or know express. People, sessions, roles and routes are
 * built on top of it elsewhere.
 *
 * Contract
 * --------
 * `start(providerId, { returnTo })` discovers the provider (cached, see
 * below), makes a random `state`, `nonce` and PKCE verifier with openid-client,
 * saves a {@link LoginTransaction} through the injected
 * {@link LoginTransactionStore} and returns the authorization URL. The
 * caller keeps `transactionId` in the browser (a cookie) and redirects.
 *
 * `finish(transactionId, callbackUrl)` takes the transaction (atomic
 * get-and-delete, so a callback is good once across vault instances), then:
 *
 * | check                                    | done by                          |
 * |------------------------------------------|----------------------------------|
 * | transaction exists, unused, not expired  | here (store `take` + `now()`)    |
 * | `state` equals the transaction's         | here (constant time), and again by openid-client |
 * | `iss` response parameter (RFC 9207)      | openid-client, when sent         |
 * | `error=` in the callback                 | openid-client                    |
 * | code exchange with the PKCE verifier     | the provider (invalid_grant)     |
 * | id token `iss`, `aud`, `azp`, `exp`, `nbf`, `iat`, `sub` present | openid-client (oauth4webapi) |
 * | id token `nonce` equals the transaction's | openid-client                   |
 * | id token signature against the provider's JWKS | openid-client, switched on here with `enableNonRepudiationChecks` |
 * | e-mail claim present, well formed        | here                             |
 * | `email_verified` true (per provider)     | here                             |
 *
 * The signature check is the one that needs a word: openid-client, following
 * OIDC Core §3.1.3.7 item 6, by default trusts an id token that came straight
 * from the token endpoint over TLS and does not verify its signature. We turn
 * the check on for every provider: it costs one cached JWKS fetch, and it
 * keeps a TLS-terminating proxy or a mis-pointed token endpoint from minting
 * identities. It runs after the claim checks, so a token wrong in both ways
 * is reported by its claims.
 *
 * The e-mail claim (`emailClaim`, default `email`) is read from the id
 * token; when the id token lacks it (providers that follow OIDC Core §5.4
 * strictly put scope claims in the userinfo response only) it is read,
 * with `email_verified`, from the userinfo endpoint, whose `sub` openid-client
 * checks against the id token's. `email_verified` may be a boolean or the
 * string "true" (some providers send strings). Azure AD sends no
 * `email_verified` at all: switch `requireEmailVerified` off for it (and
 * consider `emailClaim: preferred_username` there).
 *
 * Times: the transaction's expiry uses the injected `now()`; the id token's
 * `exp`/`nbf` use the system clock, with openid-client's 30 s tolerance.
 *
 * Discovery (`{issuer}/.well-known/openid-configuration`) is cached per
 * provider for `discoveryTtlMs` (1 h); concurrent logins share one request.
 * A failed discovery is not cached, and a provider found unavailable during
 * the code exchange is rediscovered on the next login. Every request to the
 * provider (discovery, token, JWKS, userinfo) is bounded by `timeoutMs`.
 *
 * Errors (codes in shared/src/errors.ts, `details.reason` a stable word):
 *
 * | condition (openid-client error → where it is mapped)               | code                          | reason |
 * |---------------------------------------------------------------------|-------------------------------|--------|
 * | unknown provider id                                                 | SV_LOGIN_INVALID 400          | provider |
 * | transaction unknown or already used                                 | SV_LOGIN_INVALID 400          | transaction |
 * | transaction expired                                                 | SV_LOGIN_INVALID 400          | expired |
 * | callback `state` missing or not the transaction's                   | SV_LOGIN_INVALID 400          | state |
 * | callback `iss` not the provider's (OAUTH_INVALID_RESPONSE)          | SV_LOGIN_INVALID 400          | iss |
 * | callback without a code (OAUTH_INVALID_RESPONSE)                    | SV_LOGIN_INVALID 400          | code |
 * | callback with repeated parameters or tokens (OAUTH_INVALID_RESPONSE, OAUTH_UNSUPPORTED_OPERATION) | SV_LOGIN_INVALID 400 | callback |
 * | `error=` in the callback (AuthorizationResponseError)               | SV_LOGIN_INVALID 400          | provider_error (+ details.error) |
 * | … `error=temporarily_unavailable` or `server_error`                 | SV_OIDC_PROVIDER_UNAVAILABLE 503 | provider_error |
 * | token endpoint `invalid_grant` (ResponseBodyError)                  | SV_OIDC_CODE_INVALID 401      | invalid_grant |
 * | id token claim mismatch (OAUTH_JWT_CLAIM_COMPARISON_FAILED, cause.claim) | SV_OIDC_TOKEN_INVALID 401 | iss, aud, azp, nonce |
 * | id token time check (OAUTH_JWT_TIMESTAMP_CHECK_FAILED, cause.claim) | SV_OIDC_TOKEN_INVALID 401     | exp, nbf, auth_time |
 * | signature does not verify (OAUTH_INVALID_RESPONSE) / no key for its `kid` (OAUTH_KEY_SELECTION_FAILED) | SV_OIDC_TOKEN_INVALID 401 | signature |
 * | `alg` not allowed (OAUTH_INVALID_RESPONSE)                          | SV_OIDC_TOKEN_INVALID 401     | alg |
 * | required claim missing or mistyped (OAUTH_INVALID_RESPONSE)         | SV_OIDC_TOKEN_INVALID 401     | the claim: iss, aud, exp, iat, sub, nonce |
 * | no id token in the token response                                   | SV_OIDC_TOKEN_INVALID 401     | id_token |
 * | id token not a JWT (OAUTH_INVALID_RESPONSE, OAUTH_PARSE_ERROR)      | SV_OIDC_TOKEN_INVALID 401     | malformed |
 * | unsupported JWS feature, e.g. HS256 or `crit` (OAUTH_UNSUPPORTED_OPERATION) | SV_OIDC_TOKEN_INVALID 401 | unsupported |
 * | userinfo refused or its `sub` differs (OAUTH_JSON_ATTRIBUTE_COMPARISON, WWWAuthenticateChallengeError) | SV_OIDC_TOKEN_INVALID 401 | userinfo |
 * | e-mail claim missing or not an address                              | SV_OIDC_TOKEN_INVALID 401     | email |
 * | `email_verified` not true while required                            | SV_OIDC_TOKEN_INVALID 401     | email_verified |
 * | network failure: refused, reset, DNS (fetch TypeError)              | SV_OIDC_PROVIDER_UNAVAILABLE 503 | network |
 * | no answer in `timeoutMs` (OAUTH_TIMEOUT, OAUTH_ABORT)               | SV_OIDC_PROVIDER_UNAVAILABLE 503 | timeout |
 * | unexpected HTTP status, e.g. 5xx (OAUTH_RESPONSE_IS_NOT_CONFORM)    | SV_OIDC_PROVIDER_UNAVAILABLE 503 | status (+ details.status) |
 * | answer not JSON or not the expected shape (OAUTH_RESPONSE_IS_NOT_JSON, OAUTH_PARSE_ERROR, OAUTH_INVALID_RESPONSE) | SV_OIDC_PROVIDER_UNAVAILABLE 503 | response |
 * | token endpoint refuses our client (invalid_client, a 401 challenge, other error bodies) | SV_INTERNAL 500 | client_auth, token_endpoint (+ details.error) |
 * | discovered issuer is not the configured one (OAUTH_JSON_ATTRIBUTE_COMPARISON) | SV_INTERNAL 500       | issuer_mismatch |
 * | an http:// endpoint without allowInsecureHttp (OAUTH_HTTP_REQUEST_FORBIDDEN) | SV_INTERNAL 500        | insecure_http |
 * | metadata lacks an endpoint (OAUTH_MISSING_SERVER_METADATA)          | SV_INTERNAL 500               | metadata |
 * | anything else from openid-client                                    | SV_INTERNAL 500               | oidc_client |
 *
 * Some of these are told apart by openid-client's message text (the
 * OAUTH_INVALID_RESPONSE family carries no finer code); the loopback tests
 * in test/vault-server/auth/oidc.test.ts pin every row that a provider can
 * cause, so a library update that changes a message fails there first.
 * openid-client's own argument checks (TypeError with ERR_INVALID_ARG_*) are
 * bugs and are rethrown as they are.
 *
 * Secrets: no error message, `details` or `cause` carries a code, verifier,
 * state, nonce, token, client secret or transaction id. openid-client's
 * errors do (their causes hold the token response body and the callback
 * parameters), so they are never attached: `cause` is a fresh Error with the
 * library's error name, code and message only.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import * as client from 'openid-client'
import { z } from 'zod'
import { VaultError, type ErrorCode } from '@sv/shared'

// --- configuration ---------------------------------------------------------

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}

/** An http(s) URL without query or fragment; http only on loopback when `allowHttp`. */
function checkBaseUrl(value: string, allowHttp: boolean): string | undefined {
  let u: URL
  try {
    u = new URL(value)
  } catch {
    return 'expected a URL'
  }
  if (u.search || u.hash || u.username || u.password) return 'must have no query, fragment or credentials'
  if (u.protocol === 'https:') return undefined
  if (u.protocol === 'http:' && allowHttp && isLoopbackHost(u.hostname)) return undefined
  return allowHttp ? 'must be https (http only on a loopback address)' : 'must be https (http only with allowInsecureHttp, on a loopback address)'
}

const scopeToken = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'expected a scope token')

/**
 * One OpenID provider, as configured under `auth.oidc.providers[]`.
 * `clientSecret` is a secret (redact it when printing the config); without
 * it the client is public and PKCE alone binds the code to this login.
 */
export const OidcProviderConfigSchema = z
  .object({
    /** short slug used in URLs (/v1/auth/login/{id}) */
    id: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/, 'expected a slug of a-z, 0-9 and -, at most 32 characters'),
    /** shown on the login page ("Ubuntu One") */
    displayName: z.string().min(1).max(100),
    /** issuer identifier; discovery reads {issuer}/.well-known/openid-configuration */
    issuer: z.string().min(1).max(2048),
    clientId: z.string().min(1).max(1024),
    /** secret; absent for a public client */
    clientSecret: z.string().min(1).max(4096).optional(),
    /** default: client_secret_basic with a secret (OIDC Core's default), none without */
    tokenEndpointAuthMethod: z.enum(['client_secret_basic', 'client_secret_post', 'none']).optional(),
    scopes: z.array(scopeToken).min(1).max(32).refine((s) => s.includes('openid'), 'must include openid').default(['openid', 'email', 'profile']),
    /** claim holding the e-mail address (Azure AD: perhaps preferred_username) */
    emailClaim: z.string().min(1).max(100).default('email'),
    /** refuse e-mails the provider does not mark verified (Azure AD sends no email_verified: switch off there) */
    requireEmailVerified: z.boolean().default(true),
    /** allow http:// to a loopback issuer (tests and the development IdP only) */
    allowInsecureHttp: z.boolean().default(false),
  })
  .strict()
  .superRefine((p, ctx) => {
    const problem = checkBaseUrl(p.issuer, p.allowInsecureHttp)
    if (problem) ctx.addIssue({ code: 'custom', path: ['issuer'], message: problem })
    if (p.tokenEndpointAuthMethod === 'none' && p.clientSecret !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: 'must be absent with tokenEndpointAuthMethod none' })
    }
    if (p.tokenEndpointAuthMethod !== undefined && p.tokenEndpointAuthMethod !== 'none' && p.clientSecret === undefined) {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: `is required with tokenEndpointAuthMethod ${p.tokenEndpointAuthMethod}` })
    }
  })

export type OidcProviderConfig = z.infer<typeof OidcProviderConfigSchema>
export type OidcProviderConfigInput = z.input<typeof OidcProviderConfigSchema>

/** The list of providers, ids unique. */
export const OidcProvidersSchema = z
  .array(OidcProviderConfigSchema)
  .max(32)
  .superRefine((list, ctx) => {
    const seen = new Set<string>()
    list.forEach((p, i) => {
      if (seen.has(p.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate provider id ${p.id}` })
      seen.add(p.id)
    })
  })

/** `auth.oidc` of the vault config. */
export const OidcAuthConfigSchema = z.object({ providers: OidcProvidersSchema.default([]) }).strict()

/**
 * The vault's external base URL as browsers see it (behind any proxy), e.g.
 * https://vault.example.com or https://example.com/vault. http only on loopback.
 */
export const ExternalBaseUrlSchema = z.string().superRefine((v, ctx) => {
  const problem = checkBaseUrl(v, true)
  if (problem) ctx.addIssue({ code: 'custom', message: problem })
})

/** `{base}/v1/auth/callback`: the redirect URI to register at every provider. */
export function oidcRedirectUri(externalBaseUrl: string): string {
  const base = externalBaseUrl.endsWith('/') ? externalBaseUrl : `${externalBaseUrl}/`
  return new URL('v1/auth/callback', base).href
}

// --- transactions ----------------------------------------------------------

/**
 * One login in flight, between `start` and `finish`. Plain JSON, so a store
 * can keep it anywhere. `state`, `nonce` and above all `codeVerifier` are
 * secrets for its short life: keep it only as long as `expiresAt`, never log it.
 */
export interface LoginTransaction {
  /** random, 256 bits, base64url: the browser holds it (cookie) */
  id: string
  providerId: string
  state: string
  nonce: string
  /** PKCE code verifier (RFC 7636); the challenge sent was its S256 hash */
  codeVerifier: string
  /** relative path on our origin to go to after login */
  returnTo?: string
  /** ms since the epoch, from the injected clock */
  createdAt: number
  /** createdAt + transactionTtlMs (10 min) */
  expiresAt: number
}

/**
 * Where transactions wait for their callback; implemented over the vault's
 * store (LevelDB, PostgreSQL) so any vault instance can finish a login.
 */
export interface LoginTransactionStore {
  /** Saves a new transaction (ids are random: never an overwrite). Keep it at least until `expiresAt`; drop it any time after. */
  put(tx: LoginTransaction): Promise<void>
  /**
   * Atomic get-and-delete: returns the transaction and removes it, so of two
   * concurrent calls for one id (on any instances) at most one gets it.
   * `undefined` when absent. May return an expired one (`finish` checks).
   */
  take(id: string): Promise<LoginTransaction | undefined>
}

// --- the client ------------------------------------------------------------

export interface OidcLoginOptions {
  /** validated again here; see OidcProviderConfigSchema */
  providers: readonly OidcProviderConfigInput[]
  /** oidcRedirectUri(externalBaseUrl); registered at every provider */
  redirectUri: string
  transactions: LoginTransactionStore
  /** ms since the epoch (default Date.now) */
  now?: () => number
  /** bound on each request to a provider (default 10 s) */
  timeoutMs?: number
  /** life of a login transaction (default 10 min) */
  transactionTtlMs?: number
  /** how long a discovery document is reused (default 1 h) */
  discoveryTtlMs?: number
  /** Retry-After of SV_OIDC_PROVIDER_UNAVAILABLE (default 5 s) */
  retryAfterSeconds?: number
}

export interface OidcLoginStart {
  /** where to send the browser */
  authorizationUrl: string
  /** to keep in the browser (an HttpOnly cookie) and hand to finish() */
  transactionId: string
  /** ms since the epoch */
  expiresAt: number
}

/** Who logged in, as the provider vouched for them. */
export interface OidcIdentity {
  providerId: string
  /** the id token's `iss` */
  issuer: string
  /** the id token's `sub`: stable per provider, unlike the e-mail */
  subject: string
  /** lower-cased */
  email: string
  emailVerified: boolean
  name?: string
  /** the transaction's returnTo, when start() was given one */
  returnTo?: string
}

interface Discovered {
  config: Promise<client.Configuration>
  at: number
}

type Stage = 'discovery' | 'grant' | 'userinfo'

const DEFAULT_TIMEOUT_MS = 10_000
const DEFAULT_TRANSACTION_TTL_MS = 10 * 60_000
const DEFAULT_DISCOVERY_TTL_MS = 60 * 60_000
const EMAIL_RE = /^[^\s@]{1,64}@[^\s@]{1,255}$/

export class OidcLogin {
  readonly #providers: ReadonlyMap<string, OidcProviderConfig>
  readonly #redirectUri: string
  readonly #transactions: LoginTransactionStore
  readonly #now: () => number
  readonly #timeoutMs: number
  readonly #transactionTtlMs: number
  readonly #discoveryTtlMs: number
  readonly #retryAfter: number
  readonly #discovered = new Map<string, Discovered>()

  constructor(o: OidcLoginOptions) {
    const parsed = OidcProvidersSchema.safeParse(o.providers)
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `auth.oidc.providers.${i.path.join('.')}: ${i.message}`)
      throw new VaultError('SV_CONFIG_INVALID', `invalid OpenID Connect providers:\n  ${issues.join('\n  ')}`, { details: { issues } })
    }
    const redirect = ExternalBaseUrlSchema.safeParse(o.redirectUri)
    if (!redirect.success) throw new VaultError('SV_CONFIG_INVALID', 'invalid OpenID Connect redirect URI', { details: { issues: [`redirectUri: ${redirect.error.issues[0]?.message}`] } })
    if (typeof o.transactions?.put !== 'function' || typeof o.transactions.take !== 'function') throw new TypeError('transactions must be a LoginTransactionStore')
    this.#providers = new Map(parsed.data.map((p) => [p.id, p]))
    this.#redirectUri = o.redirectUri
    this.#transactions = o.transactions
    this.#now = o.now ?? Date.now
    this.#timeoutMs = positive(o.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs')
    this.#transactionTtlMs = positive(o.transactionTtlMs, DEFAULT_TRANSACTION_TTL_MS, 'transactionTtlMs')
    this.#discoveryTtlMs = positive(o.discoveryTtlMs, DEFAULT_DISCOVERY_TTL_MS, 'discoveryTtlMs')
    this.#retryAfter = positive(o.retryAfterSeconds, 5, 'retryAfterSeconds')
  }

  /** The configured providers, for a login page: id and display name only. */
  providers(): { id: string; displayName: string }[] {
    return [...this.#providers.values()].map((p) => ({ id: p.id, displayName: p.displayName }))
  }

  /**
   * Begins a login at `providerId`. `returnTo` must be a path on our origin
   * (`/dashboard?x=1`); anything else (`https://…`, `//host`, `/\host`,
   * control characters) is refused with SV_REQUEST_INVALID
   * `{ field: 'returnTo', reason: 'return_to' }`, so the login cannot be
   * turned into an open redirect.
   *
   * Throws SV_LOGIN_INVALID (provider), SV_REQUEST_INVALID (return_to),
   * SV_OIDC_PROVIDER_UNAVAILABLE (discovery), SV_INTERNAL (misconfiguration),
   * and whatever the store's `put` throws.
   */
  async start(providerId: string, options: { returnTo?: string } = {}): Promise<OidcLoginStart> {
    const provider = this.#provider(providerId)
    const returnTo = options.returnTo === undefined ? undefined : checkReturnTo(options.returnTo)
    const config = await this.#configuration(provider)
    const state = client.randomState()
    const nonce = client.randomNonce()
    const codeVerifier = client.randomPKCECodeVerifier()
    const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier)
    let url: URL
    try {
      url = client.buildAuthorizationUrl(config, {
        redirect_uri: this.#redirectUri,
        response_type: 'code',
        scope: provider.scopes.join(' '),
        state,
        nonce,
        code_challenge: codeChallenge,
        code_challenge_method: 'S256',
      })
    } catch (err) {
      throw this.#mapError(err, 'discovery', provider)
    }
    const createdAt = this.#now()
    const tx: LoginTransaction = {
      id: randomBytes(32).toString('base64url'),
      providerId: provider.id,
      state,
      nonce,
      codeVerifier,
      ...(returnTo !== undefined ? { returnTo } : {}),
      createdAt,
      expiresAt: createdAt + this.#transactionTtlMs,
    }
    await this.#transactions.put(tx)
    return { authorizationUrl: url.href, transactionId: tx.id, expiresAt: tx.expiresAt }
  }

  /**
   * Completes the login whose transaction is `transactionId`, given the URL
   * the provider redirected the browser to (only its query is read: the code
   * is exchanged for our configured redirect URI, whatever host the request
   * came in on). The transaction is used up whatever the outcome.
   *
   * Throws SV_LOGIN_INVALID, SV_OIDC_CODE_INVALID, SV_OIDC_TOKEN_INVALID,
   * SV_OIDC_PROVIDER_UNAVAILABLE or SV_INTERNAL (see the table above).
   */
  async finish(transactionId: string, callbackUrl: URL): Promise<OidcIdentity> {
    if (typeof transactionId !== 'string') throw new TypeError('transactionId must be a string')
    if (!(callbackUrl instanceof URL)) throw new TypeError('callbackUrl must be a URL')
    const tx = transactionId.length > 0 && transactionId.length <= 256 ? await this.#transactions.take(transactionId) : undefined
    if (!tx) throw loginInvalid('transaction', 'no such login in progress (unknown, or already finished); start again')
    if (this.#now() >= tx.expiresAt) throw loginInvalid('expired', 'the login took too long; start again', tx.providerId)
    const provider = this.#provider(tx.providerId)
    const states = callbackUrl.searchParams.getAll('state')
    if (states.length !== 1 || !constantEqual(states[0]!, tx.state)) {
      throw loginInvalid('state', 'the callback does not belong to this login (state mismatch); start again', provider.id)
    }
    const config = await this.#configuration(provider)
    const current = new URL(this.#redirectUri)
    current.search = callbackUrl.search
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>
    try {
      tokens = await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: tx.codeVerifier,
        expectedState: tx.state,
        expectedNonce: tx.nonce,
        idTokenExpected: true,
      })
    } catch (err) {
      throw this.#mapError(err, 'grant', provider)
    }
    const claims = tokens.claims()
    if (!claims) throw tokenInvalid('id_token', 'the provider sent no ID token', provider.id)
    let source: Record<string, unknown> = claims
    if (claims[provider.emailClaim] === undefined && config.serverMetadata().userinfo_endpoint) {
      try {
        source = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
      } catch (err) {
        throw this.#mapError(err, 'userinfo', provider)
      }
    }
    const raw = source[provider.emailClaim]
    if (typeof raw !== 'string' || !EMAIL_RE.test(raw.trim())) {
      throw tokenInvalid('email', `the provider sent no e-mail address in claim ${provider.emailClaim}`, provider.id)
    }
    const emailVerified = source.email_verified === true || source.email_verified === 'true'
    if (provider.requireEmailVerified && !emailVerified) {
      throw tokenInvalid('email_verified', 'the provider does not vouch for this e-mail address (email_verified is not true)', provider.id)
    }
    const name = typeof source.name === 'string' && source.name.length > 0 ? source.name : typeof claims.name === 'string' && claims.name.length > 0 ? claims.name : undefined
    return {
      providerId: provider.id,
      issuer: claims.iss,
      subject: claims.sub,
      email: raw.trim().toLowerCase(),
      emailVerified,
      ...(name !== undefined ? { name } : {}),
      ...(tx.returnTo !== undefined ? { returnTo: tx.returnTo } : {}),
    }
  }

  #provider(id: string): OidcProviderConfig {
    const p = typeof id === 'string' ? this.#providers.get(id) : undefined
    if (!p) throw loginInvalid('provider', 'no such identity provider')
    return p
  }

  /** The provider's openid-client Configuration: cached, shared while in flight, never cached on failure. */
  #configuration(p: OidcProviderConfig): Promise<client.Configuration> {
    const now = this.#now()
    const hit = this.#discovered.get(p.id)
    if (hit && now - hit.at < this.#discoveryTtlMs && now >= hit.at) return hit.config
    const entry: Discovered = { config: this.#discover(p), at: now }
    this.#discovered.set(p.id, entry)
    entry.config.catch(() => this.#forget(p.id, entry))
    return entry.config
  }

  #forget(id: string, entry?: Discovered): void {
    if (entry === undefined || this.#discovered.get(id) === entry) this.#discovered.delete(id)
  }

  async #discover(p: OidcProviderConfig): Promise<client.Configuration> {
    const method = p.tokenEndpointAuthMethod ?? (p.clientSecret !== undefined ? 'client_secret_basic' : 'none')
    const auth = method === 'client_secret_basic' ? client.ClientSecretBasic(p.clientSecret!) : method === 'client_secret_post' ? client.ClientSecretPost(p.clientSecret!) : client.None()
    try {
      const config = await client.discovery(new URL(p.issuer), p.clientId, {}, auth, {
        timeout: this.#timeoutMs / 1000,
        ...(p.allowInsecureHttp ? { execute: [client.allowInsecureRequests] } : {}),
      })
      // see the header: verify id token signatures even from the token endpoint
      client.enableNonRepudiationChecks(config)
      return config
    } catch (err) {
      throw this.#mapError(err, 'discovery', p)
    }
  }

  /** openid-client's error → our VaultError (the table in the header). */
  #mapError(err: unknown, stage: Stage, p: OidcProviderConfig): Error {
    const mapped = classify(err, stage)
    if (mapped === 'rethrow') return err as Error
    const details: Record<string, unknown> = { providerId: p.id, reason: mapped.reason, ...mapped.extra }
    const options = { details, cause: sanitisedCause(err), ...(mapped.code === 'SV_OIDC_PROVIDER_UNAVAILABLE' ? { retryAfter: this.#retryAfter } : {}) }
    // the next login rediscovers: the provider may have moved its endpoints or keys
    if (mapped.code === 'SV_OIDC_PROVIDER_UNAVAILABLE' && stage !== 'discovery') this.#forget(p.id)
    return new VaultError(mapped.code, mapped.message, options)
  }
}

// --- helpers ---------------------------------------------------------------

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new TypeError(`${name} must be a positive number`)
  return v
}

function constantEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * A path on our origin, normalised by the URL parser; refuses absolute and
 * protocol-relative URLs, backslashes (browsers read `/\host` as `//host`)
 * and control characters.
 */
export function checkReturnTo(value: string): string {
  const refuse = (): never => {
    throw new VaultError('SV_REQUEST_INVALID', 'returnTo must be a path on this site, starting with a single /', { details: { field: 'returnTo', reason: 'return_to' } })
  }
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) refuse()
  if (!value.startsWith('/') || value.startsWith('//') || /[\\\u0000-\u001f\u007f]/.test(value)) refuse()
  const base = new URL('https://vault.invalid/')
  let u: URL
  try {
    u = new URL(value, base)
  } catch {
    return refuse()
  }
  if (u.origin !== base.origin) refuse()
  return `${u.pathname}${u.search}${u.hash}`
}

function loginInvalid(reason: string, message: string, providerId?: string): VaultError {
  return new VaultError('SV_LOGIN_INVALID', message, { details: { ...(providerId ? { providerId } : {}), reason } })
}

function tokenInvalid(reason: string, message: string, providerId: string): VaultError {
  return new VaultError('SV_OIDC_TOKEN_INVALID', message, { details: { providerId, reason } })
}

interface Mapped {
  code: ErrorCode
  reason: string
  message: string
  extra?: Record<string, unknown>
}

const ID_TOKEN_CLAIMS = new Set(['iss', 'aud', 'azp', 'exp', 'iat', 'nbf', 'sub', 'nonce', 'auth_time'])

/** An OAuth error code as sent by a provider, if it looks like one (RFC 6749 §4.1.2.1: %x20-21 / %x23-5B / %x5D-7E). */
function oauthErrorCode(v: unknown): string | undefined {
  return typeof v === 'string' && /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/.test(v) ? v : undefined
}

function classify(err: unknown, stage: Stage): Mapped | 'rethrow' {
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; error?: unknown; status?: unknown } | null
  const code = e && typeof e === 'object' && typeof e.code === 'string' ? e.code : undefined
  const unavailable = (reason: string, what: string, extra?: Record<string, unknown>): Mapped => ({
    code: 'SV_OIDC_PROVIDER_UNAVAILABLE',
    reason,
    message: `the identity provider is unavailable (${what})`,
    ...(extra ? { extra } : {}),
  })
  const token = (reason: string): Mapped => ({ code: 'SV_OIDC_TOKEN_INVALID', reason, message: `the ID token was refused (${reason})` })
  const internal = (reason: string, what: string, extra?: Record<string, unknown>): Mapped => ({
    code: 'SV_INTERNAL',
    reason,
    message: `OpenID Connect login failed on our side: ${what}`,
    ...(extra ? { extra } : {}),
  })

  if (err instanceof TypeError) {
    // openid-client's argument checks are bugs; every other TypeError out of
    // it is fetch's ("fetch failed", cause ECONNREFUSED, ENOTFOUND, …)
    if (code?.startsWith('ERR_INVALID_ARG')) return 'rethrow'
    if (code === 'ERR_INVALID_URL') return unavailable('response', 'the metadata holds an invalid URL')
    return unavailable('network', 'unreachable')
  }
  // the OperationProcessingError wrapped by openid-client's ClientError, or the error itself
  const inner = e?.cause instanceof Error ? (e.cause as Error & { cause?: unknown }) : undefined
  const innerMessage = String((inner ?? e)?.message ?? '')
  const facts = (inner ? inner.cause : e?.cause) as { claim?: unknown; status?: unknown } | undefined

  switch (code) {
    case 'OAUTH_TIMEOUT':
    case 'OAUTH_ABORT':
      return unavailable('timeout', 'no answer in time')
    case 'OAUTH_RESPONSE_IS_NOT_CONFORM': {
      const status = typeof (e?.cause as { status?: unknown } | undefined)?.status === 'number' ? (e!.cause as { status: number }).status : undefined
      return unavailable('status', `unexpected HTTP status${status ? ` ${status}` : ''}`, status ? { status } : undefined)
    }
    case 'OAUTH_RESPONSE_IS_NOT_JSON':
      return unavailable('response', 'the answer is not JSON')
    case 'OAUTH_PARSE_ERROR':
      return /JWT/.test(innerMessage) ? token('malformed') : unavailable('response', 'the answer does not parse')
    case 'OAUTH_HTTP_REQUEST_FORBIDDEN':
    case 'OAUTH_REQUEST_PROTOCOL_FORBIDDEN':
      return internal('insecure_http', 'the provider names an endpoint that is not https')
    case 'OAUTH_MISSING_SERVER_METADATA':
    case 'OAUTH_INVALID_SERVER_METADATA':
      return internal('metadata', 'the provider metadata lacks an endpoint')
    case 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED':
      if (stage === 'userinfo') return token('userinfo')
      return internal('issuer_mismatch', 'the discovered issuer is not the configured one')
    case 'OAUTH_JWT_CLAIM_COMPARISON_FAILED': {
      const claim = typeof facts?.claim === 'string' && ID_TOKEN_CLAIMS.has(facts.claim) ? facts.claim : 'claims'
      return token(claim)
    }
    case 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED': {
      const claim = typeof facts?.claim === 'string' && ID_TOKEN_CLAIMS.has(facts.claim) ? facts.claim : 'exp'
      return token(claim)
    }
    case 'OAUTH_KEY_SELECTION_FAILED':
      return token('signature')
    case 'OAUTH_UNSUPPORTED_OPERATION':
      if (/implicit and hybrid/.test(innerMessage)) return { code: 'SV_LOGIN_INVALID', reason: 'callback', message: 'the callback carries tokens; only the code flow is used' }
      return stage === 'grant' ? token('unsupported') : internal('oidc_client', 'unsupported operation')
    case 'OAUTH_INVALID_RESPONSE':
      return classifyInvalidResponse(innerMessage, stage, token, unavailable)
    case 'OAUTH_AUTHORIZATION_RESPONSE_ERROR': {
      const error = oauthErrorCode(e?.error) ?? 'unknown'
      if (error === 'temporarily_unavailable' || error === 'server_error') return unavailable('provider_error', `the provider answered ${error}`, { error })
      return { code: 'SV_LOGIN_INVALID', reason: 'provider_error', message: `the identity provider ended the login: ${error}`, extra: { error } }
    }
    case 'OAUTH_RESPONSE_BODY_ERROR': {
      const error = oauthErrorCode(e?.error) ?? 'unknown'
      const status = typeof e?.status === 'number' ? e.status : undefined
      if (error === 'invalid_grant') return { code: 'SV_OIDC_CODE_INVALID', reason: 'invalid_grant', message: 'the identity provider refused the authorization code (used, expired or PKCE mismatch); start again', extra: { error } }
      if (error === 'temporarily_unavailable' || error === 'server_error' || (status !== undefined && status >= 500)) return unavailable('status', `the provider answered ${error}`, { error, ...(status ? { status } : {}) })
      if (error === 'invalid_client' || error === 'unauthorized_client') return internal('client_auth', `the provider refused our client (${error})`, { error })
      return internal('token_endpoint', `the token endpoint answered ${error}`, { error, ...(status ? { status } : {}) })
    }
    case 'OAUTH_WWW_AUTHENTICATE_CHALLENGE':
      return stage === 'userinfo' ? token('userinfo') : internal('client_auth', 'the provider refused our client credentials')
    default:
      return internal('oidc_client', 'unexpected error from the OpenID Connect client')
  }
}

/** OAUTH_INVALID_RESPONSE has one code for many faults; its message tells them apart. */
function classifyInvalidResponse(
  message: string,
  stage: Stage,
  token: (reason: string) => Mapped,
  unavailable: (reason: string, what: string) => Mapped,
): Mapped {
  if (/signature verification failed/.test(message)) return token('signature')
  if (/JWT "alg"/.test(message)) return token('alg')
  if (/"iss" \(issuer\) response parameter|response parameter "iss"/.test(message)) {
    return { code: 'SV_LOGIN_INVALID', reason: 'iss', message: 'the callback names another issuer than the provider of this login' }
  }
  if (/"state" response parameter|response parameter "state"/.test(message)) {
    return { code: 'SV_LOGIN_INVALID', reason: 'state', message: 'the callback does not belong to this login (state mismatch); start again' }
  }
  if (/no authorization code/.test(message)) {
    return { code: 'SV_LOGIN_INVALID', reason: 'code', message: 'the callback carries no authorization code' }
  }
  if (/parameter must be provided only once|contains a JARM response/.test(message)) {
    return { code: 'SV_LOGIN_INVALID', reason: 'callback', message: 'the callback parameters are malformed' }
  }
  if (/"response" body "id_token"/.test(message)) return token('id_token')
  if (stage === 'grant') {
    const claim = /JWT "(\w+)"|ID Token "(\w+)"/.exec(message)
    const name = claim?.[1] ?? claim?.[2]
    if (name !== undefined && ID_TOKEN_CLAIMS.has(name)) return token(name)
    if (/Invalid JWT|JWT Header|JWT Payload/.test(message)) return token('malformed')
  }
  if (stage === 'userinfo' && /"sub"/.test(message)) return token('userinfo')
  return unavailable('response', 'the answer is not what OpenID Connect expects')
}

/**
 * The library's error reduced to its name, code and message. Its own cause
 * chain holds the token response (tokens), the callback parameters (code,
 * state) and claims, so it is never attached, not even as a non-enumerable
 * `cause`, because util.inspect and pino print those.
 */
function sanitisedCause(err: unknown): Error {
  const e = err as { name?: unknown; code?: unknown; message?: unknown; cause?: unknown; error?: unknown }
  const name = typeof e?.name === 'string' ? e.name : 'Error'
  const code = typeof e?.code === 'string' ? e.code : undefined
  const inner = e?.cause instanceof Error ? e.cause : undefined
  // fetch's TypeError: its cause is the socket error (ECONNREFUSED, address); nothing secret
  const sysCode = (inner as { code?: unknown } | undefined)?.code
  const sys = typeof sysCode === 'string' ? ` (${sysCode})` : ''
  const parts = [typeof e?.message === 'string' ? e.message : String(err)]
  if (inner && inner.message && inner.message !== parts[0]) parts.push(inner.message)
  const error = oauthErrorCode(e?.error)
  if (error) parts.push(`error=${error}`)
  const out = new Error(`${parts.join(': ')}${sys}`)
  out.name = name
  if (code) Object.assign(out, { code })
  return out
}
