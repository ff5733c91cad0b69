/**
 * Byte helpers for the codec, on plain Uint8Arrays so that it runs in a
 * browser as on Node: UTF-8 (TextEncoder/TextDecoder semantics: a lone
 * surrogate encodes as U+FFFD, invalid bytes decode to U+FFFD, a BOM is kept),
 * standard base64 (with `=`), base64url (no padding), latin1, hex, search,
 * concatenation, comparison and big-endian integers.
 *
 * Speed: on Node the text codecs and the byte search run on `globalThis.Buffer`
 * when it exists, found at run time and never imported, so the module stays
 * importable in a browser. Measured on Node 20 for the decoder's inputs (a few
 * hundred bytes): Buffer.from(string) is 2-3 times faster than TextEncoder,
 * and Buffer's base64 and indexOf are native. Elsewhere the portable
 * implementations below run. Both give the same results for every input
 * (test/shared/crypto/bytes.test.ts compares them on random inputs), and every
 * result is a plain Uint8Array, never a Buffer, whichever path made it. On
 * Node a small result may be a view into Buffer's shared 8 KiB pool (Buffer's
 * own results are, and allocating from the pool halves the cost of a concat
 * of a few hundred bytes): use `byteOffset` and `byteLength` with `.buffer`,
 * never `.buffer` alone.
 */

/** The byte codecs, one implementation of each. Inputs of the base64 and hex decoders are already validated. */
export interface ByteCodecs {
  readonly name: string
  utf8Encode(s: string): Uint8Array
  latin1Decode(b: Uint8Array): string
  base64Encode(b: Uint8Array): string
  base64Decode(s: string): Uint8Array
  base64urlEncode(b: Uint8Array): string
  base64urlDecode(s: string): Uint8Array
  hexEncode(b: Uint8Array): string
  indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number
  lastIndexOf(hay: Uint8Array, needle: Uint8Array): number
  /** `n` bytes of any content, to be overwritten entirely */
  allocUninitialised(n: number): Uint8Array
}

// ---- portable implementations (browsers, and any runtime without Buffer)

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
/** char code -> 6-bit value for both alphabets; 255 for anything else */
const B64_VALUE = new Uint8Array(128).fill(255)
for (let i = 0; i < 64; i++) {
  B64_VALUE[B64.charCodeAt(i)] = i
  B64_VALUE[B64URL.charCodeAt(i)] = i
}
const HEX = '0123456789abcdef'

/** String.fromCharCode over bytes, in chunks (its arguments are bounded by the stack). */
function charCodes(b: Uint8Array): string {
  const CHUNK = 8192
  if (b.length <= CHUNK) return String.fromCharCode.apply(null, b as unknown as number[])
  let s = ''
  for (let off = 0; off < b.length; off += CHUNK) s += String.fromCharCode.apply(null, b.subarray(off, off + CHUNK) as unknown as number[])
  return s
}

function encode64(b: Uint8Array, alphabet: string, pad: boolean): string {
  const out: string[] = []
  let i = 0
  for (; i + 2 < b.length; i += 3) {
    const v = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!
    out.push(alphabet[v >> 18]! + alphabet[(v >> 12) & 63]! + alphabet[(v >> 6) & 63]! + alphabet[v & 63]!)
  }
  const rest = b.length - i
  if (rest === 1) {
    const v = b[i]! << 16
    out.push(alphabet[v >> 18]! + alphabet[(v >> 12) & 63]! + (pad ? '==' : ''))
  } else if (rest === 2) {
    const v = (b[i]! << 16) | (b[i + 1]! << 8)
    out.push(alphabet[v >> 18]! + alphabet[(v >> 12) & 63]! + alphabet[(v >> 6) & 63]! + (pad ? '=' : ''))
  }
  return out.join('')
}

/** Decodes validated base64 of either alphabet, padded or not; bits past the last whole byte are dropped (as Go and Buffer do). */
function decode64(s: string): Uint8Array {
  let len = s.length
  while (len > 0 && s.charCodeAt(len - 1) === 61) len--
  const out = new Uint8Array(Math.floor((len * 6) / 8))
  let acc = 0
  let bits = 0
  let o = 0
  for (let i = 0; i < len; i++) {
    acc = ((acc << 6) | B64_VALUE[s.charCodeAt(i)]!) & 0xffffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[o++] = (acc >> bits) & 0xff
    }
  }
  return out
}

function hexEncodePortable(b: Uint8Array): string {
  let s = ''
  for (let i = 0; i < b.length; i++) s += HEX[b[i]! >> 4]! + HEX[b[i]! & 15]!
  return s
}

function indexOfPortable(hay: Uint8Array, needle: Uint8Array, from: number): number {
  if (needle.length === 0) return Math.min(Math.max(from, 0), hay.length)
  const first = needle[0]!
  const last = hay.length - needle.length
  for (let i = hay.indexOf(first, Math.max(from, 0)); i !== -1 && i <= last; i = hay.indexOf(first, i + 1)) {
    let j = 1
    while (j < needle.length && hay[i + j] === needle[j]) j++
    if (j === needle.length) return i
  }
  return -1
}

function lastIndexOfPortable(hay: Uint8Array, needle: Uint8Array): number {
  if (needle.length === 0) return hay.length
  if (needle.length > hay.length) return -1
  const first = needle[0]!
  for (let i = hay.lastIndexOf(first, hay.length - needle.length); i !== -1; i = i === 0 ? -1 : hay.lastIndexOf(first, i - 1)) {
    let j = 1
    while (j < needle.length && hay[i + j] === needle[j]) j++
    if (j === needle.length) return i
  }
  return -1
}

const textEncoder = new TextEncoder()

export const portableCodecs: ByteCodecs = {
  name: 'portable',
  utf8Encode: (s) => textEncoder.encode(s),
  latin1Decode: charCodes,
  base64Encode: (b) => encode64(b, B64, true),
  base64Decode: decode64,
  base64urlEncode: (b) => encode64(b, B64URL, false),
  base64urlDecode: decode64,
  hexEncode: hexEncodePortable,
  indexOf: indexOfPortable,
  lastIndexOf: lastIndexOfPortable,
  allocUninitialised: (n) => new Uint8Array(n),
}

// ---- Node's Buffer, when the runtime has one (looked up, never imported)

/** The part of Node's Buffer used here (declared so that no Node type is needed). */
interface BufferView extends Pick<Uint8Array, 'buffer' | 'byteOffset' | 'byteLength'> {
  toString(encoding: 'latin1' | 'base64' | 'base64url' | 'hex'): string
  indexOf(value: Uint8Array, byteOffset: number): number
  lastIndexOf(value: Uint8Array): number
}
interface BufferStatic {
  allocUnsafe(size: number): BufferView
  from(data: ArrayBufferLike, byteOffset: number, length: number): BufferView
  from(data: string, encoding: 'utf8' | 'base64' | 'base64url'): BufferView
}

function bufferCodecsOf(B: BufferStatic): ByteCodecs {
  const view = (b: Uint8Array): BufferView => B.from(b.buffer, b.byteOffset, b.byteLength)
  const plain = (b: BufferView): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  return {
    name: 'buffer',
    utf8Encode: (s) => plain(B.from(s, 'utf8')),
    latin1Decode: (b) => view(b).toString('latin1'),
    base64Encode: (b) => view(b).toString('base64'),
    base64Decode: (s) => plain(B.from(s, 'base64')),
    base64urlEncode: (b) => view(b).toString('base64url'),
    base64urlDecode: (s) => plain(B.from(s, 'base64url')),
    hexEncode: (b) => view(b).toString('hex'),
    indexOf: (hay, needle, from) => (needle.length === 0 ? Math.min(Math.max(from, 0), hay.length) : view(hay).indexOf(needle, Math.max(from, 0))),
    lastIndexOf: (hay, needle) => (needle.length === 0 ? hay.length : view(hay).lastIndexOf(needle)),
    allocUninitialised: (n) => plain(B.allocUnsafe(n)),
  }
}

function findBuffer(): BufferStatic | undefined {
  const B = (globalThis as { Buffer?: unknown }).Buffer as (BufferStatic & { isBuffer?: unknown }) | undefined
  return typeof B?.from === 'function' && typeof B.isBuffer === 'function' ? B : undefined
}

/** The Buffer-backed codecs, or undefined where there is no Buffer (a browser). */
export const bufferCodecs: ByteCodecs | undefined = ((B) => (B ? bufferCodecsOf(B) : undefined))(findBuffer())

/** The codecs in use: `bufferCodecs` on Node, `portableCodecs` elsewhere. */
const codecs: ByteCodecs = bufferCodecs ?? portableCodecs

// ---- UTF-8

const utf8Lax = new TextDecoder('utf-8', { ignoreBOM: true })
const utf8Fatal = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true })

/** UTF-8 bytes of `s` (a lone surrogate becomes EF BF BD). */
export function utf8Encode(s: string): Uint8Array {
  return codecs.utf8Encode(s)
}

/**
 * The text of UTF-8 bytes; invalid sequences become U+FFFD and a leading BOM
 * is kept (what Buffer's toString('utf8') gives). TextDecoder on every path:
 * on Node it is as fast as Buffer's decoder.
 */
export function utf8Decode(b: Uint8Array): string {
  return utf8Lax.decode(b)
}

/** The text of UTF-8 bytes, or undefined when they are not valid UTF-8 (Go's utf8.Valid; surrogates are invalid). */
export function utf8DecodeStrict(b: Uint8Array): string | undefined {
  try {
    return utf8Fatal.decode(b)
  } catch {
    return undefined
  }
}

/** Whether the bytes are valid UTF-8 (Go's utf8.Valid). */
export function isUtf8(b: Uint8Array): boolean {
  return b.length === 0 || utf8DecodeStrict(b) !== undefined
}

/** One char per byte (U+0000..U+00FF): ISO 8859-1, not windows-1252 (what TextDecoder calls latin1). */
export function latin1Decode(b: Uint8Array): string {
  return codecs.latin1Decode(b)
}

// ---- base64 and hex

const B64_STD_RE = /^[A-Za-z0-9+/]*={0,2}$/
const B64_URL_RE = /^[A-Za-z0-9_-]*$/

/** Standard base64 with `=` padding (RFC 4648 §4). */
export function base64Encode(b: Uint8Array): string {
  return codecs.base64Encode(b)
}

/**
 * Decodes standard base64 as Go's base64.StdEncoding does: padding required
 * (length a multiple of 4), no character outside the alphabet, no whitespace;
 * unused low bits of the last character are ignored. Returns undefined for
 * anything else.
 */
export function base64Decode(s: string): Uint8Array | undefined {
  if (s.length % 4 !== 0 || !B64_STD_RE.test(s)) return undefined
  return codecs.base64Decode(s)
}

/** base64url without padding (RFC 4648 §5; key ids, JWK numbers). */
export function base64urlEncode(b: Uint8Array): string {
  return codecs.base64urlEncode(b)
}

/**
 * Decodes base64url without padding as Go's base64.RawURLEncoding does
 * (no `=`, a length of 4n+1 is impossible); undefined otherwise.
 */
export function base64urlDecode(s: string): Uint8Array | undefined {
  if (s.length % 4 === 1 || !B64_URL_RE.test(s)) return undefined
  return codecs.base64urlDecode(s)
}

/** Lower-case hex. */
export function hexEncode(b: Uint8Array): string {
  return codecs.hexEncode(b)
}

/** Decodes hex (either case, even length); undefined otherwise. */
export function hexDecode(s: string): Uint8Array | undefined {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return undefined
  const out = new Uint8Array(s.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16)
  return out
}

// ---- arrays

/** Offset of the first `needle` in `hay` at or after `from`, or -1. */
export function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  return codecs.indexOf(hay, needle, from)
}

/** Offset of the last `needle` in `hay`, or -1. */
export function lastIndexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  return codecs.lastIndexOf(hay, needle)
}

/** `n` bytes of unspecified content, for a caller that overwrites every one (pooled on Node). */
export function uninitialisedBytes(n: number): Uint8Array {
  return codecs.allocUninitialised(n)
}

/** The parts one after the other, in a new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let len = 0
  for (const p of parts) len += p.length
  const out = codecs.allocUninitialised(len)
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.length
  }
  return out
}

/** Same length and same bytes (not constant-time: for public data). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** A copy as a plain Uint8Array (of a Buffer too, whose own slice() is a view). */
export function copyBytes(b: Uint8Array): Uint8Array {
  const out = codecs.allocUninitialised(b.length)
  out.set(b)
  return out
}

/** Big-endian bytes without leading zero bytes (an empty array stays empty). */
export function stripLeadingZeros(b: Uint8Array): Uint8Array {
  let i = 0
  while (i < b.length && b[i] === 0) i++
  return b.subarray(i)
}

/** Number of significant bits of a big-endian unsigned integer. */
export function bitLength(b: Uint8Array): number {
  const s = stripLeadingZeros(b)
  if (s.length === 0) return 0
  return (s.length - 1) * 8 + (32 - Math.clz32(s[0]!))
}

export function uint16be(n: number): Uint8Array {
  const b = new Uint8Array(2)
  b[0] = n >>> 8
  b[1] = n
  return b
}

export function uint32be(n: number): Uint8Array {
  const b = new Uint8Array(4)
  b[0] = n >>> 24
  b[1] = n >>> 16
  b[2] = n >>> 8
  b[3] = n
  return b
}

/** The big-endian 16-bit number at `off` (the caller checks the bounds). */
export function readUint16be(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!
}

/** The big-endian 32-bit number at `off` (the caller checks the bounds). */
export function readUint32be(b: Uint8Array, off: number): number {
  return b[off]! * 0x1000000 + ((b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!)
}
