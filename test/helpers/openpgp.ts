/**
 * Crafting OpenPGP packets in snapd's v1 envelope, independently of the codec
 * (node:crypto does the RSA), to make the non-canonical and hostile inputs the
 * crypto tests need: old-format headers, other creation times, padded MPIs,
 * other digests, extra or misplaced subpackets, v3 packets.
 */
import { createHash, sign as rsaSign } from 'node:crypto'

/** OpenPGP hash ids (RFC 4880 §9.4) and node's names for them. */
export const HASHES = {
  md5: { id: 1, node: 'md5' },
  sha1: { id: 2, node: 'sha1' },
  ripemd160: { id: 3, node: 'ripemd160' },
  sha256: { id: 8, node: 'sha256' },
  sha384: { id: 9, node: 'sha384' },
  sha512: { id: 10, node: 'sha512' },
  sha224: { id: 11, node: 'sha224' },
} as const
export type HashName = keyof typeof HASHES

/** base64( 0x01 || data ), wrapped at 76 columns like snapd. */
export function v1Text(data: Uint8Array, wrap = 76): string {
  const flat = Buffer.concat([Buffer.from([1]), data]).toString('base64')
  const lines: string[] = []
  for (let i = 0; i < flat.length; i += wrap) lines.push(flat.slice(i, i + wrap))
  return lines.join('\n')
}

/** The bytes after the 0x01 of a v1 text. */
export function fromV1Text(text: string): Buffer {
  const raw = Buffer.from(text.replace(/\s+/g, ''), 'base64')
  if (raw[0] !== 1) throw new Error('not a v1 envelope')
  return raw.subarray(1)
}

/** A packet with a new-format (default) or old-format header. */
export function packet(tag: number, body: Uint8Array, format: 'new' | 'old' = 'new'): Buffer {
  const len = body.length
  let head: Buffer
  if (format === 'new') {
    if (len < 192) head = Buffer.from([0xc0 | tag, len])
    else if (len < 8384) head = Buffer.from([0xc0 | tag, ((len - 192) >> 8) + 192, (len - 192) & 0xff])
    else {
      head = Buffer.alloc(6)
      head[0] = 0xc0 | tag
      head[1] = 0xff
      head.writeUInt32BE(len, 2)
    }
  } else if (len < 256) head = Buffer.from([0x80 | (tag << 2), len])
  else if (len < 65536) {
    head = Buffer.alloc(3)
    head[0] = 0x80 | (tag << 2) | 1
    head.writeUInt16BE(len, 1)
  } else {
    head = Buffer.alloc(5)
    head[0] = 0x80 | (tag << 2) | 2
    head.writeUInt32BE(len, 1)
  }
  return Buffer.concat([head, body])
}

/** Splits one packet into tag and body (new or old format, definite lengths). */
export function unpacket(data: Buffer): { tag: number; body: Buffer } {
  const first = data[0]!
  if (first & 0x40) {
    const l0 = data[1]!
    if (l0 < 192) return { tag: first & 0x3f, body: data.subarray(2, 2 + l0) }
    if (l0 < 224) return { tag: first & 0x3f, body: data.subarray(3, 3 + ((l0 - 192) << 8) + data[2]! + 192) }
    return { tag: first & 0x3f, body: data.subarray(6, 6 + data.readUInt32BE(2)) }
  }
  const lt = first & 3
  const n = 1 << lt
  const len = n === 1 ? data[1]! : n === 2 ? data.readUInt16BE(1) : data.readUInt32BE(1)
  return { tag: (first >> 2) & 0x0f, body: data.subarray(1 + n, 1 + n + len) }
}

function bitLength(b: Uint8Array): number {
  let i = 0
  while (i < b.length && b[i] === 0) i++
  if (i === b.length) return 0
  return (b.length - i - 1) * 8 + (32 - Math.clz32(b[i]!))
}

/**
 * An MPI. 'exact': exact bit count, no leading zero bytes (RFC, GnuPG).
 * 'bytes': bit count 8 x byte length, leading zeros kept (what x/crypto writes for signatures).
 */
export function mpi(value: Uint8Array, style: 'exact' | 'bytes' = 'exact'): Buffer {
  let v = Buffer.from(value)
  const head = Buffer.alloc(2)
  if (style === 'exact') {
    let i = 0
    while (i < v.length - 1 && v[i] === 0) i++
    v = v.subarray(i)
    head.writeUInt16BE(bitLength(v))
  } else head.writeUInt16BE(v.length * 8)
  return Buffer.concat([head, v])
}

/** One signature subpacket (RFC 4880 §5.2.3.1), one-octet length. */
export function subpacket(type: number, data: Uint8Array, critical = false): Buffer {
  return Buffer.concat([Buffer.from([1 + data.length, (critical ? 0x80 : 0) | type]), data])
}

export function creationTimeSubpacket(seconds: number): Buffer {
  const d = Buffer.alloc(4)
  d.writeUInt32BE(seconds)
  return subpacket(2, d)
}

export interface SignatureSpec {
  /** default 4 */
  version?: number
  /** default 0 (binary document) */
  sigType?: number
  /** default 1 (RSA) */
  pubKeyAlgo?: number
  /** default sha512 */
  hash?: HashName
  /** raw hash id written in the packet, overriding `hash`'s id (the digest is still `hash`) */
  hashId?: number
  /** hashed subpackets, default: one creation time */
  hashed?: Buffer
  /** unhashed subpackets, default: none */
  unhashed?: Buffer
  /** default 'bytes' (x/crypto's style) */
  mpiStyle?: 'exact' | 'bytes'
  /** packet header format, default 'new' */
  format?: 'new' | 'old'
  /** replaces the computed hash tag */
  hashTag?: Buffer
}

export const DEFAULT_SIG_TIME = 1704067200 // 2024-01-01T00:00:00Z

/**
 * A v4 signature over `content` made with node:crypto and the PEM private
 * key, laid out as x/crypto does unless `spec` says otherwise. Returns the v1
 * text (no trailing LF).
 */
export function craftSignature(content: Uint8Array, privatePem: string, spec: SignatureSpec = {}): string {
  const hash = HASHES[spec.hash ?? 'sha512']
  const hashed = spec.hashed ?? creationTimeSubpacket(DEFAULT_SIG_TIME)
  const unhashed = spec.unhashed ?? Buffer.alloc(0)
  const hl = Buffer.alloc(2)
  hl.writeUInt16BE(hashed.length)
  const prefix = Buffer.concat([Buffer.from([spec.version ?? 4, spec.sigType ?? 0, spec.pubKeyAlgo ?? 1, spec.hashId ?? hash.id]), hl, hashed])
  const trailer = Buffer.alloc(6)
  trailer[0] = 4
  trailer[1] = 0xff
  trailer.writeUInt32BE(prefix.length, 2)
  const data = Buffer.concat([content, prefix, trailer])
  const value = rsaSign(hash.node, data, privatePem)
  const tag = spec.hashTag ?? createHash(hash.node).update(data).digest().subarray(0, 2)
  const ul = Buffer.alloc(2)
  ul.writeUInt16BE(unhashed.length)
  const body = Buffer.concat([prefix, ul, unhashed, tag, mpi(value, spec.mpiStyle ?? 'bytes')])
  return v1Text(packet(2, body, spec.format ?? 'new'))
}

/** A v4 RSA public-key packet in the v1 envelope, canonical unless told otherwise. */
export function publicKeyText(n: Uint8Array, e: Uint8Array, opts: { time?: number; algo?: number; format?: 'new' | 'old'; mpiStyle?: 'exact' | 'bytes'; padN?: number; version?: number; wrap?: number } = {}): string {
  const t = Buffer.alloc(4)
  t.writeUInt32BE(opts.time ?? 1451606400)
  const nb = Buffer.concat([Buffer.alloc(opts.padN ?? 0), Buffer.from(n)])
  const body = Buffer.concat([Buffer.from([opts.version ?? 4]), t, Buffer.from([opts.algo ?? 1]), mpi(nb, opts.mpiStyle ?? 'exact'), mpi(e, opts.mpiStyle ?? 'exact')])
  return v1Text(packet(6, body, opts.format ?? 'new'), opts.wrap ?? 76)
}
