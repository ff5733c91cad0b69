/**
 * A line-oriented query/answer link over a serial port: the agent writes a
 * query to a device (a test jig, an MCU console) and reads lines back until
 * one matches. Used to read a serial number that only the attached hardware
 * knows.
 *
 * Contract of every SerialLink
 * - `open()` once, then any number of `query()` calls one at a time, then
 *   `close()`. `close()` is idempotent and safe in any state, including after
 *   a failed `open()` or a disconnect, so callers put it in `finally`.
 * - Failures are AgentError `SV_AGENT_SERIAL_PORT` with `details: { path,
 *   reason, ... }`; `reason` is one of:
 *   not-found (no such port), busy (locked by another process or link),
 *   permission, open-failed (anything else on open, or open took too long),
 *   not-open (query before open or after close), timeout (no line at all
 *   within the time), no-match (lines came but none matched; a device may
 *   print banners or echo first), write-failed, disconnected (the device went
 *   away: EIO/ENXIO on a pty or USB adapter).
 * - Misuse (open twice, two queries at once) throws TypeError.
 */

import type { OpenOptions, SerialPortStream as SerialPortStreamType } from '@serialport/stream'
import { SerialPortStream } from '@serialport/stream'
import { AgentError } from '../errors.js'
import { BoundedLineParser, DEFAULT_DELIMITER, DEFAULT_MAX_LINE_LENGTH } from './framing.js'

export interface SerialLink {
  /** The port path, for logs and error details. */
  readonly path: string
  /**
   * Opens the port and discards any input the OS buffered before (stale
   * answers). Rejects with `SV_AGENT_SERIAL_PORT` (not-found, busy,
   * permission, open-failed); the port is then released.
   */
  open(): Promise<void>
  /**
   * Writes `line` as given (include the terminator the device expects; an
   * empty line writes nothing and only listens), then reads lines until one
   * matches `pattern` or `timeoutMs` passes. Lines that do not match are
   * skipped. Lines received while no query was pending are discarded.
   *
   * @returns capture group 1 of the first matching line, or the whole match
   *   when the pattern has no group. A line where group 1 did not take part
   *   counts as not matching.
   * @throws AgentError `SV_AGENT_SERIAL_PORT` with reason timeout, no-match,
   *   write-failed, disconnected or not-open; details also hold `linesSeen`
   *   and `lastLine` (cut to 80 characters) for timeout and no-match.
   */
  query(line: string | Uint8Array, pattern: RegExp, timeoutMs: number): Promise<string>
  /** Closes the port; never throws, and waits at most a bounded time. */
  close(): Promise<void>
}

/** Any serialport binding: `@serialport/bindings-cpp` on devices, `MockBinding` in tests. */
export type SerialBinding = OpenOptions['binding']

export interface NodeSerialLinkOptions {
  path: string
  baudRate: number
  /** Default: the platform binding from `@serialport/bindings-cpp` `autoDetect()`, loaded on first open. */
  binding?: SerialBinding
  /** Line delimiter. Default "\r\n". */
  delimiter?: string
  /** Longest line kept, in bytes; longer lines are dropped (see BoundedLineParser). Default 1024. */
  maxLineLength?: number
  /** Bound on opening the port. Default 5000 ms. */
  openTimeoutMs?: number
  /** Bound on closing the port. Default 2000 ms. */
  closeTimeoutMs?: number
  /** Take an exclusive lock (flock) on the port, so a second opener gets `busy`. Default true. */
  lock?: boolean
}

type PortFailure = 'not-found' | 'busy' | 'permission' | 'open-failed' | 'not-open' | 'timeout' | 'no-match' | 'write-failed' | 'disconnected'

interface PendingQuery {
  onLine(line: string): void
  onOversized(): void
  fail(err: AgentError): void
}

const LAST_LINE_MAX = 80

/**
 * SerialLink over serialport's SerialPortStream with an injected binding and
 * a {@link BoundedLineParser} for framing.
 */
export class NodeSerialLink implements SerialLink {
  readonly path: string
  readonly #options: Required<Omit<NodeSerialLinkOptions, 'binding'>> & { binding: SerialBinding | undefined }
  #port: SerialPortStreamType | undefined
  #parser: BoundedLineParser | undefined
  #state: 'new' | 'opening' | 'open' | 'closed' = 'new'
  #pending: PendingQuery | undefined
  #disconnect: Error | undefined

  constructor(options: NodeSerialLinkOptions) {
    if (typeof options.path !== 'string' || options.path === '') throw new TypeError('path must be a non-empty string')
    if (!Number.isInteger(options.baudRate) || options.baudRate <= 0) throw new TypeError('baudRate must be a positive integer')
    this.path = options.path
    this.#options = {
      path: options.path,
      baudRate: options.baudRate,
      binding: options.binding,
      delimiter: options.delimiter ?? DEFAULT_DELIMITER,
      maxLineLength: options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH,
      openTimeoutMs: options.openTimeoutMs ?? 5000,
      closeTimeoutMs: options.closeTimeoutMs ?? 2000,
      lock: options.lock ?? true,
    }
    // Fail on a bad delimiter or bound now, not on first open.
    new BoundedLineParser({ delimiter: this.#options.delimiter, maxLineLength: this.#options.maxLineLength }).destroy()
  }

  async open(): Promise<void> {
    if (this.#state !== 'new') throw new TypeError(`open() called on a link that is ${this.#state}`)
    this.#state = 'opening'
    const { path, baudRate, lock, openTimeoutMs } = this.#options
    try {
      const binding = this.#options.binding ?? (await loadDefaultBinding())
      const port = new SerialPortStream({ binding, path, baudRate, lock, autoOpen: false })
      this.#port = port
      // An 'error' event without a listener would crash the agent; every port
      // error is turned into a query failure or ignored after close.
      port.on('error', (err: Error) => this.#onPortGone(err))
      // 'close' can come twice on a disconnect (once bare, once with
      // {disconnected: true}); #onPortGone is idempotent.
      port.on('close', (err?: Error) => this.#onPortGone(err))
      await openWithin(port, openTimeoutMs)
      await new Promise<void>((resolve) => port.flush(() => resolve()))
    } catch (err) {
      await this.close()
      throw portError(path, classifyOpenError(err), `cannot open serial port ${path}: ${messageOf(err)}`, err)
    }
    if (this.#state !== 'opening') {
      // Closed or disconnected while flushing.
      throw portError(path, 'disconnected', `serial port ${path} went away while opening`, this.#disconnect)
    }
    const parser = new BoundedLineParser({ delimiter: this.#options.delimiter, maxLineLength: this.#options.maxLineLength })
    parser.on('data', (line: string) => this.#pending?.onLine(line))
    parser.on('oversized', () => this.#pending?.onOversized())
    parser.on('error', () => undefined)
    this.#port!.pipe(parser)
    this.#parser = parser
    this.#state = 'open'
  }

  query(line: string | Uint8Array, pattern: RegExp, timeoutMs: number): Promise<string> {
    if (!(pattern instanceof RegExp)) throw new TypeError('pattern must be a RegExp')
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError('timeoutMs must be a positive number')
    if (this.#pending !== undefined) throw new TypeError('a query is already in progress on this link')
    const path = this.path
    const port = this.#port
    if (this.#state !== 'open' || port === undefined) {
      const reason: PortFailure = this.#disconnect !== undefined ? 'disconnected' : 'not-open'
      return Promise.reject(portError(path, reason, `serial port ${path} is not open`, this.#disconnect))
    }
    // A private copy without g/y flags: exec() must not depend on lastIndex.
    const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''))
    const hasGroup = countGroups(re) > 0
    const bytes = typeof line === 'string' ? Buffer.from(line, 'utf8') : Buffer.from(line)

    return new Promise<string>((resolve, reject) => {
      let linesSeen = 0
      let oversized = 0
      let lastLine: string | undefined
      const finish = (err: AgentError | undefined, value?: string) => {
        if (this.#pending !== pending) return
        clearTimeout(timer)
        this.#pending = undefined
        if (err !== undefined) reject(err)
        else resolve(value as string)
      }
      const pending: PendingQuery = {
        onLine: (text) => {
          linesSeen++
          lastLine = text
          const m = re.exec(text)
          if (m === null) return
          const value = hasGroup ? m[1] : m[0]
          if (value !== undefined) finish(undefined, value)
        },
        onOversized: () => {
          oversized++
        },
        fail: (err) => finish(err),
      }
      const timer = setTimeout(() => {
        const seen = linesSeen > 0 || oversized > 0
        const details = { linesSeen, oversizedLines: oversized, lastLine: lastLine?.slice(0, LAST_LINE_MAX), timeoutMs }
        finish(
          portError(
            path,
            seen ? 'no-match' : 'timeout',
            seen ? `no line from ${path} matched ${re} within ${timeoutMs} ms` : `no answer from ${path} within ${timeoutMs} ms`,
            undefined,
            details,
          ),
        )
      }, timeoutMs)
      this.#pending = pending
      if (bytes.length === 0) return
      port.write(bytes, (err) => {
        if (err == null) return
        const reason: PortFailure = isDisconnectError(err) || this.#disconnect !== undefined ? 'disconnected' : 'write-failed'
        pending.fail(portError(path, reason, `cannot write to serial port ${path}: ${messageOf(err)}`, err))
      })
    })
  }

  async close(): Promise<void> {
    const wasState = this.#state
    this.#state = 'closed'
    this.#pending?.fail(portError(this.path, 'not-open', `serial port ${this.path} was closed during a query`))
    const port = this.#port
    const parser = this.#parser
    this.#parser = undefined
    if (parser !== undefined) {
      port?.unpipe(parser)
      parser.destroy()
    }
    if (port === undefined || wasState === 'new') return
    if (port.isOpen) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#options.closeTimeoutMs)
        port.close(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** The port reported an error or closed on its own (disconnect). Idempotent. */
  #onPortGone(err: Error | undefined): void {
    if (this.#state === 'closed') return
    if (err !== undefined && !isDisconnectError(err) && this.#port?.isOpen) {
      // A port error that did not close the port: the write callback or the
      // query timeout reports it; nothing to do here.
      return
    }
    this.#disconnect = err ?? new Error('port closed')
    if (this.#state === 'open' || this.#state === 'opening') this.#state = 'closed'
    this.#pending?.fail(portError(this.path, 'disconnected', `serial port ${this.path} went away: ${messageOf(this.#disconnect)}`, this.#disconnect))
  }
}

async function loadDefaultBinding(): Promise<SerialBinding> {
  // Loaded lazily so that importing this module (and tests that inject
  // MockBinding) never loads the native addon.
  const { autoDetect } = await import('@serialport/bindings-cpp')
  return autoDetect()
}

function openWithin(port: SerialPortStreamType, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      reject(new Error(`open did not complete within ${timeoutMs} ms`))
    }, timeoutMs)
    port.open((err) => {
      if (timedOut) {
        // Opened after we gave up: release it at once.
        if (err == null) port.close(() => undefined)
        return
      }
      clearTimeout(timer)
      if (err == null) resolve()
      else reject(err)
    })
  })
}

/**
 * Bindings report open failures only as message text ("Error: No such file or
 * directory, cannot open /dev/ttyX", "Error Resource temporarily unavailable
 * Cannot lock port", MockBinding's "Port does not exist" and "Port is locked").
 */
function classifyOpenError(err: unknown): PortFailure {
  const text = messageOf(err)
  if (/No such file|does not exist|ENOENT|ENODEV|No such device/i.test(text)) return 'not-found'
  if (/lock|busy|Resource temporarily unavailable|EBUSY/i.test(text)) return 'busy'
  if (/Permission denied|EACCES|EPERM|not permitted/i.test(text)) return 'permission'
  return 'open-failed'
}

function isDisconnectError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const e = err as { disconnected?: unknown; disconnect?: unknown; code?: unknown; message?: unknown }
  if (e.disconnected === true || e.disconnect === true) return true
  if (e.code === 'EIO' || e.code === 'ENXIO' || e.code === 'EBADF') return true
  return typeof e.message === 'string' && /\b(EIO|ENXIO|Input\/output error|No such device or address)\b/.test(e.message)
}

function countGroups(re: RegExp): number {
  // An alternative that matches the empty string makes exec() report every group.
  return (new RegExp(`${re.source}|`).exec('') as RegExpExecArray).length - 1
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function portError(
  path: string,
  reason: PortFailure,
  message: string,
  cause?: unknown,
  extra: Record<string, unknown> = {},
): AgentError {
  return new AgentError('SV_AGENT_SERIAL_PORT', message, { details: { path, reason, ...extra }, cause })
}
