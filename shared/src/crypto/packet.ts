/**
 * OpenPGP packet framing (RFC 4880 §4.2), the subset snapd's envelope can hold:
 * exactly one packet, new- or old-format header, definite length.
 */
import { VaultError } from '../errors.js'
import { readUint16be, readUint32be } from './bytes.js'

export interface Packet {
  tag: number
  body: Uint8Array
}

/** New-format header for a packet of `len` body bytes (what x/crypto writes). */
export function writePacketHeader(tag: number, len: number): Uint8Array {
  const t = 0xc0 | tag
  if (len < 192) return new Uint8Array([t, len])
  if (len < 8384) {
    const l = len - 192
    return new Uint8Array([t, (l >> 8) + 192, l & 0xff])
  }
  return new Uint8Array([t, 0xff, len >>> 24, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff])
}

/**
 * Reads the single packet of `data`. Trailing bytes are an error ("spurious
 * trailing data"), as is a packet longer than the data ("unexpected EOF").
 */
export function readPacket(data: Uint8Array, kind: string): Packet {
  const code = kind === 'signature' ? 'SV_SIGNATURE_INVALID' : 'SV_KEY_INVALID'
  const fail = (reason: string, message = `cannot decode ${kind}: ${reason}`): never => {
    throw new VaultError(code, message, { details: { reason } })
  }
  if (data.length < 2) fail('unexpected EOF')
  const first = data[0]!
  if ((first & 0x80) === 0) fail('tag byte does not have MSB set')
  let tag: number
  let len: number
  let off: number
  if (first & 0x40) {
    tag = first & 0x3f
    const l0 = data[1]!
    if (l0 < 192) {
      len = l0
      off = 2
    } else if (l0 < 224) {
      if (data.length < 3) fail('unexpected EOF')
      len = ((l0 - 192) << 8) + data[2]! + 192
      off = 3
    } else if (l0 === 255) {
      if (data.length < 6) fail('unexpected EOF')
      len = readUint32be(data, 2)
      off = 6
    } else {
      return fail('partial body lengths are not supported')
    }
  } else {
    tag = (first & 0x3f) >> 2
    const lt = first & 3
    if (lt === 3) return fail('indeterminate packet length is not supported')
    const n = 1 << lt
    if (data.length < 1 + n) fail('unexpected EOF')
    len = n === 1 ? data[1]! : n === 2 ? readUint16be(data, 1) : readUint32be(data, 1)
    off = 1 + n
  }
  if (off + len > data.length) fail('unexpected EOF')
  if (off + len < data.length) fail('spurious trailing data', `${kind} has spurious trailing data`)
  return { tag, body: data.subarray(off, off + len) }
}
