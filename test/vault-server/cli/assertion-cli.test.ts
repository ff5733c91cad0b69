/**
 * The `vault-server assertion` commands as scripts use them: a real process,
 * its output lines and exit codes. Every snapd vector gets the manifest's
 * verdict from `vault-server assertion verify`.
 */
import test from 'ava'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeStream, SerialRequestAssertion, utf8Decode } from '@sv/shared'
import { runVaultCli, type CliRun as Run } from '../../helpers/cli.js'

const ROOT = new URL('../../../', import.meta.url).pathname
const VECTORS = join(ROOT, 'fixtures/snapd-vectors')

const cli = (args: string[], timeoutMs = 30_000): Promise<Run> => runVaultCli(args, { timeoutMs })

interface Vector {
  file: string
  trusted: string[]
  chain: string[]
  valid: boolean
}

const manifest = JSON.parse(await readFile(join(VECTORS, 'manifest.json'), 'utf8')) as { vectors: Vector[] }

for (const v of manifest.vectors) {
  test(`verify: ${v.file} is ${v.valid ? 'valid' : 'invalid'} as for snapd`, async (t) => {
    const args = ['assertion', 'verify', '--json']
    for (const f of v.trusted) args.push('--trusted', join(VECTORS, f))
    for (const f of v.chain) args.push('--chain', join(VECTORS, f))
    args.push(join(VECTORS, v.file))
    const r = await cli(args)
    t.is(r.code, v.valid ? 0 : 1, r.stderr)
    const report = JSON.parse(r.stdout) as { ok: boolean; results: { ok: boolean; code?: string }[] }
    t.is(report.ok, v.valid)
    if (!v.valid) t.true(report.results.some((x) => !x.ok && typeof x.code === 'string' && x.code.startsWith('SV_')))
  })
}

test('verify: text output has one line per assertion and a summary; FILE may follow --chain files', async (t) => {
  const r = await cli([
    'assertion',
    'verify',
    '--trusted',
    join(VECTORS, 'trusted.assert'),
    '--chain',
    join(VECTORS, 'account.assert'),
    join(VECTORS, 'account-key.assert'),
    join(VECTORS, 'brand-chain.assert'),
  ])
  t.is(r.code, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  t.is(lines.length, 5)
  t.regex(lines[0]!, /^#1 OK {3}account account-id=acme-brand sign-key=/)
  t.regex(lines[3]!, /^#4 OK {3}model brand-id=acme-brand model=acme-pi-gateway-18 /)
  t.is(lines[4], 'verify: 4 OK, 0 FAILED')
})

test('verify: a broken chain is a usage error (exit 2) naming the assertion', async (t) => {
  const r = await cli(['assertion', 'verify', '--trusted', join(VECTORS, 'trusted.assert'), '--chain', join(VECTORS, 'account-key.assert'), join(VECTORS, 'serial.assert')])
  t.is(r.code, 2)
  t.regex(r.stderr, /cannot add chain assertions/)
  t.regex(r.stderr, /SV_ASSERTION_UNTRUSTED/)
})

test('verify: missing --trusted and unreadable files exit 2', async (t) => {
  t.is((await cli(['assertion', 'verify', join(VECTORS, 'serial.assert')])).code, 2)
  const r = await cli(['assertion', 'verify', '--trusted', join(VECTORS, 'nope.assert'), join(VECTORS, 'serial.assert')])
  t.is(r.code, 2)
  t.regex(r.stderr, /ENOENT/)
})

test('verify --at: key validity is evaluated at the given time', async (t) => {
  const base = ['assertion', 'verify', '--trusted', join(VECTORS, 'trusted.assert')]
  for (const f of ['account.assert', 'account-key.assert', 'model.assert']) base.push('--chain', join(VECTORS, f))
  const file = join(VECTORS, 'serial.assert')
  t.is((await cli([...base, '--at', '2025-06-01T00:00:00Z', file])).code, 0)
  // every key of the vectors starts on 2024-01-01: in 2023 even the chain is refused
  const early = await cli([...base, '--at', '2023-06-01T00:00:00Z', file])
  t.is(early.code, 2)
  t.regex(early.stderr, /SV_SIGNING_KEY_EXPIRED/)
  t.is((await cli([...base, '--at', 'yesterday', file])).code, 2)
})

test('sign: signs a serial-request that verifies, with headers from YAML and name=value', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sv-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'h.yaml'), 'brand-id: acme-brand\nmodel: acme-pi-gateway\nserial: 42\n')
  await writeFile(join(dir, 'body.txt'), 'serial: 42\nmac: 00:11:22:33:44:55\n')
  const r = await cli([
    'assertion',
    'sign',
    '--key',
    join(VECTORS, 'keys/device.key.pem'),
    '--type',
    'serial-request',
    '--headers',
    join(dir, 'h.yaml'),
    '--body-file',
    join(dir, 'body.txt'),
    '--device-key-of',
    join(VECTORS, 'keys/device.pub.pem'),
    'request-id=REQ-1',
  ])
  t.is(r.code, 0, r.stderr)
  const [a] = decodeStream(r.stdout)
  t.true(a instanceof SerialRequestAssertion)
  const sr = a as SerialRequestAssertion
  t.is(sr.serial, '42', 'YAML numbers become strings')
  t.is(sr.requestId, 'REQ-1')
  t.is(utf8Decode(sr.body), 'serial: 42\nmac: 00:11:22:33:44:55\n')
  await writeFile(join(dir, 'sr.assert'), r.stdout)
  const v = await cli(['assertion', 'verify', '--trusted', join(VECTORS, 'trusted.assert'), join(dir, 'sr.assert')])
  t.is(v.code, 0, v.stdout + v.stderr)
})

test('sign: --sig-time makes output reproducible; a model without gadget is refused before signing', async (t) => {
  const args = [
    'assertion',
    'sign',
    '--key',
    join(VECTORS, 'keys/brand.key.pem'),
    '--type',
    'model',
    '--authority',
    'acme-brand',
    '--sig-time',
    '2024-01-02T00:00:00Z',
    'series=16',
    'brand-id=acme-brand',
    'model=m1',
    'architecture=amd64',
    'gadget=pc',
    'kernel=pc-kernel',
    'timestamp=2024-01-02T00:00:00Z',
  ]
  const [a, b] = await Promise.all([cli(args), cli(args)])
  t.is(a.code, 0, a.stderr)
  t.is(a.stdout, b.stdout)
  const bad = await cli(args.filter((x) => x !== 'gadget=pc'))
  t.is(bad.code, 2)
  t.regex(bad.stderr, /"gadget" header is mandatory.*SV_ASSERTION_INVALID/)
})

test('key-id: PKCS#1, PKCS#8 and SPKI of one key give the manifest id', async (t) => {
  const ids = await Promise.all(['brand.key.pem', 'brand.pkcs8.pem', 'brand.pub.pem'].map((f) => cli(['assertion', 'key-id', '--key', join(VECTORS, 'keys', f)])))
  for (const r of ids) t.is(r.stdout.trim(), 'Ul-MecCmlXNYRn04Js1MqondOv1BtIcL8JnIxoefyjMptG0QRUY8mj-iIdWkOu45')
  const bad = await cli(['assertion', 'key-id', '--key', join(VECTORS, 'manifest.json')])
  t.is(bad.code, 2)
  t.regex(bad.stderr, /SV_KEY_INVALID/)
})

test('show: readable summary with signer, digest and device key; undecodable input exits 1', async (t) => {
  const r = await cli(['assertion', 'show', join(VECTORS, 'stream.assert')])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /#4 serial brand-id=acme-brand model=acme-pi-gateway serial=A1B2C3D4/)
  t.regex(r.stdout, /signature: {2}RSA 4096-bit, SHA-512, created /)
  t.regex(r.stdout, /device key: N58oUnA_m6goI0PklowBuIaCmHanPjMpvezHpMq6ibW1v9-U0cEjhevW4acyHvvz \(RSA 4096\)/)
  const bad = await cli(['assertion', 'show', join(VECTORS, 'neg-serial-bad-body-length.assert')])
  t.is(bad.code, 1)
  t.regex(bad.stdout, /undecodable: missing content\/signature separator \(SV_ASSERTION_INVALID\)/)
})
