/** `system-user` (spec §4.7), decoded and checked as snapd does. */
import { Assertion, type AssertionParts, type AssertionTypeInfo } from '../assertion.js'
import { HeaderCheckError, checkNotEmptyString, checkOptionalBool, checkOptionalString, checkRfc3339Date, checkStringList, checkStringMatches } from '../checks.js'
import { quote, type HeaderMap } from '../grammar.js'

const USERNAME_RE = /^[a-z0-9][-a-z0-9+.-_]*$/
const SALT_HASH_RE = /^[a-zA-Z0-9./]+$/
// A pragmatic RFC 5322 addr-spec (Go's net/mail.ParseAddress also takes display names).
const EMAIL_RE = /^(?:[^<>()[\]\\,;:\s@"]+|"[^"\\\r\n]*")@(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+$|^.*<(?:[^<>()[\]\\,;:\s@"]+)@(?:[A-Za-z0-9-]+\.)*[A-Za-z0-9-]+>$/

function checkHashedPassword(h: HeaderMap, name: string): string {
  const pw = checkOptionalString(h, name)
  if (pw === '') return ''
  const l = pw.split('$')
  const parts = l.length > 5 ? [...l.slice(0, 4), l.slice(4).join('$')] : l
  if (parts.length !== 4 && parts.length !== 5) throw new HeaderCheckError(`${quote(name)} header invalid: hashed password must be of the form "$integer-id$salt$hash", see crypt(3)`, name)
  if (parts.length === 4 && parts[2]!.startsWith('rounds=')) throw new HeaderCheckError(`${quote(name)} header invalid: missing hash field`, name)
  const [, id, a, b, c] = parts
  const rounds = parts.length === 5 ? a! : ''
  const salt = parts.length === 5 ? b! : a!
  const hash = parts.length === 5 ? c! : b!
  if (!/^[+-]?\d+$/.test(id!)) throw new HeaderCheckError(`${quote(name)} header must start with "$integer-id$", got ${quote(id!)}`, name)
  if (Number(id) < 6) throw new HeaderCheckError(`${quote(name)} header only supports $id$ values of 6 (sha512crypt) or higher`, name)
  if (rounds.startsWith('rounds=')) {
    const r = rounds.slice(7)
    if (!/^[+-]?\d+$/.test(r)) throw new HeaderCheckError(`${quote(name)} header has invalid number of rounds: ${r}`, name)
    const n = Number(r)
    if (n < 5000 || n > 999999999) throw new HeaderCheckError(`${quote(name)} header rounds parameter out of bounds: ${n}`, name)
  }
  if (!SALT_HASH_RE.test(salt)) throw new HeaderCheckError(`${quote(name)} header has invalid chars in salt ${quote(salt)}`, name)
  if (!SALT_HASH_RE.test(hash)) throw new HeaderCheckError(`${quote(name)} header has invalid chars in hash ${quote(hash)}`, name)
  return pw
}

export class SystemUserAssertion extends Assertion {
  readonly series: string[]
  readonly models: string[]
  readonly serials: string[]
  readonly sshKeys: string[]
  readonly since: number
  readonly until: number
  readonly forcePasswordChange: boolean

  constructor(type: AssertionTypeInfo, parts: AssertionParts) {
    super(type, parts)
    const h = parts.headers
    const email = checkNotEmptyString(h, 'email')
    if (!EMAIL_RE.test(email)) throw new HeaderCheckError(`"email" header must be a RFC 5322 compliant email address: ${quote(email)}`, 'email')
    this.series = checkStringList(h, 'series')
    this.models = checkStringList(h, 'models')
    this.serials = checkStringList(h, 'serials')
    if (this.serials.length > 0 && parts.format < 1) throw new HeaderCheckError(`the "serials" header is only supported for format 1 or greater`, 'serials')
    if (this.serials.length > 0 && this.models.length !== 1) throw new HeaderCheckError(`in the presence of the "serials" header "models" must specify exactly one model`, 'models')
    checkOptionalString(h, 'name')
    checkStringMatches(h, 'username', USERNAME_RE)
    const password = checkHashedPassword(h, 'password')
    this.forcePasswordChange = checkOptionalBool(h, 'force-password-change')
    if (this.forcePasswordChange && password === '') throw new HeaderCheckError(`cannot use "force-password-change" with an empty "password"`, 'force-password-change')
    this.sshKeys = checkStringList(h, 'ssh-keys')
    this.since = checkRfc3339Date(h, 'since')
    this.until = checkRfc3339Date(h, 'until')
    if (this.until < this.since) throw new HeaderCheckError(`'until' time cannot be before 'since' time`, 'until')
    if (this.models.length === 0) {
      const limit = new Date(this.since)
      limit.setUTCFullYear(limit.getUTCFullYear() + 1)
      if (this.until > limit.getTime()) throw new HeaderCheckError(`'until' time cannot be more than 365 days in the future when no models are specified`, 'until')
    }
  }

  get brandId(): string {
    return this.headerString('brand-id')
  }
  get email(): string {
    return this.headerString('email')
  }
  get username(): string {
    return this.headerString('username')
  }
  get name(): string {
    return this.headerString('name')
  }
  get password(): string {
    return this.headerString('password')
  }
}
