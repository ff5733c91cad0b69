/**
 * Signing `system-user` assertions (spec §4.7): a Store Administrator asks for
 * a local user on the brand's devices, with a password hash and/or SSH keys,
 * valid between `since` and `until`, for some models (and serials) of the brand.
 * This is the signing core only: no store, no permissions, no audit, no log.
 *
 * Input ({@link SystemUserRequestSchema}, unknown keys refused):
 * - `email` (primary key with the brand), `username`, `name?`;
 * - `password` (plain text, hashed here with sha512crypt and a fresh salt; it
 *   is never stored, logged, returned or echoed in an error) or `passwordHash`
 *   (a crypt(3) hash made elsewhere), never both; `passwordRounds?` for
 *   `password` only; `sshKeys?`; at least one of the three;
 * - `since?` (RFC 3339, default: now), `until?` (RFC 3339) or `validFor?`
 *   (seconds after since), never both;
 * - `models` (model names, may be empty: then the user is for every model of
 *   the brand), `serials?` (needs exactly one model; sets `format: 1`);
 * - `forcePasswordChange?` (the user must change the password at first login);
 * - `revision?` (see below).
 * The caller checks that the models belong to the brand: this module does not
 * look anything up.
 *
 * Defaults:
 * - `until`: one calendar year after `since` (Go's AddDate(1, 0, 0) in UTC,
 *   which is what snapd compares with), whether or not models are given. That
 *   is the longest snapd allows when `models` is empty, and a sane lifetime
 *   for a credential otherwise; pass `until` or `validFor` for another one.
 * - `revision`: the signing time in Unix seconds. snapd keeps one system-user
 *   per (brand-id, email) and silently ignores a new one whose revision is not
 *   higher than the one it holds (assertstate batches treat it as "already
 *   have it"), so a re-issued user (new password, later until) would never
 *   reach a device that has the old one. A clock-based revision increases
 *   between two signings a second apart without a counter in a store;
 *   Canonical serial-vault needed a `lastrevision` table for the same reason.
 *   A caller that keeps its own counter passes `revision`, and then must keep
 *   doing so for that user (a small counter never beats a clock-based one).
 * - Headers written: type, format 1 (with serials only), authority-id and
 *   brand-id (the brand), revision, email, username, name, password, ssh-keys,
 *   force-password-change ("true" only), series ["16"], models, serials, since
 *   and until (UTC, whole seconds), timestamp (signing time; informational,
 *   snapd does not read it for system-user).
 *
 * Codes:
 * - SV_REQUEST_INVALID: the input fails the schema; `details.issues` is a list
 *   of `{ path, code }`: zod's issue code (`invalid_format`, `too_big`,
 *   `invalid_type`, `unrecognized_keys`, ...) or one of ours:
 *   `password-exclusive`, `credential-required`, `rounds-need-password`,
 *   `until-exclusive`, `duplicate`, `password-length-multiple-of-64`,
 *   `password-characters`, `characters`, `not-an-ssh-key`, `upper-case`,
 *   `not-rfc3339`, `rounds-out-of-bounds`. Issues never carry input values.
 *   (The admin routes' `issues` are strings today; these are objects so
 *   callers and tests can act on them without reading message text.)
 * - SV_SYSTEM_USER_INVALID: the headers fail snapd's own system-user checks
 *   (our port in shared/src/assertion/types/system-user.ts runs on the exact
 *   bytes before anything is signed); `details: { header, reason }`.
 *   These are the rules between fields: serials need exactly one model,
 *   until >= since, at most one year when models is empty,
 *   force-password-change needs a password.
 * - SV_ASSERTION_TOO_LARGE: the headers exceed what snapd's stream decoder
 *   reads (128 KiB with the separator), `details: { reason, limit, size }`.
 * - Whatever the signer throws (e.g. SV_SIGNING_KEY_UNAVAILABLE).
 *
 * What snapd checks (asserts/system_user.go) and where we are stricter, each
 * time because snapd would accept an assertion a device then cannot use:
 * - email: snapd takes anything net/mail.ParseAddress takes ("Ops <a@b>",
 *   quoted local parts, a dotless domain). We take a plain dot-atom address
 *   with a dotted domain, at most 254 characters and without "/" (a
 *   primary-key value may not contain one, which snapd only finds later).
 * - username: snapd's pattern `^[a-z0-9][-a-z0-9+.-_]*$` has the range `.-_`,
 *   so after the first character it lets through "/", ":", "@", upper case and
 *   more, which the code that creates the user (osutil.AddUser,
 *   `^[a-z0-9][-a-z0-9+._]*$`) then refuses.
 *   We use the latter, and at most 32 characters (useradd's limit).
 * - password: snapd takes any `$id$` with id >= 6 (including ids no crypt(3)
 *   knows) and any salt or hash length. We take only sha512crypt, exactly
 *   as glibc writes it: `$6$[rounds=N$]salt$hash`, salt 1..16 and hash 86
 *   characters of ./0-9A-Za-z, rounds 5000..999999999 as snapd says. yescrypt
 *   (`$y$`, Ubuntu's default) is refused by snapd itself.
 * - name and ssh-keys: snapd takes any text (multiline too). The name goes
 *   into the GECOS field and the keys, joined by LF, into authorized_keys, so
 *   we refuse control characters (and ":" in the name): no line injection.
 *   A key must hold an OpenSSH key type followed by base64.
 * - models and serials: snapd takes any strings; we take model names as the
 *   model assertion defines them (lower case) and serials as our serial
 *   policy does (shared/src/protocol/serial-number.ts), without duplicates.
 * - sizes: every string and list is bounded (see the schema), snapd bounds
 *   only the total.
 *
 * Hashing uses `unixcrypt` (sha512crypt over node:crypto). Its 3.0.4 release
 * gets steps 9-10 and 16 of the algorithm wrong when the password's UTF-8
 * length is a multiple of 64 bytes (64, 128, 192, 256): the hash differs from
 * glibc's and the user could never log in. Such passwords are refused
 * (`password-length-multiple-of-64`) until a fixed release; the tests compare
 * lengths on both sides of each block boundary with openssl, and fail once
 * unixcrypt gets 64 bytes right. unixcrypt also allocates one array entry
 * per round and runs on the calling thread (about 1.5 s per 100000 rounds
 * here), so hashPassword takes at most 100000 rounds; a stronger hash made
 * elsewhere can be given as `passwordHash`.
 */
import { Buffer } from 'node:buffer'
import { randomInt } from 'node:crypto'
import { encrypt } from 'unixcrypt'
import { z } from 'zod'
import {
  MAX_HASH_ROUNDS,
  MAX_REVISION,
  SHA512CRYPT_RE,
  passwordProblem,
  SNAPD_MAX_ROUNDS,
  SNAPD_MIN_ROUNDS,
  SystemUserRequestSchema,
  type SystemUserRequest,
  ACCOUNT_ID_RE,
  MAX_HEADERS_SIZE,
  MODEL_NAME_RE,
  SERIAL_PATTERN,
  SystemUserAssertion,
  VaultError,
  assertionType,
  formatContent,
  formatRfc3339,
  parseRfc3339,
  signAssertion,
  type AssertionSigner,
  type HeaderValue,
} from '@sv/shared'

export { SystemUserRequestSchema, SNAPD_MIN_ROUNDS, SNAPD_MAX_ROUNDS, MAX_HASH_ROUNDS, type SystemUserRequest }

const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

export interface SystemUserContext {
  /** the brand: authority-id and brand-id */
  brandId: string
  /** signing time, epoch ms: the default since, the timestamp and the default revision */
  now: number
}

export interface HashPasswordOptions {
  /** sha512crypt rounds, 5000..100000; default: none written, which means 5000 */
  rounds?: number
}

/**
 * sha512crypt of `plain` with 16 salt characters from a CSPRNG:
 * `$6$salt$hash`, or `$6$rounds=N$salt$hash` when `rounds` is given.
 * Throws RangeError for rounds out of bounds, and SV_REQUEST_INVALID
 * (`details.issues`, as the schema) for a password it cannot hash correctly.
 */
export function hashPassword(plain: string, options: HashPasswordOptions = {}): string {
  if (typeof plain !== 'string' || plain === '') throw new TypeError('password must be a non-empty string')
  const { rounds } = options
  if (rounds !== undefined && (!Number.isInteger(rounds) || rounds < SNAPD_MIN_ROUNDS || rounds > MAX_HASH_ROUNDS)) {
    throw new RangeError(`rounds must be an integer ${SNAPD_MIN_ROUNDS}..${MAX_HASH_ROUNDS}`)
  }
  const reason = passwordProblem(plain)
  if (reason) throw new VaultError('SV_REQUEST_INVALID', 'this password cannot be hashed here', { details: { issues: [{ path: 'password', code: reason }] } })
  let salt = ''
  for (let i = 0; i < 16; i++) salt += CRYPT_ALPHABET[randomInt(CRYPT_ALPHABET.length)]
  return encrypt(plain, rounds === undefined ? `$6$${salt}` : `$6$rounds=${rounds}$${salt}`)
}

/** `ms` plus one calendar year in UTC, as Go's t.AddDate(1, 0, 0) (29 February becomes 1 March). */
function addOneYear(ms: number): number {
  const d = new Date(ms)
  d.setUTCFullYear(d.getUTCFullYear() + 1)
  return d.getTime()
}

function checkBrand(brandId: string): void {
  if (typeof brandId !== 'string' || !ACCOUNT_ID_RE.test(brandId)) throw new TypeError(`brandId must be an account id, got ${JSON.stringify(brandId)}`)
}

/**
 * The system-user headers for a parsed request, as snapd wants them (see the
 * header comment); `type` is left to signAssertion. Hashes `password` when
 * given. Does not run snapd's cross-field checks: signSystemUser does, on the
 * encoded result.
 */
export function buildSystemUserHeaders(input: SystemUserRequest, ctx: SystemUserContext): Record<string, HeaderValue> {
  checkBrand(ctx.brandId)
  if (!Number.isFinite(ctx.now)) throw new TypeError('now must be epoch milliseconds')
  // whole seconds, as formatRfc3339 writes them, so until is computed from the since snapd will read
  const since = Math.floor((input.since !== undefined ? parseRfc3339(input.since)! : ctx.now) / 1000) * 1000
  const until =
    input.until !== undefined ? parseRfc3339(input.until)! : input.validFor !== undefined ? since + input.validFor * 1000 : addOneYear(since)
  const h: Record<string, HeaderValue> = {
    'authority-id': ctx.brandId,
    'brand-id': ctx.brandId,
    revision: String(input.revision ?? Math.floor(ctx.now / 1000)),
    email: input.email,
    username: input.username,
    series: ['16'],
    models: input.models,
    since: formatRfc3339(since),
    until: formatRfc3339(until),
    timestamp: formatRfc3339(ctx.now),
  }
  if (input.name !== undefined) h.name = input.name
  if (input.password !== undefined) {
    h.password = hashPassword(input.password, input.passwordRounds === undefined ? {} : { rounds: input.passwordRounds })
  } else if (input.passwordHash !== undefined) {
    h.password = input.passwordHash
  }
  if (input.sshKeys !== undefined && input.sshKeys.length > 0) h['ssh-keys'] = input.sshKeys
  if (input.serials !== undefined && input.serials.length > 0) {
    h.serials = input.serials
    h.format = '1'
  }
  if (input.forcePasswordChange === true) h['force-password-change'] = 'true'
  if (input.models.length === 0) delete h.models
  return h
}

export interface SignSystemUserOptions {
  brandId: string
  /** a key of the brand (SignerSource.signer(keyId)) */
  signer: AssertionSigner
  /** epoch ms; default Date.now() */
  now?: number
}

/**
 * Validates `input` (unknown: a request body), builds the headers and signs
 * them. Resolves with the decoded assertion, whose `password` header is the
 * hash. Codes: see the header comment.
 */
export async function signSystemUser(input: unknown, options: SignSystemUserOptions): Promise<SystemUserAssertion> {
  checkBrand(options.brandId)
  const now = options.now ?? Date.now()
  const parsed = SystemUserRequestSchema.safeParse(input)
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({
      path: i.path.map(String).join('.'),
      code: i.code === 'custom' && typeof i.params?.reason === 'string' ? i.params.reason : i.code,
    }))
    throw new VaultError('SV_REQUEST_INVALID', `invalid system-user request: ${issues.map((i) => `${i.path || '(request)'} (${i.code})`).join(', ')}`, { details: { issues } })
  }
  const headers = buildSystemUserHeaders(parsed.data, { brandId: options.brandId, now })
  // snapd's stream decoder reads at most 128 KiB of headers, separator included (asserts.go Decode)
  const { content } = formatContent(assertionType('system-user')!, headers, Buffer.alloc(0), options.signer.publicKey.id)
  if (content.length + 2 > MAX_HEADERS_SIZE) {
    throw new VaultError('SV_ASSERTION_TOO_LARGE', `system-user headers of ${content.length} bytes exceed snapd's limit`, {
      details: { reason: 'headers too large', limit: MAX_HEADERS_SIZE - 2, size: content.length },
    })
  }
  try {
    return (await signAssertion('system-user', headers, undefined, options.signer, { creationTime: Math.floor(now / 1000) })) as SystemUserAssertion
  } catch (e) {
    if (e instanceof VaultError && e.code === 'SV_ASSERTION_INVALID') {
      const header = e.details?.header
      throw new VaultError('SV_SYSTEM_USER_INVALID', e.message.replace(/^(?:cannot sign system-user assertion|assertion system-user): /, ''), {
        details: { header, reason: e.details?.reason },
        cause: e,
      })
    }
    throw e
  }
}
