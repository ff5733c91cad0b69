import test from 'ava'
import type { ExecutionContext } from 'ava'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodeStream, encodeStream, type Assertion } from '@sv/shared'
import { AgentError } from '../../../device-agent/src/errors.js'
import { decodeAnswer, verifySerialAnswer } from '../../../device-agent/src/provision/verify-serial.js'
import { keyId } from '../../helpers/keys.js'
import { VECTORS } from '../helpers/fakes.js'

const read = (f: string): Assertion[] => decodeStream(readFileSync(join(VECTORS, f)))
const anchors = read('trusted.assert')
const brandChain = [...read('account.assert'), ...read('account-key.assert')]
const serial = read('serial.assert')
const me = { brandId: 'acme-brand', model: 'acme-pi-gateway', deviceKeyId: keyId('device') }

async function failure(t: ExecutionContext, p: Promise<unknown>): Promise<AgentError> {
  const err = await t.throwsAsync(p, { instanceOf: AgentError })
  t.is(err?.code, 'SV_AGENT_SERIAL_UNVERIFIED')
  return err as AgentError
}

test('verify serial: a good serial with the shipped chain; the chain written out is account, account-key (+ model)', async (t) => {
  const v = await verifySerialAnswer(serial, me, { anchors, chain: brandChain })
  t.is(v.serial.serial, 'A1B2C3D4')
  t.deepEqual(
    v.chain.map((a) => a.typeName),
    ['account', 'account-key'],
  )
  const withModel = await verifySerialAnswer(serial, me, { anchors, chain: [...brandChain, ...read('model.assert')] })
  t.deepEqual(
    withModel.chain.map((a) => a.typeName),
    ['account', 'account-key', 'model'],
  )
})

test('verify serial: the chain may come in the answer stream (any order)', async (t) => {
  const answer = decodeAnswer(readFileSync(join(VECTORS, 'stream.assert')))
  const v = await verifySerialAnswer(answer.reverse(), me, { anchors, chain: [] })
  t.is(v.serial.serial, 'A1B2C3D4')
})

test('verify serial: identity must match: brand, model, device key', async (t) => {
  for (const [field, expect] of [
    ['brand-id', { ...me, brandId: 'other-brand' }],
    ['model', { ...me, model: 'other-model' }],
    ['device-key', { ...me, deviceKeyId: keyId('impostor') }],
  ] as const) {
    const err = await failure(t, verifySerialAnswer(serial, expect, { anchors, chain: brandChain }))
    t.is(err.details?.reason, 'identity-mismatch')
    t.is(err.details?.field, field)
  }
})

test('verify serial: exactly one serial', async (t) => {
  t.is((await failure(t, verifySerialAnswer(brandChain, me, { anchors, chain: [] }))).details?.reason, 'no-serial')
  const two = decodeStream(encodeStream([...serial, ...read('edge-serial-sha256.assert')]))
  t.is((await failure(t, verifySerialAnswer(two, me, { anchors, chain: brandChain }))).details?.reason, 'several-serials')
})

const untrusted: [string, string, string[]][] = [
  ['signed by an unregistered key', 'neg-serial-wrong-key.assert', ['SV_SIGNING_KEY_UNKNOWN']],
  ['tampered', 'neg-serial-tampered.assert', ['SV_SIGNATURE_INVALID']],
  ['signed by the right key id but another key', 'neg-serial-forged-keyid.assert', ['SV_SIGNATURE_INVALID']],
  ['dated before the key', 'neg-serial-before-key-since.assert', ['SV_SIGNING_KEY_EXPIRED']],
]
for (const [what, file, codes] of untrusted) {
  test(`verify serial: refuses a serial ${what}`, async (t) => {
    const err = await failure(t, verifySerialAnswer(read(file), me, { anchors, chain: brandChain }))
    t.is(err.details?.reason, 'untrusted')
    t.true(codes.includes(String(err.details?.code)), String(err.details?.code))
  })
}

test('verify serial: without the brand chain anywhere the serial does not verify', async (t) => {
  const err = await failure(t, verifySerialAnswer(serial, me, { anchors, chain: [] }))
  t.is(err.details?.code, 'SV_SIGNING_KEY_UNKNOWN')
})

test('verify serial: a chain not signed by the anchors does not help', async (t) => {
  const err = await failure(t, verifySerialAnswer(serial, me, { anchors: read('small/trusted.assert'), chain: brandChain }))
  t.is(err.details?.reason, 'untrusted')
})

test('verify serial: anchors that are not account/account-key are a configuration error', async (t) => {
  const err = await t.throwsAsync(verifySerialAnswer(serial, me, { anchors: read('model.assert'), chain: brandChain }), { instanceOf: AgentError })
  t.is(err?.code, 'SV_AGENT_CONFIG_INVALID')
})
