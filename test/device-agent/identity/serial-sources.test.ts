import test from 'ava'
import type { ExecutionContext, TestFn } from 'ava'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  type DetectSerialDeps,
  type SerialSourceAttempt,
  type SerialSourceConfig,
  checkSerialSources,
  detectSerial,
  isPlaceholderSerial,
} from '../../../device-agent/src/identity/serial-sources.js'
import { AgentError } from '../../../device-agent/src/errors.js'
import { NodeSerialLink } from '../../../device-agent/src/serial/serial-link.js'
import { createMockJig } from '../serial/jig.js'

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../fixtures/hardware')
const RPI4 = join(FIXTURES, 'rpi4')
const X86 = join(FIXTURES, 'x86-pc')
const X86_PLACEHOLDER = join(FIXTURES, 'x86-placeholder')
const X86_BOARD = join(FIXTURES, 'x86-board-serial')
const EMPTY = join(FIXTURES, 'empty')

const DT = 'sys/firmware/devicetree/base/serial-number'
const CPUINFO = 'proc/cpuinfo'
const DMI = 'sys/class/dmi/id'

interface Context {
  /** A fresh temp directory, usable as a file-system root. */
  dir: string
}
const it = test as TestFn<Context>

it.beforeEach(async (t) => {
  t.context.dir = await mkdtemp(join(tmpdir(), 'sv-sources-'))
})
it.afterEach.always(async (t) => {
  await rm(t.context.dir, { recursive: true, force: true })
})

async function put(root: string, rel: string, content: string | Buffer): Promise<string> {
  const path = join(root, rel)
  await mkdir(dirname(path), { recursive: true })
  await writeFile(path, content)
  return path
}

/** detectSerial expected to fail: returns the attempts from SV_AGENT_SERIAL_NOT_FOUND. */
async function notFound(t: ExecutionContext, sources: SerialSourceConfig[], deps: DetectSerialDeps): Promise<SerialSourceAttempt[]> {
  const err = await t.throwsAsync(detectSerial(sources, deps), { instanceOf: AgentError })
  t.is(err?.code, 'SV_AGENT_SERIAL_NOT_FOUND')
  t.is((err as AgentError).exitCode, 1)
  return ((err as AgentError).details?.tried ?? []) as SerialSourceAttempt[]
}

/** Attempts without their free-text messages: tests assert codes and reasons only. */
function outcomes(tried: SerialSourceAttempt[]) {
  return tried.map(({ message: _message, ...rest }) => rest)
}

// --- fixture trees -------------------------------------------------------------

it('detectSerial (rpi4): devicetree first wins; the trailing NUL is removed', async (t) => {
  const result = await detectSerial([{ kind: 'devicetree' }, { kind: 'cpuinfo' }], { root: RPI4 })
  t.deepEqual(result, {
    serial: '10000000abcdef12',
    source: 'devicetree',
    detail: join(RPI4, DT),
    tried: [{ source: 'devicetree', detail: join(RPI4, DT), ok: true }],
  })
})

it('detectSerial (rpi4): the configured order is respected (cpuinfo first)', async (t) => {
  const result = await detectSerial([{ kind: 'cpuinfo' }, { kind: 'devicetree' }], { root: RPI4 })
  t.is(result.serial, '10000000abcdef12')
  t.is(result.source, 'cpuinfo')
  t.is(result.detail, join(RPI4, CPUINFO))
  t.is(result.tried.length, 1)
})

it('detectSerial (x86 PC): devicetree and cpuinfo fail with reasons, DMI product_serial wins', async (t) => {
  const result = await detectSerial([{ kind: 'devicetree' }, { kind: 'cpuinfo' }, { kind: 'dmi' }], { root: X86 })
  t.is(result.serial, 'PF2XK7QZ')
  t.is(result.source, 'dmi')
  t.is(result.detail, join(X86, DMI, 'product_serial'))
  t.deepEqual(outcomes(result.tried), [
    { source: 'devicetree', detail: join(X86, DT), ok: false, code: 'SV_AGENT_SERIAL_SOURCE_FAILED', reason: 'missing' },
    { source: 'cpuinfo', detail: join(X86, CPUINFO), ok: false, code: 'SV_AGENT_SERIAL_SOURCE_FAILED', reason: 'no-match' },
    { source: 'dmi', detail: join(X86, DMI, 'product_serial'), ok: true },
  ])
})

it('detectSerial (x86 placeholder DMI): both placeholders are refused with reasons, the next source wins', async (t) => {
  const result = await detectSerial([{ kind: 'dmi' }, { kind: 'value', value: 'LINE3-0007' }], { root: X86_PLACEHOLDER })
  t.is(result.serial, 'LINE3-0007')
  t.is(result.source, 'value')
  t.deepEqual(outcomes(result.tried), [
    {
      source: 'dmi',
      detail: join(X86_PLACEHOLDER, DMI, 'product_serial'),
      ok: false,
      code: 'SV_AGENT_SERIAL_SOURCE_FAILED',
      reason: 'placeholder',
      value: 'To Be Filled By O.E.M.',
    },
    {
      source: 'dmi',
      detail: join(X86_PLACEHOLDER, DMI, 'board_serial'),
      ok: false,
      code: 'SV_AGENT_SERIAL_SOURCE_FAILED',
      reason: 'placeholder',
      value: 'Default string',
    },
    { source: 'value', detail: 'configured value', ok: true },
  ])
})

it('detectSerial (x86 placeholder product serial): DMI falls back to board_serial', async (t) => {
  const result = await detectSerial([{ kind: 'dmi' }], { root: X86_BOARD })
  t.is(result.serial, 'BSN-4411-0093')
  t.is(result.detail, join(X86_BOARD, DMI, 'board_serial'))
  t.is(result.tried[0]?.reason, 'placeholder')
})

it('detectSerial (empty tree): SV_AGENT_SERIAL_NOT_FOUND lists every source tried and why', async (t) => {
  const tried = await notFound(t, [{ kind: 'devicetree' }, { kind: 'cpuinfo' }, { kind: 'dmi' }, { kind: 'file', path: '/etc/serial' }], {
    root: EMPTY,
  })
  const failed = (source: SerialSourceAttempt['source'], rel: string) => ({
    source,
    detail: join(EMPTY, rel),
    ok: false,
    code: 'SV_AGENT_SERIAL_SOURCE_FAILED',
    reason: 'missing',
  })
  t.deepEqual(outcomes(tried), [
    failed('devicetree', DT),
    failed('cpuinfo', CPUINFO),
    failed('dmi', `${DMI}/product_serial`),
    failed('dmi', `${DMI}/board_serial`),
    failed('file', 'etc/serial'),
  ])
  t.true(tried.every((a) => typeof a.message === 'string' && a.message.length > 0))
})

it('detectSerial (x86 placeholder only): not found, with the placeholder reasons', async (t) => {
  const tried = await notFound(t, [{ kind: 'dmi' }], { root: X86_PLACEHOLDER })
  t.deepEqual(
    tried.map((a) => a.reason),
    ['placeholder', 'placeholder'],
  )
})

// --- placeholders ----------------------------------------------------------------

const refusedPlaceholder = it.macro({
  async exec(t: ExecutionContext<Context>, content: string) {
    await put(t.context.dir, `${DMI}/product_serial`, content)
    const tried = await notFound(t, [{ kind: 'dmi' }], { root: t.context.dir })
    t.is(tried[0]?.reason, 'placeholder')
    t.is(tried[0]?.code, 'SV_AGENT_SERIAL_SOURCE_FAILED')
    t.is(tried[1]?.reason, 'missing')
  },
  title: (given, content: string) => given ?? `dmi: refuses placeholder ${JSON.stringify(content)}`,
})

for (const value of [
  'To Be Filled By O.E.M.\n',
  'TO BE FILLED BY O.E.M.\n',
  'Default string\n',
  'DEFAULT STRING\n',
  'System Serial Number\n',
  'Not Specified\n',
  'Not Applicable\n',
  'None\n',
  'N/A\n',
  'Unknown\n',
  '0\n',
  '0123456789\n',
  '1234567890\n',
  '00000000\n',
  '0000000000000000\n',
  'FFFFFFFF\n',
  'xxxxxxxxxx\n',
  'Chassis Serial Number\n',
  'Base Board Serial Number\n',
]) {
  it(refusedPlaceholder, value)
}

test('isPlaceholderSerial: real serials are not placeholders', (t) => {
  for (const serial of ['PF2XK7QZ', '10000000abcdef12', '0000000a', 'L1HF91Q00AB', 'F00F', 'BSN-4411-0093']) {
    t.false(isPlaceholderSerial(serial), serial)
  }
})

it('devicetree: an all-zero serial (emulated Pi) is a placeholder too', async (t) => {
  await put(t.context.dir, DT, '0000000000000000\0')
  const tried = await notFound(t, [{ kind: 'devicetree' }], { root: t.context.dir })
  t.is(tried[0]?.reason, 'placeholder')
})

it('devicetree: a value that breaks the serial policy is SV_SERIAL_INVALID with its reason and value', async (t) => {
  await put(t.context.dir, DT, 'rev 1/2\0')
  const result = await detectSerial([{ kind: 'devicetree' }, { kind: 'value', value: 'OK-1' }], { root: t.context.dir })
  t.is(result.serial, 'OK-1')
  t.like(result.tried[0], { source: 'devicetree', ok: false, code: 'SV_SERIAL_INVALID', reason: 'invalid-characters', value: 'rev 1/2' })
})

it('devicetree: a file over 4 KiB is reason too-large', async (t) => {
  await put(t.context.dir, DT, 'A'.repeat(5000))
  const tried = await notFound(t, [{ kind: 'devicetree' }], { root: t.context.dir })
  t.is(tried[0]?.reason, 'too-large')
})

it('cpuinfo: an empty Serial line is SV_SERIAL_INVALID empty', async (t) => {
  await put(t.context.dir, CPUINFO, 'processor\t: 0\nSerial\t\t: \nModel\t: x\n')
  const tried = await notFound(t, [{ kind: 'cpuinfo' }], { root: t.context.dir })
  t.like(tried[0], { code: 'SV_SERIAL_INVALID', reason: 'empty' })
})

// --- file and value ---------------------------------------------------------------

it('file: the whole content, normalised, under root', async (t) => {
  const path = await put(t.context.dir, 'etc/device-serial', '  SN-77\n')
  const result = await detectSerial([{ kind: 'file', path: '/etc/device-serial' }], { root: t.context.dir })
  t.is(result.serial, 'SN-77')
  t.is(result.detail, path)
})

it('file: capture group 1 of the pattern (m flag)', async (t) => {
  await put(t.context.dir, 'var/lib/factory/info', 'model=ipc-5100\nserial=FAB-991\nbatch=7\n')
  const result = await detectSerial([{ kind: 'file', path: '/var/lib/factory/info', pattern: '^serial=(\\S+)$' }], {
    root: t.context.dir,
  })
  t.is(result.serial, 'FAB-991')
})

it('file: a pattern that does not match is reason no-match', async (t) => {
  await put(t.context.dir, 'info', 'model=ipc-5100\n')
  const tried = await notFound(t, [{ kind: 'file', path: '/info', pattern: '^serial=(\\S+)$' }], { root: t.context.dir })
  t.like(tried[0], { source: 'file', code: 'SV_AGENT_SERIAL_SOURCE_FAILED', reason: 'no-match' })
})

it('file: a directory is reason unreadable; a FIFO fails at once', async (t) => {
  await mkdir(join(t.context.dir, 'adir'))
  execFileSync('mkfifo', [join(t.context.dir, 'fifo')])
  const started = Date.now()
  const tried = await notFound(
    t,
    [
      { kind: 'file', path: '/adir' },
      { kind: 'file', path: '/fifo' },
    ],
    { root: t.context.dir, readTimeoutMs: 1000 },
  )
  t.is(tried[0]?.reason, 'unreadable')
  t.true(tried[1]?.reason === 'unreadable' || tried[1]?.code === 'SV_SERIAL_INVALID', JSON.stringify(tried[1]))
  t.true(Date.now() - started < 1000)
})

it('value: an invalid explicit value is refused and the next source is tried', async (t) => {
  const result = await detectSerial(
    [
      { kind: 'value', value: 'has space' },
      { kind: 'value', value: '-leading' },
      { kind: 'value', value: 'GOOD' },
    ],
    {},
  )
  t.is(result.serial, 'GOOD')
  t.deepEqual(
    result.tried.map((a) => [a.code, a.reason]),
    [
      ['SV_SERIAL_INVALID', 'invalid-characters'],
      ['SV_SERIAL_INVALID', 'invalid-first-character'],
      [undefined, undefined],
    ],
  )
})

it('value: an explicit all-zero value is taken (placeholders are checked on hardware fields only)', async (t) => {
  const result = await detectSerial([{ kind: 'value', value: '0000' }])
  t.is(result.serial, '0000')
})

// --- command -----------------------------------------------------------------------

it('command: stdout, normalised', async (t) => {
  const result = await detectSerial([{ kind: 'command', argv: ['printf', 'CMD-123\\n'] }])
  t.is(result.serial, 'CMD-123')
  t.is(result.source, 'command')
  t.is(result.detail, 'printf CMD-123\\n')
})

it('command: no shell is involved (metacharacters are plain arguments)', async (t) => {
  const result = await detectSerial([{ kind: 'command', argv: ['echo', 'A1;', 'echo', 'B2'], pattern: '^(\\S+);' }])
  t.is(result.serial, 'A1')
})

it('command: capture group of the pattern', async (t) => {
  const result = await detectSerial([{ kind: 'command', argv: ['printf', 'vendor: acme\\nserial: Z-42\\n'], pattern: '^serial: (\\S+)$' }])
  t.is(result.serial, 'Z-42')
})

it('command: a non-zero exit is reason exit-status, with stderr in the message', async (t) => {
  const tried = await notFound(t, [{ kind: 'command', argv: ['sh', '-c', 'echo no eeprom >&2; exit 3'] }], {})
  t.like(tried[0], { source: 'command', code: 'SV_AGENT_SERIAL_SOURCE_FAILED', reason: 'exit-status' })
  t.regex(tried[0]?.message ?? '', /no eeprom/)
})

it('command: a program that runs too long is killed; reason timeout, promptly', async (t) => {
  const started = Date.now()
  const tried = await notFound(t, [{ kind: 'command', argv: ['sleep', '10'], timeoutMs: 150 }], {})
  t.is(tried[0]?.reason, 'timeout')
  t.true(Date.now() - started < 2000)
})

it('command: a grandchild holding stdout open cannot stretch the timeout', async (t) => {
  const started = Date.now()
  const tried = await notFound(t, [{ kind: 'command', argv: ['sh', '-c', 'sleep 3 & echo partial; wait'], timeoutMs: 150 }], {})
  t.is(tried[0]?.reason, 'timeout')
  t.true(Date.now() - started < 2000)
})

it('command: output beyond the bound is reason output-too-large', async (t) => {
  const started = Date.now()
  const tried = await notFound(t, [{ kind: 'command', argv: ['yes', 'SERIAL'], maxOutputBytes: 1024, timeoutMs: 5000 }], {})
  t.is(tried[0]?.reason, 'output-too-large')
  t.true(Date.now() - started < 2000)
})

it('command: a missing program is reason spawn-failed', async (t) => {
  const tried = await notFound(t, [{ kind: 'command', argv: ['/nonexistent/serial-tool'] }], {})
  t.is(tried[0]?.reason, 'spawn-failed')
})

it('command: multi-line output without a pattern is an invalid serial', async (t) => {
  const tried = await notFound(t, [{ kind: 'command', argv: ['printf', 'A\\nB\\n'] }], {})
  t.like(tried[0], { code: 'SV_SERIAL_INVALID', reason: 'invalid-characters' })
})

// --- serialport (MockBinding; the real pty is in serial/serial-link.test.ts) ------

it('serialport: a missing port is recorded and the next source answers; the jig source then wins', async (t) => {
  const jig = createMockJig((w) => (w === 'SN?\r\n' ? ['boot\r\n', 'SN:MOCK-0001\r\n'] : undefined))
  const deps: DetectSerialDeps = { createSerialLink: (request) => new NodeSerialLink({ ...request, binding: jig.binding }) }
  const result = await detectSerial(
    [
      { kind: 'serialport', path: `${jig.path}-absent`, baudRate: 9600, query: 'SN?\\r\\n', responsePattern: '^SN:(.+)$', timeoutMs: 500 },
      { kind: 'serialport', path: jig.path, baudRate: 9600, query: 'SN?\\r\\n', responsePattern: '^SN:(.+)$', timeoutMs: 500 },
    ],
    deps,
  )
  t.is(result.serial, 'MOCK-0001')
  t.is(result.detail, jig.path)
  t.like(result.tried[0], { source: 'serialport', ok: false, code: 'SV_AGENT_SERIAL_PORT', reason: 'not-found' })
  t.false(jig.port()?.isOpen, 'the link is closed after the query')
})

it('serialport: no answer is reason timeout and the port is closed', async (t) => {
  const jig = createMockJig()
  const tried = await notFound(
    t,
    [{ kind: 'serialport', path: jig.path, baudRate: 9600, query: 'SN?\\r\\n', responsePattern: '^SN:(.+)$', timeoutMs: 100 }],
    { createSerialLink: (request) => new NodeSerialLink({ ...request, binding: jig.binding }) },
  )
  t.like(tried[0], { code: 'SV_AGENT_SERIAL_PORT', reason: 'timeout' })
  t.false(jig.port()?.isOpen)
})

it('serialport: without createSerialLink it is a wiring mistake (TypeError)', async (t) => {
  await t.throwsAsync(
    detectSerial([{ kind: 'serialport', path: '/dev/ttyS0', baudRate: 9600, query: '', responsePattern: '(.+)', timeoutMs: 100 }]),
    { instanceOf: TypeError },
  )
})

// --- configuration -----------------------------------------------------------------

it('detectSerial: every configuration problem is reported at once as SV_AGENT_CONFIG_INVALID, nothing is read', async (t) => {
  const sources = [
    { kind: 'file', path: 'relative/path' },
    { kind: 'file', path: '/x', pattern: 'no group' },
    { kind: 'command', argv: [] },
    { kind: 'command', argv: ['x'], pattern: '(a)(b)', timeoutMs: -1 },
    { kind: 'serialport', path: '/dev/ttyS0', baudRate: 9600, query: 'bad \\q escape', responsePattern: '([', timeoutMs: 100 },
    { kind: 'usb-eeprom' },
    { kind: 'value', value: 42 },
  ] as unknown as SerialSourceConfig[]
  const err = await t.throwsAsync(detectSerial(sources, { root: EMPTY }), { instanceOf: AgentError })
  t.is(err?.code, 'SV_AGENT_CONFIG_INVALID')
  t.is((err as AgentError).exitCode, 2)
  const problems = (err as AgentError).details?.problems as { index: number }[]
  t.deepEqual([...new Set(problems.map((p) => p.index))], [0, 1, 2, 3, 4, 5, 6])
  t.is(problems.length, 9)
})

test('checkSerialSources: an empty list is a problem; a good list has none', (t) => {
  t.is(checkSerialSources([]).length, 1)
  t.deepEqual(
    checkSerialSources([
      { kind: 'devicetree' },
      { kind: 'cpuinfo' },
      { kind: 'dmi' },
      { kind: 'file', path: '/etc/serial', pattern: '^(\\w+)$' },
      { kind: 'command', argv: ['fw_printenv', '-n', 'serial'], timeoutMs: 1000 },
      { kind: 'value', value: 'X1' },
      { kind: 'serialport', path: '/dev/ttyUSB0', baudRate: 115200, query: 'SN?\\r\\n', responsePattern: '^SN=(.+)$', timeoutMs: 2000 },
    ]),
    [],
  )
})
