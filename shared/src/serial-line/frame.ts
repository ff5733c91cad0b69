/**
 * Serial-line frames: the byte layout a station PC and a unit's device agent
 * exchange over a UART (docs/serial-line.md has the whole protocol).
 *
 *   offset size
 *   0      2   start marker 0xA5 0xC3
 *   2      1   version 0x01
 *   3      1   type: 1 DATA, 2 ACK, 3 NACK, 4 HELLO, 5 HELLO_ACK
 *   4      4   session id, u32 big endian
 *   8      4   sequence number, u32 big endian
 *   12     2   payload length n, u16 big endian (at most the decoder's maxPayload)
 *   14     4   header CRC-32 over bytes 0..13
 *   18     n   payload
 *   18+n   4   frame CRC-32 over bytes 0..18+n-1
 *
 * Why a header CRC as well: a length field corrupted on the line would
 * otherwise make the decoder wait for up to maxPayload bytes of the next
 * frames before the frame CRC fails; with it the header is refused at once
 * and the decoder resynchronises on the next start marker. The marker is two
 * bytes outside ASCII, so console text (a boot log on the same UART) does not
 * contain it.
 *
 * {@link FrameDecoder} holds at most one maximal frame: its buffer is
 * allocated once at `HEADER_BYTES + maxPayload + TRAILER_BYTES`, input is fed
 * through it in slices, and a length above `maxPayload` is refused from the
 * header alone (no allocation follows from a length field).
 */
import { crc32 } from './crc32.js'

export const FRAME_MAGIC = [0xa5, 0xc3] as const
export const FRAME_VERSION = 1
export const HEADER_BYTES = 18
export const TRAILER_BYTES = 4
/** Overhead of one frame around its payload. */
export const FRAME_OVERHEAD = HEADER_BYTES + TRAILER_BYTES
/** Default and upper bound of a frame's payload. */
export const DEFAULT_MAX_PAYLOAD = 1024
export const MAX_PAYLOAD_LIMIT = 16 * 1024

export const FrameType = {
  DATA: 1,
  ACK: 2,
  NACK: 3,
  HELLO: 4,
  HELLO_ACK: 5,
} as const
export type FrameType = (typeof FrameType)[keyof typeof FrameType]

export interface Frame {
  type: FrameType
  /** u32 */
  session: number
  /** u32 */
  seq: number
  payload: Uint8Array
}

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new TypeError(`${name} must be a u32, got ${v}`)
}

/**
 * Encodes one frame. Throws TypeError on a type outside the table, a session
 * or sequence number outside u32, or a payload above `maxPayload` (callers
 * split messages; see the link).
 */
export function encodeFrame(frame: Frame, maxPayload = DEFAULT_MAX_PAYLOAD): Uint8Array {
  if (!isFrameType(frame.type)) throw new TypeError(`unknown frame type ${frame.type}`)
  checkU32('session', frame.session)
  checkU32('seq', frame.seq)
  const n = frame.payload.length
  if (n > maxPayload || n > MAX_PAYLOAD_LIMIT) throw new TypeError(`payload of ${n} bytes is above the ${Math.min(maxPayload, MAX_PAYLOAD_LIMIT)} byte bound`)
  const out = new Uint8Array(FRAME_OVERHEAD + n)
  const v = new DataView(out.buffer)
  out[0] = FRAME_MAGIC[0]
  out[1] = FRAME_MAGIC[1]
  out[2] = FRAME_VERSION
  out[3] = frame.type
  v.setUint32(4, frame.session)
  v.setUint32(8, frame.seq)
  v.setUint16(12, n)
  v.setUint32(14, crc32(out, 0, 14))
  out.set(frame.payload, HEADER_BYTES)
  v.setUint32(HEADER_BYTES + n, crc32(out, 0, HEADER_BYTES + n))
  return out
}

export function isFrameType(t: number): t is FrameType {
  return Number.isInteger(t) && t >= FrameType.DATA && t <= FrameType.HELLO_ACK
}

/** What the decoder threw away, cumulative. */
export interface DecoderStats {
  frames: number
  /** bytes skipped while looking for a start marker (or skipped past a refused one) */
  garbageBytes: number
  /** headers refused: bad header CRC, unknown version or type */
  badHeaders: number
  /** headers refused because the length is above maxPayload */
  oversized: number
  /** frames whose header was good but whose frame CRC failed */
  badCrc: number
}

export interface FrameDecoderOptions {
  /** Largest payload accepted (default 1024, at most 16384). */
  maxPayload?: number
}

/**
 * Incremental decoder: `push()` any chunks of the byte stream, get whole
 * frames back, in order. Never throws on input; what it drops is counted in
 * `stats`. A refused header or frame costs one byte: scanning restarts just
 * after its start marker, so a real frame that began inside the garbage is
 * still found.
 */
export class FrameDecoder {
  readonly maxPayload: number
  readonly stats: DecoderStats = { frames: 0, garbageBytes: 0, badHeaders: 0, oversized: 0, badCrc: 0 }
  readonly #buf: Uint8Array
  readonly #view: DataView
  #len = 0

  constructor(options: FrameDecoderOptions = {}) {
    const max = options.maxPayload ?? DEFAULT_MAX_PAYLOAD
    if (!Number.isInteger(max) || max < 1 || max > MAX_PAYLOAD_LIMIT) throw new TypeError(`maxPayload must be 1..${MAX_PAYLOAD_LIMIT}, got ${max}`)
    this.maxPayload = max
    this.#buf = new Uint8Array(FRAME_OVERHEAD + max)
    this.#view = new DataView(this.#buf.buffer)
  }

  /** Bytes currently held (always below one maximal frame after push returns). */
  get buffered(): number {
    return this.#len
  }

  /** Feeds bytes; returns the frames completed by them. */
  push(chunk: Uint8Array): Frame[] {
    const out: Frame[] = []
    let off = 0
    while (off < chunk.length) {
      const n = Math.min(this.#buf.length - this.#len, chunk.length - off)
      this.#buf.set(chunk.subarray(off, off + n), this.#len)
      this.#len += n
      off += n
      this.#drain(out)
    }
    return out
  }

  /** Forgets any partial frame (a port was closed and reopened). */
  reset(): void {
    this.stats.garbageBytes += this.#len
    this.#len = 0
  }

  #drain(out: Frame[]): void {
    const b = this.#buf
    let pos = 0
    for (;;) {
      // next start marker, or a lone first byte at the very end
      let i = pos
      while (i < this.#len && !(b[i] === FRAME_MAGIC[0] && (i + 1 === this.#len || b[i + 1] === FRAME_MAGIC[1]))) i++
      this.stats.garbageBytes += i - pos
      pos = i
      if (this.#len - pos < HEADER_BYTES) break
      const type = b[pos + 3]!
      if (b[pos + 2] !== FRAME_VERSION || !isFrameType(type) || this.#view.getUint32(pos + 14) !== crc32(b, pos, pos + 14)) {
        this.stats.badHeaders++
        this.stats.garbageBytes++
        pos++
        continue
      }
      const n = this.#view.getUint16(pos + 12)
      if (n > this.maxPayload) {
        this.stats.oversized++
        this.stats.garbageBytes++
        pos++
        continue
      }
      const total = FRAME_OVERHEAD + n
      if (this.#len - pos < total) break
      if (this.#view.getUint32(pos + HEADER_BYTES + n) !== crc32(b, pos, pos + HEADER_BYTES + n)) {
        this.stats.badCrc++
        this.stats.garbageBytes++
        pos++
        continue
      }
      out.push({ type, session: this.#view.getUint32(pos + 4), seq: this.#view.getUint32(pos + 8), payload: b.slice(pos + HEADER_BYTES, pos + HEADER_BYTES + n) })
      this.stats.frames++
      pos += total
    }
    if (pos > 0) {
      b.copyWithin(0, pos, this.#len)
      this.#len -= pos
    }
  }
}
