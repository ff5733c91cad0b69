/**
 * Line framing for serial links: splitting the byte stream into lines, with a
 * bound on line length, and the escapes allowed in configured query strings.
 *
 * The agent talks to line-oriented devices (a test jig, a modem, an MCU
 * console): it writes one query and reads lines back. Serialport's
 * ReadlineParser splits on a delimiter but buffers without limit, so a device
 * that streams binary or never sends the delimiter would grow memory forever.
 * {@link BoundedLineParser} adds the bound.
 */

// The parser package itself, not the serialport meta-package: that one loads
// every binding and parser (about 10 MB) into an agent that may never open a port.
import { ReadlineParser } from '@serialport/parser-readline'

export const DEFAULT_DELIMITER = '\r\n'
export const DEFAULT_MAX_LINE_LENGTH = 1024

export interface BoundedLineParserOptions {
  /** Line delimiter, not included in emitted lines. Default "\r\n". */
  delimiter?: string
  /** Longest line kept, in bytes, without its delimiter. Default 1024. */
  maxLineLength?: number
}

/**
 * A ReadlineParser (utf8 strings out) that drops any line longer than
 * `maxLineLength` bytes instead of buffering it: the bytes seen so far are
 * discarded, everything up to the next delimiter is skipped, and an
 * `'oversized'` event is emitted once per dropped line. Framing resumes after
 * that delimiter, so one garbage burst costs one line, not the link.
 */
export class BoundedLineParser extends ReadlineParser {
  readonly maxLineLength: number
  #discarding = false
  /** Last delimiter.length - 1 bytes skipped while discarding: a delimiter may straddle two chunks. */
  #carry: Buffer = Buffer.alloc(0)

  constructor(options: BoundedLineParserOptions = {}) {
    const delimiter = options.delimiter ?? DEFAULT_DELIMITER
    const maxLineLength = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH
    if (delimiter.length === 0) throw new TypeError('delimiter must not be empty')
    if (!Number.isInteger(maxLineLength) || maxLineLength < 1) throw new TypeError('maxLineLength must be a positive integer')
    super({ delimiter, encoding: 'utf8' })
    this.maxLineLength = maxLineLength
  }

  override _transform(chunk: Buffer, encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    let data = chunk
    if (this.#discarding) {
      const joined = Buffer.concat([this.#carry, data])
      const at = joined.indexOf(this.delimiter)
      if (at === -1) {
        this.#carry = joined.subarray(Math.max(0, joined.length - (this.delimiter.length - 1)))
        cb()
        return
      }
      this.#discarding = false
      this.#carry = Buffer.alloc(0)
      data = joined.subarray(at + this.delimiter.length)
    }
    super._transform(data, encoding, (err?: Error | null) => {
      if (err) {
        cb(err)
        return
      }
      if (this.buffer.length > this.maxLineLength) {
        this.buffer = Buffer.alloc(0)
        this.#discarding = true
        this.emit('oversized')
      }
      cb()
    })
  }

  /** Drops complete lines over the bound that arrived inside one chunk. */
  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (Buffer.isBuffer(chunk) && chunk.length > this.maxLineLength) {
      this.emit('oversized')
      return true
    }
    return super.push(chunk, encoding)
  }
}

/**
 * Turns a configured query string into the bytes to send. The escapes `\r`,
 * `\n`, `\t`, `\\` and `\xHH` (one raw byte) are decoded; everything else,
 * real control characters included, is sent as UTF-8. So "SN?\r\n" written
 * with YAML double quotes (real CR LF) and 'SN?\\r\\n' from JSON (backslash
 * escapes) give the same bytes.
 *
 * @throws TypeError on any other escape, so a typo fails when the
 *   configuration is checked instead of sending unexpected bytes to a device.
 */
export function encodeQuery(text: string): Buffer {
  const parts: Buffer[] = []
  const escape = /\\(x[0-9A-Fa-f]{2}|[\s\S]|$)/g
  let last = 0
  for (let m = escape.exec(text); m !== null; m = escape.exec(text)) {
    parts.push(Buffer.from(text.slice(last, m.index), 'utf8'))
    last = m.index + m[0].length
    const esc = m[1] ?? ''
    if (esc === 'r') parts.push(Buffer.from('\r'))
    else if (esc === 'n') parts.push(Buffer.from('\n'))
    else if (esc === 't') parts.push(Buffer.from('\t'))
    else if (esc === '\\') parts.push(Buffer.from('\\'))
    else if (esc.length === 3) parts.push(Buffer.from([Number.parseInt(esc.slice(1), 16)]))
    else throw new TypeError(`unsupported escape ${JSON.stringify(m[0])} in query (allowed: \\r \\n \\t \\\\ \\xHH)`)
  }
  parts.push(Buffer.from(text.slice(last), 'utf8'))
  return Buffer.concat(parts)
}
