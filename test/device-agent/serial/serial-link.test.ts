import test from 'ava'
import type { ExecutionContext } from 'ava'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { SerialPortStream } from '@serialport/stream'
import { autoDetect } from '@serialport/bindings-cpp'
import { ReadlineParser } from 'serialport'
import { NodeSerialLink } from '../../../device-agent/src/serial/serial-link.js'
import { detectSerial } from '../../../device-agent/src/identity/serial-sources.js'
import { AgentError } from '../../../device-agent/src/errors.js'
import { createMockJig, startPtyPair } from './jig.js'

/** A jig that prints two banner lines, then the answer, on "SN?\r\n". */
const bannerJig = (answer: string) => (written: string) =>
  written === 'SN?\r\n' ? ['BOOT jig-fw 1.4.2\r\n', 'self-test ', 'ok\r\n', `SN=${answer}\r\n`] : undefined

function openLink(t: ExecutionContext, link: NodeSerialLink): Promise<void> {
  t.teardown(() => link.close())
  return link.open()
}

function portFailure(t: ExecutionContext, err: unknown, reason: string): void {
  t.true(err instanceof AgentError, `expected AgentError, got ${String(err)}`)
  const e = err as AgentError
  t.is(e.code, 'SV_AGENT_SERIAL_PORT')
  t.is(e.details?.reason, reason)
}

// --- MockBinding -------------------------------------------------------------

test('NodeSerialLink (mock): the jig answers a query; the capture group is returned', async (t) => {
  const jig = createMockJig((w) => (w === 'SN?\r\n' ? ['SN=ABC123\r\n'] : undefined))
  const link = new NodeSerialLink({ path: jig.path, baudRate: 115200, binding: jig.binding })
  await openLink(t, link)
  t.is(await link.query('SN?\r\n', /^SN=(\S+)$/, 1000), 'ABC123')
  t.is(jig.written(), 'SN?\r\n')
})

test('NodeSerialLink (mock): banner lines and a split line before the answer are skipped', async (t) => {
  const jig = createMockJig(bannerJig('JIG-0042'))
  const link = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  await openLink(t, link)
  t.is(await link.query('SN?\r\n', /^SN=(.+)$/, 1000), 'JIG-0042')
})

test('NodeSerialLink (mock): the answer split over chunks, delimiter included, is framed', async (t) => {
  const jig = createMockJig((w) => (w === 'SN?\r\n' ? ['S', 'N=AB', 'C\r', '\nnext\r\n'] : undefined))
  const link = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  await openLink(t, link)
  t.is(await link.query('SN?\r\n', /^SN=(.+)$/, 1000), 'ABC')
})

test('NodeSerialLink (mock): no answer at all is reason timeout', async (t) => {
  const jig = createMockJig()
  const link = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  await openLink(t, link)
  const started = Date.now()
  const err = await t.throwsAsync(link.query('SN?\r\n', /^SN=(.+)$/, 150))
  portFailure(t, err, 'timeout')
  t.is((err as AgentError).details?.linesSeen, 0)
  t.true(Date.now() - started < 1000)
})

test('NodeSerialLink (mock): lines that never match are reason no-match, with the last line', async (t) => {
  const jig = createMockJig((w) => (w === 'SN?\r\n' ? ['BOOT\r\n', 'ERR unknown command\r\n'] : undefined))
  const link = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  await openLink(t, link)
  const err = await t.throwsAsync(link.query('SN?\r\n', /^SN=(.+)$/, 200))
  portFailure(t, err, 'no-match')
  t.is((err as AgentError).details?.linesSeen, 2)
  t.is((err as AgentError).details?.lastLine, 'ERR unknown command')
})

test('NodeSerialLink (mock): a missing port is reason not-found and close() still works', async (t) => {
  const jig = createMockJig()
  const link = new NodeSerialLink({ path: `${jig.path}-missing`, baudRate: 9600, binding: jig.binding })
  const err = await t.throwsAsync(link.open())
  portFailure(t, err, 'not-found')
  await t.notThrowsAsync(link.close())
  await t.notThrowsAsync(link.close())
})

test('NodeSerialLink (mock): a port held by another link is reason busy', async (t) => {
  const jig = createMockJig()
  const first = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  await openLink(t, first)
  const second = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  portFailure(t, await t.throwsAsync(second.open()), 'busy')
  // Once the first link closes, the port is free again.
  await first.close()
  const third = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  await t.notThrowsAsync(openLink(t, third))
})

test('NodeSerialLink (mock): query before open and after close is reason not-open', async (t) => {
  const jig = createMockJig()
  const link = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  portFailure(t, await t.throwsAsync(link.query('x', /x/, 100)), 'not-open')
  await link.open()
  await link.close()
  portFailure(t, await t.throwsAsync(link.query('x', /x/, 100)), 'not-open')
  t.false(jig.port()?.isOpen)
})

test('NodeSerialLink (mock): close() during a query fails the query at once', async (t) => {
  const jig = createMockJig()
  const link = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  await link.open()
  const pending = link.query('SN?\r\n', /x/, 5000)
  const started = Date.now()
  await link.close()
  portFailure(t, await t.throwsAsync(pending), 'not-open')
  t.true(Date.now() - started < 1000)
})

test('NodeSerialLink (mock): misuse throws TypeError (second open, concurrent queries)', async (t) => {
  const jig = createMockJig()
  const link = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  await openLink(t, link)
  await t.throwsAsync(link.open(), { instanceOf: TypeError })
  const first = link.query('', /never/, 100)
  t.throws(() => link.query('', /x/, 100), { instanceOf: TypeError })
  await t.throwsAsync(first)
  t.throws(() => new NodeSerialLink({ path: '', baudRate: 9600 }), { instanceOf: TypeError })
  t.throws(() => new NodeSerialLink({ path: '/dev/x', baudRate: 0 }), { instanceOf: TypeError })
  t.throws(() => new NodeSerialLink({ path: '/dev/x', baudRate: 9600, delimiter: '' }), { instanceOf: TypeError })
})

test('NodeSerialLink (mock): an empty query only listens (device prints its serial unprompted)', async (t) => {
  const jig = createMockJig()
  const link = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  await openLink(t, link)
  const answer = link.query('', /^serial: (\w+)$/, 1000)
  setTimeout(() => jig.port()?.emitData('hello\r\nserial: UNPROMPTED1\r\n'), 5)
  t.is(await answer, 'UNPROMPTED1')
  t.is(jig.written(), '')
})

test('NodeSerialLink (mock): an over-long line is dropped, framing resumes, the answer still found', async (t) => {
  const jig = createMockJig((w) => (w === 'SN?\r\n' ? ['#'.repeat(300), '#'.repeat(300), 'SN=FAKE\r\n', 'SN=REAL\r\n'] : undefined))
  const link = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding, maxLineLength: 256 })
  await openLink(t, link)
  // "SN=FAKE" ends the over-long line, so it is dropped with it.
  t.is(await link.query('SN?\r\n', /^SN=(.+)$/, 1000), 'REAL')
})

test('NodeSerialLink (mock): without a capture group the whole match is returned; g flag is harmless', async (t) => {
  const jig = createMockJig((w) => (w === 'Q\r\n' ? ['id 77-AB\r\n'] : undefined))
  const link = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  await openLink(t, link)
  t.is(await link.query('Q\r\n', /\d+-[A-Z]+/g, 1000), '77-AB')
  t.is(await link.query('Q\r\n', /\d+-[A-Z]+/g, 1000), '77-AB')
})

test('NodeSerialLink (mock): lines received between queries are discarded', async (t) => {
  const jig = createMockJig((w) => (w === 'SN?\r\n' ? ['SN=NEW\r\n'] : undefined))
  const link = new NodeSerialLink({ path: jig.path, baudRate: 9600, binding: jig.binding })
  await openLink(t, link)
  jig.port()?.emitData('SN=STALE\r\n')
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.is(await link.query('SN?\r\n', /^SN=(.+)$/, 1000), 'NEW')
})

// --- real pseudo-terminals (socat) -------------------------------------------

interface PtyJig {
  close(): Promise<void>
}

/** The "device" end: answers "SN?" with two banner lines and then the serial. */
async function startPtyJig(path: string, serial: string | undefined): Promise<PtyJig> {
  const port = new SerialPortStream({ binding: autoDetect(), path, baudRate: 115200, autoOpen: false })
  port.on('error', () => undefined)
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())))
  const parser = port.pipe(new ReadlineParser({ delimiter: '\r\n' }))
  parser.on('data', (line: string) => {
    if (line === 'SN?' && serial !== undefined) port.write(`jig v2 ready\r\n# bench 3\r\nSERIAL ${serial}\r\n`)
  })
  return {
    close: () =>
      new Promise<void>((resolve) => {
        if (!port.isOpen) resolve()
        else port.close(() => resolve())
      }),
  }
}

test('serialport source (real pty): the agent reads the serial from the jig through socat', async (t) => {
  const pty = await startPtyPair((cleanup) => t.teardown(cleanup))
  const jig = await startPtyJig(pty.b, 'PTY-SERIAL-0001')
  t.teardown(() => jig.close())
  const result = await detectSerial(
    [
      { kind: 'serialport', path: pty.a, baudRate: 115200, query: 'SN?\\r\\n', responsePattern: '^SERIAL (\\S+)$', timeoutMs: 2000 },
      { kind: 'value', value: 'FALLBACK' },
    ],
    { createSerialLink: (request) => new NodeSerialLink(request) },
  )
  t.is(result.serial, 'PTY-SERIAL-0001')
  t.is(result.source, 'serialport')
  t.is(result.detail, pty.a)
  t.deepEqual(result.tried, [{ source: 'serialport', detail: pty.a, ok: true }])
})

test('NodeSerialLink (real pty): the default binding opens the symlink; a silent device is reason timeout', async (t) => {
  const pty = await startPtyPair((cleanup) => t.teardown(cleanup))
  const jig = await startPtyJig(pty.b, undefined)
  t.teardown(() => jig.close())
  const link = new NodeSerialLink({ path: pty.a, baudRate: 115200 })
  await openLink(t, link)
  portFailure(t, await t.throwsAsync(link.query('SN?\r\n', /^SERIAL (\S+)$/, 200)), 'timeout')
})

test('NodeSerialLink (real pty): a second opener gets reason busy (flock)', async (t) => {
  const pty = await startPtyPair((cleanup) => t.teardown(cleanup))
  const first = new NodeSerialLink({ path: pty.a, baudRate: 115200 })
  await openLink(t, first)
  const second = new NodeSerialLink({ path: pty.a, baudRate: 115200 })
  portFailure(t, await t.throwsAsync(second.open()), 'busy')
})

test('NodeSerialLink (real pty): a missing device node is reason not-found', async (t) => {
  const link = new NodeSerialLink({ path: join(tmpdir(), `sv-no-such-tty-${randomUUID()}`), baudRate: 115200 })
  portFailure(t, await t.throwsAsync(link.open()), 'not-found')
  await t.notThrowsAsync(link.close())
})

test('NodeSerialLink (real pty): the device going away (socat killed) is reason disconnected', async (t) => {
  const pty = await startPtyPair((cleanup) => t.teardown(cleanup))
  const link = new NodeSerialLink({ path: pty.a, baudRate: 115200 })
  await openLink(t, link)
  await pty.kill()
  // The port notices on its next write: EIO, an error, then 'close' twice.
  portFailure(t, await t.throwsAsync(link.query('SN?\r\n', /x/, 2000)), 'disconnected')
  portFailure(t, await t.throwsAsync(link.query('SN?\r\n', /x/, 2000)), 'disconnected')
  await t.notThrowsAsync(link.close())
})

// --- real hardware (opt-in) ------------------------------------------------------

const hardwarePort = process.env.AGENT_TEST_PORT
if (hardwarePort === undefined || hardwarePort === '') {
  test.todo(
    'NodeSerialLink (hardware): set AGENT_TEST_PORT=/dev/ttyUSB0 (a jig that answers "SN?\\r\\n" with a line "SERIAL <serial>"; AGENT_TEST_BAUD, default 115200) to run against a real port',
  )
} else {
  test('NodeSerialLink (hardware): the jig on AGENT_TEST_PORT answers SN? with a valid serial', async (t) => {
    const result = await detectSerial(
      [
        {
          kind: 'serialport',
          path: hardwarePort,
          baudRate: Number(process.env.AGENT_TEST_BAUD ?? 115200),
          query: 'SN?\\r\\n',
          responsePattern: '^SERIAL (\\S+)$',
          timeoutMs: 3000,
        },
      ],
      { createSerialLink: (request) => new NodeSerialLink(request) },
    )
    t.is(result.source, 'serialport')
    t.log(`serial read from ${hardwarePort}: ${result.serial}`)
  })
}
