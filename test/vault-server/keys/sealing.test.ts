import test from 'ava'
import { randomBytes } from 'node:crypto'
import type { SealedKey } from '../../../vault-server/src/store/store.js'
import { masterKeyFromBytes } from '../../../vault-server/src/keys/master-key.js'
import { SEAL_ALG, seal, unseal } from '../../../vault-server/src/keys/sealing.js'
import { errorText } from './key-fixtures.js'

const master = masterKeyFromBytes(randomBytes(32))
const other = masterKeyFromBytes(randomBytes(32))
const plaintext = randomBytes(2374) // about the size of an RSA-4096 PKCS#8 key
const CONTEXT = 'signing-key:Ul-MecCmlXNYRn04Js1MqondOv1BtIcL8JnIxoefyjMptG0QRUY8mj-iIdWkOu45'

test('seal/unseal: round trip, envelope shape', (t) => {
  const sealed = seal(master, plaintext, CONTEXT)
  t.is(sealed.alg, SEAL_ALG)
  t.is(sealed.alg, 'sv1:A256GCM')
  t.is(sealed.kid, master.kid)
  t.is(Buffer.from(sealed.iv, 'base64').length, 12)
  t.is(Buffer.from(sealed.tag, 'base64').length, 16)
  t.is(Buffer.from(sealed.data, 'base64').length, plaintext.length)
  t.deepEqual(Object.keys(sealed).sort(), ['alg', 'data', 'iv', 'kid', 'tag'])
  t.true(unseal(master, sealed, CONTEXT).equals(plaintext))
  t.true(unseal(master, JSON.parse(JSON.stringify(sealed)) as SealedKey, CONTEXT).equals(plaintext), 'survives JSON')
})

test('seal: a fresh IV each time, so equal plaintexts seal differently', (t) => {
  const a = seal(master, plaintext, CONTEXT)
  const b = seal(master, plaintext, CONTEXT)
  t.not(a.iv, b.iv)
  t.not(a.data, b.data)
})

test('seal/unseal: empty plaintext', (t) => {
  t.is(unseal(master, seal(master, new Uint8Array(0), CONTEXT), CONTEXT).length, 0)
})

function flip(b64: string, byte = 0): string {
  const buf = Buffer.from(b64, 'base64')
  buf[byte] = buf[byte]! ^ 0x01
  return buf.toString('base64')
}

const failures: [string, (s: SealedKey) => { sealed: SealedKey; key?: typeof master; context?: string }, string][] = [
  ['wrong master key', (s) => ({ sealed: s, key: other }), 'kid-mismatch'],
  ['wrong master key with the kid edited to match it', (s) => ({ sealed: { ...s, kid: other.kid }, key: other }), 'authentication'],
  ['kid edited', (s) => ({ sealed: { ...s, kid: other.kid } }), 'kid-mismatch'],
  ['tampered iv', (s) => ({ sealed: { ...s, iv: flip(s.iv) } }), 'authentication'],
  ['tampered tag', (s) => ({ sealed: { ...s, tag: flip(s.tag, 15) } }), 'authentication'],
  ['tampered data (first byte)', (s) => ({ sealed: { ...s, data: flip(s.data) } }), 'authentication'],
  ['tampered data (last byte)', (s) => ({ sealed: { ...s, data: flip(s.data, plaintext.length - 1) } }), 'authentication'],
  ['truncated data', (s) => ({ sealed: { ...s, data: Buffer.from(s.data, 'base64').subarray(0, 100).toString('base64') } }), 'authentication'],
  ['swapped AAD (envelope of another record)', (s) => ({ sealed: s, context: 'signing-key:another-key-id' }), 'authentication'],
  ['truncated tag (12 bytes)', (s) => ({ sealed: { ...s, tag: Buffer.from(s.tag, 'base64').subarray(0, 12).toString('base64') } }), 'malformed'],
  ['short iv', (s) => ({ sealed: { ...s, iv: Buffer.from(s.iv, 'base64').subarray(0, 8).toString('base64') } }), 'malformed'],
  ['data not base64', (s) => ({ sealed: { ...s, data: `${s.data.slice(0, -4)}!!!!` } }), 'malformed'],
  ['unknown alg', (s) => ({ sealed: { ...s, alg: 'sv2:XCHACHA' } }), 'unsupported'],
  ['missing envelope', () => ({ sealed: undefined as unknown as SealedKey }), 'malformed'],
]

for (const [name, mutate, reason] of failures) {
  test(`unseal: ${name} -> SV_MASTER_KEY_INVALID (${reason})`, (t) => {
    const sealed = seal(master, plaintext, CONTEXT)
    const m = mutate(sealed)
    const err = t.throws(() => unseal(m.key ?? master, m.sealed, m.context ?? CONTEXT), { code: 'SV_MASTER_KEY_INVALID' })
    t.like((err as { details?: unknown }).details, { reason })
    const text = errorText(err)
    t.false(text.includes(plaintext.toString('hex').slice(0, 32)), 'no plaintext in the error')
    t.false(text.includes(plaintext.toString('base64').slice(0, 32)), 'no plaintext in the error')
  })
}
