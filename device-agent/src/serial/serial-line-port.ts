/**
 * A serial port carrying the serial-line link (@sv/shared SerialLineLink):
 * opens the port, attaches the link while it is open, feeds it every byte
 * read, and when the port goes away (unplugged USB adapter, EIO on a pty,
 * closed by the other side's driver) detaches the link and opens the port
 * again every `reopenMs` until `close()`. The link keeps its session across
 * that, which is how a unit unplugged halfway resumes. Used by the agent's
 * serial transport (unit side) and by a station (one per port).
 *
 * Never throws after `start()`: failures to open are kept in `lastError` (a
 * caller reports them when its own deadline passes) and retried.
 */
import type { OpenOptions, SerialPortStream as SerialPortStreamType } from '@serialport/stream'
import { SerialPortStream } from '@serialport/stream'
import type { SerialLineLink } from '@sv/shared'
import type { SerialBinding } from './serial-link.js'

export interface SerialLinePortOptions {
  path: string
  baudRate: number
  link: SerialLineLink
  /** Default: the platform binding (`@serialport/bindings-cpp` autoDetect), loaded on first open. */
  binding?: SerialBinding
  /** Wait between attempts to open the port (default 250 ms). */
  reopenMs?: number
  /** Exclusive lock (flock) on the port; default true. */
  lock?: boolean
  /** Told about opens and losses (for logs). */
  onState?: (state: 'open' | 'lost' | 'open-failed', detail?: string) => void
}

export class SerialLinePort {
  readonly path: string
  readonly #o: SerialLinePortOptions
  #port: SerialPortStreamType | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  #running = false
  #opening = false
  #open = false
  /** The last open failure or disconnect, for error details. */
  lastError: Error | undefined
  opens = 0

  constructor(options: SerialLinePortOptions) {
    if (typeof options.path !== 'string' || options.path === '') throw new TypeError('path must be a non-empty string')
    if (!Number.isInteger(options.baudRate) || options.baudRate <= 0) throw new TypeError('baudRate must be a positive integer')
    this.path = options.path
    this.#o = options
  }

  get isOpen(): boolean {
    return this.#open
  }

  /** Starts opening the port (idempotent); keeps it open until close(). */
  start(): void {
    if (this.#running) return
    this.#running = true
    void this.#tryOpen()
  }

  /** Resolves once the port is open, or false after `timeoutMs`. */
  async waitOpen(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs
    while (!this.#open && Date.now() < until && this.#running) await new Promise((r) => setTimeout(r, 10))
    return this.#open
  }

  /** Stops reopening and closes the port; the link is detached, not closed. */
  async close(): Promise<void> {
    this.#running = false
    clearTimeout(this.#timer)
    const port = this.#port
    this.#gone(port, undefined, false)
    if (port?.isOpen) await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000)
      port.close(() => {
        clearTimeout(t)
        resolve()
      })
    })
  }

  async #tryOpen(): Promise<void> {
    if (!this.#running || this.#opening || this.#open) return
    this.#opening = true
    let port: SerialPortStreamType | undefined
    try {
      const binding = this.#o.binding ?? (await loadDefaultBinding())
      port = new SerialPortStream({ binding, path: this.path, baudRate: this.#o.baudRate, lock: this.#o.lock ?? true, autoOpen: false } as OpenOptions)
      const p = port
      // Every error is a loss or nothing: an 'error' without a listener would crash the agent.
      p.on('error', (err: Error) => this.#gone(p, err))
      // 'close' comes twice on a disconnect (bare, then {disconnected: true}); #gone is idempotent per port.
      p.on('close', (err?: Error) => this.#gone(p, err))
      await new Promise<void>((resolve, reject) => p.open((err) => (err ? reject(err) : resolve())))
      if (!this.#running) {
        p.close(() => undefined)
        return
      }
      this.#port = p
      this.#open = true
      this.opens++
      p.on('data', (chunk: Buffer) => this.#o.link.receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length)))
      this.#o.link.attach((bytes) => {
        p.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), (err) => {
          if (err) this.#gone(p, err)
        })
      })
      this.#o.onState?.('open')
    } catch (err) {
      this.lastError = err as Error
      this.#o.onState?.('open-failed', (err as Error).message)
      port?.removeAllListeners('close')
      this.#schedule()
    } finally {
      this.#opening = false
    }
  }

  #gone(port: SerialPortStreamType | undefined, err: Error | undefined, reopen = true): void {
    if (port === undefined || port !== this.#port) return
    this.#port = undefined
    this.#open = false
    this.#o.link.detach()
    if (err) this.lastError = err
    port.removeAllListeners('data')
    if (port.isOpen) port.close(() => undefined)
    this.#o.onState?.('lost', err?.message)
    if (reopen) this.#schedule()
  }

  #schedule(): void {
    if (!this.#running) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => void this.#tryOpen(), this.#o.reopenMs ?? 250)
  }
}

async function loadDefaultBinding(): Promise<SerialBinding> {
  const { autoDetect } = await import('@serialport/bindings-cpp')
  return autoDetect()
}
