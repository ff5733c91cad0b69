import test, { type ExecutionContext } from 'ava'
import os from 'node:os'
import { constants, createPublicKey, verify } from 'node:crypto'
import type { Worker } from 'node:worker_threads'
import { WebCryptoSigner } from '@sv/shared/node'
import { PublicKey, isVaultError, loadPrivateKeyPem, signContent, verifySignature } from '@sv/shared'
import { SignerPool, type SignerPoolOptions } from '../../../vault-server/src/keys/signer-pool.js'
import { startWorker } from '../../../vault-server/src/keys/start-worker.js'
import { assertNoSecrets, errorText, secretNeedles, vectorKeyId, vectorKeyPem } from './key-fixtures.js'

// 4096-bit fixture keys from the snapd vectors (test-only).
const BRAND_PEM = vectorKeyPem('brand')
const BRAND_ID = vectorKeyId('brand')
const IMPOSTOR_PEM = vectorKeyPem('impostor')
const brand = loadPrivateKeyPem(BRAND_PEM)
const impostor = loadPrivateKeyPem(IMPOSTOR_PEM)

function pool(t: ExecutionContext, options: SignerPoolOptions = {}): SignerPool {
  const p = new SignerPool({ size: 1, ...options })
  t.teardown(() => p.close())
  return p
}

function nodeVerify(publicKey: PublicKey, data: Uint8Array, sig: Uint8Array): boolean {
  const key = createPublicKey({ key: publicKey.toJwk(), format: 'jwk' })
  return verify('sha512', data, { key, padding: constants.RSA_PKCS1_PADDING }, sig)
}

function codeOf(result: PromiseSettledResult<unknown>): string {
  if (result.status === 'fulfilled') return 'ok'
  return isVaultError(result.reason) ? result.reason.code : `not a VaultError: ${String(result.reason)}`
}

// Timing first, alone in this file (AVA runs serial tests before concurrent ones).
test.serial('signer pool: 2 workers sign in parallel', async (t) => {
  const cores = os.availableParallelism()
  const p = pool(t, { size: 2 })
  await p.ready()
  p.addKey(BRAND_ID, brand.pkcs8)
  const signer = p.signer(BRAND_ID, brand.publicKey)
  const data = Buffer.from('parallel signing check')
  for (let i = 0; i < 6; i++) await signer.sign(data) // warm up both workers' key state
  await Promise.all([signer.sign(data), signer.sign(data)])

  // The best of rounds spread over up to 15 s: other AVA processes (and other
  // test runs on the box) share the CPUs, so a round can be starved; what must
  // hold is that a round with both cores available shows it.
  const N = 8
  let best = { ratio: 0, single: 0, concurrent: 0 }
  const until = performance.now() + 15_000
  for (let round = 0; round < 200 && performance.now() < until; round++) {
    if (round > 0) await new Promise((r) => setTimeout(r, 100 + (round % 5) * 60))
    let start = performance.now()
    for (let i = 0; i < N; i++) await signer.sign(data)
    const single = (performance.now() - start) / N
    start = performance.now()
    await Promise.all(Array.from({ length: N }, () => signer.sign(data)))
    const concurrent = performance.now() - start
    const ratio = (N * single) / concurrent
    if (ratio > best.ratio) best = { ratio, single, concurrent }
    if (best.ratio > 1.6) break
  }
  t.log(`RSA-4096 sign: ${best.single.toFixed(2)} ms one at a time; ${N} concurrent on 2 workers: ${best.concurrent.toFixed(1)} ms; speedup ${best.ratio.toFixed(2)}x (${cores} cores)`)
  const perWorker = p.metrics().workers.map((w) => w.signed)
  t.true(perWorker.every((n) => n > 0), `both workers signed: ${perWorker.join(', ')}`)
  if (cores < 2) {
    t.log('one core only: parallelism not asserted')
    t.pass()
    return
  }
  t.true(best.ratio > 1.3, `${N} concurrent signs took ${best.concurrent.toFixed(1)} ms vs ${(N * best.single).toFixed(1)} ms one by one`)
})

test('signer pool: signatures verify and equal WebCryptoSigner byte for byte', async (t) => {
  const p = pool(t)
  p.addKey(BRAND_ID, brand.pkcs8)
  const signer = p.signer(BRAND_ID, brand.publicKey)
  t.is(signer.publicKey.id, BRAND_ID)
  const web = await WebCryptoSigner.fromPem(BRAND_PEM)
  for (const data of [Buffer.alloc(0), Buffer.from('serial-vault'), Buffer.alloc(100_000, 0xa5)]) {
    const sig = await signer.sign(data)
    t.is(sig.length, 512, 'k bytes for a 4096-bit key')
    t.true(nodeVerify(brand.publicKey, data, sig))
    t.true(Buffer.from(sig).equals(Buffer.from(await web.sign(data))), 'PKCS#1 v1.5 is deterministic')
  }
  // and through the codec's OpenPGP signature path
  const content = Buffer.from('type: test\nsign-key-sha3-384: x')
  const text = await signContent(content, signer, 1704067200)
  t.is(text, await signContent(content, web, 1704067200))
  await t.notThrowsAsync(verifySignature(content, text, brand.publicKey))
})

test('signer pool: the caller may zero its DER after addKey, and reuse its data buffer after sign', async (t) => {
  const p = pool(t)
  const der = Buffer.from(brand.pkcs8)
  p.addKey(BRAND_ID, der)
  der.fill(0)
  const data = Buffer.from('data that changes after the call')
  const copy = Buffer.from(data)
  const pending = p.sign(BRAND_ID, data)
  data.fill(0)
  t.true(nodeVerify(brand.publicKey, copy, await pending))
})

test('signer pool: several keys, each signature with its own key', async (t) => {
  const p = pool(t, { size: 2 })
  p.addKey(BRAND_ID, brand.pkcs8)
  p.addKey(impostor.publicKey.id, impostor.pkcs8)
  const a = p.signer(BRAND_ID, brand.publicKey)
  const b = p.signer(impostor.publicKey.id, impostor.publicKey)
  const data = Buffer.from('two keys')
  const [sa, sb] = await Promise.all([a.sign(data), b.sign(data)])
  t.true(nodeVerify(brand.publicKey, data, sa))
  t.true(nodeVerify(impostor.publicKey, data, sb))
  t.false(nodeVerify(brand.publicKey, data, sb))
  t.is(p.metrics().keys, 2)
})

test('signer pool: full queue -> SV_OVERLOADED with retryAfter 1', async (t) => {
  const p = pool(t, { maxPending: 3 })
  p.addKey(BRAND_ID, brand.pkcs8)
  const data = Buffer.from('burst')
  const results = await Promise.allSettled(Array.from({ length: 10 }, () => p.sign(BRAND_ID, data)))
  t.deepEqual(results.map(codeOf), ['ok', 'ok', 'ok', ...Array(7).fill('SV_OVERLOADED')])
  const rejected = results[3] as PromiseRejectedResult
  t.is(rejected.reason.retryAfter, 1)
  t.is(rejected.reason.status, 503)
  t.is(p.metrics().overloaded, 7)
  // room again once drained
  t.true(nodeVerify(brand.publicKey, data, await p.sign(BRAND_ID, data)))
})

test('signer pool: a request over its deadline -> SV_TIMEOUT, and a late answer is dropped', async (t) => {
  // 1 ms: the worker is still starting, so the request cannot make it.
  const p = pool(t, { timeoutMs: 1 })
  p.addKey(BRAND_ID, brand.pkcs8)
  const err = await t.throwsAsync(p.sign(BRAND_ID, Buffer.from('late')), { code: 'SV_TIMEOUT' })
  t.is((err as { retryAfter?: number }).retryAfter, 1)
  await p.ready()
  // The late answer arrives once the new worker has imported the key and
  // signed: tens of ms alone, seconds on a loaded CI box. Poll, bounded.
  const deadline = Date.now() + 15_000
  while (p.metrics().inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  const m = p.metrics()
  t.is(m.timedOut, 1)
  t.is(m.inFlight, 0, 'the late answer freed its worker')
})

test('signer pool: a killed worker fails its in-flight requests with SV_INTERNAL and is replaced', async (t) => {
  const workers: Worker[] = []
  const p = pool(t, {
    size: 2,
    workerFactory: () => {
      const w = startWorker('signer-worker')
      workers.push(w)
      return w
    },
  })
  await p.ready()
  p.addKey(BRAND_ID, brand.pkcs8)
  const data = Buffer.from('crash')
  await Promise.all([p.sign(BRAND_ID, data), p.sign(BRAND_ID, data)])
  t.is(workers.length, 2)

  const inFlight = Array.from({ length: 6 }, () => p.sign(BRAND_ID, data))
  const victim = workers[0]!
  const victimLoad = p.metrics().workers[0]!.inFlight
  t.true(victimLoad > 0, 'the victim had work in flight')
  await victim.terminate()
  const results = await Promise.allSettled(inFlight) // never hangs: settles or the test times out
  const codes = results.map(codeOf)
  t.true(codes.includes('SV_INTERNAL'), codes.join(', '))
  t.true(codes.every((c) => c === 'ok' || c === 'SV_INTERNAL'), codes.join(', '))
  for (const r of results) if (r.status === 'fulfilled') t.true(nodeVerify(brand.publicKey, data, r.value))

  // recovered: a third worker replaced the victim, with the key loaded
  await p.ready()
  t.is(workers.length, 3)
  const m = p.metrics()
  t.is(m.restarts, 1)
  t.is(m.live, 2)
  const again = await Promise.all(Array.from({ length: 6 }, () => p.sign(BRAND_ID, data)))
  for (const sig of again) t.true(nodeVerify(brand.publicKey, data, sig))
  t.true(p.metrics().workers[0]!.signed > 0, 'the replacement signs')
})

test('signer pool: close() rejects queued and in-flight requests with SV_SHUTTING_DOWN', async (t) => {
  const p = new SignerPool({ size: 1 })
  p.addKey(BRAND_ID, brand.pkcs8)
  const pending = Array.from({ length: 5 }, () => p.sign(BRAND_ID, Buffer.from('bye')))
  await p.close()
  const codes = (await Promise.allSettled(pending)).map(codeOf)
  t.deepEqual(codes, Array(5).fill('SV_SHUTTING_DOWN'))
  await t.throwsAsync(p.sign(BRAND_ID, Buffer.from('after')), { code: 'SV_SHUTTING_DOWN' })
  await t.throwsAsync(p.ready(), { code: 'SV_SHUTTING_DOWN' })
  t.throws(() => p.addKey(BRAND_ID, brand.pkcs8), { code: 'SV_SHUTTING_DOWN' })
  await p.close() // idempotent
  t.is(p.metrics().live, 0)
})

test('signer pool: removed or unknown keys -> SV_SIGNING_KEY_UNAVAILABLE', async (t) => {
  const p = pool(t)
  t.throws(() => p.signer(BRAND_ID, brand.publicKey), { code: 'SV_SIGNING_KEY_UNAVAILABLE' })
  await t.throwsAsync(p.sign(BRAND_ID, Buffer.from('x')), { code: 'SV_SIGNING_KEY_UNAVAILABLE' })
  p.addKey(BRAND_ID, brand.pkcs8)
  const signer = p.signer(BRAND_ID, brand.publicKey)
  await signer.sign(Buffer.from('x'))
  // queued behind a busy worker, then removed before dispatch
  const queued = Array.from({ length: 4 }, () => signer.sign(Buffer.from('y')))
  p.removeKey(BRAND_ID)
  t.false(p.hasKey(BRAND_ID))
  const codes = (await Promise.allSettled(queued)).map(codeOf)
  t.true(codes.slice(2).every((c) => c === 'SV_SIGNING_KEY_UNAVAILABLE'), codes.join(', '))
  await t.throwsAsync(signer.sign(Buffer.from('z')), { code: 'SV_SIGNING_KEY_UNAVAILABLE' })
  p.addKey(BRAND_ID, brand.pkcs8)
  t.true(nodeVerify(brand.publicKey, Buffer.from('z'), await signer.sign(Buffer.from('z'))), 'the signer works again once re-added')
})

test('signer pool: refuses a public key that is not the loaded key, and a non-key DER, without leaking', async (t) => {
  const p = pool(t)
  p.addKey(BRAND_ID, brand.pkcs8)
  t.throws(() => p.signer(BRAND_ID, impostor.publicKey), { code: 'SV_INTERNAL' })
  const garbled = Buffer.from(brand.pkcs8)
  garbled.fill(0x41, 30, 60)
  const err = t.throws(() => p.addKey('bad', garbled), { code: 'SV_KEY_INVALID' })
  assertNoSecrets(t, errorText(err), secretNeedles(BRAND_PEM), 'error')
  t.false(p.hasKey('bad'))
})

test('signer pool: options are validated', (t) => {
  t.throws(() => new SignerPool({ size: 0 }), { instanceOf: TypeError })
  t.throws(() => new SignerPool({ maxPending: 1.5 }), { instanceOf: TypeError })
  t.throws(() => new SignerPool({ timeoutMs: -1 }), { instanceOf: TypeError })
})

test('signer pool: metrics count queue, in-flight and per-worker work', async (t) => {
  const p = pool(t, { size: 2, perWorker: 1 })
  await p.ready()
  p.addKey(BRAND_ID, brand.pkcs8)
  const data = Buffer.from('metrics')
  const all = Array.from({ length: 6 }, () => p.sign(BRAND_ID, data))
  const during = p.metrics()
  t.is(during.inFlight, 2, 'one per worker')
  t.is(during.queued, 4)
  await Promise.all(all)
  const after = p.metrics()
  t.like(after, { size: 2, live: 2, keys: 1, queued: 0, inFlight: 0, signed: 6, failed: 0, restarts: 0, maxPending: 1024 })
  t.is(after.workers.reduce((n, w) => n + w.signed, 0), 6)
  t.true(after.workers.every((w) => w.threadId > 0))
})
