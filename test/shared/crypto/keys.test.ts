/**
 * Public keys as snapd encodes them: key ids of every fixture key from every
 * PEM form equal snapd's (the manifest), our v1 encoding equals the one in
 * snapd's assertions, and non-canonical packets decode to the canonical id.
 */
import { createHash } from 'node:crypto'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { AccountKeyAssertion, PublicKey, SerialRequestAssertion, VaultError, decodePem, loadPrivateKeyPem, pkcs1ToPkcs8, pkcs8ToPkcs1, publicKeyId, V1_FIXED_TIMESTAMP, bytesEqual, utf8Decode } from '@sv/shared'
import { WebCryptoSigner } from '@sv/shared/node'
import { FIXTURE_KEYS, keyId, keyPem, manifestKey, publicKeyOf, type FixtureKeyName } from '../../helpers/keys.js'
import { fromV1Text, packet, publicKeyText, unpacket, v1Text } from '../../helpers/openpgp.js'
import { vectorAssertion } from '../../helpers/vectors.js'

const idFromEveryForm = test.macro({
  async exec(t: ExecutionContext, name: FixtureKeyName) {
    const want = keyId(name)
    t.regex(want, /^[A-Za-z0-9_-]{64}$/)
    const fromPkcs1 = PublicKey.fromPem(keyPem(name, 'pkcs1'))
    const fromPkcs8 = PublicKey.fromPem(keyPem(name, 'pkcs8'))
    const fromSpki = PublicKey.fromPem(keyPem(name, 'spki'))
    t.is(fromPkcs1.id, want)
    t.is(fromPkcs8.id, want)
    t.is(fromSpki.id, want)
    t.is(loadPrivateKeyPem(keyPem(name, 'pkcs1')).publicKey.id, want)
    t.is(loadPrivateKeyPem(keyPem(name, 'pkcs8')).publicKey.id, want)
    t.is((await WebCryptoSigner.fromPem(keyPem(name, 'pkcs8'))).publicKey.id, want)
    t.is(fromSpki.bits, manifestKey(name).bits)
    // the v1 text decodes back to the same key
    t.is(PublicKey.decode(fromSpki.encode()).id, want)
    t.is(publicKeyId(fromSpki.encode()), want)
    t.true(fromPkcs1.equals(fromSpki))
  },
  title: (given, name: FixtureKeyName) => given ?? `keys: ${name} has snapd's key id from PKCS#1, PKCS#8 and SPKI PEM`,
})
for (const name of FIXTURE_KEYS) test(idFromEveryForm, name)

test('keys: PublicKey.encode() of the brand key is the account-key body snapd wrote', (t) => {
  const ak = vectorAssertion('account-key.assert')
  t.true(ak instanceof AccountKeyAssertion)
  t.is(publicKeyOf('brand').encode(), utf8Decode(ak.body))
  t.is(Buffer.byteLength(publicKeyOf('brand').encode()), 717)
})

test('keys: encode() of every key in an account-key body or device-key header equals snapd text', (t) => {
  const cases: [FixtureKeyName, string][] = [
    ['root', 'root-account-key.assert'],
    ['brand-2023', 'account-key-expired.assert'],
    ['small/root', 'small/root-account-key.assert'],
    ['small/brand', 'small/account-key.assert'],
  ]
  for (const [name, file] of cases) t.is(publicKeyOf(name).encode(), utf8Decode(vectorAssertion(file).body), name)
  const sr = vectorAssertion('serial-request.assert')
  t.true(sr instanceof SerialRequestAssertion)
  t.is(publicKeyOf('device').encode(), sr.headerString('device-key'))
  t.is(publicKeyOf('small/device').encode(), vectorAssertion('small/serial-request.assert').headerString('device-key'))
})

test('keys: the 4096-bit v1 layout (spec §2.2): 0x01, C6 C1 4D, v4, 2016-01-01, RSA, 4096-bit n, e', (t) => {
  const k = publicKeyOf('brand')
  t.true(k.encode().startsWith('AcbBTQRWhcGAARAA'))
  t.is(k.v1.length, 529)
  t.deepEqual([...k.v1.subarray(0, 12)], [0x01, 0xc6, 0xc1, 0x4d, 0x04, 0x56, 0x85, 0xc1, 0x80, 0x01, 0x10, 0x00])
  t.is(Buffer.from(k.v1).readUInt32BE(5), V1_FIXED_TIMESTAMP)
  t.deepEqual([...k.v1.subarray(524)], [0x00, 0x11, 0x01, 0x00, 0x01])
  const lines = k.encode().split('\n')
  t.is(lines.length, 10)
  t.true(lines.slice(0, 9).every((l) => l.length === 76))
  t.is(lines[9]!.length, 24)
})

// --- non-canonical encodings decode to the canonical id -------------------------

const canonicalId = test.macro({
  exec(t: ExecutionContext, what: string, make: (k: PublicKey) => string) {
    for (const name of ['brand', 'small/device'] as const) {
      const k = publicKeyOf(name)
      const text = make(k)
      t.not(text, k.encode(), 'not actually non-canonical')
      const decoded = PublicKey.decode(text)
      t.is(decoded.id, k.id)
      t.is(decoded.encode(), k.encode())
      t.true(bytesEqual(decoded.v1, k.v1))
    }
  },
  title: (given, what: string) => given ?? `keys: a key with ${what} decodes to the canonical id`,
})

test(canonicalId, 'an old-format packet header', (k) => publicKeyText(k.n, k.e, { format: 'old' }))
test(canonicalId, 'another creation time', (k) => publicKeyText(k.n, k.e, { time: 1700000000 }))
test(canonicalId, 'creation time zero', (k) => publicKeyText(k.n, k.e, { time: 0 }))
test(canonicalId, 'an MPI with a leading zero byte', (k) => publicKeyText(k.n, k.e, { mpiStyle: 'bytes', padN: 1 }))
test(canonicalId, 'RSA sign-only algorithm 3', (k) => publicKeyText(k.n, k.e, { algo: 3 }))
test(canonicalId, 'RSA encrypt-only algorithm 2', (k) => publicKeyText(k.n, k.e, { algo: 2 }))
test(canonicalId, 'all of them at once', (k) => publicKeyText(k.n, k.e, { format: 'old', time: 1, mpiStyle: 'bytes', padN: 2, algo: 3 }))
test(canonicalId, 'no line wrapping', (k) => publicKeyText(k.n, k.e, { wrap: 100000 }))
test(canonicalId, 'CRLF line wrapping', (k) => k.encode().replaceAll('\n', '\r\n'))

test('keys: the canonical id is not the hash of the bytes received', (t) => {
  // a non-canonical packet hashed as is would give another id: snapd rebuilds first
  const k = publicKeyOf('brand')
  const odd = publicKeyText(k.n, k.e, { time: 1700000000 })
  const naive = createHash('sha3-384').update(Buffer.concat([Buffer.from([1]), fromV1Text(odd)])).digest('base64url')
  t.not(naive, k.id)
  const canonical = createHash('sha3-384').update(k.v1).digest('base64url')
  t.is(canonical, k.id)
})

// --- refusals ------------------------------------------------------------------------

const refusesKey = test.macro({
  exec(t: ExecutionContext, what: string, make: (k: PublicKey) => string | Uint8Array) {
    const err = t.throws(() => PublicKey.decode(make(publicKeyOf('small/brand'))), { instanceOf: VaultError })
    t.is(err?.code, 'SV_KEY_INVALID')
  },
  title: (given, what: string) => given ?? `keys: refuses ${what} (SV_KEY_INVALID)`,
})

test(refusesKey, 'a DSA key (algorithm 17)', (k) => publicKeyText(k.n, k.e, { algo: 17 }))
test(refusesKey, 'a v3 key packet', (k) => publicKeyText(k.n, k.e, { version: 3 }))
test(refusesKey, 'a public exponent longer than 3 bytes', (k) => publicKeyText(k.n, Buffer.from([1, 0, 0, 0, 1])))
test(refusesKey, 'an even modulus', (k) => publicKeyText(Buffer.concat([k.n.subarray(0, -1), Buffer.from([k.n[k.n.length - 1]! & 0xfe])]), k.e))
test(refusesKey, 'trailing data after the packet', (k) => v1Text(Buffer.concat([fromV1Text(k.encode()), Buffer.from([0])])))
test(refusesKey, 'trailing data inside the packet', (k) => {
  const { body } = unpacket(fromV1Text(k.encode()))
  return v1Text(packet(6, Buffer.concat([body, Buffer.from([0, 0])])))
})
test(refusesKey, 'a truncated packet', (k) => v1Text(fromV1Text(k.encode()).subarray(0, 100)))
test(refusesKey, 'another packet tag (a signature packet)', (k) => v1Text(packet(2, unpacket(fromV1Text(k.encode())).body)))
test(refusesKey, 'envelope version 2', (k) => Buffer.concat([Buffer.from([2]), fromV1Text(k.encode())]).toString('base64'))
test(refusesKey, 'base64url instead of standard base64', (k) => Buffer.concat([Buffer.from([1]), fromV1Text(k.encode())]).toString('base64url'))
test(refusesKey, 'spaces inside the base64', (k) => k.encode().replaceAll('\n', ' '))
test(refusesKey, 'an empty text', () => '')
test(refusesKey, 'a lone envelope byte', () => 'AQ==')

test('keys: PEM refusals are SV_KEY_INVALID', (t) => {
  for (const pem of [
    'not a pem',
    '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n',
    '-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n',
    '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
  ]) {
    const err = t.throws(() => PublicKey.fromPem(pem), { instanceOf: VaultError }, pem)
    t.is(err?.code, 'SV_KEY_INVALID')
  }
  const err = t.throws(() => loadPrivateKeyPem(keyPem('brand', 'spki')), { instanceOf: VaultError })
  t.is(err?.code, 'SV_KEY_INVALID')
})

test('keys: PKCS#1 <-> PKCS#8 conversion matches the fixture files byte for byte', (t) => {
  for (const name of ['brand', 'small/device'] as const) {
    const p1 = decodePem(keyPem(name, 'pkcs1'))
    const p8 = decodePem(keyPem(name, 'pkcs8'))
    t.is(p1.label, 'RSA PRIVATE KEY')
    t.is(p8.label, 'PRIVATE KEY')
    t.true(bytesEqual(pkcs8ToPkcs1(p8.der), p1.der))
    t.true(bytesEqual(pkcs1ToPkcs8(p1.der), p8.der))
  }
})
