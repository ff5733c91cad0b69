/**
 * The device API over real HTTP against a real vault in this process
 * (startTestVault: the snapd vectors' brand chain, memory or LevelDB store).
 * Every rejection is checked for its documented status and SV_* code, with
 * Content-Type exactly application/json (+ Retry-After on 503); accepted
 * registrations for what they return and what they leave in the signing log.
 * Each test has its own vault; none depends on another.
 */
import test, { type ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import { Buffer } from 'node:buffer'
import { decodeStream, utf8Decode } from '@sv/shared'
import { readFile, rm } from 'node:fs/promises'
import { PI_MODEL_HEADERS, startTestVault, type TestVault, type TestVaultOptions } from '../../helpers/vault.js'
import {
  endpoint,
  fetchRequestId,
  fixtureDeviceKey,
  generateDeviceKey,
  generateDeviceKeys,
  httpRequest,
  joinStream,
  jsonOf,
  postRequestId,
  postSerial,
  registerDevice,
  serialRequestStream,
  signSerialRequest,
  type DeviceKey,
  type RegisterInput,
} from '../../helpers/device.js'
import { vectorPath } from '../../helpers/vectors.js'
import { snapdVerify, tempDir } from '../../helpers/snapd-check.js'
import { admin, adminJson, assertError, logEntries, metricValue, serialOf } from './api.js'

const BRAND = 'acme-brand'
const MODEL = 'acme-pi-gateway'

interface Ctx {
  v: TestVault
  /** the model assertion of a model of this vault */
  modelOf(name?: string): Promise<string>
  /** registers `key` for `serial` (model acme-pi-gateway unless given), with the model assertion */
  reg(key: DeviceKey, serial: string | undefined, extra?: Partial<RegisterInput>): ReturnType<typeof registerDevice>
}

async function setup(t: ExecutionContext, o: TestVaultOptions = {}): Promise<Ctx> {
  const v = await startTestVault(t, { store: 'memory', workers: 1, ...o })
  const modelOf = async (name = MODEL) => (await v.vault.services.models.get(BRAND, name)).modelAssertion
  return {
    v,
    modelOf,
    reg: async (key, serial, extra = {}) => {
      const model = extra.model ?? MODEL
      return registerDevice(v.url, v.apiKey, { key, brandId: BRAND, model, modelAssertion: await modelOf(model), ...(serial === undefined ? {} : { serial }), ...extra })
    },
  }
}

/** A serial-request stream for the default model with a fresh request-id. */
async function streamFor(c: Ctx, key: DeviceKey, serial: string | undefined, o: { brandId?: string; model?: string; modelAssertion?: string | null; body?: string } = {}): Promise<Buffer> {
  const requestId = await fetchRequestId(c.v.url, c.v.apiKey)
  const modelAssertion = o.modelAssertion === null ? undefined : (o.modelAssertion ?? (await c.modelOf()))
  return serialRequestStream({
    key,
    brandId: o.brandId ?? BRAND,
    model: o.model ?? MODEL,
    requestId,
    ...(serial === undefined ? {} : { serial }),
    ...(o.body === undefined ? {} : { body: o.body }),
    ...(modelAssertion === undefined ? {} : { modelAssertion }),
  })
}

// --- request-id ------------------------------------------------------------------------

test('request-id: issued with the api-key, as JSON, one different id per call', async (t) => {
  const { v } = await setup(t)
  const a = await postRequestId(v.url, v.apiKey)
  t.is(a.status, 200)
  t.is(a.headers['content-type'], 'application/json')
  const body = jsonOf<{ 'request-id': string; 'expires-in': number }>(a)
  t.regex(body['request-id'], /^[A-Za-z0-9_-]{20,}$/)
  t.is(body['expires-in'], 600)
  t.not(await fetchRequestId(v.url, v.apiKey), body['request-id'])
})

test('request-id: without api-key 401 SV_API_KEY_MISSING, with a wrong one 401 SV_API_KEY_INVALID', async (t) => {
  const { v } = await setup(t)
  const missing = await postRequestId(v.url, undefined)
  assertError(t, missing, 401, 'SV_API_KEY_MISSING', { header: 'api-key' })
  t.is(missing.headers['www-authenticate'], 'api-key')
  assertError(t, await postRequestId(v.url, 'not-a-key-of-this-vault-0123456789'), 401, 'SV_API_KEY_INVALID', { header: 'api-key' })
  assertError(t, await postRequestId(v.url, ''), 401, 'SV_API_KEY_MISSING')
})

// --- a registration ----------------------------------------------------------------------

test('serial: a registration answers 200 with the serial, its account-key and account, and logs one issuance', async (t) => {
  const c = await setup(t)
  const key = fixtureDeviceKey('device')
  const r = await c.reg(key, 'SN-0001', { body: 'hello: device\n' })
  t.is(r.headers['content-type'], 'application/x.ubuntu.assertion')
  const { serial, rest } = serialOf(r)
  t.is(serial.brandId, BRAND)
  t.is(serial.model, MODEL)
  t.is(serial.serial, 'SN-0001')
  t.is(serial.revision, 1)
  t.is(serial.deviceKeyId, key.id)
  t.is(serial.authorityId, BRAND)
  t.is(utf8Decode(serial.body), 'hello: device\n', 'the serial-request body is copied')
  t.deepEqual(
    rest.map((a) => a.typeName),
    ['account-key', 'account'],
  )
  t.is(rest[0]!.headerString('public-key-sha3-384'), serial.signKeyId)
  const log = await logEntries(c.v)
  t.is(log.length, 1)
  t.like(log[0], { outcome: 'issued', brandId: BRAND, model: MODEL, serial: 'SN-0001', deviceKeyId: key.id, revision: 1, requestId: r.requestId, transport: 'https' })
})

test('serial: the serial-request body may carry the serial (`serial:` in YAML) when the header has none', async (t) => {
  const c = await setup(t)
  const r = await c.reg(fixtureDeviceKey('device'), undefined, { body: 'serial: BODY-7\n' })
  t.is(serialOf(r).serial.serial, 'BODY-7')
})

test('serial: a Content-Type with parameters is still the assertion media type', async (t) => {
  const c = await setup(t)
  const r = await postSerial(c.v.url, c.v.apiKey, await streamFor(c, fixtureDeviceKey('device'), 'SN-P'), { headers: { 'content-type': 'application/x.ubuntu.assertion; charset=utf-8' } })
  t.is(serialOf(r).serial.serial, 'SN-P')
})

// --- request-id rules ----------------------------------------------------------------------

test('serial: a request-id is single use: another request with it is 409 SV_REQUEST_ID_USED', async (t) => {
  const c = await setup(t)
  const first = await c.reg(fixtureDeviceKey('device'), 'SN-A')
  t.is(first.status, 200)
  const again = await c.reg(fixtureDeviceKey('impostor'), 'SN-B', { requestId: first.requestId })
  assertError(t, again, 409, 'SV_REQUEST_ID_USED')
  const refused = await logEntries(c.v, { outcome: 'refused' })
  t.like(refused, [{ code: 'SV_REQUEST_ID_USED', serial: 'SN-B', requestId: first.requestId }])
})

test('serial: an expired request-id is 400 SV_REQUEST_ID_EXPIRED (injected clock, ttl 10 s)', async (t) => {
  let clock = Date.now()
  const c = await setup(t, { now: () => clock, config: { requestId: { ttlSeconds: 10 } } })
  const early = await fetchRequestId(c.v.url, c.v.apiKey)
  const late = await fetchRequestId(c.v.url, c.v.apiKey)
  clock += 9_000
  t.is((await c.reg(fixtureDeviceKey('device'), 'SN-IN-TIME', { requestId: early })).status, 200)
  clock += 2_000
  const r = await c.reg(fixtureDeviceKey('impostor'), 'SN-LATE', { requestId: late })
  assertError(t, r, 400, 'SV_REQUEST_ID_EXPIRED', { header: 'request-id' })
})

test('serial: request-ids never issued are 400 SV_REQUEST_ID_UNKNOWN (random, altered, from another vault)', async (t) => {
  const c = await setup(t)
  const other = await setup(t)
  const real = await fetchRequestId(c.v.url, c.v.apiKey)
  const flip = real.slice(0, 20) + (real[20] === 'A' ? 'B' : 'A') + real.slice(21)
  const forged = [randomBytes(37).toString('base64url'), flip, 'REQID-POLL', await fetchRequestId(other.v.url, other.v.apiKey)]
  const keys = ['device', 'impostor', 'evil', 'brand'] as const
  for (const [i, id] of forged.entries()) {
    const r = await c.reg(fixtureDeviceKey(keys[i]!), `SN-F${i}`, { requestId: id })
    assertError(t, r, 400, 'SV_REQUEST_ID_UNKNOWN', { header: 'request-id' })
  }
  t.is((await c.reg(fixtureDeviceKey('device'), 'SN-REAL', { requestId: real })).status, 200)
})

test('serial: a request refused before the request-id step (unknown model) leaves the request-id usable', async (t) => {
  const c = await setup(t)
  const key = fixtureDeviceKey('device')
  const requestId = await fetchRequestId(c.v.url, c.v.apiKey)
  const stray = await serialRequestStream({ key, brandId: BRAND, model: 'no-such-model', requestId, serial: 'SN-1' })
  assertError(t, await postSerial(c.v.url, c.v.apiKey, stray), 404, 'SV_MODEL_UNKNOWN')
  t.is((await c.reg(key, 'SN-1', { requestId })).status, 200)
})

// --- authentication, brand and model ------------------------------------------------------

test('serial: a missing api-key is 401 SV_API_KEY_MISSING, a wrong one 401 SV_API_KEY_INVALID', async (t) => {
  const c = await setup(t)
  const body = await streamFor(c, fixtureDeviceKey('device'), 'SN-1')
  assertError(t, await postSerial(c.v.url, undefined, body), 401, 'SV_API_KEY_MISSING', { header: 'api-key' })
  const wrong = await postSerial(c.v.url, 'wrong-api-key-0123456789abcdef', body)
  assertError(t, wrong, 401, 'SV_API_KEY_INVALID', { header: 'api-key' })
  t.is(wrong.headers['www-authenticate'], 'api-key')
  // the request-id was not used up by the refusals
  t.is((await postSerial(c.v.url, c.v.apiKey, body)).status, 200)
  t.deepEqual(
    (await logEntries(c.v, { outcome: 'refused' })).map((e) => e.code),
    ['SV_API_KEY_MISSING', 'SV_API_KEY_INVALID'],
  )
})

test('serial: an api-key of another model of the brand is 401 SV_API_KEY_INVALID', async (t) => {
  const c = await setup(t)
  const { apiKeys } = await adminJson<{ apiKeys: string[] }>(c.v, 'POST', 'admin/models', { brandId: BRAND, name: 'acme-other', headers: PI_MODEL_HEADERS })
  const body = await streamFor(c, fixtureDeviceKey('device'), 'SN-1')
  assertError(t, await postSerial(c.v.url, apiKeys[0]!, body), 401, 'SV_API_KEY_INVALID')
})

test('serial: an unknown model is 404 SV_MODEL_UNKNOWN, an unknown brand 404 SV_BRAND_UNKNOWN', async (t) => {
  const c = await setup(t)
  const model = await streamFor(c, fixtureDeviceKey('device'), 'SN-1', { model: 'no-such-model', modelAssertion: null })
  assertError(t, await postSerial(c.v.url, c.v.apiKey, model), 404, 'SV_MODEL_UNKNOWN', { brandId: BRAND, model: 'no-such-model' })
  const brand = await streamFor(c, fixtureDeviceKey('device'), 'SN-1', { brandId: 'nobody-brand', modelAssertion: null })
  assertError(t, await postSerial(c.v.url, c.v.apiKey, brand), 404, 'SV_BRAND_UNKNOWN', { brandId: 'nobody-brand' })
})

test('serial: a model assertion of another model or brand than the serial-request is 400 SV_MODEL_MISMATCH', async (t) => {
  const c = await setup(t, { models: [{ name: 'acme-other' }] })
  const otherModel = await streamFor(c, fixtureDeviceKey('device'), 'SN-1', { modelAssertion: await c.modelOf('acme-other') })
  assertError(t, await postSerial(c.v.url, c.v.apiKey, otherModel), 400, 'SV_MODEL_MISMATCH', { requestBrand: BRAND, requestModel: MODEL, modelBrand: BRAND, modelModel: 'acme-other' })
  const otherBrand = await streamFor(c, fixtureDeviceKey('device'), 'SN-1', { brandId: 'evil-corp' })
  assertError(t, await postSerial(c.v.url, c.v.apiKey, otherBrand), 400, 'SV_MODEL_MISMATCH', { requestBrand: 'evil-corp', modelBrand: BRAND })
})

// --- the serial-request itself ------------------------------------------------------------

test('serial: a serial-request altered after signing is 400 SV_SERIAL_REQUEST_SIGNATURE', async (t) => {
  const c = await setup(t)
  const body = await streamFor(c, fixtureDeviceKey('device'), 'SN-TAMPER1')
  const tampered = Buffer.from(body.toString('utf8').replace('serial: SN-TAMPER1\n', 'serial: SN-TAMPER2\n'))
  t.notDeepEqual(tampered, body)
  assertError(t, await postSerial(c.v.url, c.v.apiKey, tampered), 400, 'SV_SERIAL_REQUEST_SIGNATURE')
  t.is((await logEntries(c.v, { outcome: 'refused' }))[0]?.code, 'SV_SERIAL_REQUEST_SIGNATURE')
})

test("serial: snapd's bad-signature vector is SV_SERIAL_REQUEST_SIGNATURE, its key-mismatch vector SV_ASSERTION_INVALID", async (t) => {
  const c = await setup(t)
  const bad = await readFile(vectorPath('neg-serial-request-bad-signature.assert'))
  assertError(t, await postSerial(c.v.url, c.v.apiKey, bad), 400, 'SV_SERIAL_REQUEST_SIGNATURE')
  const mismatch = await readFile(vectorPath('neg-serial-request-key-mismatch.assert'))
  assertError(t, await postSerial(c.v.url, c.v.apiKey, mismatch), 400, 'SV_ASSERTION_INVALID', { type: 'serial-request', header: 'sign-key-sha3-384' })
})

test('serial: a device key below 2048 bits is 400 SV_KEY_TOO_SMALL', async (t) => {
  const c = await setup(t)
  const r = await c.reg(fixtureDeviceKey('small/device'), 'SN-SMALL')
  assertError(t, r, 400, 'SV_KEY_TOO_SMALL', { bits: 1024, min: 2048 })
})

test('serial: no serial in header or body is 400 SV_SERIAL_MISSING', async (t) => {
  const c = await setup(t)
  assertError(t, await c.reg(fixtureDeviceKey('device'), undefined), 400, 'SV_SERIAL_MISSING', { header: 'serial' })
  assertError(t, await c.reg(fixtureDeviceKey('device'), undefined, { body: 'not-the-serial: 1\n' }), 400, 'SV_SERIAL_MISSING')
})

const badSerials: [string, string][] = [
  ['AB/CD', 'invalid-characters'],
  ['has space', 'invalid-characters'],
  ['semi;colon', 'invalid-characters'],
  ['-dash-first', 'invalid-first-character'],
  ['.dot-first', 'invalid-first-character'],
  ['X'.repeat(129), 'too-long'],
]
for (const [serial, reason] of badSerials) {
  test(`serial: proposed serial ${JSON.stringify(serial.slice(0, 20))} is 400 SV_SERIAL_INVALID (${reason})`, async (t) => {
    const c = await setup(t)
    assertError(t, await c.reg(fixtureDeviceKey('device'), serial), 400, 'SV_SERIAL_INVALID', { reason })
  })
}

test('serial: a body that is not an assertion media type is 415 SV_MEDIA_TYPE_UNSUPPORTED', async (t) => {
  const c = await setup(t)
  const body = await streamFor(c, fixtureDeviceKey('device'), 'SN-1')
  for (const type of ['application/json', 'text/plain', 'application/x-www-form-urlencoded']) {
    assertError(t, await postSerial(c.v.url, c.v.apiKey, body, { headers: { 'content-type': type } }), 415, 'SV_MEDIA_TYPE_UNSUPPORTED', { contentType: type })
  }
  const none = await httpRequest(endpoint(c.v.url, 'serial'), { method: 'POST', headers: { 'api-key': c.v.apiKey }, body })
  assertError(t, none, 415, 'SV_MEDIA_TYPE_UNSUPPORTED', { contentType: '' })
  t.is((await postSerial(c.v.url, c.v.apiKey, body)).status, 200)
})

test('serial: a body over the limit is 413 SV_BODY_TOO_LARGE, with Content-Length and chunked, and the vault keeps serving', async (t) => {
  const c = await setup(t)
  // Regression: a refused body that was still arriving left req.socket null when the
  // request log line was written, and the TypeError took the whole vault down.
  const big = Buffer.alloc(300 * 1024, 'a')
  assertError(t, await postSerial(c.v.url, c.v.apiKey, big), 413, 'SV_BODY_TOO_LARGE', { limit: 256 * 1024 })
  const chunks = Array.from({ length: 30 }, () => Buffer.alloc(10 * 1024, 'b'))
  assertError(t, await postSerial(c.v.url, c.v.apiKey, chunks), 413, 'SV_BODY_TOO_LARGE', { limit: 256 * 1024 })
  t.is((await c.reg(fixtureDeviceKey('device'), 'SN-AFTER')).status, 200)
  // a chunked body under the limit is read whole
  const ok = await streamFor(c, fixtureDeviceKey('impostor'), 'SN-CHUNKED')
  const parts = [ok.subarray(0, 100), ok.subarray(100, 2000), ok.subarray(2000)]
  t.is(serialOf(await postSerial(c.v.url, c.v.apiKey, parts)).serial.serial, 'SN-CHUNKED')
})

test('serial: malformed streams are 400 with the code of what is wrong', async (t) => {
  const c = await setup(t)
  const key = fixtureDeviceKey('device')
  const req = Buffer.from((await signSerialRequest({ key, brandId: BRAND, model: MODEL, requestId: await fetchRequestId(c.v.url, c.v.apiKey), serial: 'SN-1' })).encode())
  const model = await c.modelOf()
  const cases: [string, Buffer, string, Record<string, unknown>][] = [
    ['empty body', Buffer.alloc(0), 'SV_SERIAL_REQUEST_INVALID', { reason: 'empty' }],
    ['garbage text', Buffer.from('hello world\n\nnot an assertion'), 'SV_ASSERTION_INVALID', { index: 1 }],
    ['binary garbage', randomBytes(512), 'SV_ASSERTION_INVALID', { index: 1 }],
    ['truncated in the headers', req.subarray(0, 200), 'SV_ASSERTION_INVALID', { index: 1, reason: 'unexpected EOF in headers' }],
    ['truncated model', joinStream([req, model]).subarray(0, req.length + 1 + 300), 'SV_ASSERTION_INVALID', { index: 2 }],
    ['truncated in the signature', req.subarray(0, req.length - 100), 'SV_SERIAL_REQUEST_SIGNATURE', {}],
    ['a blank line before the stream', Buffer.concat([Buffer.from('\n'), req]), 'SV_ASSERTION_INVALID', { index: 1 }],
    ['two blank lines between the assertions', Buffer.concat([req, Buffer.from('\n\n'), Buffer.from(model)]), 'SV_ASSERTION_INVALID', { index: 2 }],
    ['the model first', joinStream([model, req]), 'SV_SERIAL_REQUEST_INVALID', { type: 'model', index: 1 }],
    ['a serial-request second', joinStream([req, req]), 'SV_SERIAL_REQUEST_INVALID', { type: 'serial-request', index: 2 }],
    ['a third assertion', joinStream([req, model, model]), 'SV_SERIAL_REQUEST_INVALID', { type: 'model', index: 3 }],
    // regression: a fourth one was 413 SV_ASSERTION_TOO_LARGE, as if the stream were over a size limit
    ['a fourth assertion', joinStream([req, model, model, model]), 'SV_SERIAL_REQUEST_INVALID', { index: 4 }],
  ]
  for (const [name, body, code, details] of cases) {
    const r = await postSerial(c.v.url, c.v.apiKey, body)
    t.is(r.status, 400, name)
    assertError(t, r, 400, code, details)
  }
  // none of them used up the request-id
  t.is((await postSerial(c.v.url, c.v.apiKey, joinStream([req, model]))).status, 200)
})

// --- retries, clones, policies --------------------------------------------------------------

test('serial: an identical retry gets the same bytes and writes no log entry', async (t) => {
  const c = await setup(t)
  const key = fixtureDeviceKey('device')
  const first = await c.reg(key, 'SN-RETRY')
  t.is(first.status, 200)
  const before = await logEntries(c.v)
  const again = await postSerial(c.v.url, c.v.apiKey, first.sent)
  t.is(again.status, 200)
  t.true(again.body.equals(first.body), 'byte-identical answer')
  t.deepEqual(await logEntries(c.v), before)
  t.is(before.length, 1)
  // with a fresh request-id too (snapd starts over with a new one after a 5xx): same bytes, and that id is used
  const fresh = await c.reg(key, 'SN-RETRY')
  t.true(fresh.body.equals(first.body))
  t.deepEqual(await logEntries(c.v), before)
  assertError(t, await c.reg(fixtureDeviceKey('impostor'), 'SN-OTHER', { requestId: fresh.requestId }), 409, 'SV_REQUEST_ID_USED')
})

test('serial: the same serial with another key is refused 409 SV_SERIAL_TAKEN and logged as a refusal', async (t) => {
  const c = await setup(t)
  const owner = fixtureDeviceKey('device')
  const clone = fixtureDeviceKey('impostor')
  const first = await c.reg(owner, 'SN-CLONE')
  t.is(first.status, 200)
  const r = await c.reg(clone, 'SN-CLONE')
  assertError(t, r, 409, 'SV_SERIAL_TAKEN', { serial: 'SN-CLONE', boundKey: owner.id, revision: 1 })
  const refused = await logEntries(c.v, { outcome: 'refused' })
  t.is(refused.length, 1)
  t.like(refused[0], { code: 'SV_SERIAL_TAKEN', serial: 'SN-CLONE', deviceKeyId: clone.id, brandId: BRAND, model: MODEL, requestId: r.requestId })
  const binding = await adminJson<{ binding: { deviceKeyId: string; revision: number } }>(c.v, 'GET', `admin/serials/${BRAND}/${MODEL}/SN-CLONE`)
  t.like(binding.binding, { deviceKeyId: owner.id, revision: 1 })
  // the owner still gets its serial
  t.true((await postSerial(c.v.url, c.v.apiKey, first.sent)).body.equals(first.body))
})

test('serial: a key that holds a serial asking for another serial is 409 SV_DEVICE_KEY_TAKEN', async (t) => {
  const c = await setup(t)
  const key = fixtureDeviceKey('device')
  t.is((await c.reg(key, 'SN-ONE')).status, 200)
  assertError(t, await c.reg(key, 'SN-TWO'), 409, 'SV_DEVICE_KEY_TAKEN', { serial: 'SN-ONE' })
})

test('serial: under the reissue policy another key gets the next revision, which snapd accepts', async (t) => {
  const c = await setup(t, { models: [{ name: 'acme-reissue', duplicatePolicy: 'reissue' }] })
  const a = await c.reg(fixtureDeviceKey('device'), 'SN-RE', { model: 'acme-reissue' })
  const b = await c.reg(fixtureDeviceKey('impostor'), 'SN-RE', { model: 'acme-reissue' })
  const sa = serialOf(a).serial
  const sb = serialOf(b).serial
  t.is(sa.revision, 1)
  t.is(sb.revision, 2)
  t.is(sb.deviceKeyId, fixtureDeviceKey('impostor').id)
  t.deepEqual(
    (await logEntries(c.v, { serial: 'SN-RE' })).map((e) => [e.outcome, e.revision]),
    [
      ['issued', 1],
      ['reissued', 2],
    ],
  )
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const trusted = await readFile(c.v.trusted)
  const chain = [await readFile(vectorPath('account.assert')), await readFile(vectorPath('account-key.assert')), Buffer.from(await c.modelOf('acme-reissue'))]
  const vb = await snapdVerify(dir, { trusted, chain, file: b.body }, 'rev2')
  t.is(vb.code, 0, vb.stdout + vb.stderr)
  t.true(vb.lines.length >= 1 && vb.lines.every((l) => l.ok), vb.stdout)
})

test('serial: after an admin release, the serial goes to a new key once (reissued, revision 2)', async (t) => {
  const c = await setup(t)
  const old = fixtureDeviceKey('device')
  const repl = fixtureDeviceKey('impostor')
  t.is((await c.reg(old, 'SN-REL')).status, 200)
  assertError(t, await admin(c.v, 'POST', `admin/serials/${BRAND}/${MODEL}/NO-SUCH/release`), 404, 'SV_SERIAL_NOT_FOUND')
  const rel = await admin(c.v, 'POST', `admin/serials/${BRAND}/${MODEL}/SN-REL/release`)
  t.is(rel.status, 200)
  t.deepEqual(jsonOf(rel), { released: true })
  const r = await c.reg(repl, 'SN-REL')
  const s = serialOf(r).serial
  t.is(s.revision, 2)
  t.is(s.deviceKeyId, repl.id)
  t.like((await adminJson<{ binding: object }>(c.v, 'GET', `admin/serials/${BRAND}/${MODEL}/SN-REL`)).binding, { deviceKeyId: repl.id, revision: 2, released: false })
  // the release is used up: the old key is now the clone
  assertError(t, await c.reg(old, 'SN-REL'), 409, 'SV_SERIAL_TAKEN')
  // and the old key is free for another serial
  t.is(serialOf(await c.reg(old, 'SN-REL-NEW')).serial.serial, 'SN-REL-NEW')
  t.deepEqual(
    (await logEntries(c.v, { serial: 'SN-REL' })).map((e) => e.outcome),
    ['issued', 'reissued', 'refused'],
  )
})

test('serial: assigned serials (assign:ACME-{n:6}) never repeat, also across a restart on the same data', async (t) => {
  const policy = { kind: 'assign' as const, template: 'ACME-{n:6}', start: 1 }
  const v1 = await startTestVault(t, { workers: 1, models: [{ name: 'acme-assigned', serialPolicy: policy }] })
  const model = (await v1.vault.services.models.get(BRAND, 'acme-assigned')).modelAssertion
  const keys = await generateDeviceKeys(5)
  const got: string[] = []
  const reg = async (v: TestVault, key: DeviceKey, serial?: string) => serialOf(await registerDevice(v.url, v.apiKey, { key, brandId: BRAND, model: 'acme-assigned', modelAssertion: model, ...(serial ? { serial } : {}) })).serial
  for (const k of keys.slice(0, 3)) got.push((await reg(v1, k)).serial)
  t.deepEqual(got, ['ACME-000001', 'ACME-000002', 'ACME-000003'])
  // the same key asking again (a proposed serial is ignored) gets its serial, not a new number
  t.is((await reg(v1, keys[1]!, 'MINE-1')).serial, 'ACME-000002')
  await v1.close()
  const v2 = await startTestVault(t, { workers: 1, dataDir: v1.dataDir })
  for (const k of keys.slice(3)) got.push((await reg(v2, k)).serial)
  t.is((await reg(v2, keys[0]!)).serial, 'ACME-000001')
  t.deepEqual(got, ['ACME-000001', 'ACME-000002', 'ACME-000003', 'ACME-000004', 'ACME-000005'])
  t.is(new Set(got).size, got.length)
  t.deepEqual(
    (await logEntries(v2, { model: 'acme-assigned', brand: BRAND })).map((e) => [e.outcome, e.serial]),
    got.map((s) => ['issued', s]),
  )
})

test('serial: the same key asking twice at once under the assign policy gets one serial', async (t) => {
  // Regression: the second request drew another number, lost the bind on the device
  // key and answered 409 SV_DEVICE_KEY_TAKEN to the device that already had a serial.
  const c = await setup(t, { models: [{ name: 'acme-assigned', serialPolicy: { kind: 'assign', template: 'ACME-{n:6}', start: 1 } }] })
  const keys = await generateDeviceKeys(3)
  for (const key of keys) {
    const rs = await Promise.all([0, 1, 2].map(() => c.reg(key, undefined, { model: 'acme-assigned' })))
    t.deepEqual(
      rs.map((r) => r.status),
      [200, 200, 200],
      rs.map((r) => r.body.toString().slice(0, 200)).join('\n'),
    )
    t.true(rs.every((r) => r.body.equals(rs[0]!.body)))
  }
  const issued = await logEntries(c.v, { outcome: 'issued' })
  t.is(issued.length, 3)
  t.is(new Set(issued.map((e) => e.serial)).size, 3)
})

// --- service endpoints ----------------------------------------------------------------------

test('version, health and ready answer JSON; ready is 503 with Retry-After once no signing key is enabled', async (t) => {
  const c = await setup(t)
  const version = await httpRequest(endpoint(c.v.url, 'version'))
  t.is(version.status, 200)
  t.is(version.headers['content-type'], 'application/json')
  t.like(jsonOf(version), { api: 'v1' })
  t.regex(jsonOf<{ version: string }>(version).version, /^\d+\.\d+\.\d+/)
  const health = await httpRequest(endpoint(c.v.url, 'health'))
  t.is(health.status, 200)
  t.is(health.headers['content-type'], 'application/json')
  t.deepEqual(jsonOf(health), { status: 'ok' })
  const ready = await httpRequest(endpoint(c.v.url, 'ready'))
  t.is(ready.status, 200)
  t.is(ready.headers['content-type'], 'application/json')
  t.like(jsonOf(ready), { status: 'ready', checks: { store: 'ok', signingKeys: '1 enabled' } })

  const { keys } = await adminJson<{ keys: { keyId: string; purpose: string }[] }>(c.v, 'GET', 'admin/keys')
  t.is(keys.length, 1)
  // the admin API keeps a key that models sign with (SV_KEY_IN_USE); the key store itself can disable it
  assertError(t, await admin(c.v, 'POST', `admin/keys/${keys[0]!.keyId}/disable`, { reason: 'test' }), 409, 'SV_KEY_IN_USE')
  await c.v.vault.keys.setEnabled(keys[0]!.keyId, { enabled: false })
  const notReady = await httpRequest(endpoint(c.v.url, 'ready'))
  t.is(notReady.status, 503)
  t.is(notReady.headers['content-type'], 'application/json')
  t.regex(String(notReady.headers['retry-after']), /^[1-9]\d*$/)
  t.like(jsonOf(notReady), { status: 'not ready', checks: { store: 'ok', signingKeys: 'none enabled' } })
  t.is((await admin(c.v, 'POST', `admin/keys/${keys[0]!.keyId}/enable`)).status, 200)
  t.is((await httpRequest(endpoint(c.v.url, 'ready'))).status, 200)
})

test('an unknown route is 404 SV_NOT_FOUND as JSON', async (t) => {
  const c = await setup(t)
  assertError(t, await httpRequest(endpoint(c.v.url, 'no-such-thing')), 404, 'SV_NOT_FOUND')
  // the root sends a browser to the dashboard
  const root = await httpRequest(new URL('/', c.v.url))
  t.is(root.status, 302)
  t.is(root.headers.location, '/dashboard/')
  // a known device route with another method is 405 with Allow (test/vault-server/http/refusals.test.ts)
  assertError(t, await httpRequest(endpoint(c.v.url, 'request-id'), { method: 'PUT' }), 405, 'SV_METHOD_NOT_ALLOWED')
})

test('metrics: sv_serial_outcomes_total counts each outcome and refusal code', async (t) => {
  const c = await setup(t)
  const a = await c.reg(fixtureDeviceKey('device'), 'SN-M1')
  t.is((await c.reg(fixtureDeviceKey('impostor'), 'SN-M2')).status, 200)
  t.is((await postSerial(c.v.url, c.v.apiKey, a.sent)).status, 200)
  t.is((await c.reg(fixtureDeviceKey('evil'), 'SN-M1')).status, 409)
  t.is((await c.reg(fixtureDeviceKey('evil'), 'bad/serial')).status, 400)
  t.is((await c.reg(fixtureDeviceKey('small/device'), 'SN-M4')).status, 400)
  const m = await httpRequest(endpoint(c.v.url, '../metrics'))
  t.is(m.status, 200)
  t.regex(String(m.headers['content-type']), /^text\/plain/)
  const text = m.body.toString('utf8')
  const v = (labels: Record<string, string>) => metricValue(text, 'sv_serial_outcomes_total', { transport: 'https', ...labels })
  t.is(v({ outcome: 'issued', code: 'none' }), 2)
  t.is(v({ outcome: 'retried', code: 'none' }), 1)
  t.is(v({ outcome: 'refused', code: 'SV_SERIAL_TAKEN' }), 1)
  t.is(v({ outcome: 'refused', code: 'SV_SERIAL_INVALID' }), 1)
  t.is(v({ outcome: 'refused', code: 'SV_KEY_TOO_SMALL' }), 1)
  t.is(v({}), 6)
  t.is(metricValue(text, 'sv_request_ids_issued_total'), 5)
})

test('overload: beyond limits.maxConcurrentSerial the vault answers 503 SV_OVERLOADED with Retry-After, and every device gets its serial on retry', async (t) => {
  const c = await setup(t, { config: { limits: { maxConcurrentSerial: 1, retryAfterSeconds: 2 } } })
  const n = 16
  const keys = await generateDeviceKeys(n)
  const bodies = await Promise.all(keys.map((k, i) => streamFor(c, k, `SN-LOAD-${i}`)))
  const first = await Promise.all(bodies.map((b) => postSerial(c.v.url, c.v.apiKey, b)))
  const overloaded = first.filter((r) => r.status === 503)
  t.true(
    first.every((r) => r.status === 200 || r.status === 503),
    first.map((r) => r.status).join(' '),
  )
  t.true(overloaded.length > 0, 'some requests were refused for load')
  for (const r of overloaded) {
    assertError(t, r, 503, 'SV_OVERLOADED')
    t.is(r.headers['retry-after'], '2')
  }
  // none lost: the refused ones were not half-done; a retry (same stream, same request-id) gets the serial
  const serials = new Map<number, string>()
  for (const [i, r] of first.entries()) if (r.status === 200) serials.set(i, serialOf(r).serial.serial)
  for (let round = 0; round < 10 && serials.size < n; round++) {
    for (const [i, b] of bodies.entries()) {
      if (serials.has(i)) continue
      const r = await postSerial(c.v.url, c.v.apiKey, b)
      if (r.status === 200) serials.set(i, serialOf(r).serial.serial)
      else assertError(t, r, 503, 'SV_OVERLOADED')
    }
  }
  t.is(serials.size, n)
  for (const [i, s] of serials) t.is(s, `SN-LOAD-${i}`)
  const issued = await logEntries(c.v, { outcome: 'issued' })
  t.is(issued.length, n)
  t.is(new Set(issued.map((e) => e.serial)).size, n)
})

test('serial: a 2048-bit key made here registers (the default minimum)', async (t) => {
  const c = await setup(t)
  const key = await generateDeviceKey(2048)
  t.is(serialOf(await c.reg(key, 'SN-2048')).serial.deviceKeyId, key.id)
})

test('model: /v1/model (Canonical serial-vault compatible) answers the account, account-key and model; refusals are 401, 400, 415', async (t) => {
  const c = await setup(t)
  const post = (headers: Record<string, string>, body: string) => httpRequest(endpoint(c.v.url, 'model'), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })
  const ask = JSON.stringify({ 'brand-id': BRAND, model: MODEL })
  const r = await post({ 'api-key': c.v.apiKey }, ask)
  t.is(r.status, 200)
  t.is(r.headers['content-type'], 'application/x.ubuntu.assertion')
  const expected = [await readFile(vectorPath('account.assert')), await readFile(vectorPath('account-key.assert')), Buffer.from(await c.modelOf())]
  t.deepEqual(
    decodeStream(r.body).map((a) => a.encode()),
    expected.map((b) => decodeStream(b)[0]!.encode()),
  )
  assertError(t, await post({}, ask), 401, 'SV_API_KEY_MISSING')
  assertError(t, await post({ 'api-key': 'wrong-api-key-0123456789' }, ask), 401, 'SV_API_KEY_INVALID')
  // an unknown model is not told apart from a key that may not see it
  assertError(t, await post({ 'api-key': c.v.apiKey }, JSON.stringify({ 'brand-id': BRAND, model: 'nope' })), 401, 'SV_API_KEY_INVALID')
  assertError(t, await post({ 'api-key': c.v.apiKey }, JSON.stringify({ brand: BRAND })), 400, 'SV_REQUEST_INVALID', { fields: ['brand-id', 'model'] })
  assertError(t, await post({ 'api-key': c.v.apiKey }, '{"brand-id": '), 400, 'SV_REQUEST_INVALID', { reason: 'json' })
  assertError(t, await post({ 'api-key': c.v.apiKey, 'content-type': 'text/plain' }, ask), 415, 'SV_MEDIA_TYPE_UNSUPPORTED')
})

test('timeout: past limits.requestTimeoutMs the answer is 503 (never a 4xx); snapd-style retries with a fresh request-id all get their serial', async (t) => {
  // Brand and model are set up under the default limits (signing the model
  // must not race a 100 ms deadline on a loaded machine), then the vault is
  // reopened on the same data with the short one.
  const prepared = await startTestVault(undefined, { store: 'level', workers: 1 })
  await prepared.close()
  t.teardown(() => rm(prepared.dataDir, { recursive: true, force: true }))
  const c = await setup(t, { store: 'level', dataDir: prepared.dataDir, config: { limits: { requestTimeoutMs: 100 } } })
  const n = 20
  const keys = await generateDeviceKeys(n)
  const first = await Promise.all(keys.map(async (k, i) => postSerial(c.v.url, c.v.apiKey, await streamFor(c, k, `SN-SLOW-${i}`))))
  for (const r of first) {
    if (r.status === 200) continue
    const b = assertError(t, r, 503, jsonOf<{ code: string }>(r).code)
    t.true(['SV_TIMEOUT', 'SV_OVERLOADED'].includes(b.code), b.code)
  }
  // as snapd does after a status above 500: start over with a new request-id (spec §5.9)
  const got = new Map<number, string>()
  for (const [i, r] of first.entries()) if (r.status === 200) got.set(i, serialOf(r).serial.serial)
  // Bounded by time, not by a count of rounds: on a loaded machine (CI runs
  // the suite's files side by side) a 100 ms deadline can miss for a second
  // or more in a row; 10 quick rounds once left one device without its serial.
  t.timeout(120_000)
  const until = Date.now() + 60_000
  for (let round = 0; got.size < n && Date.now() < until; round++) {
    if (round > 0) await new Promise((r) => setTimeout(r, 100))
    for (const [i, k] of keys.entries()) {
      if (got.has(i)) continue
      const r = await postSerial(c.v.url, c.v.apiKey, await streamFor(c, k, `SN-SLOW-${i}`))
      if (r.status === 200) got.set(i, serialOf(r).serial.serial)
      else t.is(r.status, 503, r.body.toString())
    }
  }
  t.is(got.size, n)
  for (const [i, s] of got) t.is(s, `SN-SLOW-${i}`)
  const issued = await logEntries(c.v, { outcome: 'issued' })
  t.is(issued.length, n)
  t.is(new Set(issued.map((e) => e.serial)).size, n)
})

test('races: two keys asking for one serial at once: one gets it, the other 409 SV_SERIAL_TAKEN; one key asking twice at once gets one serial', async (t) => {
  const c = await setup(t)
  const keys = await generateDeviceKeys(8)
  for (let i = 0; i < 4; i++) {
    const pair = [keys[2 * i]!, keys[2 * i + 1]!]
    const rs = await Promise.all(pair.map((k) => c.reg(k, `SN-RACE-${i}`)))
    t.deepEqual(
      rs.map((r) => r.status).sort(),
      [200, 409],
      rs.map((r) => r.body.toString().slice(0, 200)).join(' / '),
    )
    const won = rs.findIndex((r) => r.status === 200)
    assertError(t, rs[1 - won]!, 409, 'SV_SERIAL_TAKEN', { serial: `SN-RACE-${i}` })
    t.is(serialOf(rs[won]!).serial.deviceKeyId, pair[won]!.id)
  }
  t.deepEqual(
    (await logEntries(c.v)).map((e) => e.outcome).sort(),
    ['issued', 'issued', 'issued', 'issued', 'refused', 'refused', 'refused', 'refused'],
  )
  const same = await Promise.all([0, 1, 2].map(() => c.reg(fixtureDeviceKey('device'), 'SN-SAME')))
  t.deepEqual(
    same.map((r) => r.status),
    [200, 200, 200],
  )
  t.true(same.every((r) => r.body.equals(same[0]!.body)))
  t.is((await logEntries(c.v, { serial: 'SN-SAME' })).length, 1)
})

test('races: under the reissue policy two keys asking for one serial at once both get it, as revisions 1 and 2', async (t) => {
  // Regression: the loser of the bind race answered 409 SV_SERIAL_TAKEN, which the
  // reissue policy never does; a moment later it would have been revision 2.
  const c = await setup(t, { models: [{ name: 'acme-reissue', duplicatePolicy: 'reissue' }] })
  const keys = await generateDeviceKeys(8)
  for (let i = 0; i < 4; i++) {
    const pair = [keys[2 * i]!, keys[2 * i + 1]!]
    const rs = await Promise.all(pair.map((k) => c.reg(k, `SN-RR-${i}`, { model: 'acme-reissue' })))
    t.deepEqual(
      rs.map((r) => r.status),
      [200, 200],
      rs.map((r) => r.body.toString().slice(0, 200)).join(' / '),
    )
    const serials = rs.map((r) => serialOf(r).serial)
    t.deepEqual(serials.map((s) => s.revision).sort(), [1, 2])
    const latest = serials.find((s) => s.revision === 2)!
    t.like((await adminJson<{ binding: object }>(c.v, 'GET', `admin/serials/${BRAND}/acme-reissue/SN-RR-${i}`)).binding, { revision: 2, deviceKeyId: latest.deviceKeyId })
    t.deepEqual(
      (await logEntries(c.v, { serial: `SN-RR-${i}` })).map((e) => [e.outcome, e.revision]),
      [
        ['issued', 1],
        ['reissued', 2],
      ],
    )
  }
})
