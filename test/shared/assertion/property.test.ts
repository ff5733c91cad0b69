/**
 * Property tests (fast-check): the header grammar, signing and streams round
 * trip over generated input.
 *
 * What the format cannot carry, and so is left out of the generators:
 * - lone UTF-16 surrogates: headers and bodies are UTF-8, which has no
 *   encoding for them (Buffer.from turns them into U+FFFD); fc's 'binary'
 *   unit never makes them. Everything else is in: NUL, CR, tabs, LF, empty
 *   lines, leading and trailing spaces, astral code points.
 * - a non-empty list or map all of whose members are empty lists or maps:
 *   snapd's appendEntry (and ours) writes the introduction `name:` with
 *   nothing under it, which no decoder can read; snapd's signer produces the
 *   same unreadable text (checked with `snapd-check sign`). signAssertion
 *   refuses such input with SV_ASSERTION_INVALID instead of signing it (the
 *   last property below). The generators repair such members.
 * Empty lists and maps themselves are fine: they are omitted, as by snapd.
 */
import assert from 'node:assert/strict'
import test from 'ava'
import fc from 'fast-check'
import {
  Assertion,
  VaultError,
  assertionType,
  decodeAssertion,
  decodeStream,
  encodeStream,
  formatContent,
  parseHeaders,
  signAssertion,
  verifySignature,
  type HeaderMap,
  type HeaderValue,
  type HeadersInput,
  bytesEqual,
  utf8Decode,
} from '@sv/shared'
import { appendEntry, byteOrder } from '../../../shared/src/assertion/grammar.js'
import { signerFor } from '../../helpers/keys.js'
import { loadManifest, decodeVectorFile } from '../../helpers/vectors.js'

// --- generators ----------------------------------------------------------------

const SPECIAL_NAMES = ['constructor', 'prototype', 'tostring', 'valueof', 'hasownproperty', 'isprototypeof', 'proto', 'a', 'z9']

/** Names from the header-name grammar [a-z](-?[a-z0-9])*, plus Object.prototype-ish ones. */
const headerName = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(...SPECIAL_NAMES) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz'), fc.array(fc.tuple(fc.boolean(), fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789')), { maxLength: 10 }))
      .map(([first, rest]) => first + rest.map(([dash, c]) => (dash ? `-${c}` : c)).join('')),
  },
)

/** One code point: the awkward ones often, any other valid code point otherwise. */
const unit = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom('\n', '\n\n', '\n  ', ' ', '  ', '\r', '\r\n', '\t', '-', ':', ': ', '- ', '\u0000', 'Ä', '設', '🚀', '\u200d', '\ufeff') },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.constantFrom(...'abcxyz019') },
)
const text = fc.string({ unit, maxLength: 24 })

/** Arbitrary nesting of strings, lists and maps (maps keyed by header names). */
const { value: headerValue } = fc.letrec<{ value: HeaderValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 5, arbitrary: text },
    { weight: 2, arbitrary: fc.array(tie('value'), { maxLength: 4 }) },
    { weight: 2, arbitrary: fc.dictionary(headerName, tie('value'), { maxKeys: 4 }) },
  ),
}))

/** Does the value write anything under its introduction? */
function hasContent(v: HeaderValue): boolean {
  if (typeof v === 'string') return true
  if (Array.isArray(v)) return v.some(hasContent)
  return Object.values(v).some(hasContent)
}

/** A non-empty container with nothing to write gets a string member (see the file comment). */
function repair(v: HeaderValue): HeaderValue {
  if (typeof v === 'string') return v
  if (Array.isArray(v)) {
    const r = v.map(repair)
    return r.length > 0 && !r.some(hasContent) ? [...r, 'x'] : r
  }
  const m: HeaderMap = {}
  for (const [k, e] of Object.entries(v)) m[k] = repair(e)
  return Object.keys(m).length > 0 && !Object.values(m).some(hasContent) ? { ...m, zz: 'x' } : m
}

/** Drops empty lists and maps, which the encoder omits. */
function dropEmpty(v: HeaderValue): HeaderValue | undefined {
  if (typeof v === 'string') return v
  if (Array.isArray(v)) {
    const r = v.map(dropEmpty).filter((e): e is HeaderValue => e !== undefined)
    return r.length === 0 ? undefined : r
  }
  const entries = Object.entries(v)
    .map(([k, e]) => [k, dropEmpty(e)] as const)
    .filter((e): e is readonly [string, HeaderValue] => e[1] !== undefined)
  return entries.length === 0 ? undefined : Object.fromEntries(entries)
}

/** A canonical plain form: maps as plain objects with sorted keys (the parser gives null-prototype maps). */
function canon(v: HeaderValue | undefined): unknown {
  if (v === undefined || typeof v === 'string') return v
  if (Array.isArray(v)) return v.map(canon)
  return Object.fromEntries(
    Object.keys(v)
      .sort(byteOrder)
      .map((k) => [k, canon(v[k])]),
  )
}

const META = new Set(['type', 'format', 'authority-id', 'signatory-id', 'revision', 'body-length', 'sign-key-sha3-384'])

/** A header map with arbitrary values under non-meta names. */
const headerTree = fc.dictionary(headerName, headerValue, { minKeys: 1, maxKeys: 6 }).map((d) => {
  const out: Record<string, HeaderValue> = {}
  for (const [k, v] of Object.entries(d)) if (!META.has(k)) out[k] = repair(v)
  return out
})

/** The header block the encoder writes for `tree` (names sorted, as formatContent writes non-key headers). */
function formatTree(tree: Record<string, HeaderValue>): string {
  const out: string[] = []
  for (const k of Object.keys(tree).sort(byteOrder)) appendEntry(out, `${k}:`, tree[k], 0)
  return out.join('').slice(1)
}

function expectedTree(tree: Record<string, HeaderValue>): unknown {
  return canon((dropEmpty(tree) ?? {}) as HeaderMap)
}

function nullPrototypeMaps(v: HeaderValue): boolean {
  if (typeof v === 'string') return true
  if (Array.isArray(v)) return v.every(nullPrototypeMaps)
  return Object.getPrototypeOf(v) === null && Object.values(v).every(nullPrototypeMaps)
}

// Properties assert with node:assert, so fast-check sees a failure, shrinks it
// and reports the counterexample; AVA sees fc.assert throw.

// --- grammar ---------------------------------------------------------------------

test('property: parseHeaders(format(x)) deep-equals x without its empty lists and maps', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(headerTree, (tree) => {
        const expected = expectedTree(tree)
        if (Object.keys(expected as object).length === 0) return // nothing is written at all
        const parsed = parseHeaders(formatTree(tree))
        assert.deepEqual(canon(parsed), expected)
        assert.ok(nullPrototypeMaps(parsed), 'maps are null-prototype objects')
      }),
      { numRuns: 400 },
    ),
  )
})

test('property: formatContent is canonical: format(parse(format(x))) is format(x)', (t) => {
  const type = assertionType('serial-request')!
  t.notThrows(() =>
    fc.assert(
      fc.property(headerTree, (tree) => {
        const { content } = formatContent(type, tree, Buffer.alloc(0), 'k'.repeat(64))
        const parsed = parseHeaders(utf8Decode(content))
        const again = formatContent(type, { ...parsed, type: undefined, 'sign-key-sha3-384': undefined }, Buffer.alloc(0), 'k'.repeat(64))
        assert.ok(bytesEqual(again.content, content), 'not canonical')
        const withoutMeta = { ...(canon(parsed) as Record<string, unknown>) }
        delete withoutMeta.type
        delete withoutMeta['sign-key-sha3-384']
        assert.deepEqual(withoutMeta, expectedTree(tree))
      }),
      { numRuns: 300 },
    ),
  )
})

test('property: scalar strings survive as header values, multiline or not, exactly', (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(headerName, text, (name, value) => {
        assert.equal(parseHeaders(formatTree({ [name]: value }))[name], value)
      }),
      { numRuns: 500 },
    ),
  )
})

test('what the format cannot carry: a lone surrogate does not survive UTF-8', (t) => {
  const lone = 'a\ud800b'
  const bytes = Buffer.from(formatTree({ x: lone }), 'utf8')
  t.not(parseHeaders(bytes.toString('utf8')).x, lone)
})

// --- signing --------------------------------------------------------------------------

const SERIAL_REQUEST_FIXED = new Set(['brand-id', 'model', 'request-id', 'device-key', 'serial'])
const bodyText = fc.string({ unit, maxLength: 200 })

function extraHeaders(tree: Record<string, HeaderValue>): Record<string, HeaderValue> {
  const extra: Record<string, HeaderValue> = {}
  for (const [k, v] of Object.entries(tree)) if (!SERIAL_REQUEST_FIXED.has(k)) extra[k] = v
  return extra
}

test('property: sign + decode round trip (1024-bit key): headers, body and signature survive', async (t) => {
  const signer = await signerFor('small/device')
  const fixed: HeadersInput = { 'brand-id': 'acme-brand', model: 'acme-pi-gateway', 'request-id': 'prop', 'device-key': signer.publicKey.encode() }
  await t.notThrowsAsync(
    fc.assert(
      fc.asyncProperty(headerTree, bodyText, fc.option(fc.constantFrom('A1', 'SER-0001'), { nil: undefined }), async (tree, body, serial) => {
        const extra = extraHeaders(tree)
        const a = await signAssertion('serial-request', { ...fixed, ...extra, serial }, body, signer, { creationTime: 1700000000 })
        const encoded = a.encode()
        for (const d of [decodeAssertion(encoded), decodeStream(encoded)[0]!]) {
          assert.ok(bytesEqual(d.content, a.content), 'content differs')
          assert.equal(utf8Decode(d.body), body)
          assert.equal(d.headerString('serial'), serial ?? '')
          const got = canon(d.headers as HeaderMap) as Record<string, unknown>
          for (const [k, v] of Object.entries(extra)) assert.deepEqual(Object.hasOwn(got, k) ? got[k] : undefined, canon(dropEmpty(v)), k)
          await verifySignature(d.content, d.signature, signer.publicKey)
        }
      }),
      { numRuns: 60 },
    ),
  )
})

test('property: a non-empty list or map with only empty members is refused by signAssertion, never signed', async (t) => {
  const signer = await signerFor('small/device')
  const hollow = fc
    .letrec<{ h: HeaderValue }>((tie) => ({
      h: fc.oneof({ depthSize: 'small' }, fc.constant<HeaderValue>([]), fc.constant<HeaderValue>({}), fc.array(tie('h'), { minLength: 1, maxLength: 3 }), fc.dictionary(headerName, tie('h'), { minKeys: 1, maxKeys: 3 })),
    }))
    .h.filter((v) => typeof v !== 'string' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0))
  await t.notThrowsAsync(
    fc.assert(
      fc.asyncProperty(hollow, async (v) => {
        const headers: HeadersInput = { 'brand-id': 'b', model: 'm', 'request-id': 'r', 'device-key': signer.publicKey.encode(), hollow: v }
        await assert.rejects(signAssertion('serial-request', headers, '', signer), (e: unknown) => e instanceof VaultError && e.code === 'SV_ASSERTION_INVALID' && e.details?.header === 'hollow')
      }),
      { numRuns: 50 },
    ),
  )
})

// --- streams ------------------------------------------------------------------------------

const POOL: Assertion[] = loadManifest()
  .vectors.filter((v) => v.valid)
  .flatMap((v) => decodeVectorFile(v.file))

test('property: encodeStream(decodeStream(s)) is s for generated streams of the vectors', (t) => {
  t.true(POOL.length > 20)
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.array(fc.nat({ max: POOL.length - 1 }), { minLength: 1, maxLength: 8 }), fc.boolean(), (picks, dropFinalLf) => {
        const chosen = picks.map((i) => POOL[i]!)
        const s = encodeStream(chosen)
        const decoded = decodeStream(s)
        assert.equal(decoded.length, chosen.length)
        assert.ok(bytesEqual(encodeStream(decoded), s), 'not byte-identical')
        decoded.forEach((d, i) => assert.ok(bytesEqual(d.content, chosen[i]!.content)))
        if (dropFinalLf) {
          // a stream without its final LF decodes to the same and re-encodes with it
          assert.ok(bytesEqual(encodeStream(decodeStream(s.subarray(0, s.length - 1))), s))
        }
      }),
      { numRuns: 200 },
    ),
  )
})

test('property: streams of freshly signed assertions with generated headers and bodies round trip', async (t) => {
  const signer = await signerFor('small/device')
  const fixed: HeadersInput = { 'brand-id': 'acme-brand', model: 'acme-pi-gateway', 'request-id': 'stream', 'device-key': signer.publicKey.encode() }
  await t.notThrowsAsync(
    fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(headerTree, bodyText), { minLength: 1, maxLength: 4 }), async (items) => {
        const signed: Assertion[] = []
        for (const [tree, body] of items) signed.push(await signAssertion('serial-request', { ...fixed, ...extraHeaders(tree) }, body, signer, { creationTime: 1700000000 }))
        const s = encodeStream(signed)
        const decoded = decodeStream(s)
        assert.equal(decoded.length, signed.length)
        assert.ok(bytesEqual(encodeStream(decoded), s), 'not byte-identical')
        decoded.forEach((d, i) => assert.equal(utf8Decode(d.body), items[i]![1]))
      }),
      { numRuns: 40 },
    ),
  )
})
