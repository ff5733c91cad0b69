/**
 * The browser path end to end: the esbuild browser bundle of `@sv/shared`
 * runs in a vm context that has what a browser has (TextEncoder,
 * TextDecoder, crypto.subtle) and nothing of Node (no Buffer, no process, no
 * require). There the byte helpers take their portable path, digests come
 * from @noble/hashes and RSA verification from WebCrypto. It must say
 * exactly what this process (Buffer, node:crypto) says about every snapd
 * vector, and sign byte for byte the same.
 */
import vm from 'node:vm'
import test from 'ava'
import * as shared from '@sv/shared'
import { NodeKeySigner } from '@sv/shared/node'
import { bundleShared } from '../helpers/browser-bundle.js'
import { loadManifest, vectorPath } from '../helpers/vectors.js'
import { vectorOutcome, type CodecApi } from '../helpers/vector-outcome.js'
import { readFileSync } from 'node:fs'

type Shared = typeof shared

/** The bundle's exports, evaluated in a fresh browser-like realm. */
async function browserRealm(): Promise<{ sv: Shared; context: vm.Context }> {
  const { code } = await bundleShared('iife')
  const context = vm.createContext({ TextEncoder, TextDecoder, crypto: globalThis.crypto, console })
  vm.runInContext(code, context, { filename: 'sv-browser-bundle.js' })
  return { sv: (context as { sv: Shared }).sv, context }
}

/** Plain data, whichever realm made it. */
const plain = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T

test('browser bundle: in a realm without Node, the whole snapd vector set gets the same verdicts, messages and details as here', async (t) => {
  t.timeout(120_000)
  const { sv, context } = await browserRealm()
  t.is(vm.runInContext('[typeof Buffer, typeof process, typeof require].join()', context), 'undefined,undefined,undefined')
  t.is(sv.getCryptoPlatform().name, 'webcrypto')
  t.is(shared.getCryptoPlatform().name, 'node')
  const now = Date.now()
  for (const v of loadManifest().vectors) {
    const there = await vectorOutcome(sv as unknown as CodecApi, v, now)
    const here = await vectorOutcome(shared, v, now)
    t.deepEqual(plain(there), plain(here), v.file)
  }
})

test('browser bundle: signs, encodes and decodes byte for byte as here (portable base64, UTF-8 and search; @noble key ids)', async (t) => {
  const { sv } = await browserRealm()
  const pem = readFileSync(vectorPath('keys/brand.key.pem'), 'utf8')
  const device = readFileSync(vectorPath('keys/device.pub.pem'), 'utf8')
  const signer = NodeKeySigner.fromPem(pem) // the RSA operation itself is not the codec's; the bytes around it are
  const theirKey = sv.PublicKey.fromPem(device)
  const ourKey = shared.PublicKey.fromPem(device)
  t.is(theirKey.id, ourKey.id)
  t.is(theirKey.encode(), ourKey.encode())
  t.is(sv.loadPrivateKeyPem(pem).publicKey.id, signer.publicKey.id)
  const headers = {
    'authority-id': 'acme-brand',
    'brand-id': 'acme-brand',
    model: 'acme-pi-gateway',
    serial: 'BROWSER-1 ünïcödé',
    'device-key': ourKey.encode(),
    'device-key-sha3-384': ourKey.id,
    timestamp: '2025-01-01T00:00:00Z',
  }
  const theirSigner = { publicKey: sv.loadPrivateKeyPem(pem).publicKey, sign: (d: Uint8Array) => signer.sign(d) }
  const body = 'a body with\nlines ✓\n'
  const there = await sv.signAssertion('serial', headers, body, theirSigner, { creationTime: 1735689600 })
  const here = await shared.signAssertion('serial', headers, body, signer, { creationTime: 1735689600 })
  t.is(there.text(), here.text())
  const stream = shared.encodeStream([here, here])
  const back = sv.decodeStream(stream)
  t.is(back.length, 2)
  t.is(sv.utf8Decode(sv.encodeStream(back)), shared.utf8Decode(stream))
  await t.notThrowsAsync(sv.verifySignature(back[0]!.content, back[0]!.signature, theirSigner.publicKey))
  t.is(sv.base64Encode(back[0]!.content), Buffer.from(here.content).toString('base64'))
})
