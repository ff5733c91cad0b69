/**
 * Every snapd vector (fixtures/snapd-vectors/manifest.json) gets snapd's
 * verdict from our codec, checked the way `snapd-check verify` checks it:
 * a TrustDb with the vector's `trusted` anchors, `addAll` of its `chain`,
 * then each assertion of the file added (db.Add) or, for a serial-request,
 * checked against its own device-key. Valid files re-encode byte for byte and
 * every assertion's content is what formatContent writes for its headers,
 * which proves our canonical header order is snapd's.
 */
import { readdirSync } from 'node:fs'
import path from 'node:path'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { VaultError, assertionType, encodeStream, decodeAssertion, decodeStream, formatContent, bytesEqual, utf8Decode, type Assertion, type ErrorCode, type HeadersInput } from '@sv/shared'
import { VECTORS_DIR, checkLikeSnapd, loadManifest, readVector, trustDbFor, type Vector } from '../../helpers/vectors.js'

interface Expected {
  code: ErrorCode
  /** details.type; undefined when snapd could not decode the assertion either ('?') */
  type: string | undefined
  /** details.header, when the failure is about one header */
  header?: string
}

/**
 * Our code for each invalid vector. snapd has one error type for all of
 * these; we separate what a caller handles differently.
 */
const EXPECTED: Record<string, Expected> = {
  'neg-serial-tampered.assert': { code: 'SV_SIGNATURE_INVALID', type: 'serial' },
  'neg-serial-tampered-hashtag.assert': { code: 'SV_SIGNATURE_INVALID', type: 'serial' },
  'neg-serial-wrong-key.assert': { code: 'SV_SIGNING_KEY_UNKNOWN', type: 'serial' },
  'neg-serial-forged-keyid.assert': { code: 'SV_SIGNATURE_INVALID', type: 'serial' },
  'neg-serial-request-key-mismatch.assert': { code: 'SV_ASSERTION_INVALID', type: 'serial-request', header: 'sign-key-sha3-384' },
  'neg-serial-request-bad-signature.assert': { code: 'SV_SIGNATURE_INVALID', type: 'serial-request' },
  'neg-serial-expired-key.assert': { code: 'SV_SIGNING_KEY_EXPIRED', type: 'serial' },
  'neg-serial-before-key-since.assert': { code: 'SV_SIGNING_KEY_EXPIRED', type: 'serial', header: 'timestamp' },
  'neg-serial-other-authority.assert': { code: 'SV_ASSERTION_UNTRUSTED', type: 'serial', header: 'authority-id' },
  'neg-account-key-not-by-root.assert': { code: 'SV_ASSERTION_UNTRUSTED', type: 'account-key', header: 'authority-id' },
  'neg-serial-bad-body-length.assert': { code: 'SV_ASSERTION_INVALID', type: undefined },
  'neg-serial-truncated-signature.assert': { code: 'SV_SIGNATURE_INVALID', type: 'serial' },
}

/** What the codec says about each assertion of a file: a decode failure, or one outcome per assertion. */
type Outcome = { decodeError: VaultError } | { results: { assertion: Assertion; error?: VaultError }[] }

async function runLikeSnapdCheck(v: Vector): Promise<Outcome> {
  const db = await trustDbFor(v)
  let assertions: Assertion[]
  try {
    assertions = decodeStream(readVector(v.file))
  } catch (e) {
    if (!(e instanceof VaultError)) throw e
    return { decodeError: e }
  }
  const results: { assertion: Assertion; error?: VaultError }[] = []
  for (const a of assertions) {
    try {
      await checkLikeSnapd(db, a)
      results.push({ assertion: a })
    } catch (e) {
      if (!(e instanceof VaultError)) throw e
      results.push({ assertion: a, error: e })
    }
  }
  return { results }
}

/** snapd's message, compared exactly unless it mentions the current time. */
function assertSnapdMessage(t: ExecutionContext, v: Vector, err: VaultError, snapdError: string | undefined): void {
  if (v['error-mentions-current-time']) {
    const prefix = v['expected-error-prefix'] ?? ''
    t.not(prefix, '')
    t.true(err.message.startsWith(prefix), `message ${JSON.stringify(err.message)} does not start with snapd's prefix`)
  } else {
    t.is<string | undefined, string | undefined>(err.message, snapdError)
  }
}

function assertExpectedError(t: ExecutionContext, file: string, err: VaultError): void {
  const want = EXPECTED[file]
  if (!want) return void t.fail(`no expected SV_* code for ${file} in the EXPECTED table`)
  t.is(err.code, want.code)
  t.is(err.details?.type, want.type)
  if (want.header !== undefined) t.is(err.details?.header, want.header)
}

/** The headers formatContent takes: all but the ones the signer sets itself. */
function headersWithoutMeta(a: Assertion): HeadersInput {
  const h: HeadersInput = Object.create(null) as HeadersInput
  for (const [k, val] of Object.entries(a.headers)) {
    if (k !== 'type' && k !== 'body-length' && k !== 'sign-key-sha3-384') h[k] = val
  }
  return h
}

function assertReencodes(t: ExecutionContext, file: string, assertions: Assertion[]): void {
  const raw = readVector(file)
  t.true(bytesEqual(encodeStream(decodeStream(raw)), raw), `${file}: encodeStream(decodeStream(x)) differs from x`)
  for (const a of assertions) {
    const { content } = formatContent(assertionType(a.typeName)!, headersWithoutMeta(a), a.body, a.signKeyId)
    t.is(utf8Decode(content), utf8Decode(a.content), `${a.describe()}: canonical header order differs from snapd's`)
    t.true(bytesEqual(content, a.content))
  }
}

const vectorVerdict = test.macro({
  async exec(t: ExecutionContext, v: Vector) {
    const outcome = await runLikeSnapdCheck(v)
    const snapd = v['snapd-results']

    if ('decodeError' in outcome) {
      t.false(v.valid, `we cannot decode a file snapd accepts: ${outcome.decodeError.code} ${outcome.decodeError.message}`)
      t.is(snapd.length, 1)
      t.is(snapd[0]!.check, 'asserts.Decoder.Decode', 'snapd could decode this file')
      assertExpectedError(t, v.file, outcome.decodeError)
      assertSnapdMessage(t, v, outcome.decodeError, snapd[0]!.error)
      t.is(outcome.decodeError.details?.index, 1)
      return
    }

    const { results } = outcome
    t.deepEqual(
      results.map((r) => r.error === undefined),
      snapd.map((r) => r.ok),
      'per-assertion verdicts differ from snapd',
    )
    t.deepEqual(
      results.map((r) => r.assertion.typeName),
      snapd.map((r) => r.type),
    )
    t.deepEqual(
      results.map((r) => r.assertion.describe()),
      snapd.map((r) => r.description),
    )
    t.deepEqual(
      results.map((r) => r.assertion.signKeyId),
      snapd.map((r) => r['sign-key-sha3-384']),
    )
    t.is(
      results.every((r) => r.error === undefined),
      v.valid,
    )
    for (const [i, r] of results.entries()) {
      if (r.error) {
        assertExpectedError(t, v.file, r.error)
        assertSnapdMessage(t, v, r.error, snapd[i]!.error)
      }
    }
    if (v.valid) assertReencodes(t, v.file, results.map((r) => r.assertion))
    else t.true(bytesEqual(encodeStream(results.map((r) => r.assertion)), readVector(v.file)), 'decodable invalid file does not re-encode byte for byte')
  },
  title: (given, v: Vector) => given ?? `vectors: ${v.file} is ${v.valid ? 'valid' : 'refused'} as snapd says`,
})

const manifest = loadManifest()
for (const v of manifest.vectors) test(vectorVerdict, v)

test('vectors: the expected-code table covers exactly the invalid vectors', (t) => {
  const invalid = manifest.vectors.filter((v) => !v.valid).map((v) => v.file)
  t.deepEqual([...invalid].sort(), Object.keys(EXPECTED).sort())
  t.true(invalid.length >= 12)
})

test('vectors: every .assert file in fixtures/snapd-vectors is a vector or a trust anchor/chain of one', (t) => {
  // a stale manifest would make the per-vector tests vacuous
  const onDisk = [...readdirSync(VECTORS_DIR), ...readdirSync(path.join(VECTORS_DIR, 'small')).map((f) => `small/${f}`)].filter((f) => f.endsWith('.assert'))
  const used = new Set(manifest.vectors.flatMap((v) => [v.file, ...v.trusted, ...v.chain]))
  const standalone = new Set(['root-account.assert', 'root-account-key.assert', 'small/root-account.assert', 'small/root-account-key.assert'])
  t.deepEqual(
    onDisk.filter((f) => !used.has(f) && !standalone.has(f)),
    [],
  )
  t.true(manifest.vectors.length >= 34)
  t.true(manifest.vectors.some((v) => v.valid) && manifest.vectors.some((v) => !v.valid))
})

test('vectors: trusted.assert is exactly root-account.assert + root-account-key.assert', (t) => {
  for (const dir of ['', 'small/']) {
    const anchors = encodeStream(decodeStream(Buffer.concat([readVector(`${dir}root-account.assert`), Buffer.from('\n'), readVector(`${dir}root-account-key.assert`)])))
    t.true(bytesEqual(anchors, readVector(`${dir}trusted.assert`)), dir)
  }
})

test('vectors: asserts.Decode (single assertion) refuses the bad body-length with snapd reason', (t) => {
  const v = manifest.vectors.find((x) => x.file === 'neg-serial-bad-body-length.assert')!
  const err = t.throws(() => decodeAssertion(readVector(v.file)), { instanceOf: VaultError })
  t.is(err?.code, 'SV_ASSERTION_INVALID')
  t.is(err?.details?.header, 'body-length')
  t.is(err?.details?.reason, v['asserts-Decode-error'])
})
