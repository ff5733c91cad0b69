import test from 'ava'
import { constants, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import { generateRsaKey } from '../../../vault-server/src/keys/keygen.js'

// The only key generation in the key tests, at 2048 bits for speed; the
// key store tests use fixture keys.
test('generateRsaKey: does not block the event loop, reports progress, returns a working key', async (t) => {
  const ticks: number[] = []
  const timer = setInterval(() => ticks.push(performance.now()), 20)
  const progress: number[] = []
  const started = performance.now()
  let key
  try {
    key = await generateRsaKey(2048, { onProgress: (ms) => progress.push(ms), progressIntervalMs: 50 })
  } finally {
    clearInterval(timer)
  }
  const elapsed = performance.now() - started
  const gaps = ticks.slice(1).map((v, i) => v - ticks[i]!)
  const maxGap = Math.max(0, ...gaps)
  t.log(`2048-bit key in ${elapsed.toFixed(0)} ms (worker start included): ${ticks.length} ticks of 20 ms, longest gap ${maxGap.toFixed(0)} ms, ${progress.length} progress calls`)
  t.true(ticks.length >= Math.floor(elapsed / 20 / 2), 'the 20 ms interval kept ticking')
  t.true(maxGap < 150, `the event loop stalled for ${maxGap.toFixed(0)} ms`)
  t.true(progress.length >= 1, 'progress was reported')
  t.true(progress.every((ms, i) => ms > 0 && (i === 0 || ms > progress[i - 1]!)), 'progress is elapsed ms, increasing')

  t.is(key.publicKey.bits, 2048)
  const privateKey = createPrivateKey({ key: key.pkcs8, format: 'der', type: 'pkcs8' })
  t.is(privateKey.asymmetricKeyType, 'rsa')
  t.is(privateKey.asymmetricKeyDetails?.publicExponent, 65537n)
  const data = Buffer.from('generated')
  const sig = sign('sha512', data, { key: privateKey, padding: constants.RSA_PKCS1_PADDING })
  t.true(verify('sha512', data, { key: createPublicKey({ key: key.publicKey.toJwk(), format: 'jwk' }), padding: constants.RSA_PKCS1_PADDING }, sig))
})

test('generateRsaKey: abort terminates the worker and rejects with the abort reason', async (t) => {
  const controller = new AbortController()
  const progress: number[] = []
  const pending = generateRsaKey(2048, { signal: controller.signal, onProgress: (ms) => progress.push(ms), progressIntervalMs: 10 })
  setTimeout(() => controller.abort(), 30)
  const started = performance.now()
  // signal.reason is a DOMException, which AVA does not count as an Error
  await t.throwsAsync(pending, { any: true, name: 'AbortError' })
  t.true(performance.now() - started < 1000, 'settles promptly')
  const count = progress.length
  await new Promise((r) => setTimeout(r, 50))
  t.is(progress.length, count, 'no progress after abort')
})

test('generateRsaKey: an already aborted signal starts nothing', async (t) => {
  const reason = new Error('stop')
  await t.throwsAsync(generateRsaKey(2048, { signal: AbortSignal.abort(reason) }), { is: reason })
})

test('generateRsaKey: bits is validated', (t) => {
  for (const bits of [0, 512, 1000, 2047, 4096.5, 32768]) t.throws(() => generateRsaKey(bits), { instanceOf: TypeError }, String(bits))
})
