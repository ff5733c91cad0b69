/**
 * The two crypto platforms (shared/src/crypto/platform.ts): the portable one
 * (@noble/hashes digests, WebCrypto verification through
 * globalThis.crypto.subtle), what a browser runs, and node:crypto
 * (@sv/shared/node), what the vault and the agent run. They must agree on
 * every digest and on every verdict: generated inputs for the digests, the
 * snapd vectors and corrupted signatures for verification.
 *
 * The tests that swap the process-wide platform are serial.
 */
import { createHash } from 'node:crypto'
import test from 'ava'
import fc from 'fast-check'
import {
  TrustDb,
  concatBytes,
  decodeStream,
  encodeStream,
  getCryptoPlatform,
  parseSignature,
  setCryptoPlatform,
  webCryptoPlatform,
  type CryptoPlatform,
  type DigestName,
  type PublicKey,
  type RsaDigestName,
} from '@sv/shared'
import { nodeCryptoPlatform } from '@sv/shared/node'
import { loadManifest, vectorAssertion } from '../../helpers/vectors.js'
import { vectorOutcome } from '../../helpers/vector-outcome.js'
import { SerialAssertion } from '../../../shared/src/assertion/types/serial.js'
import { uint32be } from '../../../shared/src/crypto/bytes.js'

const NAMES: DigestName[] = ['sha256', 'sha384', 'sha512', 'sha3-384']

/** Runs `fn` with `platform` installed, then puts back what was there. */
async function withPlatform<T>(platform: CryptoPlatform, fn: () => Promise<T>): Promise<T> {
  const prev = setCryptoPlatform(platform)
  try {
    return await fn()
  } finally {
    setCryptoPlatform(prev)
  }
}

test('platform: importing @sv/shared/node installed node:crypto; the portable platform is the other one', (t) => {
  t.is(getCryptoPlatform(), nodeCryptoPlatform)
  t.is(nodeCryptoPlatform.name, 'node')
  t.is(webCryptoPlatform.name, 'webcrypto')
})

test('platform: @noble/hashes digests are node:crypto digests, for every name and any split into parts', (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...NAMES), fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 1000, maxLength: 5000 })), { maxLength: 5 }), (name, parts) => {
      const h = createHash(name)
      for (const p of parts) h.update(p)
      const want = h.digest()
      const web = webCryptoPlatform.digest(name, ...parts)
      const node = nodeCryptoPlatform.digest(name, ...parts)
      return want.equals(web) && want.equals(node) && Object.getPrototypeOf(web) === Uint8Array.prototype && Object.getPrototypeOf(node) === Uint8Array.prototype
    }),
    { numRuns: 400 },
  )
  // one known answer each, so that the comparison above is not of two wrong things
  const abc = new TextEncoder().encode('abc')
  t.is(Buffer.from(webCryptoPlatform.digest('sha3-384', abc)).toString('hex'), 'ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25')
  t.is(Buffer.from(webCryptoPlatform.digest('sha256', abc)).toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
})

test('platform: setCryptoPlatform returns the platform it replaces and refuses a non-platform', (t) => {
  t.throws(() => setCryptoPlatform({} as CryptoPlatform), { instanceOf: TypeError })
  t.throws(() => setCryptoPlatform(undefined as unknown as CryptoPlatform), { instanceOf: TypeError })
  t.is(getCryptoPlatform(), nodeCryptoPlatform, 'a refused platform is not installed')
})

test.serial('platform: WebCrypto and node:crypto give the same verdict, code, message and details on every snapd vector', async (t) => {
  const now = Date.now()
  const api = { TrustDb, decodeStream, encodeStream }
  const vectors = loadManifest().vectors
  for (const v of vectors) {
    const web = await withPlatform(webCryptoPlatform, () => vectorOutcome(api, v, now))
    const node = await withPlatform(nodeCryptoPlatform, () => vectorOutcome(api, v, now))
    t.deepEqual(web, node, v.file)
    const ok = web.results?.map((r) => r.error === undefined) ?? [false]
    t.deepEqual(ok, v['snapd-results'].map((r) => r.ok), `${v.file}: snapd's verdicts`)
  }
  t.true(vectors.length >= 34)
})

/** The bytes an RSA signature of `a` covers and its value at the modulus size, as verifySignature computes them. */
function signedInput(a: SerialAssertion, key: PublicKey): { hash: RsaDigestName; data: Uint8Array; value: Uint8Array } {
  const sig = parseSignature(a.signature)
  const hash = ({ 8: 'sha256', 9: 'sha384', 10: 'sha512' } as Record<number, RsaDigestName>)[sig.hashId]!
  const data = concatBytes([a.content, sig.hashedPrefix, new Uint8Array([0x04, 0xff]), uint32be(sig.hashedPrefix.length)])
  const value = concatBytes([new Uint8Array(key.n.length - sig.value.length), sig.value])
  return { hash, data, value }
}

test('platform: verifyRsaPkcs1 on WebCrypto and node:crypto agree on good, corrupted and out-of-range signatures', async (t) => {
  const serial = vectorAssertion('serial.assert') as SerialAssertion
  const brand = vectorAssertion('account-key.assert') as unknown as { publicKey: PublicKey }
  const key = brand.publicKey
  const { hash, data, value } = signedInput(serial, key)
  t.true(await webCryptoPlatform.verifyRsaPkcs1(hash, key, data, value))
  t.true(await nodeCryptoPlatform.verifyRsaPkcs1(hash, key, data, value))
  const k = key.n.length
  for (const [what, v] of [
    ['zero', new Uint8Array(k)],
    ['all ones (above the modulus)', new Uint8Array(k).fill(0xff)],
    ['the modulus itself', key.n],
  ] as const) {
    t.is(await webCryptoPlatform.verifyRsaPkcs1(hash, key, data, v), false, what)
    t.is(await nodeCryptoPlatform.verifyRsaPkcs1(hash, key, data, v), false, what)
  }
  await fc.assert(
    fc.asyncProperty(fc.boolean(), fc.nat(), fc.integer({ min: 0, max: 7 }), fc.constantFrom<RsaDigestName>('sha256', 'sha384', 'sha512'), async (inData, pos, bit, h) => {
      const d = Uint8Array.from(data)
      const s = Uint8Array.from(value)
      const target = inData ? d : s
      target[pos % target.length]! ^= 1 << bit
      const web = await webCryptoPlatform.verifyRsaPkcs1(h, key, d, s)
      const node = await nodeCryptoPlatform.verifyRsaPkcs1(h, key, d, s)
      return web === node && web === false
    }),
    { numRuns: 60 },
  )
})
