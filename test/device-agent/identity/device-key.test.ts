import test from 'ava'
import type { TestFn } from 'ava'
import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PublicKey, verifySignature } from '@sv/shared'
import { AgentError } from '../../../device-agent/src/errors.js'
import { createDeviceKey, generateKeyPkcs8, loadDeviceKey } from '../../../device-agent/src/identity/device-key.js'
import { SMALL } from '../helpers/fakes.js'

const it = test as TestFn<{ dir: string }>
it.beforeEach(async (t) => {
  t.context.dir = await mkdtemp(join(tmpdir(), 'sv-device-key-'))
})
it.afterEach.always(async (t) => {
  await rm(t.context.dir, { recursive: true, force: true })
})

it('device key: generated in a worker without blocking the event loop, written 0600 as PKCS#8, loaded back', async (t) => {
  const path = join(t.context.dir, 'device-key.pem')
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  const progress: number[] = []
  const started = performance.now()
  const key = await createDeviceKey(path, 2048, { onProgress: (ms) => progress.push(ms), progressIntervalMs: 20 })
  const took = performance.now() - started
  clearInterval(timer)
  t.is(key.bits, 2048)
  // the main thread kept running timers while the worker searched for primes
  t.true(ticks >= Math.floor(took / 5) / 4, `${ticks} ticks in ${Math.round(took)} ms`)
  t.true(progress.every((ms, i) => i === 0 || ms >= progress[i - 1]!))
  const text = await readFile(path, 'utf8')
  t.true(text.startsWith('-----BEGIN PRIVATE KEY-----'))
  t.is((await stat(path)).mode & 0o777, 0o600)
  const loaded = await loadDeviceKey(path)
  t.is(loaded?.publicKey.id, key.publicKey.id)
  const sig = await loaded!.signer.sign(Buffer.from('hello'))
  t.is(sig.length, 256)
  t.true(PublicKey.decode(key.publicKey.encode()).equals(key.publicKey))
  t.is(typeof verifySignature, 'function')
})

it('device key: an existing key is never replaced', async (t) => {
  const path = join(t.context.dir, 'device-key.pem')
  await writeFile(path, await readFile(join(SMALL, 'keys/device.key.pem')))
  const err = await t.throwsAsync(createDeviceKey(path, 2048), { instanceOf: AgentError })
  t.is(err?.code, 'SV_AGENT_STATE_CORRUPT')
  t.is((err as AgentError).details?.reason, 'key-exists')
})

it('device key: loads PKCS#1 (ssh-keygen, snapd) and PKCS#8; a readable file is put back to 0600', async (t) => {
  const path = join(t.context.dir, 'k.pem')
  await writeFile(path, await readFile(join(SMALL, 'keys/device.key.pem')), { mode: 0o644 })
  await chmod(path, 0o644)
  const a = await loadDeviceKey(path)
  t.is((await stat(path)).mode & 0o777, 0o600)
  await writeFile(path, await readFile(join(SMALL, 'keys/device.pkcs8.pem')))
  const b = await loadDeviceKey(path)
  t.is(a?.publicKey.id, b?.publicKey.id)
  t.is(await loadDeviceKey(join(t.context.dir, 'none.pem')), undefined)
})

const bad: [string, string | Buffer, string][] = [
  ['no PEM', 'hello', 'no-pem'],
  ['a public key', '', 'not-private-key'],
  ['garbage DER', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'malformed'],
  ['a huge file', Buffer.alloc(20_000, 0x41), 'too-large'],
]
for (const [what, content, reason] of bad) {
  it(`device key: ${what} is SV_AGENT_KEY_INVALID (${reason}), and the error holds no key material`, async (t) => {
    const path = join(t.context.dir, 'k.pem')
    await writeFile(path, content === '' ? await readFile(join(SMALL, 'keys/device.pub.pem')) : content)
    const err = await t.throwsAsync(loadDeviceKey(path), { instanceOf: AgentError })
    t.is(err?.code, 'SV_AGENT_KEY_INVALID')
    t.is((err as AgentError).details?.reason, reason)
    t.false(err!.message.includes('AAAA'))
  })
}

it('device key: generation can be aborted (the worker is terminated)', async (t) => {
  const ac = new AbortController()
  const p = generateKeyPkcs8(4096, { signal: ac.signal })
  setTimeout(() => ac.abort(new Error('stop')), 20)
  t.is((await t.throwsAsync(p))?.message, 'stop')
  t.throws(() => generateKeyPkcs8(1000), { instanceOf: TypeError })
})
