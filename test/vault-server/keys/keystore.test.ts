import test, { type ExecutionContext } from 'ava'
import { createPrivateKey, randomBytes } from 'node:crypto'
import {
  PublicKey,
  SerialAssertion,
  TrustDb,
  decodeAssertion,
  decodeStream,
  loadPrivateKeyPem,
  parseSignature,
  signAssertion,
  verifySignature,
  type Assertion,
  type AssertionSigner,
  bytesEqual,
} from '@sv/shared'
import { masterKeyFromBytes, type MasterKey } from '../../../vault-server/src/keys/master-key.js'
import { SealedKeyStore, type SealedKeyStoreOptions } from '../../../vault-server/src/keys/sealed-key-store.js'
import { SignerPool } from '../../../vault-server/src/keys/signer-pool.js'
import type { ImportKeyInput } from '../../../vault-server/src/keys/keystore.js'
import { FakeSigningKeyStore } from './fake-signing-key-store.js'
import { assertNoSecrets, errorText, readVector, secretNeedles, vectorKeyId, vectorKeyPem } from './key-fixtures.js'

const BRAND_PEM = vectorKeyPem('brand')
const BRAND_PKCS8_PEM = vectorKeyPem('brand', 'pkcs8')
const BRAND_ID = vectorKeyId('brand')
const ROOT_PEM = vectorKeyPem('root')
const ROOT_ID = vectorKeyId('root')
const BRAND_ACCOUNT_KEY = readVector('account-key.assert')
const ROOT_ACCOUNT_KEY = readVector('root-account-key.assert')
const BRAND_SECRETS = secretNeedles(BRAND_PEM)
const ROOT_SECRETS = secretNeedles(ROOT_PEM)

const brandInput: ImportKeyInput = { pem: BRAND_PEM, accountId: 'acme-brand', purpose: 'brand', name: 'default', accountKeyAssertion: BRAND_ACCOUNT_KEY }
const rootInput: ImportKeyInput = { pem: ROOT_PEM, accountId: 'oracle-root', purpose: 'root', name: 'root', accountKeyAssertion: ROOT_ACCOUNT_KEY }

interface Setup {
  keys: SealedKeyStore
  store: FakeSigningKeyStore
  pool: SignerPool
  masterKey: MasterKey
}

function setup(t: ExecutionContext, options: Partial<SealedKeyStoreOptions> = {}): Setup {
  const store = (options.store as FakeSigningKeyStore | undefined) ?? new FakeSigningKeyStore()
  const pool = options.pool ?? new SignerPool({ size: 1 })
  if (!options.pool) t.teardown(() => pool.close())
  const masterKey = options.masterKey ?? masterKeyFromBytes(randomBytes(32))
  const keys = new SealedKeyStore({ now: () => 1_700_000_000_000, ...options, store, pool, masterKey })
  return { keys, store, pool, masterKey }
}

async function rejection(t: ExecutionContext, p: Promise<unknown>, code: string, details?: Record<string, unknown>): Promise<Error> {
  const err = (await t.throwsAsync(p, { code }))!
  if (details) t.like((err as { details?: unknown }).details, details)
  assertNoSecrets(t, errorText(err), [...BRAND_SECRETS, ...ROOT_SECRETS], `${code} error`)
  return err
}

/** Re-signs a fixture assertion with `signer`, keeping its signature time: equal bytes mean equal signatures. */
async function resign(a: Assertion, signer: AssertionSigner): Promise<Assertion> {
  return signAssertion(a.typeName, { ...a.headers }, a.body, signer, { creationTime: parseSignature(a.signature).creationTime })
}

test('fixtures: the secret needles find the private parts of the key in its own PEMs', (t) => {
  const found = BRAND_SECRETS.filter((n) => BRAND_PEM.includes(n) || BRAND_PKCS8_PEM.includes(n))
  t.true(found.length >= 40, `${found.length} of ${BRAND_SECRETS.length}`)
  t.false(BRAND_SECRETS.some((n) => BRAND_ACCOUNT_KEY.includes(n)), 'none is public')
})

test('keystore: imports the brand key (PKCS#1), stores only the sealed key, and signs a serial that verifies', async (t) => {
  const { keys, store } = setup(t)
  const info = await keys.importKey(brandInput)
  t.deepEqual(info, {
    keyId: BRAND_ID,
    accountId: 'acme-brand',
    purpose: 'brand',
    name: 'default',
    bits: 4096,
    accountKeyAssertion: decodeAssertion(BRAND_ACCOUNT_KEY).text(),
    enabled: true,
    createdAt: 1_700_000_000_000,
  })
  const row = store.rows.get(BRAND_ID)!
  assertNoSecrets(t, row, BRAND_SECRETS, 'stored record')
  const record = JSON.parse(row)
  t.is(record.sealed.alg, 'sv1:A256GCM')
  t.deepEqual(Object.keys(record).sort(), ['accountId', 'accountKeyAssertion', 'bits', 'createdAt', 'enabled', 'keyId', 'name', 'purpose', 'sealed'])

  const signer = await keys.signer(BRAND_ID)
  t.is(signer.publicKey.id, BRAND_ID)
  const original = decodeAssertion(readVector('serial.assert'))
  const serial = await resign(original, signer)
  t.true(serial instanceof SerialAssertion)
  t.true(bytesEqual(serial.encode(), original.encode()), 'byte-identical to the snapd-made serial')
  await t.notThrowsAsync(verifySignature(serial.content, serial.signature, await keys.publicKey(BRAND_ID)))
  const db = new TrustDb({ trusted: decodeStream(readVector('trusted.assert')), now: () => Date.parse('2024-06-01T00:00:00Z') })
  const chain = await db.addAll(decodeStream(`${readVector('account.assert')}\n${BRAND_ACCOUNT_KEY}\n${readVector('model.assert')}`))
  t.deepEqual(chain.failed, [])
  await t.notThrowsAsync(db.check(serial))
})

test('keystore: PKCS#8 PEM imports to the same key', async (t) => {
  const { keys } = setup(t)
  const info = await keys.importKey({ ...brandInput, pem: BRAND_PKCS8_PEM })
  t.is(info.keyId, BRAND_ID)
  const original = decodeAssertion(readVector('serial.assert'))
  t.true(bytesEqual((await resign(original, await keys.signer(BRAND_ID))).encode(), original.encode()))
})

test('keystore: refuses keys under 4096 bits with SV_KEY_TOO_SMALL, unless allowSmallKeys', async (t) => {
  const small: ImportKeyInput = { pem: vectorKeyPem('small/brand'), accountId: 'acme-brand', purpose: 'brand', name: 'default', accountKeyAssertion: readVector('small/account-key.assert') }
  const strict = setup(t)
  await rejection(t, strict.keys.importKey(small), 'SV_KEY_TOO_SMALL', { bits: 1024, minBits: 4096 })
  t.is(strict.store.rows.size, 0)
  const lax = setup(t, { allowSmallKeys: true })
  const info = await lax.keys.importKey(small)
  t.is(info.bits, 1024)
  t.is(info.keyId, vectorKeyId('small/brand'))
  const signer = await lax.keys.signer(info.keyId)
  const serial = await resign(decodeAssertion(readVector('small/serial.assert')), signer)
  t.true(bytesEqual(serial.encode(), decodeAssertion(readVector('small/serial.assert')).encode()))
})

test('keystore: refuses a PEM that does not match the account-key assertion or the input', async (t) => {
  const { keys, store, pool } = setup(t)
  await rejection(t, keys.importKey({ ...brandInput, pem: vectorKeyPem('impostor') }), 'SV_KEY_IMPORT_MISMATCH', {
    reason: 'public-key',
    keyId: vectorKeyId('impostor'),
    assertionKeyId: BRAND_ID,
  })
  await rejection(t, keys.importKey({ ...brandInput, pem: ROOT_PEM }), 'SV_KEY_IMPORT_MISMATCH', { reason: 'public-key' })
  await rejection(t, keys.importKey({ ...brandInput, accountId: 'evil-corp' }), 'SV_KEY_IMPORT_MISMATCH', { reason: 'account-id' })
  await rejection(t, keys.importKey({ ...brandInput, name: 'other' }), 'SV_KEY_IMPORT_MISMATCH', { reason: 'name' })
  await rejection(t, keys.importKey({ ...brandInput, accountKeyAssertion: readVector('account.assert') }), 'SV_KEY_IMPORT_MISMATCH', { reason: 'type' })
  await rejection(t, keys.importKey({ ...brandInput, accountKeyAssertion: 'type: account-key\n' }), 'SV_ASSERTION_INVALID')
  t.is(store.rows.size, 0, 'nothing stored')
  t.is(pool.metrics().keys, 0, 'nothing loaded')
})

test('keystore: refuses malformed and inconsistent private keys with SV_KEY_INVALID, without echoing them', async (t) => {
  const { keys, store } = setup(t)
  await rejection(t, keys.importKey({ ...brandInput, pem: 'not a pem' }), 'SV_KEY_INVALID')
  await rejection(t, keys.importKey({ ...brandInput, pem: vectorKeyPem('brand').replaceAll('RSA PRIVATE KEY', 'EC PRIVATE KEY') }), 'SV_KEY_INVALID')
  // the brand modulus with the impostor's private numbers: parses, but signs for another key
  const brandJwk = createPrivateKey(BRAND_PEM).export({ format: 'jwk' })
  const impostorJwk = createPrivateKey(vectorKeyPem('impostor')).export({ format: 'jwk' })
  const franken = createPrivateKey({ key: { ...impostorJwk, n: brandJwk.n, e: brandJwk.e }, format: 'jwk' })
  const frankenPem = franken.export({ format: 'pem', type: 'pkcs1' }) as string
  const err = await rejection(t, keys.importKey({ ...brandInput, pem: frankenPem }), 'SV_KEY_INVALID', { reason: 'inconsistent key' })
  assertNoSecrets(t, errorText(err), secretNeedles(vectorKeyPem('impostor')), 'error')
  t.is(store.rows.size, 0)
})

test('keystore: importing a key twice -> SV_KEY_EXISTS', async (t) => {
  const { keys } = setup(t)
  await keys.importKey(brandInput)
  await rejection(t, keys.importKey({ ...brandInput, pem: BRAND_PKCS8_PEM }), 'SV_KEY_EXISTS')
})

test('keystore: signer() unseals once and caches; unknown keys -> SV_KEY_NOT_FOUND', async (t) => {
  const { keys, pool } = setup(t)
  await keys.importKey(brandInput)
  t.is(pool.metrics().keys, 0, 'import does not load the key')
  const [a, b] = await Promise.all([keys.signer(BRAND_ID), keys.signer(BRAND_ID)])
  t.is(a, b)
  t.is(await keys.signer(BRAND_ID), a)
  t.is(pool.metrics().keys, 1)
  await rejection(t, keys.signer('no-such-key'), 'SV_KEY_NOT_FOUND', { keyId: 'no-such-key' })
  await rejection(t, keys.publicKey('no-such-key'), 'SV_KEY_NOT_FOUND')
  t.is((await keys.publicKey(BRAND_ID)).id, BRAND_ID)
})

test('keystore: disabling unloads the key and stops its signers; enabling brings it back', async (t) => {
  const { keys, pool, store } = setup(t)
  await keys.importKey(brandInput)
  const signer = await keys.signer(BRAND_ID)
  await signer.sign(Buffer.from('before'))
  await keys.setEnabled(BRAND_ID, { enabled: false })
  t.false(pool.hasKey(BRAND_ID))
  t.false(JSON.parse(store.rows.get(BRAND_ID)!).enabled)
  await rejection(t, signer.sign(Buffer.from('after')), 'SV_SIGNING_KEY_UNAVAILABLE')
  await rejection(t, keys.signer(BRAND_ID), 'SV_SIGNING_KEY_UNAVAILABLE', { keyId: BRAND_ID })
  t.is((await keys.publicKey(BRAND_ID)).id, BRAND_ID, 'the public key stays readable')
  t.deepEqual((await keys.listKeys('acme-brand')).map((k) => [k.keyId, k.enabled]), [[BRAND_ID, false]])

  await keys.setEnabled(BRAND_ID, { enabled: true })
  const again = await keys.signer(BRAND_ID)
  const data = Buffer.from('re-enabled')
  t.is(Buffer.from(await again.sign(data)).toString('hex'), Buffer.from(await signer.sign(data)).toString('hex'))
  await rejection(t, keys.setEnabled("no-such-key", { enabled: false }), 'SV_KEY_NOT_FOUND')
})

test('keystore: a key disabled while it is being loaded is not left in the pool', async (t) => {
  const { keys, pool } = setup(t)
  await keys.importKey(brandInput)
  const loading = keys.signer(BRAND_ID)
  await keys.setEnabled(BRAND_ID, { enabled: false })
  await rejection(t, loading, 'SV_SIGNING_KEY_UNAVAILABLE')
  t.false(pool.hasKey(BRAND_ID))
})

test('keystore: another master key cannot open the records -> SV_MASTER_KEY_INVALID', async (t) => {
  const first = setup(t)
  await first.keys.importKey(brandInput)
  const second = setup(t, { store: first.store, masterKey: masterKeyFromBytes(randomBytes(32)) })
  await rejection(t, second.keys.signer(BRAND_ID), 'SV_MASTER_KEY_INVALID', { reason: 'kid-mismatch', kid: first.masterKey.kid })
  t.false(second.pool.hasKey(BRAND_ID))
  // the same master key, loaded again, can
  const third = setup(t, { store: first.store, masterKey: first.masterKey })
  t.is((await third.keys.signer(BRAND_ID)).publicKey.id, BRAND_ID)
})

test('keystore: a sealed key moved to another record does not open -> SV_MASTER_KEY_INVALID', async (t) => {
  const { keys, store } = setup(t)
  await keys.importKey(brandInput)
  await keys.importKey(rootInput)
  const brand = JSON.parse(store.rows.get(BRAND_ID)!)
  const root = JSON.parse(store.rows.get(ROOT_ID)!)
  store.rows.set(BRAND_ID, JSON.stringify({ ...brand, sealed: root.sealed }))
  store.rows.set(ROOT_ID, JSON.stringify({ ...root, sealed: brand.sealed }))
  await rejection(t, keys.signer(BRAND_ID), 'SV_MASTER_KEY_INVALID', { reason: 'authentication' })
  await rejection(t, keys.signer(ROOT_ID), 'SV_MASTER_KEY_INVALID', { reason: 'authentication' })
})

test('keystore: listKeys never returns key material', async (t) => {
  const { keys } = setup(t)
  await keys.importKey(brandInput)
  await keys.importKey(rootInput)
  const all = await keys.listKeys()
  t.deepEqual(all.map((k) => k.keyId).sort(), [BRAND_ID, ROOT_ID].sort())
  t.deepEqual((await keys.listKeys('oracle-root')).map((k) => [k.keyId, k.purpose, k.name]), [[ROOT_ID, 'root', 'root']])
  const text = JSON.stringify(all)
  t.false(text.includes('"sealed"'))
  assertNoSecrets(t, text, [...BRAND_SECRETS, ...ROOT_SECRETS], 'key list')
})

test('keystore: generateKey has the account-key made (self-signed here), stores it and can sign at once', async (t) => {
  // A fixture key stands in for a fresh one: key generation itself is tested in keygen.test.ts.
  const root = loadPrivateKeyPem(ROOT_PEM)
  let generatedWith: number | undefined
  const { keys, store, pool } = setup(t, {
    generate: async (bits) => {
      generatedWith = bits
      return { pkcs8: Buffer.from(root.pkcs8), publicKey: root.publicKey }
    },
  })
  const info = await keys.generateKey({
    accountId: 'oracle-root',
    purpose: 'root',
    name: 'root',
    accountKeyAssertion: async ({ publicKey, signer }) => {
      t.is(publicKey.id, ROOT_ID)
      t.is(signer.publicKey.id, ROOT_ID)
      // a root key's account-key is signed by the key itself
      const made = await resign(decodeAssertion(ROOT_ACCOUNT_KEY), signer)
      t.true(bytesEqual(made.encode(), decodeAssertion(ROOT_ACCOUNT_KEY).encode()))
      return made.text()
    },
  })
  t.is(generatedWith, 4096)
  t.like(info, { keyId: ROOT_ID, purpose: 'root', bits: 4096, enabled: true })
  assertNoSecrets(t, store.rows.get(ROOT_ID)!, ROOT_SECRETS, 'stored record')
  t.true(pool.hasKey(ROOT_ID), 'kept loaded')
  const signer = await keys.signer(ROOT_ID)
  const data = Buffer.from('generated root')
  const sig = await signer.sign(data)
  t.is(sig.length, 512)
  t.true(PublicKey.decode(decodeAssertion(ROOT_ACCOUNT_KEY).body).equals(signer.publicKey))
})

test('keystore: generateKey stores nothing and unloads the key when the account-key does not match', async (t) => {
  const root = loadPrivateKeyPem(ROOT_PEM)
  const { keys, store, pool } = setup(t, { generate: async () => ({ pkcs8: Buffer.from(root.pkcs8), publicKey: root.publicKey }) })
  await rejection(
    t,
    keys.generateKey({ accountId: 'acme-brand', purpose: 'brand', name: 'default', accountKeyAssertion: async () => BRAND_ACCOUNT_KEY }),
    'SV_KEY_IMPORT_MISMATCH',
    { reason: 'public-key' },
  )
  await t.throwsAsync(
    keys.generateKey({ accountId: 'oracle-root', purpose: 'root', name: 'root', accountKeyAssertion: async () => { throw new Error('root key offline') } }),
    { message: 'root key offline' },
  )
  t.is(store.rows.size, 0)
  t.false(pool.hasKey(ROOT_ID))
})

test('keystore: generateKey checks the size before generating anything', async (t) => {
  let called = false
  const { keys } = setup(t, { generate: async () => { called = true; throw new Error('unreachable') } })
  await rejection(
    t,
    keys.generateKey({ accountId: 'acme-brand', purpose: 'brand', name: 'default', bits: 2048, accountKeyAssertion: async () => '' }),
    'SV_KEY_TOO_SMALL',
    { bits: 2048 },
  )
  t.false(called)
})

test('keystore: programmer mistakes are TypeErrors', async (t) => {
  const { keys } = setup(t)
  await t.throwsAsync(keys.importKey({ ...brandInput, purpose: 'device' as 'brand' }), { instanceOf: TypeError })
  await t.throwsAsync(keys.importKey({ ...brandInput, accountId: '' }), { instanceOf: TypeError })
  await t.throwsAsync(keys.importKey({ ...brandInput, pem: undefined as unknown as string }), { instanceOf: TypeError })
})
