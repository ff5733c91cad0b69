/**
 * The admin API's system-user request (POST /v1/admin/stores/{store}/system-users):
 * the wire schema, with the value checks that need no lookup. Signing, the
 * password hash and snapd's rules between fields are in the vault
 * (vault-server/src/services/system-users.ts, whose header documents every
 * field, default and where we are stricter than snapd).
 */
import { z } from 'zod'
import { MODEL_NAME_RE, parseRfc3339 } from '../assertion/checks.js'
import { SERIAL_PATTERN } from './serial-number.js'

/** rounds snapd accepts in a hash (asserts/system_user.go) */
export const SNAPD_MIN_ROUNDS = 5000
export const SNAPD_MAX_ROUNDS = 999_999_999
/** rounds hashPassword accepts (see the header comment) */
export const MAX_HASH_ROUNDS = 100_000

const MAX_VALID_FOR_S = 10 * 366 * 86_400
export const MAX_REVISION = 2 ** 31 - 1

const ATEXT = "[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+"
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
const EMAIL_RE = new RegExp(`^${ATEXT}(?:\\.${ATEXT})*@(?:${LABEL}\\.)+${LABEL}$`)
const USERNAME_RE = /^[a-z0-9][-a-z0-9+._]*$/
export const SHA512CRYPT_RE = /^\$6\$(?:rounds=(\d{1,9})\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$/
const SSH_KEY_TYPE_RE = /^(?:ssh-|ecdsa-|sk-)[A-Za-z0-9.@-]+$/
const SSH_KEY_DATA_RE = /^[A-Za-z0-9+/]{16,}={0,3}$/
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/

const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Text that encodes to the same UTF-8 it came from (no lone surrogates) and has no control characters. */
function isCleanText(s: string): boolean {
  return !CONTROL_RE.test(s) && !LONE_SURROGATE_RE.test(s)
}

/**
 * An authorized_keys line: optional options, then a key type and its base64
 * somewhere as two adjacent words (token by token: a regular expression
 * with `.*` on both sides is quadratic).
 */
function isSshKeyLine(s: string): boolean {
  const words = s.split(/\s+/)
  for (let i = 0; i + 1 < words.length; i++) if (SSH_KEY_TYPE_RE.test(words[i]!) && SSH_KEY_DATA_RE.test(words[i + 1]!)) return true
  return false
}

/** Why a plain password cannot be hashed here, as an issue code; undefined when it can. */
export function passwordProblem(plain: string): string | undefined {
  if (!isCleanText(plain)) return 'password-characters'
  if (new TextEncoder().encode(plain).length % 64 === 0) return 'password-length-multiple-of-64'
  return undefined
}

function isRfc3339(s: string): boolean {
  return parseRfc3339(s) !== undefined
}

function noDuplicates(path: string) {
  return (list: readonly string[], ctx: z.RefinementCtx): void => {
    const seen = new Set<string>()
    list.forEach((v, i) => {
      if (seen.has(v)) ctx.addIssue({ code: 'custom', path: [i], message: `duplicate entry in ${path}`, params: { reason: 'duplicate' } })
      seen.add(v)
    })
  }
}

const rfc3339 = z.string().max(64, { abort: true }).refine(isRfc3339, { message: 'must be an RFC 3339 date-time', params: { reason: 'not-rfc3339' } })

/**
 * The request. Parsing never echoes values in its issues (zod 4 leaves the
 * input out unless asked), so a plain password cannot leak through them.
 */
export const SystemUserRequestSchema = z
  .strictObject({
    email: z.string().max(254, { abort: true }).regex(EMAIL_RE),
    username: z.string().min(1).max(32, { abort: true }).regex(USERNAME_RE),
    name: z
      .string()
      .min(1)
      .max(256, { abort: true })
      .refine((s) => isCleanText(s) && !s.includes(':'), { message: 'no control characters or ":"', params: { reason: 'characters' } })
      .optional(),
    password: z
      .string()
      .min(1)
      .max(256, { abort: true })
      .superRefine((s, ctx) => {
        const reason = passwordProblem(s)
        if (reason) ctx.addIssue({ code: 'custom', message: 'this password cannot be hashed here', params: { reason } })
      })
      .optional(),
    passwordRounds: z.int().min(SNAPD_MIN_ROUNDS).max(MAX_HASH_ROUNDS).optional(),
    passwordHash: z
      .string()
      .max(200, { abort: true })
      .regex(SHA512CRYPT_RE)
      .refine(
        (s) => {
          const r = SHA512CRYPT_RE.exec(s)?.[1]
          return r === undefined || (Number(r) >= SNAPD_MIN_ROUNDS && Number(r) <= SNAPD_MAX_ROUNDS)
        },
        { message: `rounds must be ${SNAPD_MIN_ROUNDS}..${SNAPD_MAX_ROUNDS}`, params: { reason: 'rounds-out-of-bounds' } },
      )
      .optional(),
    sshKeys: z
      .array(
        z
          .string()
          .min(1)
          .max(4096, { abort: true })
          .refine(isCleanText, { message: 'one line, no control characters', params: { reason: 'characters' } })
          .refine(isSshKeyLine, { message: 'an OpenSSH public key line', params: { reason: 'not-an-ssh-key' } }),
      )
      .max(100)
      .superRefine(noDuplicates('sshKeys'))
      .optional(),
    since: rfc3339.optional(),
    until: rfc3339.optional(),
    validFor: z.int().min(1).max(MAX_VALID_FOR_S).optional(),
    models: z
      .array(z.string().min(1).max(128, { abort: true }).regex(MODEL_NAME_RE).refine((s) => s.toLowerCase() === s, { message: 'model names are lower case', params: { reason: 'upper-case' } }))
      .max(100)
      .superRefine(noDuplicates('models')),
    serials: z.array(z.string().regex(SERIAL_PATTERN)).max(1000).superRefine(noDuplicates('serials')).optional(),
    forcePasswordChange: z.boolean().optional(),
    revision: z.int().min(1).max(MAX_REVISION).optional(),
  })
  .superRefine((r, ctx) => {
    const issue = (path: string, reason: string, message: string): void => ctx.addIssue({ code: 'custom', path: [path], message, params: { reason } })
    if (r.password !== undefined && r.passwordHash !== undefined) issue('passwordHash', 'password-exclusive', 'give password or passwordHash, not both')
    if (r.password === undefined && r.passwordHash === undefined && (r.sshKeys === undefined || r.sshKeys.length === 0)) {
      issue('password', 'credential-required', 'give a password, a passwordHash or sshKeys')
    }
    if (r.passwordRounds !== undefined && r.password === undefined) issue('passwordRounds', 'rounds-need-password', 'passwordRounds applies to password only')
    if (r.until !== undefined && r.validFor !== undefined) issue('validFor', 'until-exclusive', 'give until or validFor, not both')
  })

/** The parsed request. */
export type SystemUserRequest = z.output<typeof SystemUserRequestSchema>

