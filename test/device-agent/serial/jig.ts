/**
 * Test jigs for serial links: a MockBinding-backed "device" that answers
 * queries, and a real pseudo-terminal pair made by socat.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SerialPortMock } from 'serialport'
import type { SerialBinding } from '../../../device-agent/src/serial/serial-link.js'

/**
 * MockBinding from @serialport/binding-mock, reached through serialport's
 * SerialPortMock: binding-mock's package.json "exports" has no "types", so a
 * direct import is untyped under NodeNext. Same package and version (10.2.2).
 */
export const MockBinding = SerialPortMock.binding
export type MockPortBinding = Awaited<ReturnType<typeof MockBinding.open>>

/** What the jig sends back after the agent writes `written`: whole lines or chunks, in order. */
export type JigScript = (written: string) => string[] | undefined

export interface MockJig {
  path: string
  binding: SerialBinding
  /** Everything the agent wrote, across all opens. */
  written(): string
  /** The mock port of the most recent open, to push unsolicited data. */
  port(): MockPortBinding | undefined
}

/**
 * A MockBinding port at a fresh path whose writes trigger `script`. Replies
 * are emitted one chunk per macrotask, the way a UART delivers them.
 */
export function createMockJig(script: JigScript = () => undefined): MockJig {
  const path = `/dev/ttyJIG-${randomUUID()}`
  MockBinding.createPort(path, { echo: false, record: true })
  let last: MockPortBinding | undefined
  let written = ''
  const binding: SerialBinding = {
    list: () => MockBinding.list(),
    async open(options) {
      const port = await MockBinding.open(options)
      last = port
      const write = port.write.bind(port)
      port.write = async (buffer: Buffer) => {
        await write(buffer)
        const text = buffer.toString('utf8')
        written += text
        const chunks = script(text)
        if (chunks === undefined) return
        let delay = 1
        for (const chunk of chunks) {
          setTimeout(() => {
            if (port.isOpen) port.emitData(chunk)
          }, delay++)
        }
      }
      return port
    },
  }
  return { path, binding, written: () => written, port: () => last }
}

export interface PtyPair {
  dir: string
  /** The agent's end. */
  a: string
  /** The jig's end. */
  b: string
  /** Kills socat (SIGTERM): the links go away and an open port gets EIO on its next write. */
  kill(): Promise<void>
}

/**
 * Starts `socat -d -d pty,raw,echo=0,link=DIR/ttyA pty,raw,echo=0,link=DIR/ttyB`
 * and resolves once socat reports "starting data transfer loop" (the links
 * exist only from then on). Bounded by `timeoutMs`. Fails, never skips, when
 * socat is missing. `register` receives the cleanup to run in teardown.
 */
export async function startPtyPair(register: (cleanup: () => Promise<void>) => void, timeoutMs = 5000): Promise<PtyPair> {
  const dir = await mkdtemp(join(tmpdir(), 'sv-pty-'))
  const a = join(dir, 'ttyA')
  const b = join(dir, 'ttyB')
  const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('close', () => resolve())
  })
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))])
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  register(async () => {
    await kill()
    await rm(dir, { recursive: true, force: true })
  })
  await new Promise<void>((resolve, reject) => {
    let stderr = ''
    const timer = setTimeout(() => {
      reject(new Error(`socat did not report "starting data transfer loop" within ${timeoutMs} ms; stderr: ${stderr}`))
    }, timeoutMs)
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(
        err.code === 'ENOENT'
          ? new Error('socat is not installed: the real-pty serial tests need it. .ci/run installs it (apt-get install socat); locally run `apt-get install -y socat`.')
          : err,
      )
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      reject(new Error(`socat exited with ${code} before the pty pair was ready; stderr: ${stderr}`))
    })
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < 16_384) stderr += chunk
      if (stderr.includes('starting data transfer loop')) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  return { dir, a, b, kill }
}
