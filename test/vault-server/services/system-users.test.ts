/**
 * system-users: the system-user signing core held to two independent
 * references. Hashes must equal openssl's sha512crypt (`openssl passwd -6`,
 * which agrees with glibc), and what we sign must pass snapd's own asserts
 * database (`snapd-check verify`, the snapd vectors' trust root and acme-brand
 * key). Refusals are checked by code and details; where snapd has the same
 * rule, a deliberately bad assertion signed outside our checks
 * (`snapd-check sign-raw`) shows snapd refuses it too, and where we are
 * stricter, snapd is shown to accept it.
 */
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { writeFile, readFile } from 'node:fs/promises'
import path from 'node:path'
import { inspect } from 'node:util'
import { encrypt } from 'unixcrypt'
import { NodeKeySigner } from '@sv/shared/node'
import { SystemUserAssertion, VaultError, assertionType, decodeAssertion, decodeStream, encodeStream, formatContent, utf8Decode, type HeaderValue } from '@sv/shared'
import {
  MAX_HASH_ROUNDS,
  SystemUserRequestSchema,
  buildSystemUserHeaders,
  hashPassword,
  signSystemUser,
} from '../../../vault-server/src/services/system-users.js'
import { locateSnapdCheck, runSnapdCheck, snapdVerify, tempDir, type VerifyResult } from '../../helpers/snapd-check.js'
import { VECTORS_DIR } from '../../helpers/vectors.js'

const BRAND = 'acme-brand'
const MODEL = 'acme-pi-gateway'
const NOW = Date.parse('2025-06-01T12:34:56.789Z')
const BRAND_KEY = path.join(VECTORS_DIR, 'keys', 'brand.key.pem')
const SSH_ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxkh2LJmC0mLE0S9rX0Z8y0w5Y2d3n5S0m3q1xv0kQn ops@acme'
const SSH_RSA = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7y1b0i9k2bq0bM3xk4h5Z0e7m8pQ factory@acme'
const SECRET = 'S3cr3t-Pa55word!'

const signer = NodeKeySigner.fromPem(readFileSync(BRAND_KEY, 'utf8'))
const TRUSTED = readFileSync(path.join(VECTORS_DIR, 'trusted.assert'))
// one file holding the brand's account and account-key, as the brief's --chain
const CHAIN = encodeStream([...decodeStream(readFileSync(path.join(VECTORS_DIR, 'account.assert'))), ...decodeStream(readFileSync(path.join(VECTORS_DIR, 'account-key.assert')))])

// ---------------------------------------------------------------- helpers

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as NodeJS.ErrnoException).code === 'number' ? ((err as unknown as { code: number }).code) : -1
      resolve({ code, stdout, stderr })
    })
    if (input !== undefined) child.stdin!.end(input)
  })
}

/** openssl's sha512crypt of `plain` with the salt (and rounds) of `hash`; the password goes in on stdin. */
async function opensslCrypt(plain: string, hash: string): Promise<string> {
  const m = /^\$6\$((?:rounds=\d+\$)?[^$]+)\$/.exec(hash)
  if (!m) throw new Error(`not a sha512crypt hash: ${hash}`)
  const r = await run('openssl', ['passwd', '-6', '-salt', m[1]!, '-stdin'], plain)
  if (r.code !== 0) throw new Error(`openssl passwd failed: ${r.stderr}`)
  return r.stdout.trim()
}

async function verifyWithSnapd(t: ExecutionContext, file: Uint8Array): Promise<VerifyResult | undefined> {
  const bin = locateSnapdCheck()
  if (bin instanceof Error) {
    t.fail(bin.message)
    return undefined
  }
  const { dir, cleanup } = await tempDir('sv-system-user-')
  t.teardown(cleanup)
  const r = await snapdVerify(dir, { trusted: TRUSTED, chain: [CHAIN], file })
  t.false(r.timedOut, 'snapd-check timed out')
  return r
}

/** Signs the bytes formatContent makes of `headers` with snapd-check sign-raw: no check of ours or snapd's runs. */
async function signRawWithSnapdCheck(t: ExecutionContext, headers: Record<string, HeaderValue>): Promise<Buffer> {
  const { content } = formatContent(assertionType('system-user')!, headers, Buffer.alloc(0), signer.publicKey.id)
  const { dir, cleanup } = await tempDir('sv-system-user-raw-')
  t.teardown(cleanup)
  const src = path.join(dir, 'content')
  const out = path.join(dir, 'signed.assert')
  await writeFile(src, content)
  const r = await runSnapdCheck(['sign-raw', '--key', BRAND_KEY, '--out', out, src])
  if (r.code !== 0) throw new Error(`snapd-check sign-raw failed: ${r.stderr}`)
  return readFile(out)
}

const base = { email: 'ops@acme.example', username: 'ops', models: [MODEL] }

function sign(input: unknown, now = NOW): Promise<SystemUserAssertion> {
  return signSystemUser(input, { brandId: BRAND, signer, now })
}

/** Valid headers for the bad-assertion cases (password hash fixed: deterministic). */
const FIXED_HASH = '$6$abcdefgh12345678$8qry.al/7S2fAQnDPL..k3GVAXostN0YvxqwHlKr6Jsf/74.qDax5ahH0CISuJF.P2fnhZoX0.4l8IwZUur9t1'
function goodHeaders(): Record<string, HeaderValue> {
  return buildSystemUserHeaders(SystemUserRequestSchema.parse({ ...base, passwordHash: FIXED_HASH }), { brandId: BRAND, now: NOW })
}

// ---------------------------------------------------------------- the hash

test('system-users: hashPassword writes $6$ with a 16-character salt and equals openssl passwd -6 for that salt', async (t) => {
  const h = hashPassword(SECRET)
  t.regex(h, /^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/)
  t.is(await opensslCrypt(SECRET, h), h)
})

test('system-users: hashPassword with explicit rounds writes $6$rounds=N$ and equals openssl for that salt', async (t) => {
  for (const rounds of [5000, 12345, MAX_HASH_ROUNDS]) {
    const h = hashPassword(SECRET, { rounds })
    t.regex(h, new RegExp(`^\\$6\\$rounds=${rounds}\\$[./0-9A-Za-z]{16}\\$[./0-9A-Za-z]{86}$`))
    t.is(await opensslCrypt(SECRET, h), h, `rounds ${rounds}`)
  }
})

test('system-users: hashPassword equals openssl across password lengths and UTF-8 (every block boundary but the refused ones)', async (t) => {
  const passwords: string[] = []
  for (const n of [1, 2, 15, 16, 17, 31, 32, 33, 63, 65, 100, 127, 129, 191, 193, 255]) passwords.push('a'.repeat(n))
  for (const n of [1, 31, 33, 63, 65]) passwords.push('é'.repeat(n)) // 2 bytes each: 2 .. 130 bytes
  passwords.push('Ääkkönen 設備 🚀', 'é'.repeat(31) + 'a', '🚀'.repeat(16) + 'ab')
  for (const p of passwords) {
    const h = hashPassword(p)
    t.is(await opensslCrypt(p, h), h, `${Buffer.byteLength(p)} bytes`)
  }
})

test('system-users: hashPassword draws a fresh salt every time', (t) => {
  const salts = new Set(Array.from({ length: 8 }, () => hashPassword('x').split('$')[2]))
  t.is(salts.size, 8)
})

test('system-users: unixcrypt 3.0.4 still hashes 64-byte passwords wrongly (when this fails, lift the multiple-of-64 guard)', async (t) => {
  const p = 'a'.repeat(64)
  const salt = 'abcdefgh12345678'
  const expected = await opensslCrypt(p, `$6$${salt}$x`)
  t.not(encrypt(p, `$6$${salt}`), expected)
  t.is(encrypt('a'.repeat(65), `$6$${salt}`), await opensslCrypt('a'.repeat(65), `$6$${salt}$x`))
})

test('system-users: passwords of 64, 128, 192 and 256 UTF-8 bytes are refused, by hashPassword and by the schema', async (t) => {
  for (const p of ['a'.repeat(64), 'é'.repeat(64), '設'.repeat(64), '🚀'.repeat(64)]) {
    const e = t.throws(() => hashPassword(p), { instanceOf: VaultError })
    t.is(e?.code, 'SV_REQUEST_INVALID')
    t.deepEqual(e?.details, { issues: [{ path: 'password', code: 'password-length-multiple-of-64' }] })
    const e2 = await t.throwsAsync(sign({ ...base, password: p }), { instanceOf: VaultError })
    t.is(e2?.code, 'SV_REQUEST_INVALID')
    t.deepEqual(e2?.details, { issues: [{ path: 'password', code: 'password-length-multiple-of-64' }] })
  }
})

test('system-users: hashPassword refuses rounds snapd or the library cannot take (RangeError: a programming mistake)', (t) => {
  for (const rounds of [0, 1000, 4999, MAX_HASH_ROUNDS + 1, 1.5, Number.NaN]) t.throws(() => hashPassword('x', { rounds }), { instanceOf: RangeError }, String(rounds))
  t.throws(() => hashPassword(''), { instanceOf: TypeError })
})

// ---------------------------------------------------------------- headers

test('system-users: buildSystemUserHeaders writes exactly the headers snapd reads (defaults: since now, until +1 year, revision = now in seconds)', (t) => {
  t.deepEqual(goodHeaders(), {
    'authority-id': BRAND,
    'brand-id': BRAND,
    revision: String(Math.floor(NOW / 1000)),
    email: 'ops@acme.example',
    username: 'ops',
    password: FIXED_HASH,
    series: ['16'],
    models: [MODEL],
    since: '2025-06-01T12:34:56Z',
    until: '2026-06-01T12:34:56Z',
    timestamp: '2025-06-01T12:34:56Z',
  })
})

test('system-users: buildSystemUserHeaders with serials sets format 1; with everything given it keeps what was given (UTC, whole seconds)', (t) => {
  const h = buildSystemUserHeaders(
    SystemUserRequestSchema.parse({
      ...base,
      name: 'Ops Team',
      passwordHash: FIXED_HASH,
      sshKeys: [SSH_ED25519],
      serials: ['A1B2C3D4', 'A1B2C3D5'],
      forcePasswordChange: true,
      since: '2025-01-01T02:00:00.75+02:00',
      until: '2027-01-01T00:00:00Z',
      revision: 7,
    }),
    { brandId: BRAND, now: NOW },
  )
  t.like(h, { format: '1', serials: ['A1B2C3D4', 'A1B2C3D5'], name: 'Ops Team', 'ssh-keys': [SSH_ED25519], 'force-password-change': 'true', since: '2025-01-01T00:00:00Z', until: '2027-01-01T00:00:00Z', revision: '7' })
  const noModels = buildSystemUserHeaders(SystemUserRequestSchema.parse({ ...base, models: [], sshKeys: [SSH_ED25519], since: '2024-02-29T10:00:00Z' }), { brandId: BRAND, now: NOW })
  t.false('models' in noModels)
  t.false('password' in noModels)
  t.false('format' in noModels)
  t.is(noModels.until, '2025-03-01T10:00:00Z', '29 February + 1 year is 1 March, as Go AddDate')
  const validFor = buildSystemUserHeaders(SystemUserRequestSchema.parse({ ...base, sshKeys: [SSH_ED25519], validFor: 3600 }), { brandId: BRAND, now: NOW })
  t.is(validFor.until, '2025-06-01T13:34:56Z')
})

test('system-users: a brand id that is not an account id is a programming mistake (TypeError)', async (t) => {
  await t.throwsAsync(signSystemUser({ ...base, password: SECRET }, { brandId: 'Not A Brand/', signer, now: NOW }), { instanceOf: TypeError })
})

// ---------------------------------------------------------------- snapd accepts what we sign

interface AcceptCase {
  input: Record<string, unknown>
  check?: (t: ExecutionContext, a: SystemUserAssertion) => void | Promise<void>
  now?: number
}

const acceptedBySnapd = test.macro({
  async exec(t: ExecutionContext, _what: string, c: AcceptCase) {
    const a = await sign(c.input, c.now)
    const bytes = a.encode()
    const r = await verifyWithSnapd(t, bytes)
    if (!r) return
    t.is(r.code, 0, `snapd-check verify refused it:\n${r.stdout}\n${r.stderr}`)
    t.regex(r.stdout, /^#1 OK\b/m)
    t.deepEqual(
      r.lines.map((l) => l.ok),
      [true],
    )
    // our own decoder reads the same bytes back, accessors included
    const d = decodeAssertion(bytes)
    t.true(d instanceof SystemUserAssertion)
    const su = d as SystemUserAssertion
    t.is(su.typeName, 'system-user')
    t.is(su.authorityId, BRAND)
    t.is(su.brandId, BRAND)
    t.is(su.email, c.input.email as string)
    t.is(su.username, c.input.username as string)
    t.deepEqual(su.series, ['16'])
    t.deepEqual(su.models, c.input.models)
    t.deepEqual(su.serials, (c.input.serials as string[] | undefined) ?? [])
    t.deepEqual(su.sshKeys, (c.input.sshKeys as string[] | undefined) ?? [])
    t.is(su.forcePasswordChange, c.input.forcePasswordChange === true)
    t.is(su.format, su.serials.length > 0 ? 1 : 0)
    t.true(su.until >= su.since)
    t.deepEqual(su.encode(), bytes)
    t.false(utf8Decode(bytes).includes(SECRET), 'the plain password is not in the assertion')
    await c.check?.(t, su)
  },
  title: (given, what: string) => given ?? `system-users: snapd accepts ${what}`,
})

test(acceptedBySnapd, 'a password-only user (the hash verifies with openssl for the plain password)', {
  input: { ...base, name: 'Ops Team', password: SECRET },
  async check(t, a) {
    t.is(a.name, 'Ops Team')
    t.regex(a.password, /^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/)
    t.is(await opensslCrypt(SECRET, a.password), a.password)
    t.is(a.since, Math.floor(NOW / 1000) * 1000)
    t.is(a.headerString('revision'), String(Math.floor(NOW / 1000)))
  },
})
test(acceptedBySnapd, 'an ssh-keys-only user', {
  input: { ...base, sshKeys: [SSH_ED25519, SSH_RSA] },
  check(t, a) {
    t.is(a.password, '')
    t.is(a.name, '')
  },
})
test(acceptedBySnapd, 'a user with a password (explicit rounds) and ssh keys', {
  input: { ...base, password: SECRET, passwordRounds: 10000, sshKeys: [SSH_ED25519] },
  async check(t, a) {
    t.regex(a.password, /^\$6\$rounds=10000\$/)
    t.is(await opensslCrypt(SECRET, a.password), a.password)
  },
})
test(acceptedBySnapd, 'a format 1 user bound to serials of one model', {
  input: { ...base, sshKeys: [SSH_ED25519], serials: ['A1B2C3D4', 'A1B2C3D5'] },
})
test(acceptedBySnapd, 'a user who must change the password at first login', {
  input: { ...base, password: SECRET, forcePasswordChange: true },
})
test(acceptedBySnapd, 'a password hash made elsewhere (openssl)', {
  input: { ...base, passwordHash: FIXED_HASH },
  check(t, a) {
    t.is(a.password, FIXED_HASH)
  },
})
test(acceptedBySnapd, 'explicit since and until (an offset and fractions are written as UTC whole seconds)', {
  input: { ...base, password: SECRET, since: '2025-01-01T02:00:00.5+02:00', until: '2030-12-31T23:59:59Z' },
  check(t, a) {
    t.is(a.since, Date.parse('2025-01-01T00:00:00Z'))
    t.is(a.until, Date.parse('2030-12-31T23:59:59Z'))
    t.is(a.headerString('since'), '2025-01-01T00:00:00Z')
  },
})
test(acceptedBySnapd, 'a models-empty user with the default until (exactly one year, snapd\'s limit)', {
  input: { ...base, models: [], sshKeys: [SSH_ED25519], since: '2024-02-29T10:00:00Z' },
  check(t, a) {
    t.deepEqual(a.models, [])
    t.is(a.until, Date.parse('2025-03-01T10:00:00Z'))
  },
})
test(acceptedBySnapd, 'a models-empty user valid for 30 days', {
  input: { ...base, models: [], password: SECRET, validFor: 30 * 86_400 },
  check(t, a) {
    t.is(a.until - a.since, 30 * 86_400_000)
  },
})

// ---------------------------------------------------------------- refusals

type Issue = { path: string; code: string }
interface RefusalCase {
  input: unknown
  code: 'SV_REQUEST_INVALID' | 'SV_SYSTEM_USER_INVALID' | 'SV_ASSERTION_TOO_LARGE'
  /** SV_REQUEST_INVALID: issues that must be present; every issue must be on one of their paths */
  issues?: Issue[]
  /** SV_SYSTEM_USER_INVALID: the header at fault */
  header?: string
}

const refused = test.macro({
  async exec(t: ExecutionContext, _what: string, c: RefusalCase) {
    const e = await t.throwsAsync(sign(c.input), { instanceOf: VaultError })
    if (!e) return
    t.is(e.code, c.code)
    if (c.issues) {
      const got = (e.details?.issues ?? []) as Issue[]
      for (const want of c.issues) t.true(got.some((g) => g.path === want.path && g.code === want.code), `missing ${JSON.stringify(want)} in ${JSON.stringify(got)}`)
      const paths = new Set(c.issues.map((i) => i.path))
      for (const g of got) t.true(paths.has(g.path), `unexpected issue ${JSON.stringify(g)}`)
    }
    if (c.header !== undefined) {
      t.is(e.details?.header, c.header)
      t.is(typeof e.details?.reason, 'string')
    }
    if (c.code === 'SV_ASSERTION_TOO_LARGE') t.like(e.details, { reason: 'headers too large', limit: 128 * 1024 - 2 })
  },
  title: (given, what: string) => given ?? `system-users: refuses ${what}`,
})

const pw = { password: SECRET }
test(refused, 'an e-mail that is no address', { input: { ...base, ...pw, email: 'not-an-email' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'email', code: 'invalid_format' }] })
test(refused, 'an e-mail with a display name (snapd takes it; stricter)', { input: { ...base, ...pw, email: 'Ops <ops@acme.example>' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'email', code: 'invalid_format' }] })
test(refused, 'an e-mail with "/" (a primary key may not hold one)', { input: { ...base, ...pw, email: 'ops/x@acme.example' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'email', code: 'invalid_format' }] })
test(refused, 'a username starting with upper case', { input: { ...base, ...pw, username: 'Ops' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'username', code: 'invalid_format' }] })
test(refused, 'a username with upper case after the first character (snapd takes it; useradd does not)', { input: { ...base, ...pw, username: 'oPs' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'username', code: 'invalid_format' }] })
test(refused, 'a username starting with "-"', { input: { ...base, ...pw, username: '-ops' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'username', code: 'invalid_format' }] })
test(refused, 'a username with "@"', { input: { ...base, ...pw, username: 'ops@home' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'username', code: 'invalid_format' }] })
test(refused, 'serials with two models', { input: { ...base, ...pw, models: [MODEL, 'acme-pi-gateway-18'], serials: ['A1B2C3D4'] }, code: 'SV_SYSTEM_USER_INVALID', header: 'models' })
test(refused, 'serials with no model', { input: { ...base, ...pw, models: [], serials: ['A1B2C3D4'] }, code: 'SV_SYSTEM_USER_INVALID', header: 'models' })
test(refused, 'until before since', { input: { ...base, ...pw, since: '2025-01-02T00:00:00Z', until: '2025-01-01T00:00:00Z' }, code: 'SV_SYSTEM_USER_INVALID', header: 'until' })
test(refused, 'models empty and until more than a year after since', { input: { ...base, ...pw, models: [], since: '2025-01-01T00:00:00Z', until: '2026-01-01T00:00:01Z' }, code: 'SV_SYSTEM_USER_INVALID', header: 'until' })
test(refused, 'models empty and validFor more than a year', { input: { ...base, ...pw, models: [], validFor: 367 * 86_400 }, code: 'SV_SYSTEM_USER_INVALID', header: 'until' })
test(refused, 'force-password-change without a password', { input: { ...base, sshKeys: [SSH_ED25519], forcePasswordChange: true }, code: 'SV_SYSTEM_USER_INVALID', header: 'force-password-change' })
test(refused, 'password and passwordHash together', { input: { ...base, ...pw, passwordHash: FIXED_HASH }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'passwordHash', code: 'password-exclusive' }] })
test(refused, 'none of password, passwordHash and sshKeys', { input: { ...base }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'password', code: 'credential-required' }] })
test(refused, 'an empty sshKeys list as the only credential', { input: { ...base, sshKeys: [] }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'password', code: 'credential-required' }] })
test(refused, 'an MD5 ($1$) password hash', { input: { ...base, passwordHash: '$1$abcdefgh$2rDMuNSJYSwNDXUvqBJ.7/' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'passwordHash', code: 'invalid_format' }] })
test(refused, 'a yescrypt ($y$) password hash', { input: { ...base, passwordHash: '$y$j9T$abcdefghijklmnop$ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmno12' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'passwordHash', code: 'invalid_format' }] })
test(refused, 'a $6$ hash with too few rounds', { input: { ...base, passwordHash: FIXED_HASH.replace('$6$', '$6$rounds=4999$') }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'passwordHash', code: 'rounds-out-of-bounds' }] })
test(refused, 'a truncated $6$ hash (the user could never log in)', { input: { ...base, passwordHash: FIXED_HASH.slice(0, -1) }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'passwordHash', code: 'invalid_format' }] })
test(refused, 'until and validFor together', { input: { ...base, ...pw, until: '2026-01-01T00:00:00Z', validFor: 60 }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'validFor', code: 'until-exclusive' }] })
test(refused, 'a since that is not RFC 3339', { input: { ...base, ...pw, since: '2025-13-01T00:00:00Z' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'since', code: 'not-rfc3339' }] })
test(refused, 'passwordRounds without a password', { input: { ...base, sshKeys: [SSH_ED25519], passwordRounds: 10000 }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'passwordRounds', code: 'rounds-need-password' }] })
test(refused, 'an unknown field', { input: { ...base, ...pw, Password: 'x' }, code: 'SV_REQUEST_INVALID', issues: [{ path: '', code: 'unrecognized_keys' }] })
test(refused, 'a model name with upper case', { input: { ...base, ...pw, models: ['Acme'] }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'models.0', code: 'upper-case' }] })
test(refused, 'a duplicate model', { input: { ...base, ...pw, models: [MODEL, MODEL] }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'models.1', code: 'duplicate' }] })
test(refused, 'a serial with a space', { input: { ...base, ...pw, serials: ['A1 B2'] }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'serials.0', code: 'invalid_format' }] })
test(refused, 'an ssh key with a newline (authorized_keys line injection)', { input: { ...base, sshKeys: [`${SSH_ED25519}\n${SSH_RSA}`] }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'sshKeys.0', code: 'characters' }] })
test(refused, 'an ssh key that is no key', { input: { ...base, sshKeys: ['hello world'] }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'sshKeys.0', code: 'not-an-ssh-key' }] })

test('system-users: ssh keys may carry authorized_keys options and a comment with spaces', (t) => {
  for (const k of [`from="10.0.0.0/8",no-pty ${SSH_ED25519}`, `command="echo a b" ${SSH_RSA} more words`, 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAI', 'sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t']) {
    t.true(SystemUserRequestSchema.safeParse({ ...base, sshKeys: [k] }).success, k)
  }
})
test(refused, 'a name with ":" (GECOS separator)', { input: { ...base, ...pw, name: 'Ops: Team' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'name', code: 'characters' }] })
test(refused, 'a password with a NUL', { input: { ...base, password: 'ab\u0000cd' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'password', code: 'password-characters' }] })
test(refused, 'a wrong type', { input: { ...base, ...pw, models: 'acme-pi-gateway' }, code: 'SV_REQUEST_INVALID', issues: [{ path: 'models', code: 'invalid_type' }] })
test(refused, 'a body that is no object', { input: 'ops@acme.example', code: 'SV_REQUEST_INVALID', issues: [{ path: '', code: 'invalid_type' }] })

// oversized inputs
const tooBig = (p: string): Issue[] => [{ path: p, code: 'too_big' }]
test(refused, 'an oversized e-mail', { input: { ...base, ...pw, email: `${'a'.repeat(250)}@acme.example` }, code: 'SV_REQUEST_INVALID', issues: tooBig('email') })
test(refused, 'an oversized username', { input: { ...base, ...pw, username: 'a'.repeat(33) }, code: 'SV_REQUEST_INVALID', issues: tooBig('username') })
test(refused, 'an oversized name', { input: { ...base, ...pw, name: 'n'.repeat(257) }, code: 'SV_REQUEST_INVALID', issues: tooBig('name') })
test(refused, 'an oversized password', { input: { ...base, password: 'p'.repeat(257) }, code: 'SV_REQUEST_INVALID', issues: tooBig('password') })
test(refused, 'an oversized ssh key', { input: { ...base, sshKeys: [`ssh-rsa ${'A'.repeat(4100)}`] }, code: 'SV_REQUEST_INVALID', issues: tooBig('sshKeys.0') })
test(refused, 'more than 100 ssh keys', { input: { ...base, sshKeys: Array.from({ length: 101 }, (_, i) => `${SSH_ED25519}-${i}`) }, code: 'SV_REQUEST_INVALID', issues: tooBig('sshKeys') })
test(refused, 'more than 100 models', { input: { ...base, ...pw, models: Array.from({ length: 101 }, (_, i) => `m${i}`) }, code: 'SV_REQUEST_INVALID', issues: tooBig('models') })
test(refused, 'more than 1000 serials', { input: { ...base, ...pw, serials: Array.from({ length: 1001 }, (_, i) => `S${i}`) }, code: 'SV_REQUEST_INVALID', issues: tooBig('serials') })
test(refused, 'a validFor over ten years', { input: { ...base, ...pw, validFor: 11 * 366 * 86_400 }, code: 'SV_REQUEST_INVALID', issues: tooBig('validFor') })
test(refused, 'headers larger than snapd decodes (1000 long serials)', {
  input: { ...base, ...pw, serials: Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(4, '0')}${'S'.repeat(124)}`) },
  code: 'SV_ASSERTION_TOO_LARGE',
})

// ---------------------------------------------------------------- snapd agrees with the refusals

interface SnapdRefusalCase {
  /** the bad headers, from valid ones */
  mutate: (h: Record<string, HeaderValue>) => void
  /** the header our decoder blames */
  header: string
}

const snapdRefusesToo = test.macro({
  async exec(t: ExecutionContext, _what: string, c: SnapdRefusalCase) {
    const h = goodHeaders()
    c.mutate(h)
    const bytes = await signRawWithSnapdCheck(t, h)
    const r = await verifyWithSnapd(t, bytes)
    if (!r) return
    t.is(r.code, 1, `snapd accepted it:\n${r.stdout}`)
    t.regex(r.stdout, /^#1 FAIL\b/m)
    // our decoder refuses the same bytes, naming the header
    const e = t.throws(() => decodeAssertion(bytes), { instanceOf: VaultError })
    t.is(e?.code, 'SV_ASSERTION_INVALID')
    t.is(e?.details?.header, c.header)
    // and snapd's own signer will not sign it (it runs the same checks first)
    const { dir, cleanup } = await tempDir('sv-system-user-sign-')
    t.teardown(cleanup)
    const json = path.join(dir, 'headers.json')
    const { 'authority-id': _a, ...rest } = h
    await writeFile(json, JSON.stringify(rest))
    const s = await runSnapdCheck(['sign', '--key', BRAND_KEY, '--type', 'system-user', '--authority', BRAND, '--headers', json])
    t.is(s.code, 1, `snapd-check sign signed it:\n${s.stdout}`)
  },
  title: (given, what: string) => given ?? `system-users: snapd refuses too: ${what}`,
})

test(snapdRefusesToo, 'an MD5 ($1$) password hash', { mutate: (h) => void (h.password = '$1$abcdefgh$2rDMuNSJYSwNDXUvqBJ.7/'), header: 'password' })
test(snapdRefusesToo, 'serials with two models', { mutate: (h) => Object.assign(h, { format: '1', serials: ['A1B2C3D4'], models: [MODEL, 'acme-pi-gateway-18'] }), header: 'models' })
test(snapdRefusesToo, 'until before since', { mutate: (h) => void (h.until = '2025-06-01T12:34:55Z'), header: 'until' })
test(snapdRefusesToo, 'models empty and until more than a year after since', {
  mutate: (h) => {
    delete h.models
    h.until = '2026-06-01T12:34:57Z'
  },
  header: 'until',
})
test(snapdRefusesToo, 'force-password-change without a password', {
  mutate: (h) => {
    delete h.password
    h['ssh-keys'] = [SSH_ED25519]
    h['force-password-change'] = 'true'
  },
  header: 'force-password-change',
})
test(snapdRefusesToo, 'an e-mail that is no address', { mutate: (h) => void (h.email = 'not-an-email'), header: 'email' })

// where we are deliberately stricter, snapd accepts: each of these is refused above
const snapdAccepts = test.macro({
  async exec(t: ExecutionContext, _what: string, mutate: (h: Record<string, HeaderValue>) => void) {
    const h = goodHeaders()
    mutate(h)
    const r = await verifyWithSnapd(t, await signRawWithSnapdCheck(t, h))
    if (!r) return
    t.is(r.code, 0, r.stdout)
    t.regex(r.stdout, /^#1 OK\b/m)
  },
  title: (given, what: string) => given ?? `system-users: snapd accepts, we refuse (deliberately stricter): ${what}`,
})
test(snapdAccepts, 'upper case after the first character of a username, which osutil.AddUser then refuses', (h) => void (h.username = 'oPs'))
test(snapdAccepts, 'a username with "@" (snapd pattern range .-_)', (h) => void (h.username = 'ops@home'))
test(snapdAccepts, 'an e-mail with a display name', (h) => void (h.email = 'Ops <ops@acme.example>'))
test(snapdAccepts, 'a $9$ hash no crypt(3) knows', (h) => void (h.password = '$9$abcdefgh$hash'))
test(snapdAccepts, 'a multiline ssh key (two authorized_keys lines)', (h) => void (h['ssh-keys'] = [`${SSH_ED25519}\n${SSH_RSA}`]))

// ---------------------------------------------------------------- no secret in errors

function assertNoSecret(t: ExecutionContext, e: unknown, secret: string): void {
  const seen: string[] = []
  let cur: unknown = e
  for (let depth = 0; cur !== undefined && cur !== null && depth < 10; depth++) {
    const err = cur as { message?: unknown; stack?: unknown; details?: unknown; cause?: unknown }
    seen.push(String(err.message), String(err.stack), JSON.stringify(err.details) ?? '', JSON.stringify(cur) ?? '')
    cur = err.cause
  }
  seen.push(inspect(e, { depth: null, showHidden: true }))
  for (const s of seen) t.false(s.includes(secret), `the password appears in: ${s.slice(0, 200)}`)
}

const noSecret = test.macro({
  async exec(t: ExecutionContext, _what: string, input: Record<string, unknown>, secret: string) {
    const e = await t.throwsAsync(sign(input))
    t.true(e instanceof VaultError)
    assertNoSecret(t, e, secret)
  },
  title: (given, what: string) => given ?? `system-users: no secret in the error for ${what}`,
})

test(noSecret, 'a schema refusal (bad e-mail) with a plain password', { ...base, email: 'nope', password: SECRET }, SECRET)
test(noSecret, 'a snapd-rule refusal (serials with two models) with a plain password', { ...base, models: [MODEL, 'acme-pi-gateway-18'], serials: ['A1'], password: SECRET }, SECRET)
test(noSecret, 'a password that is too long', { ...base, password: `${SECRET}${'x'.repeat(250)}` }, SECRET)
test(noSecret, 'a password of 64 bytes', { ...base, password: `${SECRET}${'y'.repeat(64 - SECRET.length)}` }, SECRET)
test(noSecret, 'a password given with a hash too', { ...base, password: SECRET, passwordHash: FIXED_HASH }, SECRET)
test(noSecret, 'an oversized assertion with a plain password', { ...base, password: SECRET, serials: Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(4, '0')}${'S'.repeat(124)}`) }, SECRET)
test(noSecret, 'a wrong type next to a plain password', { ...base, password: SECRET, forcePasswordChange: 'yes' }, SECRET)
