/**
 * The serial-line link: reliable, ordered, exactly-once delivery of whole
 * messages over frames (frame.ts), between a **unit** (the device agent) and
 * a **station** (the PC it is wired to). Pure: no I/O and no Node module.
 * The caller attaches a writer while a port is open, feeds every byte read to
 * `receive()`, and detaches when the port closes; the link keeps its session
 * across detach/attach, which is how an unplugged unit resumes.
 *
 * Protocol (docs/serial-line.md is the reference):
 * - Stop-and-wait ARQ, per direction: a DATA frame carries the sender's
 *   sequence number; the receiver delivers it only if it is the next one it
 *   expects and answers ACK carrying the *next* sequence number it expects
 *   (cumulative). A duplicate is re-acknowledged and not delivered. A frame
 *   is retransmitted after `ackTimeoutMs` without its ACK, or at once on a
 *   NACK (sent by a receiver whose decoder just dropped a corrupted frame), at
 *   most `maxRetries` times; then every queued message fails with
 *   `retries-exhausted` and the session is dropped (a unit picks a new one).
 * - A DATA payload is one flags byte (bit 0 first fragment, bit 1 last
 *   fragment) and a fragment of a message; messages above one payload are
 *   split, reassembled by the receiver, and bounded by `maxMessage`.
 * - Sessions: the unit picks a random u32 session id and, on every attach
 *   (and after losing sync), sends HELLO {its next send seq; payload: its next
 *   expected seq, flags, its max payload} until a HELLO_ACK comes. A station
 *   that knows the session answers "resumed" with its own counters; both sides
 *   then treat a frame the other already has as acknowledged and retransmit
 *   the one it lacks, so nothing is delivered twice. A station that does not
 *   know it (restarted, or dropped it) starts a new session at the unit's
 *   counters and answers "new"; a unit that had an established session then
 *   fails its queued messages with `reset`, since the station lost them.
 *
 * Hazard: a HELLO of an old session delayed past a newer one would reset the
 * station to the old session. The line has no such delays (bytes arrive in
 * order or not at all); a relay that reorders frames would need a window.
 */
import { DEFAULT_MAX_PAYLOAD, FrameDecoder, FrameType, encodeFrame, type DecoderStats, type Frame } from './frame.js'

export type LinkRole = 'unit' | 'station'
export type LinkFailure = 'retries-exhausted' | 'closed' | 'reset' | 'too-large'

/** Why a `send()` did not complete. `reason` is stable; messages may change. */
export class SerialLineError extends Error {
  readonly reason: LinkFailure
  constructor(reason: LinkFailure, message: string) {
    super(message)
    this.name = 'SerialLineError'
    this.reason = reason
  }
}

export interface LinkTimers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export interface SerialLineLinkOptions {
  role: LinkRole
  /** Called with each message, exactly once, in order. */
  onMessage: (message: Uint8Array) => void
  /** The peer lost the session (station restarted, or dropped it after retries); queued sends failed with `reset`. */
  onReset?: () => void
  /** Largest frame payload this side accepts and sends (default 1024); the smaller of both sides' is used. */
  maxPayload?: number
  /** Largest message sent or reassembled (default 256 KiB). */
  maxMessage?: number
  /** Retransmission timeout (default 500 ms: a 1 KiB frame takes 92 ms at 115200 baud). */
  ackTimeoutMs?: number
  /** Retransmissions of one frame (or HELLOs) before giving up (default 10). */
  maxRetries?: number
  timers?: LinkTimers
  /** A fresh unit session id; default crypto.getRandomValues. */
  randomSession?: () => number
}

export interface LinkStats extends DecoderStats {
  dataSent: number
  retransmits: number
  duplicatesDropped: number
  nacksSent: number
  messagesDelivered: number
  oversizedMessagesDropped: number
  sessionsStarted: number
  resumes: number
}

const FIRST = 1
const LAST = 2
const RESUMED = 1
export const DEFAULT_MAX_MESSAGE = 256 * 1024

interface Outgoing {
  message: Uint8Array
  offset: number
  resolve: () => void
  reject: (err: SerialLineError) => void
}

const defaultTimers: LinkTimers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
}

function randomU32(): number {
  const a = new Uint32Array(1)
  globalThis.crypto.getRandomValues(a)
  return a[0]!
}

function u32(n: number): number {
  return n >>> 0
}

export class SerialLineLink {
  readonly role: LinkRole
  readonly #o: Required<Omit<SerialLineLinkOptions, 'onReset'>> & { onReset?: () => void }
  readonly #decoder: FrameDecoder
  readonly #stats = { dataSent: 0, retransmits: 0, duplicatesDropped: 0, nacksSent: 0, messagesDelivered: 0, oversizedMessagesDropped: 0, sessionsStarted: 0, resumes: 0 }
  #write: ((bytes: Uint8Array) => void) | undefined
  /** unit: always set; station: the unit's session once a HELLO came */
  #session: number | undefined
  /** unit: a HELLO_ACK came since the last attach; station: a session exists */
  #synced = false
  /** unit: this session had a HELLO_ACK before (a "new" answer now means the station lost it) */
  #established = false
  #sendNext = 0
  #recvNext = 0
  #peerMaxPayload = DEFAULT_MAX_PAYLOAD
  readonly #queue: Outgoing[] = []
  #outstanding: { seq: number; bytes: Uint8Array; nextOffset: number } | undefined
  #retries = 0
  #timer: unknown
  #partial: Uint8Array[] | undefined
  #partialBytes = 0
  #closed = false

  constructor(options: SerialLineLinkOptions) {
    this.role = options.role
    this.#o = {
      maxPayload: DEFAULT_MAX_PAYLOAD,
      maxMessage: DEFAULT_MAX_MESSAGE,
      ackTimeoutMs: 500,
      maxRetries: 10,
      timers: defaultTimers,
      randomSession: randomU32,
      ...options,
    }
    const { maxPayload, maxMessage, ackTimeoutMs, maxRetries } = this.#o
    if (!Number.isInteger(maxPayload) || maxPayload < 8) throw new TypeError('maxPayload must be an integer of at least 8')
    if (!Number.isInteger(maxMessage) || maxMessage < 1) throw new TypeError('maxMessage must be a positive integer')
    if (!(ackTimeoutMs > 0)) throw new TypeError('ackTimeoutMs must be positive')
    if (!Number.isInteger(maxRetries) || maxRetries < 0) throw new TypeError('maxRetries must be a non-negative integer')
    this.#decoder = new FrameDecoder({ maxPayload })
    if (this.role === 'unit') this.#newUnitSession()
  }

  /** The current session id (a station: undefined before the first HELLO). */
  get session(): number | undefined {
    return this.#session
  }

  get synced(): boolean {
    return this.#synced
  }

  get stats(): LinkStats {
    return { ...this.#decoder.stats, ...this.#stats }
  }

  /** A port opened: frames go to `write` from now on. A unit starts its HELLO. */
  attach(write: (bytes: Uint8Array) => void): void {
    if (this.#closed) throw new TypeError('attach() on a closed link')
    this.#write = write
    this.#decoder.reset()
    if (this.role === 'unit') {
      this.#synced = false
      this.#startHello()
    } else if (this.#outstanding) {
      this.#arm()
    }
  }

  /** The port closed: nothing is written until the next attach; the session and queued messages stay. */
  detach(): void {
    this.#write = undefined
    this.#disarm()
    if (this.role === 'unit') this.#synced = false
  }

  /** Bytes read from the port. */
  receive(chunk: Uint8Array): void {
    if (this.#closed) return
    const badBefore = this.#decoder.stats.badCrc
    for (const f of this.#decoder.push(chunk)) this.#onFrame(f)
    if (this.#decoder.stats.badCrc > badBefore && this.#synced && this.#session !== undefined) {
      this.#stats.nacksSent++
      this.#emit(FrameType.NACK, this.#recvNext)
    }
  }

  /**
   * Queues a message; resolves once the peer acknowledged its last fragment.
   * Rejects with SerialLineError: too-large (above maxMessage),
   * retries-exhausted, reset (the peer lost the session), closed.
   */
  send(message: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new SerialLineError('closed', 'the link is closed'))
    if (message.length > this.#o.maxMessage) return Promise.reject(new SerialLineError('too-large', `message of ${message.length} bytes is above ${this.#o.maxMessage}`))
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ message, offset: 0, resolve, reject })
      if (this.role === 'unit' && !this.#synced && this.#write && this.#timer === undefined) this.#startHello()
      this.#pump()
    })
  }

  /** Fails every queued message with `closed`; idempotent. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#disarm()
    this.#write = undefined
    this.#failAll('closed', 'the link was closed')
  }

  // --- frames in -------------------------------------------------------------

  #onFrame(f: Frame): void {
    if (f.type === FrameType.HELLO) {
      if (this.role === 'station') this.#onHello(f)
      return
    }
    if (f.type === FrameType.HELLO_ACK) {
      if (this.role === 'unit' && f.session === this.#session && !this.#synced) this.#onHelloAck(f)
      return
    }
    if (f.session !== this.#session || !this.#synced) {
      // A unit's frame of a session the station does not have: say which one it has, so the unit says HELLO.
      if (this.role === 'station' && f.type === FrameType.DATA) this.#emitRaw(FrameType.NACK, this.#session ?? 0, 0, new Uint8Array(0))
      else if (this.role === 'unit' && f.type === FrameType.NACK && this.#synced) {
        this.#synced = false
        this.#startHello()
      }
      return
    }
    switch (f.type) {
      case FrameType.DATA:
        return this.#onData(f)
      case FrameType.ACK:
        if (this.#outstanding && f.seq === u32(this.#outstanding.seq + 1)) this.#onAcked()
        return
      case FrameType.NACK:
        if (this.#outstanding && f.seq === this.#outstanding.seq) this.#retransmit()
        return
    }
  }

  #onData(f: Frame): void {
    if (f.seq !== this.#recvNext) {
      this.#stats.duplicatesDropped++
      this.#emit(FrameType.ACK, this.#recvNext)
      return
    }
    this.#recvNext = u32(this.#recvNext + 1)
    this.#emit(FrameType.ACK, this.#recvNext)
    this.#onFragment(f.payload)
  }

  #onFragment(p: Uint8Array): void {
    if (p.length === 0) return
    const flags = p[0]!
    const data = p.subarray(1)
    if (flags & FIRST) {
      this.#partial = []
      this.#partialBytes = 0
    } else if (this.#partial === undefined) {
      return // the rest of a message whose start was dropped (too large, or before a reset)
    }
    this.#partialBytes += data.length
    if (this.#partialBytes > this.#o.maxMessage) {
      this.#partial = undefined
      this.#stats.oversizedMessagesDropped++
      return
    }
    this.#partial.push(data)
    if (flags & LAST) {
      const parts = this.#partial
      this.#partial = undefined
      const msg = new Uint8Array(this.#partialBytes)
      let o = 0
      for (const part of parts) {
        msg.set(part, o)
        o += part.length
      }
      this.#stats.messagesDelivered++
      this.#o.onMessage(msg)
    }
  }

  /** station */
  #onHello(f: Frame): void {
    const h = readHello(f.payload)
    if (!h) return
    const resumed = f.session === this.#session
    if (resumed) {
      this.#stats.resumes++
      if (this.#outstanding && h.recvNext === u32(this.#outstanding.seq + 1)) this.#onAcked(false)
    } else {
      const had = this.#session !== undefined
      this.#disarm()
      this.#outstanding = undefined
      // What was queued for the old session is lost with it; before any session, nothing is.
      if (had) {
        this.#failAll('reset', 'a new session started')
        this.#o.onReset?.()
      }
      this.#session = f.session
      this.#recvNext = f.seq
      this.#sendNext = 0
      this.#partial = undefined
      this.#stats.sessionsStarted++
    }
    this.#peerMaxPayload = h.maxPayload
    this.#synced = true
    this.#emitRaw(FrameType.HELLO_ACK, f.session, this.#sendNext, helloPayload(this.#recvNext, resumed ? RESUMED : 0, this.#o.maxPayload))
    if (this.#outstanding) this.#retransmit(false)
    else this.#pump()
  }

  /** unit */
  #onHelloAck(f: Frame): void {
    const h = readHello(f.payload)
    if (!h) return
    this.#disarm()
    this.#peerMaxPayload = h.maxPayload
    const resumed = (h.flags & RESUMED) !== 0
    if (!resumed) {
      if (this.#established) {
        this.#outstanding = undefined
        this.#failAll('reset', 'the station lost the session')
        this.#o.onReset?.()
      }
      this.#recvNext = f.seq
      this.#partial = undefined
      this.#stats.sessionsStarted++
    } else {
      this.#stats.resumes++
      if (this.#outstanding && h.recvNext === u32(this.#outstanding.seq + 1)) {
        this.#synced = true
        this.#established = true
        this.#onAcked()
        return
      }
    }
    this.#synced = true
    this.#established = true
    if (this.#outstanding) this.#retransmit(false)
    else this.#pump()
  }

  // --- frames out ------------------------------------------------------------

  #pump(): void {
    if (!this.#write || !this.#synced || this.#outstanding || this.#queue.length === 0) return
    const m = this.#queue[0]!
    const room = Math.min(this.#o.maxPayload, this.#peerMaxPayload) - 1
    const end = Math.min(m.message.length, m.offset + room)
    const payload = new Uint8Array(1 + end - m.offset)
    payload[0] = (m.offset === 0 ? FIRST : 0) | (end === m.message.length ? LAST : 0)
    payload.set(m.message.subarray(m.offset, end), 1)
    const bytes = encodeFrame({ type: FrameType.DATA, session: this.#session!, seq: this.#sendNext, payload }, this.#o.maxPayload)
    this.#outstanding = { seq: this.#sendNext, bytes, nextOffset: end }
    this.#retries = 0
    this.#stats.dataSent++
    this.#write(bytes)
    this.#arm()
  }

  #onAcked(pump = true): void {
    const out = this.#outstanding!
    this.#disarm()
    this.#outstanding = undefined
    this.#sendNext = u32(out.seq + 1)
    const m = this.#queue[0]
    if (m) {
      m.offset = out.nextOffset
      if (m.offset >= m.message.length) {
        this.#queue.shift()
        m.resolve()
      }
    }
    if (pump) this.#pump()
  }

  #retransmit(counted = true): void {
    const out = this.#outstanding
    if (!out || !this.#write) return
    if (counted) {
      if (this.#retries >= this.#o.maxRetries) return this.#giveUp()
      this.#retries++
      this.#stats.retransmits++
    }
    this.#disarm()
    this.#write(out.bytes)
    this.#arm()
  }

  #arm(): void {
    this.#disarm()
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = undefined
      this.#retransmit()
    }, this.#o.ackTimeoutMs)
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #startHello(): void {
    let sent = 0
    const hello = () => {
      this.#timer = undefined
      if (!this.#write || this.#synced || this.#closed) return
      if (sent > this.#o.maxRetries) {
        if (this.#queue.length > 0) this.#failAll('retries-exhausted', `no HELLO_ACK after ${sent} HELLOs`)
        return
      }
      if (sent > 0) this.#stats.retransmits++
      sent++
      this.#emitRaw(FrameType.HELLO, this.#session!, this.#sendNext, helloPayload(this.#recvNext, 0, this.#o.maxPayload))
      this.#timer = this.#o.timers.setTimeout(hello, this.#o.ackTimeoutMs)
    }
    this.#disarm()
    hello()
  }

  /** Retries exhausted: the peer's state is unknown, so the session ends on both sides. */
  #giveUp(): void {
    this.#disarm()
    this.#outstanding = undefined
    this.#partial = undefined
    this.#failAll('retries-exhausted', `no acknowledgement after ${this.#o.maxRetries} retransmissions`)
    if (this.role === 'unit') {
      this.#newUnitSession()
      if (this.#write) this.#startHello()
    } else {
      this.#session = undefined
      this.#synced = false
    }
  }

  #newUnitSession(): void {
    this.#session = u32(this.#o.randomSession())
    this.#synced = false
    this.#established = false
    this.#sendNext = 0
    this.#recvNext = 0
  }

  #failAll(reason: LinkFailure, message: string): void {
    const queued = this.#queue.splice(0)
    for (const m of queued) m.reject(new SerialLineError(reason, message))
  }

  #emit(type: FrameType, seq: number): void {
    this.#emitRaw(type, this.#session!, seq, new Uint8Array(0))
  }

  #emitRaw(type: FrameType, session: number, seq: number, payload: Uint8Array): void {
    this.#write?.(encodeFrame({ type, session, seq, payload }, this.#o.maxPayload))
  }
}

function helloPayload(recvNext: number, flags: number, maxPayload: number): Uint8Array {
  const p = new Uint8Array(7)
  const v = new DataView(p.buffer)
  v.setUint32(0, recvNext)
  p[4] = flags
  v.setUint16(5, maxPayload)
  return p
}

function readHello(p: Uint8Array): { recvNext: number; flags: number; maxPayload: number } | undefined {
  if (p.length < 7) return undefined
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength)
  const maxPayload = v.getUint16(5)
  if (maxPayload < 8) return undefined
  return { recvNext: v.getUint32(0), flags: p[4]!, maxPayload }
}
