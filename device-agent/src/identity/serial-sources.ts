/**
 * Where the device's serial number comes from. A device has one or more
 * configured sources, tried in the configured order; the first source that
 * yields a VALID serial wins (normalised, then checked against the shared
 * serial policy in `@sv/shared`). A source that fails, or yields a value
 * that is not a valid serial, is recorded with its reason and the next one
 * is tried, so a board without a devicetree falls through to DMI and so on.
 *
 * Every read is bounded: files by size (4 KiB, /proc/cpuinfo 64 KiB) and by
 * time (`readTimeoutMs`), commands by output size and time, serial ports by
 * their query time.
 */

import { execFile } from 'node:child_process'
import { isAbsolute, join } from 'node:path'
import { isVaultError, normaliseSerial, validateSerial } from '@sv/shared'
import { AgentError, isAgentError } from '../errors.js'
import { readFileBounded } from '../fs/atomic-write.js'
import { DEFAULT_DELIMITER, encodeQuery } from '../serial/framing.js'
import type { SerialLink } from '../serial/serial-link.js'

/** `<root>/sys/firmware/devicetree/base/serial-number`, NUL-terminated on a Raspberry Pi. */
export interface DevicetreeSerialSource {
  kind: 'devicetree'
}

/** The `Serial : 10000000abcdef12` line of `<root>/proc/cpuinfo` (Raspberry Pi kernels). */
export interface CpuinfoSerialSource {
  kind: 'cpuinfo'
}

/**
 * `<root>/sys/class/dmi/id/product_serial`, then `board_serial` (x86 PCs).
 * Firmware placeholders ("To Be Filled By O.E.M.", "Default string", all
 * zeros...) are refused with reason `placeholder`.
 */
export interface DmiSerialSource {
  kind: 'dmi'
}

/** Any file (absolute path, read under `root`); the whole content, or capture group 1 of `pattern`. */
export interface FileSerialSource {
  kind: 'file'
  path: string
  /** Regular expression with exactly one capture group, compiled with the `m` flag. */
  pattern?: string
}

/** A program run without a shell; its stdout, or capture group 1 of `pattern`. */
export interface CommandSerialSource {
  kind: 'command'
  /** Program and arguments; argv[0] is looked up in PATH. */
  argv: string[]
  /** Default 5000 ms; the program (not its children) is killed with SIGKILL after it. */
  timeoutMs?: number
  /** Regular expression with exactly one capture group, compiled with the `m` flag. */
  pattern?: string
  /** Bound on stdout and on stderr. Default 4096. */
  maxOutputBytes?: number
}

/** A serial given explicitly (factory line configuration). */
export interface ValueSerialSource {
  kind: 'value'
  value: string
}

/** Asks attached hardware (a jig, an MCU) over a serial port. */
export interface SerialportSerialSource {
  kind: 'serialport'
  /** Port path, used as is (not under `root`). */
  path: string
  baudRate: number
  /** Sent verbatim after decoding the escapes \r \n \t \\ \xHH; empty sends nothing and only listens. */
  query: string
  /** Matched against each received line; exactly one capture group. */
  responsePattern: string
  timeoutMs: number
  /** Line delimiter. Default "\r\n". */
  delimiter?: string
}

export type SerialSourceConfig =
  | DevicetreeSerialSource
  | CpuinfoSerialSource
  | DmiSerialSource
  | FileSerialSource
  | CommandSerialSource
  | ValueSerialSource
  | SerialportSerialSource

export type SerialSourceKind = SerialSourceConfig['kind']

/** What a serialport source hands to `createSerialLink`. */
export interface SerialLinkRequest {
  path: string
  baudRate: number
  delimiter: string
}

export interface DetectSerialDeps {
  /** File-system root for devicetree, cpuinfo, dmi and file sources. Default "/". */
  root?: string
  /** Bound on each file read. Default 2000 ms. */
  readTimeoutMs?: number
  /** Needed only when a serialport source is configured (main.ts passes a NodeSerialLink factory). */
  createSerialLink?: (request: SerialLinkRequest) => SerialLink
}

/** One source (or, for dmi, one file) tried, in the order tried. */
export interface SerialSourceAttempt {
  source: SerialSourceKind
  /** The path, port or command line read. */
  detail: string
  ok: boolean
  /** On failure: SV_AGENT_SERIAL_SOURCE_FAILED, SV_AGENT_SERIAL_PORT or SV_SERIAL_INVALID. */
  code?: string
  /** On failure: the `details.reason` of that code (e.g. missing, placeholder, timeout, invalid-characters). */
  reason?: string
  message?: string
  /** The refused value, cut to 64 characters, for placeholder and invalid values. */
  value?: string
}

export interface DetectedSerial {
  serial: string
  source: SerialSourceKind
  detail: string
  /** Every attempt made, the winning one last. */
  tried: SerialSourceAttempt[]
}

export interface SerialSourceProblem {
  index: number
  kind: string | undefined
  message: string
}

const MAX_FILE_BYTES = 4096
const MAX_CPUINFO_BYTES = 64 * 1024
const DEFAULT_READ_TIMEOUT_MS = 2000
const DEFAULT_COMMAND_TIMEOUT_MS = 5000
const DEFAULT_COMMAND_OUTPUT_BYTES = 4096
const VALUE_IN_DETAILS_MAX = 64

const DMI_DIR = 'sys/class/dmi/id'

/**
 * Values firmware vendors leave in DMI serial fields, compared lower-case
 * after normalising. Collected from dmidecode output on boards in the field
 * and from fwupd/systemd quirk lists.
 */
const PLACEHOLDERS = new Set([
  'to be filled by o.e.m.',
  'to be filled by oem',
  'to be filled',
  'default string',
  'default',
  'system serial number',
  'chassis serial number',
  'base board serial number',
  'board serial number',
  'serial number',
  'serial',
  'sn',
  'not specified',
  'not applicable',
  'not available',
  'n/a',
  'na',
  'none',
  'null',
  'unknown',
  'invalid',
  'empty',
  'oem',
  'o.e.m.',
  '0123456789',
  '123456789',
  '1234567890',
  '0123456789abcdef',
])

/** All zeros, all F or all X ("00000000", "FFFFFFFF", "XXXXXXXX"), any length. */
const FILLER = /^(?:0+|f+|x+)$/i

/** True when `serial` (already normalised) is a well-known firmware placeholder. */
export function isPlaceholderSerial(serial: string): boolean {
  const lower = serial.toLowerCase()
  return PLACEHOLDERS.has(lower) || FILLER.test(lower)
}

/**
 * Checks a list of source configurations without reading anything; returns
 * every problem found (empty when all is well). Used by {@link detectSerial}
 * and by the config loader, so a typo in a pattern fails at start-up instead
 * of silently falling through to the next source.
 */
export function checkSerialSources(sources: readonly unknown[]): SerialSourceProblem[] {
  const problems: SerialSourceProblem[] = []
  if (!Array.isArray(sources) || sources.length === 0) {
    return [{ index: -1, kind: undefined, message: 'at least one serial source must be configured' }]
  }
  sources.forEach((raw, index) => {
    const add = (message: string) => problems.push({ index, kind, message })
    const s = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>
    const kind = typeof s.kind === 'string' ? s.kind : undefined
    switch (kind) {
      case 'devicetree':
      case 'cpuinfo':
      case 'dmi':
        break
      case 'value':
        if (typeof s.value !== 'string') add('value must be a string')
        break
      case 'file':
        if (typeof s.path !== 'string' || !isAbsolute(s.path)) add('path must be an absolute path')
        if (s.pattern !== undefined) checkPattern(s.pattern, 'pattern', add)
        break
      case 'command':
        if (!Array.isArray(s.argv) || s.argv.length === 0 || !s.argv.every((a) => typeof a === 'string') || s.argv[0] === '') {
          add('argv must be a non-empty list of strings')
        }
        if (s.timeoutMs !== undefined && !isPositiveInt(s.timeoutMs)) add('timeoutMs must be a positive integer')
        if (s.maxOutputBytes !== undefined && !isPositiveInt(s.maxOutputBytes)) add('maxOutputBytes must be a positive integer')
        if (s.pattern !== undefined) checkPattern(s.pattern, 'pattern', add)
        break
      case 'serialport':
        if (typeof s.path !== 'string' || s.path === '') add('path must be a non-empty string')
        if (!isPositiveInt(s.baudRate)) add('baudRate must be a positive integer')
        if (!isPositiveInt(s.timeoutMs)) add('timeoutMs must be a positive integer')
        if (typeof s.query !== 'string') add('query must be a string')
        else {
          try {
            encodeQuery(s.query)
          } catch (err) {
            add((err as Error).message)
          }
        }
        checkPattern(s.responsePattern, 'responsePattern', add)
        if (s.delimiter !== undefined && (typeof s.delimiter !== 'string' || s.delimiter === '')) add('delimiter must be a non-empty string')
        break
      default:
        add(`unknown serial source kind ${JSON.stringify(s.kind)}`)
    }
  })
  return problems
}

/**
 * Tries `sources` in order and returns the first valid serial with where it
 * came from and every attempt made.
 *
 * @throws AgentError `SV_AGENT_CONFIG_INVALID` (`details.problems`) when the
 *   source list is malformed; nothing is read then.
 * @throws AgentError `SV_AGENT_SERIAL_NOT_FOUND` (`details.tried`) when no
 *   source gave a valid serial.
 * @throws TypeError when a serialport source is configured but
 *   `deps.createSerialLink` is missing (a wiring mistake in main.ts).
 */
export async function detectSerial(sources: readonly SerialSourceConfig[], deps: DetectSerialDeps = {}): Promise<DetectedSerial> {
  const problems = checkSerialSources(sources)
  if (problems.length > 0) {
    throw new AgentError('SV_AGENT_CONFIG_INVALID', `invalid serial source configuration: ${problems.map((p) => p.message).join('; ')}`, {
      details: { problems },
    })
  }
  if (sources.some((s) => s.kind === 'serialport') && deps.createSerialLink === undefined) {
    throw new TypeError('a serialport serial source needs deps.createSerialLink')
  }
  const ctx: Context = {
    root: deps.root ?? '/',
    readTimeoutMs: deps.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS,
    createSerialLink: deps.createSerialLink,
  }
  const tried: SerialSourceAttempt[] = []
  for (const source of sources) {
    for (const probe of probesFor(source, ctx)) {
      const attempt = await runProbe(source, probe)
      tried.push(attempt.attempt)
      if (attempt.serial !== undefined) return { serial: attempt.serial, source: source.kind, detail: probe.detail, tried }
    }
  }
  const summary = tried.map((a) => `${a.source} (${a.detail}): ${a.reason ?? 'failed'}`).join('; ')
  throw new AgentError('SV_AGENT_SERIAL_NOT_FOUND', `no serial source produced a valid serial: ${summary}`, { details: { tried } })
}

interface Context {
  root: string
  readTimeoutMs: number
  createSerialLink: DetectSerialDeps['createSerialLink']
}

/** One concrete read: a file, a command run, a port query. */
interface Probe {
  detail: string
  /** Hardware identity fields get the firmware-placeholder check. */
  hardware: boolean
  read(): Promise<string>
}

function probesFor(source: SerialSourceConfig, ctx: Context): Probe[] {
  switch (source.kind) {
    case 'devicetree': {
      const path = join(ctx.root, 'sys/firmware/devicetree/base/serial-number')
      return [{ detail: path, hardware: true, read: () => readText(source.kind, path, MAX_FILE_BYTES, ctx) }]
    }
    case 'cpuinfo': {
      const path = join(ctx.root, 'proc/cpuinfo')
      const read = async () => {
        const text = await readText(source.kind, path, MAX_CPUINFO_BYTES, ctx)
        const m = /^Serial\s*:[ \t]*(.*)$/m.exec(text)
        if (m === null) throw sourceFailed(source.kind, path, 'no-match', `${path} has no Serial line`)
        return m[1] ?? ''
      }
      return [{ detail: path, hardware: true, read }]
    }
    case 'dmi':
      return ['product_serial', 'board_serial'].map((name) => {
        const path = join(ctx.root, DMI_DIR, name)
        return { detail: path, hardware: true, read: () => readText(source.kind, path, MAX_FILE_BYTES, ctx) }
      })
    case 'file': {
      const path = join(ctx.root, source.path)
      const read = async () => extract(source.kind, path, await readText(source.kind, path, MAX_FILE_BYTES, ctx), source.pattern)
      return [{ detail: path, hardware: false, read }]
    }
    case 'command': {
      const detail = source.argv.join(' ')
      const read = async () => extract(source.kind, detail, await runCommand(source, detail), source.pattern)
      return [{ detail, hardware: false, read }]
    }
    case 'value':
      return [{ detail: 'configured value', hardware: false, read: async () => source.value }]
    case 'serialport': {
      const createSerialLink = ctx.createSerialLink as NonNullable<Context['createSerialLink']>
      const read = async () => {
        const link = createSerialLink({ path: source.path, baudRate: source.baudRate, delimiter: source.delimiter ?? DEFAULT_DELIMITER })
        try {
          await link.open()
          return await link.query(encodeQuery(source.query), new RegExp(source.responsePattern), source.timeoutMs)
        } finally {
          await link.close()
        }
      }
      return [{ detail: source.path, hardware: false, read }]
    }
  }
}

async function runProbe(source: SerialSourceConfig, probe: Probe): Promise<{ attempt: SerialSourceAttempt; serial?: string }> {
  const base = { source: source.kind, detail: probe.detail }
  let raw: string
  try {
    raw = await probe.read()
  } catch (err) {
    return { attempt: { ...base, ok: false, ...describeFailure(err) } }
  }
  const serial = normaliseSerial(raw)
  if (probe.hardware && isPlaceholderSerial(serial)) {
    return {
      attempt: {
        ...base,
        ok: false,
        code: 'SV_AGENT_SERIAL_SOURCE_FAILED',
        reason: 'placeholder',
        message: `${probe.detail} holds the firmware placeholder ${JSON.stringify(serial)}, not a serial`,
        value: cut(serial),
      },
    }
  }
  try {
    validateSerial(serial)
  } catch (err) {
    return { attempt: { ...base, ok: false, ...describeFailure(err), value: cut(serial) } }
  }
  return { attempt: { ...base, ok: true }, serial }
}

function describeFailure(err: unknown): Pick<SerialSourceAttempt, 'code' | 'reason' | 'message'> {
  if (isAgentError(err) || isVaultError(err)) {
    const reason = err.details?.reason
    return { code: err.code, reason: typeof reason === 'string' ? reason : undefined, message: err.message }
  }
  return { code: 'SV_AGENT_SERIAL_SOURCE_FAILED', reason: 'unreadable', message: err instanceof Error ? err.message : String(err) }
}

async function readText(kind: SerialSourceKind, path: string, maxBytes: number, ctx: Context): Promise<string> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(sourceFailed(kind, path, 'timeout', `reading ${path} took longer than ${ctx.readTimeoutMs} ms`)),
      ctx.readTimeoutMs,
    )
  })
  try {
    // The read goes on in the thread pool after a timeout; its result is dropped.
    const buf = await Promise.race([readFileBounded(path, maxBytes), timeout])
    return buf.toString('utf8')
  } catch (err) {
    if (isAgentError(err) && err.code === 'SV_AGENT_SERIAL_SOURCE_FAILED') throw err
    if (isAgentError(err) && err.code === 'SV_AGENT_FILE_TOO_LARGE') {
      throw sourceFailed(kind, path, 'too-large', `${path} is larger than ${maxBytes} bytes`, err)
    }
    const code = (err as NodeJS.ErrnoException).code
    const reason = code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : code === 'EACCES' || code === 'EPERM' ? 'permission' : 'unreadable'
    throw sourceFailed(kind, path, reason, `cannot read ${path}: ${(err as Error).message}`, err)
  } finally {
    clearTimeout(timer)
  }
}

/** The whole text, or capture group 1 of `pattern` (compiled with the m flag). */
function extract(kind: SerialSourceKind, detail: string, text: string, pattern: string | undefined): string {
  if (pattern === undefined) return text
  const m = new RegExp(pattern, 'm').exec(text)
  if (m === null || m[1] === undefined) throw sourceFailed(kind, detail, 'no-match', `output of ${detail} does not match ${pattern}`)
  return m[1]
}

/**
 * Runs the program with execFile (no shell). Bounded by time (our own timer:
 * on expiry the child gets SIGKILL and its pipes are destroyed, so a
 * grandchild holding stdout cannot keep us waiting) and by output size
 * (execFile's maxBuffer kills the child when stdout or stderr exceeds it).
 */
function runCommand(source: CommandSerialSource, detail: string): Promise<string> {
  const timeoutMs = source.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
  const maxBytes = source.maxOutputBytes ?? DEFAULT_COMMAND_OUTPUT_BYTES
  const [file, ...args] = source.argv as [string, ...string[]]
  return new Promise<string>((resolve, reject) => {
    let settled = false
    const settle = (err: AgentError | undefined, value?: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err !== undefined) reject(err)
      else resolve(value as string)
    }
    const child = execFile(
      file,
      args,
      { encoding: 'utf8', maxBuffer: maxBytes, killSignal: 'SIGKILL', shell: false, windowsHide: true },
      (err, stdout, stderr) => {
        if (err === null) {
          settle(undefined, stdout)
          return
        }
        const e = err as NodeJS.ErrnoException & { code?: string | number; signal?: NodeJS.Signals | null }
        const errText = cut(String(stderr ?? '').trim())
        const extra = { stderr: errText }
        const said = errText === '' ? '' : `: ${errText}`
        if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
          settle(sourceFailed('command', detail, 'output-too-large', `${detail} wrote more than ${maxBytes} bytes`, err, { maxBytes }))
        } else if (typeof e.code === 'number') {
          settle(sourceFailed('command', detail, 'exit-status', `${detail} exited with status ${e.code}${said}`, err, { ...extra, exitStatus: e.code }))
        } else if (typeof e.code === 'string') {
          settle(sourceFailed('command', detail, 'spawn-failed', `cannot run ${detail}: ${e.message}`, err))
        } else {
          settle(sourceFailed('command', detail, 'signal', `${detail} was killed by ${e.signal ?? 'a signal'}${said}`, err, { ...extra, signal: e.signal }))
        }
      },
    )
    const timer = setTimeout(() => {
      child.stdout?.destroy()
      child.stderr?.destroy()
      child.kill('SIGKILL')
      settle(sourceFailed('command', detail, 'timeout', `${detail} did not finish within ${timeoutMs} ms`, undefined, { timeoutMs }))
    }, timeoutMs)
  })
}

function sourceFailed(
  source: SerialSourceKind,
  detail: string,
  reason: string,
  message: string,
  cause?: unknown,
  extra: Record<string, unknown> = {},
): AgentError {
  return new AgentError('SV_AGENT_SERIAL_SOURCE_FAILED', message, { details: { source, detail, reason, ...extra }, cause })
}

function checkPattern(pattern: unknown, name: string, add: (message: string) => void): void {
  if (typeof pattern !== 'string') {
    add(`${name} must be a string`)
    return
  }
  let re: RegExp
  try {
    re = new RegExp(pattern, 'm')
  } catch (err) {
    add(`${name} is not a valid regular expression: ${(err as Error).message}`)
    return
  }
  // An empty alternative makes exec() succeed and report every group.
  const groups = (new RegExp(`${re.source}|`).exec('') as RegExpExecArray).length - 1
  if (groups !== 1) add(`${name} must have exactly one capture group, it has ${groups}`)
}

function isPositiveInt(n: unknown): boolean {
  return typeof n === 'number' && Number.isInteger(n) && n > 0
}

function cut(s: string): string {
  return s.length <= VALUE_IN_DETAILS_MAX ? s : `${s.slice(0, VALUE_IN_DETAILS_MAX)}…`
}
