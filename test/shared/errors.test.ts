/**
 * The error table is an interface: codes never change once released, every
 * code has a status, an MQTT reason and a summary, and docs/errors.md lists
 * exactly the table (fastify's trick: a rename fails here, loudly).
 */
import test from 'ava'
import { readFile } from 'node:fs/promises'
import { ERRORS, ERROR_EXIT_CODES, VaultError, exitCodeFor, toErrorBody, isErrorCode } from '@sv/shared'

const ROOT = new URL('../../', import.meta.url)

/** Released codes. Add new ones at the end; never remove or rename one. */
const RELEASED = [
  'SV_REQUEST_INVALID', 'SV_BODY_TOO_LARGE', 'SV_MEDIA_TYPE_UNSUPPORTED', 'SV_NOT_FOUND', 'SV_METHOD_NOT_ALLOWED',
  'SV_ASSERTION_INVALID', 'SV_ASSERTION_TOO_LARGE', 'SV_SIGNATURE_INVALID', 'SV_SIGNATURE_UNSUPPORTED', 'SV_KEY_INVALID',
  'SV_KEY_TOO_SMALL', 'SV_SIGNING_KEY_UNKNOWN', 'SV_SIGNING_KEY_EXPIRED', 'SV_ASSERTION_UNTRUSTED', 'SV_ASSERTION_REVISION',
  'SV_API_KEY_MISSING', 'SV_API_KEY_INVALID', 'SV_REQUEST_ID_UNKNOWN', 'SV_REQUEST_ID_EXPIRED', 'SV_REQUEST_ID_USED',
  'SV_SERIAL_REQUEST_INVALID', 'SV_SERIAL_REQUEST_SIGNATURE', 'SV_BRAND_UNKNOWN', 'SV_MODEL_UNKNOWN', 'SV_MODEL_MISMATCH',
  'SV_SERIAL_MISSING', 'SV_SERIAL_INVALID', 'SV_SERIAL_TAKEN', 'SV_DEVICE_KEY_TAKEN', 'SV_SERIAL_NOT_FOUND', 'SV_RATE_LIMITED',
  'SV_AUTH_REQUIRED', 'SV_AUTH_INVALID', 'SV_FORBIDDEN', 'SV_BRAND_EXISTS', 'SV_MODEL_EXISTS', 'SV_KEY_NOT_FOUND', 'SV_KEY_EXISTS',
  'SV_KEY_BRAND_MISMATCH', 'SV_KEY_IMPORT_MISMATCH', 'SV_MODEL_INVALID', 'SV_SIGNING_KEY_UNAVAILABLE', 'SV_OVERLOADED',
  'SV_STORE_UNAVAILABLE', 'SV_STORE_NOT_OPEN', 'SV_TIMEOUT', 'SV_SHUTTING_DOWN', 'SV_INTERNAL', 'SV_CONFIG_INVALID', 'SV_MASTER_KEY_INVALID',
]

test('errors: every released code still exists with the same status', (t) => {
  for (const code of RELEASED) t.true(isErrorCode(code), `${code} was removed or renamed`)
  t.deepEqual(Object.keys(ERRORS).slice(0, RELEASED.length), RELEASED, 'codes are only ever appended')
})

/** Not refusals: "ask again later with the same request" (snapd's 202 poll), MQTT reason 0x00 (success). */
const PENDING = ['SV_PIVOT_PENDING']

test('errors: every code is SV_UPPER_SNAKE with a status, an MQTT reason and a summary', (t) => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    t.regex(code, /^SV_[A-Z0-9]+(?:_[A-Z0-9]+)*$/)
    if (PENDING.includes(code)) {
      t.is(spec.status, 202, code)
      t.is(spec.mqtt, 0x00, code)
    } else {
      t.true(spec.status >= 400 && spec.status <= 599, code)
      t.true(spec.mqtt >= 0x80 && spec.mqtt <= 0xa2, `${code} MQTT reason`)
    }
    t.true(spec.summary.length > 10, `${code} summary`)
  }
})

test('errors: nothing temporary or on our side is a 4xx', (t) => {
  for (const code of ['SV_SIGNING_KEY_UNAVAILABLE', 'SV_OVERLOADED', 'SV_STORE_UNAVAILABLE', 'SV_STORE_NOT_OPEN', 'SV_TIMEOUT', 'SV_SHUTTING_DOWN'] as const) {
    t.is(ERRORS[code].status, 503, code)
  }
  t.is(ERRORS.SV_INTERNAL.status, 500)
})

test('errors: server faults never show their message or details to the client', (t) => {
  const inner = new VaultError('SV_STORE_UNAVAILABLE', 'connect ECONNREFUSED postgres://admin:s3cret@db/vault', { details: { url: 'postgres://admin:s3cret@db' } })
  const body = toErrorBody(inner, 'req-1')
  t.is(body.code, 'SV_STORE_UNAVAILABLE')
  t.false(JSON.stringify(body).includes('s3cret'))
  t.is(body.requestId, 'req-1')
  const plain = toErrorBody(new Error('TypeError: x is undefined at /srv/secret/path.js'))
  t.deepEqual(plain, { code: 'SV_INTERNAL', message: 'internal error' })
  const client = toErrorBody(new VaultError('SV_SERIAL_TAKEN', 'taken', { details: { serial: 'A1' } }))
  t.deepEqual(client, { code: 'SV_SERIAL_TAKEN', message: 'taken', details: { serial: 'A1' } })
})

test('errors: docs/errors.md lists exactly the table', async (t) => {
  const doc = await readFile(new URL('docs/errors.md', ROOT), 'utf8')
  const rows = [...doc.matchAll(/^\| `(SV_[A-Z0-9_]+)` \| (\d{3}) \| 0x([0-9a-f]{2}) \| ([123]) \| (.+) \|$/gm)].map((m) => [m[1], Number(m[2]), parseInt(m[3]!, 16), Number(m[4]), m[5]])
  const table = Object.entries(ERRORS).map(([code, e]) => [code, e.status, e.mqtt, ERROR_EXIT_CODES[code as keyof typeof ERRORS], e.summary])
  t.deepEqual(rows, table, 'regenerate with: vault-server errors --markdown')
})

// Issue 13: exit codes come from the table, not from the status. Start-up
// conditions a retry cannot cure are 2 although they are 500s on the wire;
// only what is temporary is 3.
test('exit codes: every code has an exit class; configuration and data problems are 2, only temporary conditions 3', (t) => {
  t.deepEqual(Object.keys(ERROR_EXIT_CODES).sort(), Object.keys(ERRORS).sort())
  for (const code of ['SV_CONFIG_INVALID', 'SV_MASTER_KEY_INVALID', 'SV_STORE_CORRUPT', 'SV_STORE_LOCKED', 'SV_ADDRESS_UNAVAILABLE', 'SV_REQUEST_INVALID', 'SV_MODEL_INVALID'] as const) {
    t.is(ERROR_EXIT_CODES[code], 2, code)
  }
  for (const code of ['SV_SERIAL_TAKEN', 'SV_FORBIDDEN', 'SV_UNAUTHENTICATED', 'SV_SIGNATURE_INVALID', 'SV_ASSERTION_UNTRUSTED', 'SV_INTERNAL'] as const) {
    t.is(ERROR_EXIT_CODES[code], 1, code)
  }
  const later = Object.entries(ERROR_EXIT_CODES).filter(([, x]) => x === 3).map(([c]) => c).sort()
  t.deepEqual(later, ['SV_OIDC_PROVIDER_UNAVAILABLE', 'SV_OVERLOADED', 'SV_PIVOT_PENDING', 'SV_RATE_LIMITED', 'SV_SHUTTING_DOWN', 'SV_SIGNING_KEY_UNAVAILABLE', 'SV_STORE_NOT_OPEN', 'SV_STORE_UNAVAILABLE', 'SV_TIMEOUT'])
  for (const code of later) t.true(ERRORS[code as keyof typeof ERRORS].status > 500 || [202, 429].includes(ERRORS[code as keyof typeof ERRORS].status), code)
})

test('exitCodeFor: a known code wins over the status; an unknown one falls back on the status', (t) => {
  t.is(exitCodeFor('SV_CONFIG_INVALID', 500), 2)
  t.is(exitCodeFor('SV_STORE_UNAVAILABLE', 503), 3)
  t.is(exitCodeFor('SV_SIGNATURE_INVALID', 400), 1)
  t.is(exitCodeFor(undefined, 502), 3)
  t.is(exitCodeFor('not-ours', 429), 3)
  t.is(exitCodeFor(undefined, 413), 2)
  t.is(exitCodeFor(undefined, 404), 1)
  t.is(exitCodeFor(undefined, 500), 1)
  t.is(exitCodeFor(undefined), 1)
  t.is(exitCodeFor('toString'), 1, 'no prototype keys')
})
