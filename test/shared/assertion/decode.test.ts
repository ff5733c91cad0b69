/**
 * Codec tests after snapd's (STYLE §7): one known-good assertion per family
 * with every accessor checked; a table of single-line mutations of valid
 * vectors, each expecting `{ code, details.header }`; stream limits and
 * separators; single-assertion edge cases; and the header grammar.
 *
 * Decoding never verifies signatures (that is TrustDb's job), so a mutated
 * vector still reaches the header checks we want to exercise.
 */
import test from 'ava'
import type { ExecutionContext } from 'ava'
import {
  AccountAssertion,
  AccountKeyAssertion,
  Assertion,
  HEADER_NAME_RE,
  MAX_BODY_SIZE,
  MAX_HEADERS_SIZE,
  MAX_SIGNATURE_SIZE,
  ModelAssertion,
  SerialAssertion,
  SerialRequestAssertion,
  SystemUserAssertion,
  VaultError,
  decodeAssertion,
  decodeStream,
  decodeStreamPartial,
  encodeStream,
  parseHeaders,
  signAssertion,
  type ErrorCode,
  type HeadersInput,
  bytesEqual,
  utf8Decode,
} from '@sv/shared'
import { keyId, publicKeyOf, signerFor } from '../../helpers/keys.js'
import { decodeVectorFile, readVector, trustDbFor } from '../../helpers/vectors.js'

const ROOT_ID = keyId('root')
const BRAND_ID = keyId('brand')
const DEVICE_ID = keyId('device')
const REQUEST_ID = '94ebeb5f2d2571d5ded8654ae9fd0364121edaf3'
const BODY = 'hardware-id: ACME-HW-0001\nmac-address: 02:00:00:00:00:01\n'
const ms = (iso: string): number => Date.parse(iso)

function text(file: string): string {
  return readVector(file).toString('utf8')
}

/** Checks shared by every family: the bytes are kept and re-encode exactly. */
function assertCommon(t: ExecutionContext, a: Assertion, file: string): void {
  const raw = readVector(file)
  t.true(bytesEqual(a.encode(), raw), 'encode() is not the file')
  t.true(bytesEqual(encodeStream([a]), raw), 'encodeStream([a]) is not the file')
  t.true(raw.subarray(0, a.content.length).equals(a.content))
  t.is(utf8Decode(a.content), raw.toString('utf8').slice(0, raw.toString('utf8').lastIndexOf('\n\n')))
  t.is(a.header('type'), a.typeName)
  t.is(a.type.name, a.typeName)
  t.is(Object.getPrototypeOf(a.headers), null)
  t.is(a.header('no-such-header'), undefined)
  t.is(a.headerString('no-such-header'), '')
}

// --- known-good assertions, one per family ----------------------------------

test('decode: account (brand account signed by the root), every accessor', (t) => {
  const a = decodeAssertion(readVector('account.assert'))
  t.true(a instanceof AccountAssertion)
  if (!(a instanceof AccountAssertion)) return
  assertCommon(t, a, 'account.assert')
  t.is(a.typeName, 'account')
  t.is(a.authorityId, 'oracle-root')
  t.is(a.accountId, 'acme-brand')
  t.is(a.displayName, 'ACME Devices Inc.')
  t.is(a.username, 'acme')
  t.is(a.validation, 'verified')
  t.is(a.timestamp, ms('2024-01-01T00:00:00Z'))
  t.is(a.signKeyId, ROOT_ID)
  t.is(a.format, 0)
  t.is(a.revision, 0)
  t.is(a.body.length, 0)
  t.deepEqual(a.primaryKey(), ['acme-brand'])
  t.is(a.ref, 'account/acme-brand')
  t.is(a.describe(), 'account account-id=acme-brand')
})

test('decode: account reads the legacy validation "certified" as "verified"', (t) => {
  const a = decodeAssertion(text('account.assert').replace('validation: verified', 'validation: certified'))
  t.true(a instanceof AccountAssertion && a.validation === 'verified')
  t.is(a.header('validation'), 'certified')
})

test('decode: account-key (brand key signed by the root), every accessor', (t) => {
  const a = decodeAssertion(readVector('account-key.assert'))
  t.true(a instanceof AccountKeyAssertion)
  if (!(a instanceof AccountKeyAssertion)) return
  assertCommon(t, a, 'account-key.assert')
  t.is(a.authorityId, 'oracle-root')
  t.is(a.accountId, 'acme-brand')
  t.is(a.name, 'default')
  t.is(a.since, ms('2024-01-01T00:00:00Z'))
  t.is(a.until, undefined)
  t.is(a.publicKeyId, BRAND_ID)
  t.is(a.publicKey.id, BRAND_ID)
  t.true(a.publicKey.equals(publicKeyOf('brand')))
  t.is(a.publicKey.bits, 4096)
  t.is(utf8Decode(a.body), a.publicKey.encode())
  t.is(a.header('body-length'), String(a.body.length))
  t.is(a.signKeyId, ROOT_ID)
  t.deepEqual(a.primaryKey(), [BRAND_ID])
  t.is(a.ref, `account-key/${BRAND_ID}`)
  t.is(a.describe(), `account-key account-id=acme-brand name=default public-key-sha3-384=${BRAND_ID}`)
  t.true(a.isValidAt(a.since))
  t.false(a.isValidAt(a.since - 1))
  t.true(a.isValidAt(ms('2100-01-01T00:00:00Z')))
})

test('decode: account-key with until: valid in [since, until)', (t) => {
  const a = decodeAssertion(readVector('account-key-expired.assert'))
  t.true(a instanceof AccountKeyAssertion)
  if (!(a instanceof AccountKeyAssertion)) return
  assertCommon(t, a, 'account-key-expired.assert')
  t.is(a.name, 'acme-2023')
  t.is(a.since, ms('2023-01-01T00:00:00Z'))
  t.is(a.until, ms('2023-07-01T00:00:00Z'))
  t.is(a.publicKeyId, keyId('brand-2023'))
  t.true(a.isValidAt(a.since))
  t.true(a.isValidAt(a.until! - 1))
  t.false(a.isValidAt(a.until!))
})

test('decode: model UC22 (extended snaps), every accessor', (t) => {
  const a = decodeAssertion(readVector('model.assert'))
  t.true(a instanceof ModelAssertion)
  if (!(a instanceof ModelAssertion)) return
  assertCommon(t, a, 'model.assert')
  t.is(a.authorityId, 'acme-brand')
  t.is(a.brandId, 'acme-brand')
  t.is(a.model, 'acme-pi-gateway')
  t.is(a.series, '16')
  t.is(a.architecture, 'arm64')
  t.is(a.base, 'core22')
  t.is(a.displayName, 'ACME Pi Gateway')
  t.is(a.store, '')
  t.false(a.classic)
  t.true(a.extended)
  t.is(a.grade, 'signed')
  t.is(a.storageSafety, 'prefer-encrypted')
  t.is(a.timestamp, ms('2024-01-02T00:00:00Z'))
  t.is(a.signKeyId, BRAND_ID)
  const essential = ['run', 'ephemeral']
  t.deepEqual(a.gadgetSnap, { name: 'pi', snapId: 'YbGa9O3dAXl88YLI6Y1bGG74pwBxZyKg', type: 'gadget', modes: essential, defaultChannel: '22/stable', pinnedTrack: '', presence: 'required' })
  t.deepEqual(a.kernelSnap, { name: 'pi-kernel', snapId: 'jeIuP6tfFrvAdic8DMWqHmoaoukAPNbJ', type: 'kernel', modes: essential, defaultChannel: '22/stable', pinnedTrack: '', presence: 'required' })
  t.deepEqual(a.baseSnap, { name: 'core22', snapId: 'amcUKQILKXHHTlmSa7NMdnXSx02dNeeT', type: 'base', modes: essential, defaultChannel: 'latest/stable', pinnedTrack: '', presence: 'required' })
  // snapd's order: snapd, kernel, base, gadget, then the others
  t.deepEqual(
    a.allSnaps.map((s) => `${s.name}:${s.type}`),
    ['snapd:snapd', 'pi-kernel:kernel', 'core22:base', 'pi:gadget'],
  )
  t.deepEqual(a.serialAuthority, ['acme-brand'])
  t.deepEqual(a.systemUserAuthority, ['acme-brand'])
  t.deepEqual(a.primaryKey(), ['16', 'acme-brand', 'acme-pi-gateway'])
  t.is(a.ref, 'model/16/acme-brand/acme-pi-gateway')
  t.is(a.describe(), 'model brand-id=acme-brand model=acme-pi-gateway')
  const snaps = a.header('snaps')
  t.true(Array.isArray(snaps) && snaps.length === 4)
})

test('decode: model UC18 style (gadget/kernel with tracks, required-snaps), every accessor', (t) => {
  const a = decodeAssertion(readVector('model-core18.assert'))
  t.true(a instanceof ModelAssertion)
  if (!(a instanceof ModelAssertion)) return
  assertCommon(t, a, 'model-core18.assert')
  t.is(a.model, 'acme-pi-gateway-18')
  t.is(a.architecture, 'armhf')
  t.is(a.base, 'core18')
  t.is(a.displayName, 'ACME Pi Gateway (UC18)')
  t.false(a.extended)
  t.false(a.classic)
  t.is(a.grade, 'unset')
  t.is(a.storageSafety, 'unset')
  t.deepEqual(a.gadgetSnap, { name: 'pi', snapId: '', type: 'gadget', modes: ['run'], defaultChannel: '', pinnedTrack: '18-pi', presence: 'required' })
  t.deepEqual(a.kernelSnap, { name: 'pi-kernel', snapId: '', type: 'kernel', modes: ['run'], defaultChannel: '', pinnedTrack: '18-pi', presence: 'required' })
  t.deepEqual(a.baseSnap, { name: 'core18', snapId: '', type: 'base', modes: ['run'], defaultChannel: '', pinnedTrack: '', presence: 'required' })
  t.deepEqual(
    a.allSnaps.map((s) => `${s.name}:${s.type}`),
    ['pi-kernel:kernel', 'core18:base', 'pi:gadget', 'network-manager:'],
  )
  t.deepEqual(a.header('required-snaps'), ['network-manager'])
  t.deepEqual(a.serialAuthority, ['acme-brand'])
  t.is(a.timestamp, ms('2024-01-02T00:00:00Z'))
})

test('decode: model display-name defaults to the model name', (t) => {
  const a = decodeAssertion(text('model.assert').replace('display-name: ACME Pi Gateway\n', ''))
  t.true(a instanceof ModelAssertion && a.displayName === 'acme-pi-gateway')
})

test('decode: serial-request (self-signed, proposed serial, body), every accessor', (t) => {
  const a = decodeAssertion(readVector('serial-request.assert'))
  t.true(a instanceof SerialRequestAssertion)
  if (!(a instanceof SerialRequestAssertion)) return
  assertCommon(t, a, 'serial-request.assert')
  t.is(a.authorityId, '')
  t.is(a.brandId, 'acme-brand')
  t.is(a.model, 'acme-pi-gateway')
  t.is(a.serial, 'A1B2C3D4')
  t.is(a.requestId, REQUEST_ID)
  t.is(a.deviceKey.id, DEVICE_ID)
  t.true(a.deviceKey.equals(publicKeyOf('device')))
  t.is(a.header('device-key'), a.deviceKey.encode())
  t.is(a.signKeyId, DEVICE_ID)
  t.is(utf8Decode(a.body), BODY)
  t.deepEqual(a.primaryKey(), [])
  t.is(a.ref, 'serial-request')
  t.is(a.describe(), `serial-request brand-id=acme-brand model=acme-pi-gateway serial=A1B2C3D4 request-id=${REQUEST_ID}`)
})

test('decode: serial-request without serial or body', (t) => {
  const a = decodeAssertion(readVector('serial-request-nobody.assert'))
  t.true(a instanceof SerialRequestAssertion)
  if (!(a instanceof SerialRequestAssertion)) return
  t.is(a.serial, '')
  t.is(a.body.length, 0)
  t.is(a.header('body-length'), undefined)
})

test('decode: serial (brand-signed, revision 1, body), every accessor', (t) => {
  const a = decodeAssertion(readVector('serial.assert'))
  t.true(a instanceof SerialAssertion)
  if (!(a instanceof SerialAssertion)) return
  assertCommon(t, a, 'serial.assert')
  t.is(a.authorityId, 'acme-brand')
  t.is(a.revision, 1)
  t.is(a.format, 0)
  t.is(a.brandId, 'acme-brand')
  t.is(a.model, 'acme-pi-gateway')
  t.is(a.serial, 'A1B2C3D4')
  t.is(a.deviceKeyId, DEVICE_ID)
  t.true(a.deviceKey.equals(publicKeyOf('device')))
  t.is(a.header('device-key-sha3-384'), DEVICE_ID)
  t.is(a.timestamp, ms('2024-01-03T00:00:00Z'))
  t.is(utf8Decode(a.body), BODY)
  t.is(a.signKeyId, BRAND_ID)
  t.deepEqual(a.primaryKey(), ['acme-brand', 'acme-pi-gateway', 'A1B2C3D4'])
  t.is(a.ref, 'serial/acme-brand/acme-pi-gateway/A1B2C3D4')
  t.is(a.describe(), 'serial brand-id=acme-brand model=acme-pi-gateway serial=A1B2C3D4')
})

const SYSTEM_USER: HeadersInput = {
  'authority-id': 'acme-brand',
  'brand-id': 'acme-brand',
  email: 'field-ops@acme.example',
  format: '1',
  name: 'Field Ops',
  username: 'fieldops',
  password: '$6$rounds=656000$saltsaltsalt$0FcJ6mTBqDq3.zN0Vv2R6sH2pPpCp2Qm6Yj0nnpxRfJ8YVpxQ9k8g3xQ1M7u2l5H0rWk6mJx9Lz1qQvY8bT0a.',
  'force-password-change': 'true',
  'ssh-keys': ['ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 ops@acme', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5 ops2@acme'],
  series: ['16'],
  models: ['acme-pi-gateway'],
  serials: ['A1B2C3D4', 'A1B2C3D5'],
  since: '2024-02-01T00:00:00Z',
  until: '2029-02-01T00:00:00Z',
}

test('decode: system-user signed with the brand fixture key, every accessor, and it verifies', async (t) => {
  const signed = await signAssertion('system-user', SYSTEM_USER, undefined, await signerFor('brand'), { creationTime: 1706745600 })
  const a = decodeAssertion(signed.encode())
  t.true(a instanceof SystemUserAssertion)
  if (!(a instanceof SystemUserAssertion)) return
  t.true(bytesEqual(a.encode(), signed.encode()))
  t.is(a.format, 1)
  t.is(a.authorityId, 'acme-brand')
  t.is(a.brandId, 'acme-brand')
  t.is(a.email, 'field-ops@acme.example')
  t.is(a.name, 'Field Ops')
  t.is(a.username, 'fieldops')
  t.is(a.password, SYSTEM_USER.password as string)
  t.true(a.forcePasswordChange)
  t.deepEqual(a.sshKeys, SYSTEM_USER['ssh-keys'])
  t.deepEqual(a.series, ['16'])
  t.deepEqual(a.models, ['acme-pi-gateway'])
  t.deepEqual(a.serials, ['A1B2C3D4', 'A1B2C3D5'])
  t.is(a.since, ms('2024-02-01T00:00:00Z'))
  t.is(a.until, ms('2029-02-01T00:00:00Z'))
  t.is(a.signKeyId, BRAND_ID)
  t.deepEqual(a.primaryKey(), ['acme-brand', 'field-ops@acme.example'])
  t.is(a.ref, 'system-user/acme-brand/field-ops@acme.example')
  // header order: type, format, authority-id, primary key, the rest sorted
  const names = utf8Decode(a.content)
    .split('\n')
    .filter((l) => /^[a-z]/.test(l))
    .map((l) => l.slice(0, l.indexOf(':')))
  t.deepEqual(names, ['type', 'format', 'authority-id', 'brand-id', 'email', 'force-password-change', 'models', 'name', 'password', 'serials', 'series', 'since', 'ssh-keys', 'until', 'username', 'sign-key-sha3-384'])
  const db = await trustDbFor({ trusted: ['trusted.assert'], chain: ['account.assert', 'account-key.assert'] })
  await t.notThrowsAsync(db.add(a))
})

test('decode: system-user with serials needs format 1 (refused before signing)', async (t) => {
  const err = await t.throwsAsync(signAssertion('system-user', { ...SYSTEM_USER, format: undefined }, undefined, await signerFor('brand')), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_INVALID')
  t.is(err?.details?.header, 'serials')
  t.is(err?.details?.type, 'system-user')
})

// --- single-line mutations of valid vectors ---------------------------------

/** A top-level header entry: its first line and its continuation lines. */
interface Entry {
  name: string
  lines: string[]
}

/** Splits the header block of a single assertion into entries; the rest (body, signature) is kept as is. */
function splitEntries(file: string): { entries: Entry[]; rest: string } {
  const s = text(file)
  const i = s.indexOf('\n\n')
  const entries: Entry[] = []
  for (const line of s.slice(0, i).split('\n')) {
    if (line.startsWith(' ')) entries[entries.length - 1]!.lines.push(line)
    else entries.push({ name: line.slice(0, line.indexOf(':')), lines: [line] })
  }
  return { entries, rest: s.slice(i) }
}

function joinEntries(entries: Entry[], rest: string): string {
  return entries.flatMap((e) => e.lines).join('\n') + rest
}

type Edit = (entries: Entry[]) => Entry[]

function at(entries: Entry[], name: string): number {
  const i = entries.findIndex((e) => e.name === name)
  if (i === -1) throw new Error(`no header ${name} to mutate`)
  return i
}

/** Drops a header (with its continuation lines). */
const drop =
  (name: string): Edit =>
  (es) =>
    es.filter((_, i) => i !== at(es, name))

/** Replaces a header (with its continuation lines) by the given raw lines. */
const replace =
  (name: string, ...lines: string[]): Edit =>
  (es) =>
    es.map((e, i) => (i === at(es, name) ? { name, lines } : e))

/** Sets a scalar value (`name: value`). */
const set = (name: string, value: string): Edit => replace(name, `${name}: ${value}`)

/** Inserts raw lines after a header. */
const insertAfter =
  (name: string, ...lines: string[]): Edit =>
  (es) => {
    const i = at(es, name)
    return [...es.slice(0, i + 1), { name: '', lines }, ...es.slice(i + 1)]
  }

/** Repeats a header entry right after itself. */
const repeat =
  (name: string): Edit =>
  (es) => {
    const i = at(es, name)
    return [...es.slice(0, i + 1), es[i]!, ...es.slice(i + 1)]
  }

/** Rewrites the raw lines of one header. */
const mapLines =
  (name: string, f: (line: string, index: number) => string): Edit =>
  (es) =>
    es.map((e, i) => (i === at(es, name) ? { name, lines: e.lines.map(f) } : e))

function mutated(file: string, edit: Edit): string {
  const { entries, rest } = splitEntries(file)
  return joinEntries(edit(entries), rest)
}

interface Refusal {
  code: ErrorCode
  /** details.header; undefined: the grammar could not tell which header */
  header: string | undefined
  /** details.type when the codec knows it */
  type?: string | undefined
  /**
   * The stream decoder reads body-length bytes and then looks for LF LF, so
   * a body-length one short still splits (the signature gains a leading LF);
   * snapd's Decoder does the same, and the signature check catches it.
   */
  streamDecodes?: true
}

const refusesMutation = test.macro({
  exec(t: ExecutionContext, file: string, what: string, edit: Edit | Raw, want: Refusal) {
    const original = text(file)
    const input = typeof edit === 'function' ? mutated(file, edit) : edit.raw(original)
    t.not(input, original, 'the mutation changed nothing')
    const err = t.throws(() => decodeAssertion(input), { instanceOf: VaultError })
    if (!err) return
    t.is(err.code, want.code, err.message)
    t.is(err.details?.header, want.header, err.message)
    if ('type' in want) t.is(err.details?.type, want.type)
    // the stream decoder refuses it too (maybe for another reason: it reads body-length bytes)
    if (want.streamDecodes) t.is(decodeStream(input).length, 1)
    else t.throws(() => decodeStream(input), { instanceOf: VaultError })
  },
  title: (given, file: string, what: string, _edit: unknown, want: Refusal) => given ?? `decode: ${file} with ${what} -> ${want.code}${want.header ? ` (${want.header})` : ''}`,
})

/** A mutation of the whole text rather than of one header entry. */
interface Raw {
  raw: (s: string) => string
}
const raw = (f: (s: string) => string): Raw => ({ raw: f })

const INVALID: ErrorCode = 'SV_ASSERTION_INVALID'
const S = 'serial.assert'

// drop one header
test(refusesMutation, S, 'type dropped', drop('type'), { code: INVALID, header: 'type', type: undefined })
test(refusesMutation, S, 'authority-id dropped', drop('authority-id'), { code: INVALID, header: 'authority-id', type: 'serial' })
test(refusesMutation, S, 'brand-id dropped', drop('brand-id'), { code: INVALID, header: 'brand-id', type: 'serial' })
test(refusesMutation, S, 'model dropped', drop('model'), { code: INVALID, header: 'model', type: 'serial' })
test(refusesMutation, S, 'serial dropped', drop('serial'), { code: INVALID, header: 'serial', type: 'serial' })
test(refusesMutation, S, 'device-key dropped', drop('device-key'), { code: INVALID, header: 'device-key', type: 'serial' })
test(refusesMutation, S, 'device-key-sha3-384 dropped', drop('device-key-sha3-384'), { code: INVALID, header: 'device-key-sha3-384', type: 'serial' })
test(refusesMutation, S, 'timestamp dropped', drop('timestamp'), { code: INVALID, header: 'timestamp', type: 'serial' })
test(refusesMutation, S, 'body-length dropped', drop('body-length'), { code: INVALID, header: 'body-length' })
test(refusesMutation, S, 'sign-key-sha3-384 dropped', drop('sign-key-sha3-384'), { code: INVALID, header: 'sign-key-sha3-384' })
test(refusesMutation, 'model.assert', 'series dropped', drop('series'), { code: INVALID, header: 'series', type: 'model' })
test(refusesMutation, 'model.assert', 'architecture dropped', drop('architecture'), { code: INVALID, header: 'architecture', type: 'model' })
test(refusesMutation, 'model.assert', 'base dropped', drop('base'), { code: INVALID, header: 'base', type: 'model' })
test(refusesMutation, 'model.assert', 'timestamp dropped', drop('timestamp'), { code: INVALID, header: 'timestamp', type: 'model' })
test(refusesMutation, 'model-core18.assert', 'gadget dropped', drop('gadget'), { code: INVALID, header: 'gadget', type: 'model' })
test(refusesMutation, 'model-core18.assert', 'kernel dropped', drop('kernel'), { code: INVALID, header: 'kernel', type: 'model' })
test(refusesMutation, 'account.assert', 'display-name dropped', drop('display-name'), { code: INVALID, header: 'display-name', type: 'account' })
test(refusesMutation, 'account.assert', 'validation dropped', drop('validation'), { code: INVALID, header: 'validation', type: 'account' })
test(refusesMutation, 'account.assert', 'account-id dropped', drop('account-id'), { code: INVALID, header: 'account-id', type: 'account' })
test(refusesMutation, 'account-key.assert', 'account-id dropped', drop('account-id'), { code: INVALID, header: 'account-id', type: 'account-key' })
test(refusesMutation, 'account-key.assert', 'since dropped', drop('since'), { code: INVALID, header: 'since', type: 'account-key' })
test(refusesMutation, 'serial-request.assert', 'request-id dropped', drop('request-id'), { code: INVALID, header: 'request-id', type: 'serial-request' })
test(refusesMutation, 'serial-request.assert', 'device-key dropped', drop('device-key'), { code: INVALID, header: 'device-key', type: 'serial-request' })
test(refusesMutation, 'serial-request.assert', 'brand-id dropped', drop('brand-id'), { code: INVALID, header: 'brand-id', type: 'serial-request' })

// blank one header
test(refusesMutation, S, 'type blank', set('type', ''), { code: INVALID, header: 'type', type: undefined })
test(refusesMutation, S, 'authority-id blank', set('authority-id', ''), { code: INVALID, header: 'authority-id', type: 'serial' })
test(refusesMutation, S, 'brand-id blank', set('brand-id', ''), { code: INVALID, header: 'brand-id', type: 'serial' })
test(refusesMutation, S, 'model blank', set('model', ''), { code: INVALID, header: 'model', type: 'serial' })
test(refusesMutation, S, 'serial blank', set('serial', ''), { code: INVALID, header: 'serial', type: 'serial' })
test(refusesMutation, S, 'timestamp blank', set('timestamp', ''), { code: INVALID, header: 'timestamp', type: 'serial' })
test(refusesMutation, S, 'revision blank', set('revision', ''), { code: INVALID, header: 'revision', type: 'serial' })
test(refusesMutation, S, 'device-key blank', set('device-key', ''), { code: INVALID, header: 'device-key', type: 'serial' })
test(refusesMutation, S, 'device-key-sha3-384 blank', set('device-key-sha3-384', ''), { code: INVALID, header: 'device-key-sha3-384', type: 'serial' })
test(refusesMutation, S, 'sign-key-sha3-384 blank', set('sign-key-sha3-384', ''), { code: INVALID, header: 'sign-key-sha3-384' })
test(refusesMutation, 'account.assert', 'display-name blank', set('display-name', ''), { code: INVALID, header: 'display-name', type: 'account' })
test(refusesMutation, 'serial-request.assert', 'request-id blank', set('request-id', ''), { code: INVALID, header: 'request-id', type: 'serial-request' })

// corrupt one header
test(refusesMutation, S, 'an unknown type', set('type', 'serials'), { code: INVALID, header: 'type', type: 'serials' })
test(refusesMutation, S, 'a bad integer with a leading zero (revision 01)', set('revision', '01'), { code: INVALID, header: 'revision', type: 'serial' })
test(refusesMutation, S, 'a negative revision', set('revision', '-1'), { code: INVALID, header: 'revision', type: 'serial' })
test(refusesMutation, S, 'a non-decimal revision', set('revision', '0x1'), { code: INVALID, header: 'revision', type: 'serial' })
test(refusesMutation, S, 'an out-of-range revision', set('revision', '9223372036854775808'), { code: INVALID, header: 'revision', type: 'serial' })
test(refusesMutation, S, 'a negative format', insertAfter('type', 'format: -1'), { code: INVALID, header: 'format', type: 'serial' })
test(refusesMutation, S, 'a format with a leading zero', insertAfter('type', 'format: 00'), { code: INVALID, header: 'format', type: 'serial' })
test(refusesMutation, S, 'a bad RFC3339 date (no time)', set('timestamp', '2024-01-03'), { code: INVALID, header: 'timestamp', type: 'serial' })
test(refusesMutation, S, 'a bad RFC3339 date (no zone)', set('timestamp', '2024-01-03T00:00:00'), { code: INVALID, header: 'timestamp', type: 'serial' })
test(refusesMutation, S, 'a bad RFC3339 date (30 February)', set('timestamp', '2024-02-30T00:00:00Z'), { code: INVALID, header: 'timestamp', type: 'serial' })
test(refusesMutation, S, 'a bad RFC3339 date (hour 24)', set('timestamp', '2024-01-03T24:00:00Z'), { code: INVALID, header: 'timestamp', type: 'serial' })
test(refusesMutation, S, 'a bad RFC3339 date (space for T)', set('timestamp', '2024-01-03 00:00:00Z'), { code: INVALID, header: 'timestamp', type: 'serial' })
test(refusesMutation, S, 'brand-id with invalid chars', set('brand-id', 'acme_brand!'), { code: INVALID, header: 'brand-id', type: 'serial' })
test(refusesMutation, S, 'brand-id too short for an account id', set('brand-id', 'a'), { code: INVALID, header: 'brand-id', type: 'serial' })
test(refusesMutation, S, 'model name with uppercase', set('model', 'ACME-pi-gateway'), { code: INVALID, header: 'model', type: 'serial' })
test(refusesMutation, S, "model name with '/'", set('model', 'acme/pi'), { code: INVALID, header: 'model', type: 'serial' })
test(refusesMutation, S, "serial with '/' (primary key)", set('serial', 'A1B2/C3D4'), { code: INVALID, header: 'serial', type: 'serial' })
test(refusesMutation, S, 'serial as a list', replace('serial', 'serial:', '  - A1B2C3D4'), { code: INVALID, header: 'serial', type: 'serial' })
test(refusesMutation, S, 'another key id in device-key-sha3-384', set('device-key-sha3-384', BRAND_ID), { code: INVALID, header: 'device-key-sha3-384', type: 'serial' })
test(refusesMutation, S, 'device-key not a key', set('device-key', 'AAAA'), { code: INVALID, header: 'device-key', type: 'serial' })
test(refusesMutation, S, 'device-key with a corrupted base64 line', mapLines('device-key', (l, i) => (i === 2 ? `${l.slice(0, -1)}!` : l)), { code: INVALID, header: 'device-key', type: 'serial' })
test(refusesMutation, S, 'sign-key-sha3-384 in standard base64 with padding', set('sign-key-sha3-384', `${BRAND_ID.replaceAll('-', '+').replaceAll('_', '/')}==`), { code: INVALID, header: 'sign-key-sha3-384' })
test(refusesMutation, S, 'sign-key-sha3-384 one byte short', set('sign-key-sha3-384', BRAND_ID.slice(0, 60)), { code: INVALID, header: 'sign-key-sha3-384' })
test(refusesMutation, S, 'a wrong body-length (58 for 57 bytes)', set('body-length', '58'), { code: INVALID, header: 'body-length' })
test(refusesMutation, S, 'a wrong body-length (56 for 57 bytes)', set('body-length', '56'), { code: INVALID, header: 'body-length', streamDecodes: true })
test(refusesMutation, S, 'body-length with a leading zero', set('body-length', '057'), { code: INVALID, header: 'body-length' })
test(refusesMutation, S, 'a non-integer body-length', set('body-length', '57 bytes'), { code: INVALID, header: 'body-length' })
test(refusesMutation, 'model.assert', 'model name with uppercase', set('model', 'Acme-pi-gateway'), { code: INVALID, header: 'model', type: 'model' })
test(refusesMutation, 'serial-request.assert', 'model name with uppercase', set('model', 'acme-Pi-gateway'), { code: INVALID, header: 'model', type: 'serial-request' })
test(refusesMutation, 'model.assert', 'authority-id not the brand', set('authority-id', 'oracle-root'), { code: INVALID, header: 'authority-id', type: 'model' })
test(refusesMutation, 'model.assert', 'an unknown grade', set('grade', 'insecure'), { code: INVALID, header: 'grade', type: 'model' })
test(refusesMutation, 'model.assert', 'an unknown storage-safety', insertAfter('grade', 'storage-safety: maybe'), { code: INVALID, header: 'storage-safety', type: 'model' })
test(refusesMutation, 'model.assert', 'a gadget header next to snaps', insertAfter('display-name', 'gadget: pi'), { code: INVALID, header: 'gadget', type: 'model' })
test(refusesMutation, 'model.assert', 'classic not a boolean', insertAfter('base', 'classic: yes'), { code: INVALID, header: 'classic', type: 'model' })
test(refusesMutation, 'model.assert', 'snaps as a string', replace('snaps', 'snaps: pi'), { code: INVALID, header: 'snaps', type: 'model' })
test(refusesMutation, 'model-core18.assert', 'a risk as the gadget track', set('gadget', 'pi=stable'), { code: INVALID, header: 'gadget', type: 'model' })
test(refusesMutation, 'model-core18.assert', 'a grade without snaps', insertAfter('gadget', 'grade: signed'), { code: INVALID, header: 'grade', type: 'model' })
test(refusesMutation, 'model-core18.assert', 'required-snaps as a string', replace('required-snaps', 'required-snaps: network-manager'), { code: INVALID, header: 'required-snaps', type: 'model' })
test(refusesMutation, 'account-key.assert', 'another key id in public-key-sha3-384', set('public-key-sha3-384', ROOT_ID), { code: INVALID, header: 'public-key-sha3-384', type: 'account-key' })
test(refusesMutation, 'account-key.assert', 'a bad since', set('since', 'yesterday'), { code: INVALID, header: 'since', type: 'account-key' })
test(refusesMutation, 'account-key.assert', 'until before since', insertAfter('since', 'until: 2023-01-01T00:00:00Z'), { code: INVALID, header: 'until', type: 'account-key' })
test(refusesMutation, 'account-key.assert', 'an invalid key name', set('name', 'Default_Key'), { code: INVALID, header: 'name', type: 'account-key' })
test(refusesMutation, 'serial-request.assert', 'authority-id on a serial-request', insertAfter('type', 'authority-id: acme-brand'), { code: INVALID, header: 'authority-id', type: 'serial-request' })
test(refusesMutation, 'serial-request.assert', 'signatory-id on a serial-request', insertAfter('type', 'signatory-id: acme-brand'), { code: INVALID, header: 'signatory-id', type: 'serial-request' })
test(refusesMutation, 'serial-request.assert', 'sign-key-sha3-384 not the device key', set('sign-key-sha3-384', BRAND_ID), { code: INVALID, header: 'sign-key-sha3-384', type: 'serial-request' })

// grammar: repeated header, bad names, tabs, CRLF, indentation
test(refusesMutation, S, 'a repeated header (model)', repeat('model'), { code: INVALID, header: 'model' })
test(refusesMutation, S, 'a repeated header with another value (serial)', insertAfter('timestamp', 'serial: OTHER'), { code: INVALID, header: 'serial' })
test(refusesMutation, S, 'a bad header name (uppercase)', insertAfter('model', 'Model: acme-pi-gateway'), { code: INVALID, header: undefined })
test(refusesMutation, S, 'a bad header name (underscore)', insertAfter('model', 'hardware_id: x'), { code: INVALID, header: undefined })
test(refusesMutation, S, 'a bad header name (trailing hyphen)', insertAfter('model', 'hardware-: x'), { code: INVALID, header: undefined })
test(refusesMutation, S, 'a bad header name (double hyphen)', insertAfter('model', 'hardware--id: x'), { code: INVALID, header: undefined })
test(refusesMutation, S, 'a bad header name (leading digit)', insertAfter('model', '1st: x'), { code: INVALID, header: undefined })
test(refusesMutation, S, 'a line without a colon', insertAfter('model', 'just text'), { code: INVALID, header: undefined })
test(refusesMutation, S, 'no space after the colon', replace('model', 'model:acme-pi-gateway'), { code: INVALID, header: 'model' })
test(refusesMutation, S, 'a tab after the colon', replace('model', 'model:\tacme-pi-gateway'), { code: INVALID, header: 'model' })
test(refusesMutation, S, 'tab-indented multiline text', mapLines('device-key', (l) => l.replace(/^ {4}/, '\t')), { code: INVALID, header: 'device-key' })
test(refusesMutation, S, 'multiline text indented by 3 spaces', mapLines('device-key', (l) => l.replace(/^ {4}/, '   ')), { code: INVALID, header: 'device-key' })
test(refusesMutation, S, 'a multiline introduction with no lines', replace('device-key', 'device-key:'), { code: INVALID, header: 'device-key' })
test(refusesMutation, S, 'a CR at the end of one line (CRLF)', mapLines('model', (l) => `${l}\r`), { code: INVALID, header: 'model', type: 'serial' })
// with CRLF, `device-key:` / `snaps:` are followed by CR: neither a space (scalar) nor LF (multiline)
test(refusesMutation, S, 'CRLF line endings in the headers', raw((s) => s.slice(0, s.indexOf('\n\n')).replaceAll('\n', '\r\n') + s.slice(s.indexOf('\n\n'))), { code: INVALID, header: 'device-key' })
test(refusesMutation, 'model.assert', 'CRLF line endings in the headers (snaps list)', raw((s) => s.slice(0, s.indexOf('\n\n')).replaceAll('\n', '\r\n') + s.slice(s.indexOf('\n\n'))), { code: INVALID, header: 'snaps' })
test(refusesMutation, 'account.assert', 'CRLF line endings in the headers (scalars only)', raw((s) => s.slice(0, s.indexOf('\n\n')).replaceAll('\n', '\r\n') + s.slice(s.indexOf('\n\n'))), { code: INVALID, header: 'type', type: 'account\r' })
test(refusesMutation, S, 'CRLF line endings everywhere', raw((s) => s.replaceAll('\n', '\r\n')), { code: INVALID, header: undefined })
test(refusesMutation, 'model.assert', 'a map entry without a colon in snaps', mapLines('snaps', (l, i) => (i === 2 ? '    default-channel 22/stable' : l)), { code: INVALID, header: 'snaps' })
test(refusesMutation, 'model.assert', 'a repeated map key in snaps', mapLines('snaps', (l, i) => (i === 3 ? '    default-channel: 22/edge' : l)), { code: INVALID, header: 'snaps' })
test(refusesMutation, 'model.assert', 'an invalid map key in snaps', mapLines('snaps', (l, i) => (i === 2 ? '    Default-Channel: 22/stable' : l)), { code: INVALID, header: 'snaps' })

test('decode: a tab inside a value is just a character', (t) => {
  const a = decodeAssertion(mutated(S, set('serial', 'A1B2\tC3D4')))
  t.true(a instanceof SerialAssertion)
  t.is(a.headerString('serial'), 'A1B2\tC3D4')
})

test('decode: a lone CR inside a value is just a character (snapd does not treat CR specially)', (t) => {
  const a = decodeAssertion(mutated(S, insertAfter('model', 'note: a\rb')))
  t.is(a.headerString('note'), 'a\rb')
})

test('decode: headers may come in any order (only snapd writes them canonically)', (t) => {
  const a = decodeAssertion(mutated(S, (es) => [...es].reverse()))
  t.true(a instanceof SerialAssertion)
  t.is(a.headerString('serial'), 'A1B2C3D4')
})

test('decode: a body that is not UTF-8 is refused', (t) => {
  const raw = readVector(S)
  const i = raw.indexOf('\n\nhardware-id') + 2
  const bad = Buffer.from(raw)
  bad[i] = 0xff
  const err = t.throws(() => decodeAssertion(bad), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_INVALID')
})

test('decode: headers that are not UTF-8 are refused', (t) => {
  const bad = Buffer.from(readVector(S))
  bad[bad.indexOf('A1B2C3D4')] = 0xc3
  const err = t.throws(() => decodeAssertion(bad), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_INVALID')
})

// --- stream limits ------------------------------------------------------------

/** A serial-request signed with the small device key, its headers padded so that headers + LF LF take `headBytes`. */
async function serialRequestWithHeadSize(headBytes: number, body = ''): Promise<Buffer> {
  const signer = await signerFor('small/device')
  const base: HeadersInput = {
    'brand-id': 'acme-brand',
    model: 'acme-pi-gateway',
    'request-id': 'limit-test',
    'device-key': signer.publicKey.encode(),
  }
  const probe = await signAssertion('serial-request', { ...base, padding: '' }, body, signer)
  const content = Buffer.from(probe.content)
  const headLen = content.indexOf('\n\n') === -1 ? content.length : content.indexOf('\n\n')
  const a = await signAssertion('serial-request', { ...base, padding: 'x'.repeat(headBytes - 2 - headLen) }, body, signer)
  const enc = Buffer.from(a.encode())
  if (enc.indexOf('\n\n') + 2 !== headBytes) throw new Error(`padding arithmetic is off: ${enc.indexOf('\n\n') + 2} != ${headBytes}`)
  return enc
}

test('decode stream: headers of exactly 128 KiB (LF LF included) are accepted', async (t) => {
  const enc = await serialRequestWithHeadSize(MAX_HEADERS_SIZE)
  t.is(MAX_HEADERS_SIZE, 131072)
  const [a] = decodeStream(enc)
  t.true(a instanceof SerialRequestAssertion)
})

test('decode stream: headers over 128 KiB -> SV_ASSERTION_TOO_LARGE', async (t) => {
  const enc = await serialRequestWithHeadSize(MAX_HEADERS_SIZE + 1)
  const err = t.throws(() => decodeStream(enc), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_TOO_LARGE')
  t.is(err?.details?.limit, MAX_HEADERS_SIZE)
  t.is(err?.details?.index, 1)
  // asserts.Decode (one assertion) has no limits
  t.true(decodeAssertion(enc) instanceof SerialRequestAssertion)
})

test('decode stream: a body of exactly 2 MiB is accepted, one byte more -> SV_ASSERTION_TOO_LARGE', async (t) => {
  t.is(MAX_BODY_SIZE, 2 * 1024 * 1024)
  const signer = await signerFor('small/device')
  const headers: HeadersInput = { 'brand-id': 'acme-brand', model: 'acme-pi-gateway', 'request-id': 'big-body', 'device-key': signer.publicKey.encode() }
  const ok = await signAssertion('serial-request', headers, 'b'.repeat(MAX_BODY_SIZE), signer)
  const [a] = decodeStream(ok.encode())
  t.is(a?.body.length, MAX_BODY_SIZE)
  const big = await signAssertion('serial-request', headers, 'b'.repeat(MAX_BODY_SIZE + 1), signer)
  const err = t.throws(() => decodeStream(big.encode()), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_TOO_LARGE')
  t.is(err?.details?.header, 'body-length')
  t.is(err?.details?.limit, MAX_BODY_SIZE)
})

test('decode stream: a huge body-length is refused from the header alone, before reading', (t) => {
  const input = mutated(S, set('body-length', '99999999999'))
  const err = t.throws(() => decodeStream(input), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_TOO_LARGE')
  t.is(err?.details?.header, 'body-length')
})

test('decode stream: a signature of 128 KiB is read, one byte more -> SV_ASSERTION_TOO_LARGE', (t) => {
  t.is(MAX_SIGNATURE_SIZE, 131072)
  const content = text('model.assert').slice(0, text('model.assert').lastIndexOf('\n\n'))
  // the signature chunk is read up to LF LF or EOF; decoding does not parse it
  const atLimit = `${content}\n\n${'A'.repeat(MAX_SIGNATURE_SIZE - 1)}\n`
  const [a] = decodeStream(atLimit)
  t.is(a?.signature.length, MAX_SIGNATURE_SIZE)
  const over = `${content}\n\n${'A'.repeat(MAX_SIGNATURE_SIZE)}\n`
  const err = t.throws(() => decodeStream(over), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_TOO_LARGE')
  t.is(err?.details?.limit, MAX_SIGNATURE_SIZE)
})

test('decode stream: limits can be lowered per call; maxAssertions bounds the count', (t) => {
  const stream = readVector('stream.assert')
  const err = t.throws(() => decodeStream(stream, { maxHeadersSize: 200 }), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_TOO_LARGE')
  t.is(err?.details?.limit, 200)
  t.is(decodeStream(stream, { maxAssertions: 4 }).length, 4)
  const many = t.throws(() => decodeStream(stream, { maxAssertions: 3 }), { instanceOf: VaultError })
  t.is(many?.code, 'SV_ASSERTION_TOO_LARGE')
  t.is(many?.details?.index, 4)
  const sig = t.throws(() => decodeStream(stream, { maxSignatureSize: 100 }), { instanceOf: VaultError })
  t.is(sig?.code, 'SV_ASSERTION_TOO_LARGE')
  const body = t.throws(() => decodeStream(readVector('account-key.assert'), { maxBodySize: 716 }), { instanceOf: VaultError })
  t.is(body?.code, 'SV_ASSERTION_TOO_LARGE')
  t.is(decodeStream(readVector('account-key.assert'), { maxBodySize: 717 }).length, 1)
})

// --- stream separators ----------------------------------------------------------

const A = readVector('account.assert')
const K = readVector('account-key.assert')
const M = readVector('model.assert')

test('decode stream: assertions separated by exactly one blank line (asserts.Encoder)', (t) => {
  const stream = Buffer.concat([A, Buffer.from('\n'), K, Buffer.from('\n'), M])
  const as = decodeStream(stream)
  t.deepEqual(
    as.map((a) => a.typeName),
    ['account', 'account-key', 'model'],
  )
  t.true(bytesEqual(encodeStream(as), stream))
  t.deepEqual(
    decodeVectorFile('stream.assert').map((a) => a.typeName),
    ['account', 'account-key', 'model', 'serial'],
  )
})

test('decode stream: an extra blank line between assertions breaks the stream at the next one', (t) => {
  const stream = Buffer.concat([A, Buffer.from('\n\n'), K])
  const err = t.throws(() => decodeStream(stream), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_INVALID')
  t.is(err?.details?.index, 2)
  const partial = decodeStreamPartial(stream)
  t.is(partial.assertions.length, 1)
  t.is(partial.error?.code, 'SV_ASSERTION_INVALID')
})

test('decode stream: a leading blank line breaks the stream', (t) => {
  const err = t.throws(() => decodeStream(Buffer.concat([Buffer.from('\n'), A])), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_INVALID')
  t.is(err?.details?.index, 1)
})

test('decode stream: a missing final LF is fine, and encodeStream puts it back', (t) => {
  const stream = Buffer.concat([A, Buffer.from('\n'), K])
  const noLf = stream.subarray(0, stream.length - 1)
  const as = decodeStream(noLf)
  t.is(as.length, 2)
  t.true(bytesEqual(as[1]!.content, decodeStream(stream)[1]!.content))
  t.true(bytesEqual(encodeStream(as), stream))
})

test('decode stream: one trailing blank line after the last signature is normalised', (t) => {
  const as = decodeStream(Buffer.concat([A, Buffer.from('\n')]))
  t.is(as.length, 1)
  t.true(bytesEqual(encodeStream(as), A))
})

test('decode stream: an empty stream has no assertions; a lone LF is an unexpected EOF', (t) => {
  t.deepEqual(decodeStream(Buffer.alloc(0)), [])
  const err = t.throws(() => decodeStream('\n'), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_INVALID')
})

test('decode stream: EOF inside an assertion is an error naming its index', (t) => {
  const stream = Buffer.concat([A, Buffer.from('\n'), K.subarray(0, 200)])
  const err = t.throws(() => decodeStream(stream), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_INVALID')
  t.is(err?.details?.index, 2)
  const inBody = Buffer.concat([A, Buffer.from('\n'), K.subarray(0, K.indexOf('\n\n') + 100)])
  const err2 = t.throws(() => decodeStream(inBody), { instanceOf: VaultError })
  t.is(err2?.details?.index, 2)
})

// --- single-assertion decode edge cases -----------------------------------------

test('decode: a trailing blank line after the body and no signature -> empty signature', (t) => {
  // asserts.Decode splits at the last LF LF: the signature is what follows it
  const raw = text(S)
  const noSig = `${raw.slice(0, raw.lastIndexOf('\n\n'))}\n\n`
  const err = t.throws(() => decodeAssertion(noSig), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_INVALID')
  t.is(err?.details?.type, 'serial')
  t.is(err?.details?.header, undefined)
  t.is(err?.details?.reason, 'empty assertion signature')
  const headersOnly = `${text('model.assert').slice(0, text('model.assert').lastIndexOf('\n\n'))}\n\n`
  const err2 = t.throws(() => decodeAssertion(headersOnly), { instanceOf: VaultError })
  t.is(err2?.details?.reason, 'empty assertion signature')
  t.is(err2?.details?.type, 'model')
})

test('decode: a complete assertion followed by a blank line is refused (the signature becomes the body)', (t) => {
  // snapd's assemble checks body-length before the empty signature, so the
  // error is about the body, as in snapd 2.57.6
  for (const [file, raw] of [['model.assert', M], [S, readVector(S)]] as const) {
    const err = t.throws(() => decodeAssertion(Buffer.concat([raw, Buffer.from('\n')])), { instanceOf: VaultError }, file)
    t.is(err?.code, 'SV_ASSERTION_INVALID')
    t.is(err?.details?.header, 'body-length')
  }
})

test('decode: one trailing LF or none is fine', (t) => {
  const withLf = decodeAssertion(M)
  const without = decodeAssertion(M.subarray(0, M.length - 1))
  t.true(bytesEqual(withLf.content, without.content))
  t.true(bytesEqual(encodeStream([without]), M))
  t.true(bytesEqual(without.encode(), M.subarray(0, M.length - 1)))
})

test('decode: no content/signature separator', (t) => {
  for (const input of ['', 'type: model', text('model.assert').replaceAll('\n\n', '\n')]) {
    const err = t.throws(() => decodeAssertion(input), { instanceOf: VaultError })
    t.is(err?.code, 'SV_ASSERTION_INVALID')
  }
})

test('decode: two assertions are not one', (t) => {
  const err = t.throws(() => decodeAssertion(Buffer.concat([A, Buffer.from('\n'), K])), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_INVALID')
})

test('decode: a body containing blank lines (the last LF LF is the signature separator)', async (t) => {
  const signer = await signerFor('small/device')
  const body = 'line 1\n\n\nline 4\n\n'
  const a = await signAssertion('serial-request', { 'brand-id': 'acme-brand', model: 'm1', 'request-id': 'r', 'device-key': signer.publicKey.encode() }, body, signer)
  t.is(utf8Decode(decodeAssertion(a.encode()).body), body)
  t.is(utf8Decode(decodeStream(a.encode())[0]!.body), body)
})

// --- header grammar ---------------------------------------------------------------

test('grammar: scalars keep every space after the first and may be empty or contain colons', (t) => {
  const h = parseHeaders('a:  two leading\nb: trailing  \nc: \nd: http://x:80/y: z\ne: ÄÖ 設備 🚀')
  t.deepEqual({ ...h }, { a: ' two leading', b: 'trailing  ', c: '', d: 'http://x:80/y: z', e: 'ÄÖ 設備 🚀' })
})

test('grammar: a list of strings and a list with a multiline item', (t) => {
  const h = parseHeaders(['required-snaps:', '  - one', '  - two', 'notes:', '  -', '      line 1', '      ', '      line 3', '  - after'].join('\n'))
  t.deepEqual(h['required-snaps'], ['one', 'two'])
  t.deepEqual(h.notes, ['line 1\n\nline 3', 'after'])
})

test('grammar: a map, with nested list and map', (t) => {
  const h = parseHeaders(['m:', '  a: 1', '  list:', '    - x', '    - y', '  sub:', '    k: v', 'next: n'].join('\n'))
  t.deepEqual(JSON.parse(JSON.stringify(h)), { m: { a: '1', list: ['x', 'y'], sub: { k: 'v' } }, next: 'n' })
})

test('grammar: a nested list of maps (the snaps header shape)', (t) => {
  const h = parseHeaders(['snaps:', '  -', '    id: 1', '    modes:', '      - run', '      - recover', '    name: a', '  -', '    name: b', '    notes:', '        two', '        lines'].join('\n'))
  t.deepEqual(JSON.parse(JSON.stringify(h.snaps)), [
    { id: '1', modes: ['run', 'recover'], name: 'a' },
    { name: 'b', notes: 'two\nlines' },
  ])
})

test('grammar: a list of lists', (t) => {
  const h = parseHeaders(['l:', '  -', '    - a', '    - b', '  -', '    -', '      - deep'].join('\n'))
  t.deepEqual(h.l, [['a', 'b'], [['deep']]])
})

test('grammar: multiline text with empty lines and deeper indentation', (t) => {
  const h = parseHeaders(['text:', '    first', '    ', '      indented by two', '    ', '    ', '    last  ', 'after: x'].join('\n'))
  t.is(h.text, 'first\n\n  indented by two\n\n\nlast  ')
  t.is(h.after, 'x')
})

test('grammar: multiline text whose first line starts with spaces (not a list or map)', (t) => {
  const h = parseHeaders(['text:', '      - not a list', '    key: not a map'].join('\n'))
  t.is(h.text, '  - not a list\nkey: not a map')
})

test('grammar: names like constructor and prototype are plain names (null-prototype objects)', (t) => {
  const names = ['constructor', 'prototype', 'hasownproperty', 'tostring', 'valueof', 'proto', 'isprototypeof']
  const h = parseHeaders([...names.map((n) => `${n}: ${n}-value`), 'map:', ...names.map((n) => `  ${n}: in-map`)].join('\n'))
  t.is(Object.getPrototypeOf(h), null)
  t.is(Object.getPrototypeOf(h.map), null)
  for (const n of names) {
    t.is(h[n], `${n}-value`)
    t.is((h.map as Record<string, unknown>)[n], 'in-map')
  }
  const empty = parseHeaders('a: b')
  t.is(typeof Reflect.get(empty, 'constructor'), 'undefined')
  t.is(typeof Reflect.get(empty, 'toString'), 'undefined')
  t.false('hasOwnProperty' in empty)
})

test('grammar: an assertion with a constructor header; header() never reaches Object.prototype', (t) => {
  const a = decodeAssertion(mutated(S, insertAfter('model', 'constructor: c', 'tostring: ts')))
  t.is(a.header('constructor'), 'c')
  t.is(a.headerString('tostring'), 'ts')
  t.is(a.header('toString'), undefined)
  t.is(a.header('__proto__'), undefined)
  t.is(a.header('hasOwnProperty'), undefined)
  t.is(decodeAssertion(readVector(S)).header('constructor'), undefined)
})

test('grammar: __proto__ and camelCase names are not header names', (t) => {
  for (const line of ['__proto__: x', 'toString: x', 'hasOwnProperty: x']) {
    const err = t.throws(() => parseHeaders(line), { instanceOf: VaultError })
    t.is(err?.code, 'SV_ASSERTION_INVALID')
  }
  const err = t.throws(() => parseHeaders('m:\n  __proto__: x'), { instanceOf: VaultError })
  t.is(err?.details?.header, 'm')
})

test('grammar: header-name rule', (t) => {
  for (const ok of ['a', 'a1', 'a-b', 'a-1', 'abc-def-ghi', 'x9-y8', 'sign-key-sha3-384']) t.true(HEADER_NAME_RE.test(ok), ok)
  for (const bad of ['', '1a', '-a', 'a-', 'a--b', 'A', 'aB', 'a_b', 'a.b', 'a b', 'ä', 'a\n']) t.false(HEADER_NAME_RE.test(bad), JSON.stringify(bad))
})

test('grammar: refusals name the top-level header they are in', (t) => {
  const cases: [string, string | undefined][] = [
    ['a:b', 'a'],
    ['a:', 'a'],
    ['a: 1\na: 2', 'a'],
    ['l:\n  - x\n  -y', 'l'],
    ['m:\n  k: v\n  k: w', 'm'],
    ['m:\n  k v', 'm'],
    ['t:\n   three spaces', 't'],
    ['no colon', undefined],
    ['', undefined],
  ]
  for (const [input, header] of cases) {
    const err = t.throws(() => parseHeaders(input), { instanceOf: VaultError }, JSON.stringify(input))
    t.is(err?.code, 'SV_ASSERTION_INVALID')
    t.is(err?.details?.header, header, JSON.stringify(input))
  }
})

test('decodeAssertion: the stream limits apply to a single assertion too', (t) => {
  const big = `type: account\n${'x-pad: '.padEnd(200, 'y')}\n`.repeat(1) + 'a: b\n'.repeat(30_000) + 'z: c\n\nAcLBUgQ='
  const e = t.throws(() => decodeAssertion(big), { instanceOf: VaultError })
  t.is(e?.code, 'SV_ASSERTION_TOO_LARGE')
  t.is(e?.details?.limit, 128 * 1024)
})

test('parseHeaders: nesting deeper than MAX_NESTING is refused with the typed error, not a stack overflow', (t) => {
  let text = 'type: model\nsnaps:'
  for (let d = 0; d < 2000; d++) text += `\n${' '.repeat(2 * d + 2)}-`
  text += `\n${' '.repeat(4006)}x`
  const e = t.throws(() => parseHeaders(text), { instanceOf: VaultError })
  t.is(e?.code, 'SV_ASSERTION_INVALID')
  t.is(e?.details?.header, 'snaps')
})
