/**
 * Signatures (spec §3): our packets are snapd's byte for byte (PKCS#1 v1.5 is
 * deterministic, so a fixed creation time fixes every byte), both MPI styles
 * verify, weak or unknown digests are refused politely (snapd verifies MD5 and
 * SHA-1 and panics on RIPEMD-160), and malformed packets are typed errors.
 */
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import {
  Assertion,
  TrustDb,
  VaultError,
  decodeAssertion,
  encodeStream,
  parseSignature,
  signAssertion,
  signContent,
  verifySignature,
  type ErrorCode,
  type HeadersInput,
  type PublicKey,
  bytesEqual,
  utf8Decode,
} from '@sv/shared'
import { FIXTURE_KEYS, keyId, keyPath as keyPemPath, keyPem, publicKeyOf, signerFor, type FixtureKeyName } from '../../helpers/keys.js'
import { DEFAULT_SIG_TIME, HASHES, craftSignature, creationTimeSubpacket, fromV1Text, packet, subpacket, unpacket, v1Text, type HashName, type SignatureSpec } from '../../helpers/openpgp.js'
import { locateSnapdCheck, runSnapdCheck, tempDir } from '../../helpers/snapd-check.js'
import { decodeVectorFile, loadManifest, readVector, trustDbFor } from '../../helpers/vectors.js'

function keyNameForId(id: string): FixtureKeyName | undefined {
  return FIXTURE_KEYS.find((n) => keyId(n) === id)
}

function sigText(a: Assertion): string {
  return utf8Decode(a.signature).replace(/\n$/, '')
}

// --- our signatures are snapd's ------------------------------------------------

/** Vectors whose signatures snapd's own signer made (SHA-512, Go-style MPI). */
const SNAPD_SIGNED = loadManifest().vectors.filter((v) => v.valid && v.file !== 'edge-serial-sha256.assert' && v.file !== 'edge-serial-mpi-canonical.assert')

const resignsLikeSnapd = test.macro({
  async exec(t: ExecutionContext, file: string) {
    const assertions = decodeVectorFile(file)
    t.true(assertions.length > 0)
    for (const a of assertions) {
      const name = keyNameForId(a.signKeyId)
      if (!name) return void t.fail(`${file}: no fixture key ${a.signKeyId}`)
      const parsed = parseSignature(a.signature)
      const ours = await signContent(a.content, await signerFor(name), parsed.creationTime)
      t.is(ours, sigText(a), `${a.describe()} signed by ${name}`)
    }
  },
  title: (given, file: string) => given ?? `signature: re-signing ${file} with its key and creation time gives snapd's bytes`,
})

for (const v of SNAPD_SIGNED) test(resignsLikeSnapd, v.file)

test('signature: the leading-zero vector really has a 0x00-led value written Go style (8k bits)', (t) => {
  const a = decodeAssertion(readVector('edge-serial-mpi-leading-zero.assert'))
  const body = unpacket(fromV1Text(sigText(a))).body
  // body: 04 00 01 0A | 00 06 | 05 02 tttt | 00 00 | tag tag | bits(2) | value
  t.is(body.readUInt16BE(16), 4096)
  t.is(body.length, 18 + 512)
  t.is(body[18], 0)
  const canon = unpacket(fromV1Text(sigText(decodeAssertion(readVector('edge-serial-mpi-canonical.assert'))))).body
  t.true(canon.readUInt16BE(16) <= 4088)
  t.is(canon.length, 18 + Math.ceil(canon.readUInt16BE(16) / 8))
})

/** Signs with `snapd-check sign --sig-time` and returns the bytes it wrote. */
async function snapdSign(t: ExecutionContext, dir: string, name: string, args: string[], headers?: HeadersInput): Promise<Buffer | undefined> {
  const bin = locateSnapdCheck()
  if (bin instanceof Error) {
    t.fail(bin.message)
    return undefined
  }
  const out = path.join(dir, `${name}.assert`)
  const extra: string[] = []
  if (headers) {
    const hf = path.join(dir, `${name}.headers.json`)
    await writeFile(hf, JSON.stringify(headers))
    extra.push('--headers', hf)
  }
  const r = await runSnapdCheck(['sign', ...args, ...extra, '--out', out])
  if (r.code !== 0) {
    t.fail(`snapd-check sign failed (${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr}`)
    return undefined
  }
  return readFile(out)
}

const SIG_TIME = '2024-03-01T12:34:56Z'
const SIG_SECONDS = Date.parse(SIG_TIME) / 1000

interface SnapdSignCase {
  type: string
  key: FixtureKeyName
  authority?: string
  headers: HeadersInput
  body?: string
  /** snapd-check sets device-key (and device-key-sha3-384 for serial) from this key */
  deviceKeyOf?: FixtureKeyName
  /** snapd-check uses this key as account-key body and sets public-key-sha3-384 */
  publicKeyBody?: FixtureKeyName
}

const sameAsSnapd = test.macro({
  async exec(t: ExecutionContext, what: string, c: SnapdSignCase) {
    const { dir, cleanup } = await tempDir('sv-sig-')
    t.teardown(cleanup)
    const args = ['--key', keyPemPath(c.key), '--type', c.type, '--sig-time', SIG_TIME]
    if (c.authority) args.push('--authority', c.authority)
    if (c.body !== undefined) args.push('--body', c.body)
    if (c.deviceKeyOf) args.push('--device-key-of', keyPemPath(c.deviceKeyOf))
    if (c.publicKeyBody) args.push('--public-key-body', keyPemPath(c.publicKeyBody))
    const theirs = await snapdSign(t, dir, 'case', args, c.headers)
    if (!theirs) return
    const headers: HeadersInput = { ...c.headers }
    if (c.authority) headers['authority-id'] = c.authority
    let body = c.body
    if (c.deviceKeyOf) {
      headers['device-key'] = publicKeyOf(c.deviceKeyOf).encode()
      if (c.type === 'serial') headers['device-key-sha3-384'] = publicKeyOf(c.deviceKeyOf).id
    }
    if (c.publicKeyBody) {
      body = publicKeyOf(c.publicKeyBody).encode()
      headers['public-key-sha3-384'] = publicKeyOf(c.publicKeyBody).id
    }
    const ours = await signAssertion(c.type, headers, body, await signerFor(c.key), { creationTime: SIG_SECONDS })
    const mine = encodeStream([ours])
    t.is(utf8Decode(mine), theirs.toString('utf8'))
    t.true(bytesEqual(mine, theirs))
    t.is(parseSignature(ours.signature).creationTime, SIG_SECONDS)
  },
  title: (given, what: string) => given ?? `signature: ${what} is byte-identical to snapd-check sign --sig-time`,
})

test(sameAsSnapd, 'a serial with a body, a list and multiline text (4096-bit brand key)', {
  type: 'serial',
  key: 'brand',
  authority: 'acme-brand',
  headers: { 'brand-id': 'acme-brand', model: 'acme-pi-gateway', serial: 'SIG-0001', revision: '3', timestamp: '2024-03-01T00:00:00Z', extras: ['one', 'two'], note: 'first\n\n  third' },
  body: 'hardware-id: X\n',
  deviceKeyOf: 'device',
})

test(sameAsSnapd, 'a serial-request (no authority, device key)', {
  type: 'serial-request',
  key: 'device',
  headers: { 'brand-id': 'acme-brand', model: 'acme-pi-gateway', 'request-id': 'REQ-1', serial: 'SIG-0002' },
  deviceKeyOf: 'device',
})

test(sameAsSnapd, 'a UC20-style model with snaps (list of maps)', {
  type: 'model',
  key: 'brand',
  authority: 'acme-brand',
  headers: {
    series: '16',
    'brand-id': 'acme-brand',
    model: 'acme-sig-model',
    architecture: 'amd64',
    base: 'core22',
    grade: 'signed',
    timestamp: '2024-03-01T00:00:00Z',
    snaps: [
      { name: 'pc', id: 'UqFziVZDHLSyO3TqSWgNBoAdHbLI4dAH', type: 'gadget', 'default-channel': '22/stable' },
      { name: 'pc-kernel', id: 'pYVQrBcKmBa0mZ4CCN7ExT6jH8rY1hza', type: 'kernel', 'default-channel': '22/stable' },
    ],
  },
})

test(sameAsSnapd, 'an account-key (root key, public key body)', {
  type: 'account-key',
  key: 'root',
  authority: 'oracle-root',
  headers: { 'account-id': 'acme-brand', name: 'sig-test', since: '2024-01-01T00:00:00Z' },
  publicKeyBody: 'impostor',
})

test(sameAsSnapd, 'a serial signed with a 1024-bit key', {
  type: 'serial',
  key: 'small/brand',
  authority: 'acme-brand',
  headers: { 'brand-id': 'acme-brand', model: 'acme-pi-gateway', serial: 'SMALL-1', timestamp: '2024-03-01T00:00:00Z' },
  deviceKeyOf: 'small/device',
})

test('signature: signing is deterministic for a fixed creation time and defaults to now', async (t) => {
  const signer = await signerFor('small/brand')
  const content = Buffer.from('type: test')
  t.is(await signContent(content, signer, 1000), await signContent(content, signer, 1000))
  t.not(await signContent(content, signer, 1000), await signContent(content, signer, 1001))
  const before = Math.floor(Date.now() / 1000)
  const created = parseSignature(await signContent(content, signer)).creationTime
  t.true(created >= before && created <= Math.floor(Date.now() / 1000))
})

test('signature: parseSignature of a snapd signature (spec §3.1 layout)', (t) => {
  const a = decodeAssertion(readVector('serial.assert'))
  const p = parseSignature(a.signature)
  t.is(p.version, 4)
  t.is(p.sigType, 0)
  t.is(p.pubKeyAlgo, 1)
  t.is(p.hashId, 10)
  t.is(p.hashedPrefix.length, 12)
  t.deepEqual([...p.hashedPrefix.subarray(0, 8)], [4, 0, 1, 10, 0, 6, 5, 2])
  t.is(p.hashTag.length, 2)
  t.is(p.value.length, 512)
  t.is(p.issuer, undefined)
  t.true(sigText(a).startsWith('AcLBUgQAAQoABgUC'))
})

// --- verification: digests, MPI styles, packet structure ---------------------------

const CONTENT = decodeAssertion(readVector('small/serial.assert')).content
const SMALL_BRAND: PublicKey = publicKeyOf('small/brand')
const SMALL_BRAND_PEM = keyPem('small/brand')

function craft(spec: SignatureSpec = {}, content: Uint8Array = CONTENT): string {
  return craftSignature(content, SMALL_BRAND_PEM, spec)
}

const verifies = test.macro({
  async exec(t: ExecutionContext, what: string, sig: () => string) {
    await t.notThrowsAsync(verifySignature(CONTENT, sig(), SMALL_BRAND))
  },
  title: (given, what: string) => given ?? `signature: ${what} verifies`,
})

const refusesSig = test.macro({
  async exec(t: ExecutionContext, what: string, sig: () => string, code: ErrorCode) {
    const s = sig()
    const err = await t.throwsAsync(verifySignature(CONTENT, s, SMALL_BRAND), { instanceOf: VaultError })
    t.is(err?.code, code)
  },
  title: (given, what: string, _sig: unknown, code: ErrorCode) => given ?? `signature: ${what} -> ${code}`,
})

test(verifies, 'a crafted SHA-512 signature (control: the crafting is right)', () => craft())
test(verifies, 'SHA-256', () => craft({ hash: 'sha256' }))
test(verifies, 'SHA-384', () => craft({ hash: 'sha384' }))
test(verifies, 'an MPI in GnuPG style (exact bit count, no leading zeros)', () => craft({ mpiStyle: 'exact' }))
test(verifies, 'an MPI in Go style (8k bits, leading zeros kept)', () => craft({ mpiStyle: 'bytes' }))
test(verifies, 'an old-format packet header', () => craft({ format: 'old' }))
test(verifies, 'signature type 0x01 (canonical text; snapd does not check the type)', () => craft({ sigType: 1 }))
test(verifies, 'RSA sign-only algorithm 3', () => craft({ pubKeyAlgo: 3 }))
test(verifies, 'GnuPG extras: issuer fingerprint (hashed, non-critical) and issuer key id (unhashed)', () =>
  craft({
    hashed: Buffer.concat([creationTimeSubpacket(DEFAULT_SIG_TIME), subpacket(33, Buffer.alloc(21, 4))]),
    unhashed: subpacket(16, Buffer.from('d4a55bea97d83720', 'hex')),
  }),
)
test(verifies, 'an unknown non-critical subpacket', () => craft({ hashed: Buffer.concat([subpacket(100, Buffer.from('x')), creationTimeSubpacket(DEFAULT_SIG_TIME)]) }))

for (const [hash, id] of [
  ['md5', 1],
  ['sha1', 2],
  ['ripemd160', 3],
  ['sha224', 11],
] as [HashName, number][]) {
  test(refusesSig, `a real signature with a weak digest ${hash} (id ${id}, which snapd would take)`, () => craft({ hash }), 'SV_SIGNATURE_UNSUPPORTED')
}
test(refusesSig, 'an unknown hash id 12', () => craft({ hashId: 12 }), 'SV_SIGNATURE_UNSUPPORTED')
test(refusesSig, 'a v3 signature packet', () => craft({ version: 3 }), 'SV_SIGNATURE_UNSUPPORTED')
test(refusesSig, 'a DSA signature (algorithm 17)', () => craft({ pubKeyAlgo: 17 }), 'SV_SIGNATURE_UNSUPPORTED')
test(refusesSig, 'no creation time', () => craft({ hashed: Buffer.alloc(0) }), 'SV_SIGNATURE_INVALID')
test(refusesSig, 'the creation time in the unhashed area', () => craft({ hashed: Buffer.alloc(0), unhashed: creationTimeSubpacket(DEFAULT_SIG_TIME) }), 'SV_SIGNATURE_INVALID')
test(refusesSig, 'a creation time of 3 bytes', () => craft({ hashed: subpacket(2, Buffer.from([1, 2, 3])) }), 'SV_SIGNATURE_INVALID')
test(refusesSig, 'an unknown critical subpacket', () => craft({ hashed: Buffer.concat([creationTimeSubpacket(DEFAULT_SIG_TIME), subpacket(100, Buffer.from('x'), true)]) }), 'SV_SIGNATURE_UNSUPPORTED')
test(refusesSig, 'an issuer subpacket of the wrong length', () => craft({ unhashed: subpacket(16, Buffer.alloc(7)) }), 'SV_SIGNATURE_INVALID')
test(refusesSig, 'a wrong hash tag', () => craft({ hashTag: Buffer.from([0, 0]) }), 'SV_SIGNATURE_INVALID')
test(refusesSig, 'a signature over other content', () => craft({}, Buffer.concat([CONTENT, Buffer.from('x')])), 'SV_SIGNATURE_INVALID')
test(refusesSig, "another key's signature", () => craftSignature(CONTENT, keyPem('small/device')), 'SV_SIGNATURE_INVALID')
test(refusesSig, 'an MPI longer than the modulus (extra zero byte)', () => {
  const body = unpacket(fromV1Text(craft())).body
  const value = body.subarray(18)
  if (value.length !== SMALL_BRAND.n.length) throw new Error('crafting offsets are off')
  const bits = Buffer.alloc(2)
  bits.writeUInt16BE((value.length + 1) * 8)
  return v1Text(packet(2, Buffer.concat([body.subarray(0, 16), bits, Buffer.from([0]), value])))
}, 'SV_SIGNATURE_INVALID')
test(refusesSig, 'a truncated packet', () => v1Text(fromV1Text(craft()).subarray(0, 40)), 'SV_SIGNATURE_INVALID')
test(refusesSig, 'trailing data after the packet', () => v1Text(Buffer.concat([fromV1Text(craft()), Buffer.from([0])])), 'SV_SIGNATURE_INVALID')
test(refusesSig, 'a public-key packet instead of a signature', () => SMALL_BRAND.encode(), 'SV_SIGNATURE_INVALID')
test(refusesSig, 'envelope version 2', () => Buffer.concat([Buffer.from([2]), fromV1Text(craft())]).toString('base64'), 'SV_SIGNATURE_INVALID')
test(refusesSig, 'not base64', () => '!!!!', 'SV_SIGNATURE_INVALID')
test(refusesSig, 'an empty signature', () => '', 'SV_SIGNATURE_INVALID')

test('signature: every hash id byte 0..255 is accepted (8, 9, 10) or refused with a VaultError, never a crash', async (t) => {
  const base = fromV1Text(craft())
  const { body } = unpacket(base)
  const outcomes = new Map<string, number[]>()
  for (let id = 0; id < 256; id++) {
    const b = Buffer.from(body)
    b[3] = id
    let outcome: string
    try {
      await verifySignature(CONTENT, v1Text(packet(2, b)), SMALL_BRAND)
      outcome = 'ok'
    } catch (e) {
      if (!(e instanceof VaultError)) throw e
      outcome = e.code
    }
    outcomes.set(outcome, [...(outcomes.get(outcome) ?? []), id])
  }
  // with the packet's own digest only SHA-512 (10) matches the hash tag; 8 and 9 get as far as the tag
  t.deepEqual(outcomes.get('ok'), [10])
  t.deepEqual(outcomes.get('SV_SIGNATURE_INVALID'), [8, 9])
  t.is(outcomes.get('SV_SIGNATURE_UNSUPPORTED')?.length, 253)
  t.deepEqual([...outcomes.keys()].sort(), ['SV_SIGNATURE_INVALID', 'SV_SIGNATURE_UNSUPPORTED', 'ok'])
})

test('signature: a weak-digest serial is refused by TrustDb.check with the assertion type, as are malformed ones', async (t) => {
  const db: TrustDb = await trustDbFor({ trusted: ['small/trusted.assert'], chain: ['small/account.assert', 'small/account-key.assert', 'small/model.assert'] })
  const raw = readVector('small/serial.assert').toString('utf8')
  const content = raw.slice(0, raw.lastIndexOf('\n\n'))
  const withSig = (sig: string): Assertion => decodeAssertion(`${content}\n\n${sig}\n`)
  await t.notThrowsAsync(db.check(withSig(craft())))
  for (const [spec, code] of [
    [{ hash: 'sha1' }, 'SV_SIGNATURE_UNSUPPORTED'],
    [{ hash: 'md5' }, 'SV_SIGNATURE_UNSUPPORTED'],
    [{ hash: 'ripemd160' }, 'SV_SIGNATURE_UNSUPPORTED'],
    [{ hashId: 12 }, 'SV_SIGNATURE_UNSUPPORTED'],
    [{ version: 3 }, 'SV_SIGNATURE_UNSUPPORTED'],
    [{ hashed: Buffer.alloc(0) }, 'SV_SIGNATURE_INVALID'],
  ] as [SignatureSpec, ErrorCode][]) {
    const err = await t.throwsAsync(db.check(withSig(craft(spec))), { instanceOf: VaultError })
    t.is(err?.code, code, JSON.stringify(spec))
    t.is(err?.details?.type, 'serial')
  }
  t.is(Object.keys(HASHES).length, 7)
})
