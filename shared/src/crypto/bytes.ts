/**
 * Small byte helpers shared by the codec. Buffer is Node's Uint8Array
 * subclass; the codec runs on Node (vault and Pi) only.
 */
import { Buffer } from 'node:buffer'

export function toBuffer(data: Uint8Array | string): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
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

export function uint32be(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0, 0)
  return b
}

/** base64url without padding (key ids). */
export function base64url(data: Uint8Array): string {
  return toBuffer(data).toString('base64url')
}
