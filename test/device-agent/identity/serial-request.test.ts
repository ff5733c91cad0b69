import test from 'ava'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { ModelAssertion, SerialRequestAssertion, TrustDb, decodeStream, utf8Decode } from '@sv/shared'
import { buildSerialRequest, formatRequestBody } from '../../../device-agent/src/identity/serial-request.js'
import { readRequestBody } from '../../../vault-server/src/services/registration/request-body.js'
import { runSnapdCheck } from '../../helpers/snapd-check.js'
import { SMALL, smallDeviceKey, smallModel } from '../helpers/fakes.js'

test('request body: YAML with the serial, hardware, extra and telemetry; values cannot change its shape', (t) => {
  const text = formatRequestBody({
    serial: 'SN-1',
    hardware: { architecture: 'arm64', board: 'Pi 4\nserial: evil', 'Bad Key': 'x' },
    extra: { line: 'A"B' },
    telemetry: { 'key-generation-ms': 1234.5678, retries: 2, bad: Number.NaN },
  })
  const doc = parseYaml(text) as Record<string, any>
  t.deepEqual(doc, {
    serial: 'SN-1',
    hardware: { architecture: 'arm64', board: 'Pi 4\nserial: evil' },
    extra: { line: 'A"B' },
    telemetry: { 'key-generation-ms': 1234.568, retries: 2 },
  })
  // what the vault reads from it
  const read = readRequestBody(Buffer.from(text))
  t.is(read.serial, 'SN-1')
  t.deepEqual(read.timings, { 'key-generation-ms': 1234.568, retries: 2 })
  t.is(formatRequestBody({}), '')
  t.is(formatRequestBody({ hardware: {} }), '')
})

test('serial-request: self-signed with the device key, snapd accepts it, the model follows in the stream', async (t) => {
  const key = smallDeviceKey()
  const body = formatRequestBody({ serial: 'SN-2', telemetry: { retries: 0 } })
  const built = await buildSerialRequest({ brandId: 'acme-brand', model: 'acme-pi-gateway', requestId: 'REQ-1', serial: 'SN-2', body, key, modelAssertion: smallModel() })
  const [req, model] = decodeStream(built.stream)
  t.true(req instanceof SerialRequestAssertion)
  t.true(model instanceof ModelAssertion)
  const r = req as SerialRequestAssertion
  t.is(r.brandId, 'acme-brand')
  t.is(r.model, 'acme-pi-gateway')
  t.is(r.headerString('request-id'), 'REQ-1')
  t.is(r.headerString('serial'), 'SN-2')
  t.is(r.signKeyId, key.publicKey.id)
  t.is(utf8Decode(r.body), body)
  await new TrustDb({ trusted: [] }).check(r)

  const dir = await mkdtemp(join(tmpdir(), 'sv-serial-request-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'req.assert')
  await writeFile(file, built.request.encode())
  const v = await runSnapdCheck(['verify', '--trusted', join(SMALL, 'trusted.assert'), file])
  t.is(v.code, 0, v.stdout + v.stderr)
  t.regex(v.stdout, /#1 OK\s+serial-request/)
})

test('serial-request: without a proposed serial or body there is no serial header and no body', async (t) => {
  const built = await buildSerialRequest({ brandId: 'acme-brand', model: 'acme-pi-gateway', requestId: 'REQ-2', serial: '', body: '', key: smallDeviceKey() })
  const r = decodeStream(built.stream) as [SerialRequestAssertion]
  t.is(r.length, 1)
  t.is(r[0].header('serial'), undefined)
  t.is(r[0].body.length, 0)
})
