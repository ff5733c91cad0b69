/**
 * Jigs for the serial-line tests on real pseudo-terminals:
 * - `spawnPtyPair(a, b)`: socat with links at fixed paths, so a test can kill
 *   it (the unit is "unplugged": the links vanish, an open port gets EIO) and
 *   start it again at the same paths ("plugged back in");
 * - `FaultRelay`: a Node relay between two pty pairs (unit pair's far end and
 *   station pair's far end) that drops, corrupts and duplicates chunks,
 *   injects bytes, and closes one of its ports in the middle of a frame.
 *   Seeded, so a failure repeats.
 *
 *   unit --pty pair U-- relay --pty pair S-- station
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { SerialPort } from 'serialport'
import { mulberry32 } from '../../helpers/prng.js'

export interface SocatPair {
  child: ChildProcess
  kill(): Promise<void>
}

export async function spawnPtyPair(a: string, b: string, timeoutMs = 5000): Promise<SocatPair> {
  const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    let stderr = ''
    const timer = setTimeout(() => reject(new Error(`socat not ready within ${timeoutMs} ms: ${stderr}`)), timeoutMs)
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(err.code === 'ENOENT' ? new Error('socat is not installed (.ci/run installs it; apt-get install -y socat)') : err)
    })
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (c: string) => {
      if (stderr.length < 16_384) stderr += c
      if (stderr.includes('starting data transfer loop')) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  return {
    child,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    },
  }
}

export interface FaultPlan {
  /** probability that a chunk loses a run of 1-16 bytes */
  drop?: number
  /** probability that one byte of a chunk is flipped */
  corrupt?: number
  /** probability that a chunk is delivered twice */
  duplicate?: number
  /** probability that 1-40 random bytes (start markers among them) are inserted at a random place of a chunk (so also inside a frame) */
  garbage?: number
}

export type Side = 'unit' | 'station'


export class FaultRelay {
  plan: FaultPlan
  readonly stats = { chunks: 0, dropped: 0, corrupted: 0, duplicated: 0, garbage: 0, closedMidFrame: 0 }
  readonly #paths: Record<Side, string>
  readonly #ports: Partial<Record<Side, SerialPort>> = {}
  readonly #rand: () => number
  #cut: { side: Side; afterBytes: number; downMs: number; done: () => void } | undefined
  #stopped = false

  constructor(paths: Record<Side, string>, plan: FaultPlan = {}, seed = 1) {
    this.#paths = paths
    this.plan = plan
    this.#rand = mulberry32(seed)
  }

  async start(): Promise<void> {
    await Promise.all([this.#open('unit'), this.#open('station')])
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await Promise.all((['unit', 'station'] as const).map((s) => this.#close(s)))
  }

  /** Writes raw bytes towards `to` (garbage, a forged header). */
  inject(to: Side, bytes: Uint8Array): void {
    this.#ports[to]?.write(Buffer.from(bytes))
  }

  /**
   * The next chunk going towards `to` is cut after `afterBytes` bytes (mid-frame), the relay's
   * port on that side is closed, and opened again after `downMs`. Resolves once it is open again.
   */
  closeMidFrame(to: Side, afterBytes: number, downMs: number): Promise<void> {
    return new Promise((done) => (this.#cut = { side: to, afterBytes, downMs, done }))
  }

  /** Reopens a side whose pty pair was restarted (its port got EIO). */
  async reopen(side: Side): Promise<void> {
    await this.#close(side)
    for (let i = 0; i < 100 && !this.#stopped; i++) {
      try {
        await this.#open(side)
        return
      } catch {
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }

  async #open(side: Side): Promise<void> {
    const port = await new Promise<SerialPort>((resolve, reject) => {
      const p: SerialPort = new SerialPort({ path: this.#paths[side], baudRate: 115200 }, (err) => (err ? reject(err) : resolve(p)))
    })
    port.on('error', () => undefined)
    const other: Side = side === 'unit' ? 'station' : 'unit'
    port.on('data', (chunk: Buffer) => this.#forward(other, chunk))
    this.#ports[side] = port
  }

  async #close(side: Side): Promise<void> {
    const p = this.#ports[side]
    delete this.#ports[side]
    if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()))
  }

  #forward(to: Side, chunk: Buffer): void {
    const port = this.#ports[to]
    if (!port) return
    this.stats.chunks++
    const r = this.#rand
    const plan = this.plan
    let b = Buffer.from(chunk)
    const cut = this.#cut
    if (cut && cut.side === to && b.length > cut.afterBytes) {
      this.#cut = undefined
      this.stats.closedMidFrame++
      port.write(b.subarray(0, cut.afterBytes), () => {
        void port.drain(async () => {
          await this.#close(to)
          await new Promise((res) => setTimeout(res, cut.downMs))
          if (!this.#stopped) await this.#open(to)
          cut.done()
        })
      })
      return
    }
    if (plan.garbage && r() < plan.garbage) {
      const g = Buffer.alloc(1 + Math.floor(r() * 40))
      for (let i = 0; i < g.length; i++) g[i] = r() < 0.2 ? (i % 2 ? 0xc3 : 0xa5) : Math.floor(r() * 256)
      const at = Math.floor(r() * (b.length + 1))
      b = Buffer.concat([b.subarray(0, at), g, b.subarray(at)])
      this.stats.garbage++
    }
    if (plan.drop && r() < plan.drop) {
      const at = Math.floor(r() * b.length)
      b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + Math.floor(r() * 16))])
      this.stats.dropped++
    }
    if (plan.corrupt && r() < plan.corrupt) {
      const at = Math.floor(r() * b.length)
      b[at] = b[at]! ^ (1 + Math.floor(r() * 255))
      this.stats.corrupted++
    }
    port.write(b)
    if (plan.duplicate && r() < plan.duplicate) {
      port.write(b)
      this.stats.duplicated++
    }
  }
}
