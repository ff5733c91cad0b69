/**
 * What the project signs, snapd accepts: a fresh trust root, brand, models,
 * serial-request, serial and system-user assertions signed with signAssertion
 * and the fixture keys pass `snapd-check verify` (snapd's own asserts
 * database), and our TrustDb gives the same verdict. One tampered assertion
 * proves the check can fail. snapd-check missing is a failure, never a skip.
 */
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { Assertion, TrustDb, VaultError, decodeStream, encodeStream, signAssertion, type HeadersInput } from '@sv/shared'
import { publicKeyOf, signerFor, type FixtureKeyName } from '../../helpers/keys.js'
import { locateSnapdCheck, snapdVerify, tempDir, type VerifyResult } from '../../helpers/snapd-check.js'

interface World {
  trusted: Assertion[]
  brandChain: Assertion[]
  partnerChain: Assertion[]
  model22: Assertion
  model18: Assertion
  serialRequest: Assertion
  serial: Assertion
  partnerSerial: Assertion
  systemUser: Assertion
}

const UNICODE = 'Ääkkönen 設備 🚀'
const ROOT = 'sv-test-root'
const BRAND = 'sv-brand'
const PARTNER = 'sv-partner'

async function sign(type: string, key: FixtureKeyName, headers: HeadersInput, body?: string): Promise<Assertion> {
  return signAssertion(type, headers, body, await signerFor(key))
}

async function accountAndKey(id: string, displayName: string, key: FixtureKeyName, keyName: string): Promise<Assertion[]> {
  const account = await sign('account', 'root', {
    'authority-id': ROOT,
    'account-id': id,
    'display-name': displayName,
    username: id,
    validation: 'verified',
    timestamp: '2024-01-01T00:00:00Z',
  })
  const pub = publicKeyOf(key)
  const accountKey = await sign(
    'account-key',
    'root',
    { 'authority-id': ROOT, 'account-id': id, name: keyName, since: '2024-01-01T00:00:00Z', 'public-key-sha3-384': pub.id },
    pub.encode(),
  )
  return [account, accountKey]
}

const SERIAL_BODY = ['hardware:', '  vendor: ACME', '  revision: 3', 'mac-addresses:', '  - 02:00:00:00:00:01', 'notes: |', `  ${UNICODE}`, '  second line', ''].join('\n')

async function makeWorld(): Promise<World> {
  const rootKey = publicKeyOf('root')
  // a fresh root of trust: our own self-signed account and account-key
  const trusted = [
    await sign('account', 'root', { 'authority-id': ROOT, 'account-id': ROOT, 'display-name': 'SV Test Root', validation: 'verified', timestamp: '2024-01-01T00:00:00Z' }),
    await sign('account-key', 'root', { 'authority-id': ROOT, 'account-id': ROOT, name: 'root', since: '2024-01-01T00:00:00Z', 'public-key-sha3-384': rootKey.id }, rootKey.encode()),
  ]
  const brandChain = await accountAndKey(BRAND, `ACME ${UNICODE}\nDevices Division`, 'brand', 'default')
  const partnerChain = await accountAndKey(PARTNER, 'Partner Factory', 'evil', 'factory')
  const model22 = await sign('model', 'brand', {
    'authority-id': BRAND,
    series: '16',
    'brand-id': BRAND,
    model: 'sv-gateway-22',
    architecture: 'arm64',
    base: 'core22',
    grade: 'secured',
    'storage-safety': 'encrypted',
    store: 'sv-store-1',
    'display-name': `${UNICODE}\n  indented second line\n\nafter an empty line`,
    'serial-authority': [PARTNER],
    'system-user-authority': [BRAND, PARTNER],
    snaps: [
      { name: 'pi', id: 'YbGa9O3dAXl88YLI6Y1bGG74pwBxZyKg', type: 'gadget', 'default-channel': '22/stable' },
      { name: 'pi-kernel', id: 'jeIuP6tfFrvAdic8DMWqHmoaoukAPNbJ', type: 'kernel', 'default-channel': '22/stable' },
      { name: 'core22', id: 'amcUKQILKXHHTlmSa7NMdnXSx02dNeeT', type: 'base' },
      { name: 'snapd', id: 'PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4', type: 'snapd' },
      { name: 'network-manager', id: 'RmBXKl6HO6YOC2DE4G2q1JzWImC04EUy', modes: ['run', 'install'], presence: 'optional', 'default-channel': '22/stable' },
    ],
    'extra-info': { vendor: UNICODE, tags: ['gateway', 'pi'], nested: { deep: ['x', { k: 'v' }] } },
    timestamp: '2024-02-01T00:00:00Z',
  })
  const model18 = await sign('model', 'brand', {
    'authority-id': BRAND,
    series: '16',
    'brand-id': BRAND,
    model: 'sv-gateway-18',
    architecture: 'armhf',
    base: 'core18',
    gadget: 'pi=18-pi',
    kernel: 'pi-kernel=18-pi',
    'required-snaps': ['network-manager', 'modem-manager'],
    'display-name': 'SV Gateway (UC18)',
    timestamp: '2024-02-01T00:00:00Z',
  })
  const device = publicKeyOf('device')
  const serialRequest = await sign(
    'serial-request',
    'device',
    { 'brand-id': BRAND, model: 'sv-gateway-22', 'request-id': 'REQ-0123456789abcdef', serial: 'SV-0001', 'device-key': device.encode() },
    SERIAL_BODY,
  )
  const serialHeaders: HeadersInput = {
    'brand-id': BRAND,
    model: 'sv-gateway-22',
    serial: 'SV-0001',
    revision: '2',
    'device-key': device.encode(),
    'device-key-sha3-384': device.id,
    timestamp: '2024-03-01T00:00:00Z',
    'issued-by': UNICODE,
    'extra-list': ['a', 'multi\nline', UNICODE],
    'extra-map': { b: '2', a: '1', list: ['x', 'y'] },
  }
  const serial = await sign('serial', 'brand', { ...serialHeaders, 'authority-id': BRAND }, SERIAL_BODY)
  const partnerSerial = await sign('serial', 'evil', { ...serialHeaders, serial: 'SV-0002', 'authority-id': PARTNER }, SERIAL_BODY)
  const systemUser = await sign('system-user', 'brand', {
    'authority-id': BRAND,
    'brand-id': BRAND,
    email: 'ops@sv.example',
    format: '1',
    name: UNICODE,
    username: 'svops',
    models: ['sv-gateway-22'],
    serials: ['SV-0001'],
    'ssh-keys': ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5 ops@sv'],
    since: '2024-01-01T00:00:00Z',
    until: '2030-01-01T00:00:00Z',
  })
  return { trusted, brandChain, partnerChain, model22, model18, serialRequest, serial, partnerSerial, systemUser }
}

test.before(async (t) => {
  t.context = await makeWorld()
})

function world(t: ExecutionContext): World {
  return t.context as World
}

/** Our verdict with the same anchors and chain, checked as snapd-check does. */
async function ourVerdict(trusted: Assertion[], chain: Assertion[], file: Uint8Array): Promise<(string | true)[]> {
  const db = new TrustDb({ trusted })
  const { failed } = await db.addAll(chain)
  if (failed.length) return failed.map((f) => `chain: ${f.error.code}`)
  const out: (string | true)[] = []
  let as: Assertion[]
  try {
    as = decodeStream(file)
  } catch (e) {
    if (e instanceof VaultError) return [e.code]
    throw e
  }
  for (const a of as) {
    try {
      if (a.typeName === 'serial-request') await db.check(a)
      else await db.add(a)
      out.push(true)
    } catch (e) {
      if (!(e instanceof VaultError)) throw e
      out.push(e.code)
    }
  }
  return out
}

async function verifyWithSnapd(t: ExecutionContext, trusted: Assertion[], chain: Assertion[][], file: Uint8Array): Promise<VerifyResult | undefined> {
  const bin = locateSnapdCheck()
  if (bin instanceof Error) {
    t.fail(bin.message)
    return undefined
  }
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const r = await snapdVerify(dir, { trusted: encodeStream(trusted), chain: chain.map((c) => encodeStream(c)), file })
  t.false(r.timedOut, 'snapd-check timed out')
  return r
}

const acceptedBySnapd = test.macro({
  async exec(t: ExecutionContext, what: string, pick: (w: World) => { chain: Assertion[][]; file: Assertion[] }) {
    const w = world(t)
    const { chain, file } = pick(w)
    const bytes = encodeStream(file)
    const r = await verifyWithSnapd(t, w.trusted, chain, bytes)
    if (!r) return
    t.is(r.code, 0, `snapd-check verify refused it:\n${r.stdout}\n${r.stderr}`)
    t.deepEqual(
      r.lines.map((l) => l.ok),
      file.map(() => true),
    )
    t.deepEqual(await ourVerdict(w.trusted, chain.flat(), bytes), file.map(() => true as const))
  },
  title: (given, what: string) => given ?? `snapd-check: snapd accepts ${what} that we signed`,
})

test('snapd-check: the binary is present ($SV_SNAPD_CHECK or .cache/snapd-check/snapd-check)', (t) => {
  const bin = locateSnapdCheck()
  if (bin instanceof Error) t.fail(bin.message)
  else t.pass()
})

test(acceptedBySnapd, 'our fresh root account and account-key (trust anchors, checked again)', (w) => ({ chain: [], file: w.trusted }))
test(acceptedBySnapd, 'a brand account with a multiline unicode display-name and its account-key', (w) => ({ chain: [], file: w.brandChain }))
test(acceptedBySnapd, 'a UC20+ model (snaps list of maps, grade, storage-safety, serial-authority, extra maps)', (w) => ({ chain: [w.brandChain], file: [w.model22] }))
test(acceptedBySnapd, 'a UC16/18-style model (gadget/kernel tracks, required-snaps)', (w) => ({ chain: [w.brandChain], file: [w.model18] }))
test(acceptedBySnapd, 'a serial-request with a YAML body and a proposed serial', (w) => ({ chain: [], file: [w.serialRequest] }))
test(acceptedBySnapd, 'the serial-request + model stream snapd POSTs', (w) => ({ chain: [w.brandChain], file: [w.serialRequest, w.model22] }))
test(acceptedBySnapd, 'a serial with a body, unicode and list/map extra headers', (w) => ({ chain: [w.brandChain, [w.model22]], file: [w.serial] }))
test(acceptedBySnapd, "a serial signed by a serial-authority listed in the brand's model", (w) => ({ chain: [w.brandChain, w.partnerChain, [w.model22]], file: [w.partnerSerial] }))
test(acceptedBySnapd, 'a format 1 system-user with serials', (w) => ({ chain: [w.brandChain], file: [w.systemUser] }))
test(acceptedBySnapd, 'everything in one stream (brand chain, models, serial)', (w) => ({ chain: [], file: [...w.brandChain, w.model22, w.model18, w.serial] }))

test('snapd-check: a tampered assertion we signed is refused by snapd and by us (the check can fail)', async (t) => {
  const w = world(t)
  const good = w.serial.text()
  const tampered = Buffer.from(good.replace('serial: SV-0001', 'serial: SV-0009'))
  t.not(tampered.toString('utf8'), good)
  const r = await verifyWithSnapd(t, w.trusted, [w.brandChain, [w.model22]], tampered)
  if (!r) return
  t.is(r.code, 1)
  t.deepEqual(
    r.lines.map((l) => l.ok),
    [false],
  )
  t.regex(r.lines[0]!.text, /failed signature verification/)
  t.deepEqual(await ourVerdict(w.trusted, [...w.brandChain, w.model22], tampered), ['SV_SIGNATURE_INVALID'])
})

test('snapd-check: a serial by an authority the model does not list is refused by both', async (t) => {
  const w = world(t)
  const r = await verifyWithSnapd(t, w.trusted, [w.brandChain, w.partnerChain, [w.model18]], w.partnerSerial.encode())
  if (!r) return
  t.is(r.code, 1)
  t.deepEqual(await ourVerdict(w.trusted, [...w.brandChain, ...w.partnerChain, w.model18], w.partnerSerial.encode()), ['SV_ASSERTION_UNTRUSTED'])
})

// stream separators: our decoder and snapd's agree on what is a stream
const separatorAgreement = test.macro({
  async exec(t: ExecutionContext, what: string, build: (a: Uint8Array, b: Uint8Array) => Uint8Array) {
    const w = world(t)
    const bytes = build(w.brandChain[0]!.encode(), w.brandChain[1]!.encode())
    const r = await verifyWithSnapd(t, w.trusted, [], bytes)
    if (!r) return
    const snapdOk = r.code === 0
    const ours = await ourVerdict(w.trusted, [], bytes)
    const oursOk = ours.every((x) => x === true) && ours.length === r.lines.length
    t.is(oursOk, snapdOk, `snapd ${snapdOk ? 'accepts' : 'refuses'}; ours: ${JSON.stringify(ours)}`)
  },
  title: (given, what: string) => given ?? `snapd-check: our stream decoder agrees with snapd on ${what}`,
})

const LF = Buffer.from('\n')
test(separatorAgreement, 'one blank line between assertions', (a, b) => Buffer.concat([a, LF, b]))
test(separatorAgreement, 'two blank lines between assertions', (a, b) => Buffer.concat([a, LF, LF, b]))
test(separatorAgreement, 'a leading blank line', (a, b) => Buffer.concat([LF, a, LF, b]))
test(separatorAgreement, 'no final LF', (a, b) => Buffer.concat([a, LF, b]).subarray(0, a.length + b.length))
test(separatorAgreement, 'a trailing blank line', (a, b) => Buffer.concat([a, LF, b, LF]))
test(separatorAgreement, 'two trailing blank lines', (a, b) => Buffer.concat([a, LF, b, LF, LF]))
test(separatorAgreement, 'no blank line between assertions', (a, b) => Buffer.concat([a, b]))
