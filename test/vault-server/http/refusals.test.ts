/**
 * Refusals that happen before the signing service (wrong media type, body too
 * large, overload) are in the signing log like every other refusal; wrong
 * methods get 405 with Allow; a malformed bearer token is SV_UNAUTHENTICATED.
 */
import test from 'ava'
import { request } from 'node:http'
import { startTestVault } from '../../helpers/vault.js'
import { httpRequest, endpoint, postSerial } from '../../helpers/device.js'
import { assertError, admin, logEntries } from './api.js'

test('refusals: 415 and 413 on /v1/serial are logged as refusals with their code', async (t) => {
  const v = await startTestVault(t)
  const wrongType = await httpRequest(endpoint(v.url, 'serial'), { method: 'POST', headers: { 'api-key': v.apiKey, 'content-type': 'text/plain' }, body: 'x' })
  assertError(t, wrongType, 415, 'SV_MEDIA_TYPE_UNSUPPORTED')
  const big = await postSerial(v.url, v.apiKey, Buffer.alloc(300 * 1024, 0x61))
  assertError(t, big, 413, 'SV_BODY_TOO_LARGE')
  const refused = await logEntries(v, { outcome: 'refused' })
  t.deepEqual(refused.map((e) => e.code).sort(), ['SV_BODY_TOO_LARGE', 'SV_MEDIA_TYPE_UNSUPPORTED'])
  t.true(refused.every((e) => e.transport === 'https' && typeof e.clientAddress === 'string'))
})

test('refusals: overload (503 SV_OVERLOADED) is logged, with Retry-After', async (t) => {
  const v = await startTestVault(t, { config: { limits: { maxConcurrentSerial: 1, serialBodyBytes: 262144, adminBodyBytes: 1048576, requestTimeoutMs: 10000, retryAfterSeconds: 7 } } })
  // a body that has not finished arriving keeps the one slot busy
  const slow = request(endpoint(v.url, 'serial'), { method: 'POST', headers: { 'api-key': v.apiKey, 'content-type': 'application/x.ubuntu.assertion', 'transfer-encoding': 'chunked' } })
  slow.on('error', () => undefined)
  const answered = new Promise<number>((resolve) => slow.on('response', (res) => (res.resume(), resolve(res.statusCode ?? 0))))
  slow.write('type: serial-request\n')
  await new Promise((r) => setTimeout(r, 300))
  const busy = await postSerial(v.url, v.apiKey, Buffer.from('x'))
  assertError(t, busy, 503, 'SV_OVERLOADED')
  t.is(busy.headers['retry-after'], '7')
  slow.end('\n')
  t.is(await answered, 400, 'the slow request is answered when its body ends')
  const refused = await logEntries(v, { outcome: 'refused' })
  t.true(refused.some((e) => e.code === 'SV_OVERLOADED'))
})

test('refusals: wrong methods on device routes are 405 with Allow', async (t) => {
  const v = await startTestVault(t)
  const r = await httpRequest(endpoint(v.url, 'serial'), { method: 'GET' })
  assertError(t, r, 405, 'SV_METHOD_NOT_ALLOWED')
  t.is(r.headers.allow, 'POST')
  const h = await httpRequest(endpoint(v.url, 'health'), { method: 'POST' })
  assertError(t, h, 405, 'SV_METHOD_NOT_ALLOWED')
  t.is(h.headers.allow, 'GET')
  assertError(t, await httpRequest(endpoint(v.url, 'nope'), { method: 'GET' }), 404, 'SV_NOT_FOUND')
})

test('refusals: a malformed or missing bearer token is 401 SV_UNAUTHENTICATED with its reason', async (t) => {
  const v = await startTestVault(t)
  assertError(t, await admin(v, 'GET', 'admin/brands', undefined, { authorization: 'Bearer x' }), 401, 'SV_UNAUTHENTICATED', { reason: 'malformed' })
  assertError(t, await admin(v, 'GET', 'admin/brands', undefined, { authorization: 'Basic dXNlcjpwYXNz' }), 401, 'SV_UNAUTHENTICATED', { reason: 'malformed' })
  const none = await httpRequest(endpoint(v.url, 'admin/brands'), { method: 'GET' })
  assertError(t, none, 401, 'SV_UNAUTHENTICATED', { reason: 'missing' })
})
