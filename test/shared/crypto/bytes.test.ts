/**
 * The byte helpers (shared/src/crypto/bytes.ts) have two implementations: on
 * Node's Buffer (what runs here) and portable (what runs in a browser). Both
 * must give the same result for every input, and the same as what the codec
 * did with node:buffer before: generated inputs, both paths, compared.
 */
import { Buffer, isUtf8 as nodeIsUtf8 } from 'node:buffer'
import test from 'ava'
import fc from 'fast-check'
import {
  base64Decode,
  base64Encode,
  base64urlDecode,
  base64urlEncode,
  bufferCodecs,
  bytesEqual,
  concatBytes,
  copyBytes,
  hexDecode,
  hexEncode,
  indexOfBytes,
  isUtf8,
  latin1Decode,
  lastIndexOfBytes,
  portableCodecs,
  readUint16be,
  readUint32be,
  uint16be,
  uint32be,
  utf8Decode,
  utf8DecodeStrict,
  utf8Encode,
  type ByteCodecs,
} from '../../../shared/src/crypto/bytes.js'

const RUNS = { numRuns: 500 }
const node: ByteCodecs = bufferCodecs!
const paths: [string, ByteCodecs][] = [
  ['buffer', node],
  ['portable', portableCodecs],
]

/** Any UTF-16 code unit, lone surrogates included (fc's own units never make those). */
const anyString = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 300 })
/** Mostly UTF-8, sometimes broken: random bytes, and encodings of random strings with a byte changed. */
const utf8ish = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.tuple(anyString, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([s, i, b]) => {
    const bytes = Buffer.from(s, 'utf8')
    if (bytes.length > 0 && i % 3 === 0) bytes[i % bytes.length] = b
    return new Uint8Array(bytes)
  }),
  fc.constantFrom(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]), new Uint8Array([0xed, 0xa0, 0x80]), new Uint8Array([0xc0, 0x80]), new Uint8Array([0xf4, 0x90, 0x80, 0x80])),
)

function plain(t: { is: (a: unknown, b: unknown, m?: string) => void }, v: Uint8Array, what: string): void {
  t.is(Object.getPrototypeOf(v), Uint8Array.prototype, `${what} returns a plain Uint8Array`)
}

test('bytes: Node has Buffer, so the exported helpers run on it', (t) => {
  t.truthy(bufferCodecs)
  t.is(bufferCodecs!.name, 'buffer')
})

test('bytes: utf8Encode is Buffer.from(s, "utf8") on both paths, lone surrogates included', (t) => {
  fc.assert(
    fc.property(anyString, (s) => {
      const want = Buffer.from(s, 'utf8')
      for (const [name, c] of paths) {
        const got = c.utf8Encode(s)
        if (!want.equals(got)) throw new Error(`${name}: ${JSON.stringify(s)}`)
        if (Object.getPrototypeOf(got) !== Uint8Array.prototype) throw new Error(`${name}: not a plain Uint8Array`)
      }
      return bytesEqual(utf8Encode(s), want)
    }),
    RUNS,
  )
  plain(t, utf8Encode('é'), 'utf8Encode')
})

test('bytes: utf8Decode is Buffer toString("utf8") (U+FFFD for bad bytes, the BOM kept); strict decode and isUtf8 are node:buffer isUtf8', (t) => {
  fc.assert(
    fc.property(utf8ish, (b) => {
      const lax = Buffer.from(b).toString('utf8')
      if (utf8Decode(b) !== lax) return false
      const valid = nodeIsUtf8(b)
      if (isUtf8(b) !== valid) return false
      return utf8DecodeStrict(b) === (valid ? lax : undefined)
    }),
    RUNS,
  )
  t.is(utf8Decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])), '\ufeffa')
  t.is(utf8DecodeStrict(new Uint8Array([0xed, 0xa0, 0x80])), undefined, 'an encoded surrogate is not UTF-8')
  t.true(isUtf8(new Uint8Array(0)))
})

test('bytes: latin1Decode is Buffer toString("latin1") on both paths, beyond one chunk too', (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ minLength: 8190, maxLength: 20000 })), (b) => {
      const want = Buffer.from(b).toString('latin1')
      return paths.every(([, c]) => c.latin1Decode(b) === want)
    }),
    { numRuns: 100 },
  )
  t.is(latin1Decode(new Uint8Array([0x80, 0x9f, 0xff])), '\u0080\u009f\u00ff', 'ISO 8859-1, not windows-1252')
})

test('bytes: base64 and base64url encoders agree with Buffer on both paths', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (b) => {
      const std = Buffer.from(b).toString('base64')
      const url = Buffer.from(b).toString('base64url')
      return paths.every(([, c]) => c.base64Encode(b) === std && c.base64urlEncode(b) === url) && base64Encode(b) === std && base64urlEncode(b) === url
    }),
    RUNS,
  )
  t.is(base64Encode(new Uint8Array([1, 2])), 'AQI=')
  t.is(base64urlEncode(new Uint8Array([0xfb, 0xff])), '-_8')
})

/** A valid encoding, sometimes with non-zero unused bits in its last character (Go and Buffer ignore them). */
const validStd = fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 63 })).map(([b, noise]) => {
  let s = Buffer.from(b).toString('base64')
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0
  if (pad > 0) {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    const i = s.length - pad - 1
    const v = alphabet.indexOf(s[i]!) | (noise & (pad === 2 ? 15 : 3))
    s = s.slice(0, i) + alphabet[v] + s.slice(i + 1)
  }
  return s
})

test('bytes: base64Decode decodes what Go accepts exactly as Buffer does, on both paths', (t) => {
  fc.assert(
    fc.property(validStd, (s) => {
      const want = Buffer.from(s, 'base64')
      for (const [name, c] of paths) {
        const got = c.base64Decode(s)
        if (!want.equals(got)) throw new Error(`${name}: ${s}`)
        if (Object.getPrototypeOf(got) !== Uint8Array.prototype) throw new Error(`${name}: not a plain Uint8Array`)
      }
      const got = base64Decode(s)
      return got !== undefined && want.equals(got)
    }),
    RUNS,
  )
  t.pass()
})

test('bytes: base64Decode refuses what Go refuses (padding, alphabet, whitespace)', (t) => {
  for (const bad of ['A', 'AA', 'AAA', 'A===', '====', 'AA=A', 'AB==AB==', 'AA-_', 'AA A', 'AA\nAA', 'QUJD\n', 'Zm9v=', 'é']) t.is(base64Decode(bad), undefined, JSON.stringify(bad))
  t.deepEqual(base64Decode(''), new Uint8Array(0))
  t.deepEqual(base64Decode('Zm9vYg=='), new Uint8Array([0x66, 0x6f, 0x6f, 0x62]))
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...'AZaz09+/-_= \n.'), maxLength: 16 }), (s) => {
      const ok = s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s)
      const got = base64Decode(s)
      return ok ? got !== undefined && Buffer.from(s, 'base64').equals(got) && bytesEqual(portableCodecs.base64Decode(s), got) : got === undefined
    }),
    RUNS,
  )
})

test('bytes: base64urlDecode is Go RawURLEncoding: no padding, no length 4n+1, both paths as Buffer', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom(...'AZaz09+/-_= '), maxLength: 16 }), (s) => {
      const ok = s.length % 4 !== 1 && /^[A-Za-z0-9_-]*$/.test(s)
      const got = base64urlDecode(s)
      if (!ok) return got === undefined
      const want = Buffer.from(s, 'base64url')
      return got !== undefined && want.equals(got) && bytesEqual(portableCodecs.base64urlDecode(s), want) && bytesEqual(node.base64urlDecode(s), want)
    }),
    RUNS,
  )
  fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (b) => bytesEqual(base64urlDecode(base64urlEncode(b))!, b)))
  t.is(base64urlDecode('AA=='), undefined)
})

test('bytes: hex on both paths, and hexDecode round trips', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
      const want = Buffer.from(b).toString('hex')
      return paths.every(([, c]) => c.hexEncode(b) === want) && bytesEqual(hexDecode(want)!, b) && bytesEqual(hexDecode(want.toUpperCase())!, b)
    }),
    RUNS,
  )
  for (const bad of ['a', 'zz', '0x00', ' 00']) t.is(hexDecode(bad), undefined, bad)
})

test('bytes: indexOfBytes and lastIndexOfBytes are Buffer indexOf and lastIndexOf on both paths', (t) => {
  const small = fc.uint8Array({ min: 9, max: 10, maxLength: 40 })
  fc.assert(
    fc.property(small, fc.uint8Array({ min: 9, max: 10, maxLength: 4 }), fc.integer({ min: -3, max: 45 }), (hay, needle, from) => {
      const b = Buffer.from(hay)
      const wantFirst = needle.length === 0 ? Math.min(Math.max(from, 0), hay.length) : b.indexOf(needle, Math.max(from, 0))
      const wantLast = needle.length === 0 ? hay.length : b.lastIndexOf(needle)
      for (const [name, c] of paths) {
        if (c.indexOf(hay, needle, from) !== wantFirst) throw new Error(`${name} indexOf ${[...hay]} ${[...needle]} ${from}`)
        if (c.lastIndexOf(hay, needle) !== wantLast) throw new Error(`${name} lastIndexOf ${[...hay]} ${[...needle]}`)
      }
      return indexOfBytes(hay, needle, from) === wantFirst && lastIndexOfBytes(hay, needle) === wantLast
    }),
    { numRuns: 2000 },
  )
  const sub = new Uint8Array([10, 10, 1, 10, 10]).subarray(1)
  t.is(indexOfBytes(sub, new Uint8Array([10, 10])), 2, 'offsets are relative to the view')
  t.is(lastIndexOfBytes(sub, new Uint8Array([10, 10])), 2)
})

test('bytes: concat, equality, copies and big-endian numbers', (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 20 }), { maxLength: 6 }), (parts) => Buffer.concat(parts).equals(concatBytes(parts))),
    RUNS,
  )
  plain(t, concatBytes([new Uint8Array([1]), new Uint8Array([2])]), 'concatBytes')
  for (const [, c] of paths) {
    const u = c.allocUninitialised(700)
    plain(t, u, `${c.name} allocUninitialised`)
    t.is(u.length, 700)
  }
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 8 }), fc.nat(4), (b, off) => {
      const buf = Buffer.from(b)
      return (off + 2 > b.length || readUint16be(b, off) === buf.readUInt16BE(off)) && (off + 4 > b.length || readUint32be(b, off) === buf.readUInt32BE(off))
    }),
  )
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
      const b = Buffer.alloc(4)
      b.writeUInt32BE(n)
      return b.equals(uint32be(n)) && b.subarray(2).equals(uint16be(n & 0xffff))
    }),
  )
  t.true(bytesEqual(new Uint8Array([1, 2]), Buffer.from([1, 2])))
  t.false(bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3])))
  const b = Buffer.from([1, 2, 3])
  const c = copyBytes(b)
  plain(t, c, 'copyBytes')
  c[0] = 9
  t.is(b[0], 1, 'copyBytes copies (a Buffer slice would not)')
})
