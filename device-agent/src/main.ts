/**
 * The `device-agent` command: composition root and CLI. The only module that
 * names concrete implementations (HttpVaultClient, NodeSerialLink, the file
 * checkpoint store). Heavy modules are loaded only by the commands that need
 * them (the HTTP client for provision, serialport for a serialport source, yaml for a
 * YAML config file), which keeps the agent's memory small on a Pi.
 *
 *   device-agent provision [--once] [options]   run until provisioned
 *   device-agent status [--json]                the saved state
 *   device-agent serial [--json]                the hardware serial and its source
 *   device-agent reset --yes                    factory reset of the agent's state
 *
 * Exit codes (errors.ts EXIT): 0 done, 1 failed, 2 configuration invalid,
 * 3 retry later (provision --once hit a temporary condition; the state is
 * saved and the next run resumes), 130/143 interrupted by SIGINT/SIGTERM.
 */
import { Command, CommanderError, Option } from 'commander'
import { readFileSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { arch, release } from 'node:os'
import { pathToFileURL } from 'node:url'
import { ModelAssertion, decodeStream, isVaultError, setPath, type Assertion, type ConfigTree } from '@sv/shared'
// Installs node:crypto as the codec's crypto platform (the fast path; the
// main entry alone runs on @noble/hashes and WebCrypto).
import '@sv/shared/node'
import { AgentError, EXIT, isAgentError } from './errors.js'
import { agentPaths, loadAgentConfig, normalisePin, printableConfig, setYamlParser, type AgentConfig, type ConfigPurpose } from './config.js'
import { createLogger, logEvent, type Logger } from './logger.js'
import { systemClock } from './clock.js'
import { detectSerial, type SerialLinkRequest } from './identity/serial-sources.js'
import { createDeviceKey, loadDeviceKey } from './identity/device-key.js'
import { readHardwareInfo } from './identity/hardware-info.js'
import { CheckpointStore } from './provision/checkpoint.js'
import { Provisioner, type ProvisionOutcome } from './provision/provisioner.js'
import { isPausePoint, type PausePoint } from './provision/states.js'
import { acquireStateLock } from './provision/state-lock.js'
import { runHook } from './provision/hook.js'
import { formatStatus, statusReport } from './status.js'
import { VERSION } from './version.js'
import type { VaultClient } from './vault/vault-client.js'

export interface CliIo {
  out(text: string): void
  err(text: string): void
  env: Readonly<Record<string, string | undefined>>
  /** stderr is a terminal: key generation shows a progress line instead of log events */
  isTty: boolean
}

export const processIo: CliIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  env: process.env,
  isTty: process.stderr.isTTY === true,
}

interface CommonFlags {
  config?: string
  stateDir?: string
  logLevel?: string
  printConfig?: boolean
}

interface ProvisionFlags extends CommonFlags {
  once?: boolean
  url?: string
  transport?: string
  broker?: string
  mqttClientId?: string
  mqttVersion?: string
  mqttTopicPrefix?: string
  serialPort?: string
  baud?: string
  apiKey?: string
  apiKeyFile?: string
  header: string[]
  brand?: string
  model?: string
  serialValue?: string
  serialPolicy?: string
  ca?: string
  pin: string[]
  trusted: string[]
  chain: string[]
  modelAssertion?: string
  keyBits?: string
  serialOutput?: string
  chainOutput?: string
  hook?: string
  hookTimeoutMs?: string
}

const collect = (v: string, prev: string[]): string[] => [...prev, v]

function commonOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'configuration file (YAML or JSON); also AGENT_CONFIG')
    .option('--state-dir <dir>', 'state directory (device key, checkpoint); default /var/lib/device-agent')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--print-config', 'print the resolved configuration (secrets redacted) and exit')
}

/** Builds the command tree; `exit` receives each action's exit code. */
export function buildProgram(io: CliIo, exit: (code: number) => void): Command {
  const program = new Command('device-agent')
    .description('First-boot provisioning agent for Ubuntu Core devices: obtains a snapd serial assertion from a serial vault')
    .version(VERSION)
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    // Before the subcommands exist, so they inherit it: usage errors become exit codes, never process.exit.
    .exitOverride()

  commonOptions(program.command('provision'))
    .description('register the device with the vault: device key, request-id, serial-request, serial; runs until provisioned')
    .option('--once', 'one attempt: exit 0 provisioned, 1 failed, 2 config invalid, 3 retry later (state kept)')
    .option('--url <url>', "the vault's device-service base URL, e.g. https://vault.example.com/v1/")
    .option('--transport <transport>', 'https (default), mqtt, or serial (a factory station over a UART)')
    .option('--broker <url>', 'MQTT broker for --transport mqtt: mqtt://HOST:PORT or mqtts://HOST:PORT')
    .option('--mqtt-client-id <id>', 'MQTT client id (default sv-agent-<random>; unique per device)')
    .option('--mqtt-version <4|5>', 'MQTT protocol: 4 = 3.1.1 (default, the embedded broker), 5')
    .option('--mqtt-topic-prefix <prefix>', "the vault deployment's topic prefix (default serial-vault/v1)")
    .option('--serial-port <path>', 'for --transport serial: the port wired to the station, e.g. /dev/ttyS0')
    .option('--baud <rate>', 'for --transport serial: baud rate (default 115200)')
    .option('--api-key <key>', 'api-key header (prefer --api-key-file or AGENT_API_KEY)')
    .option('--api-key-file <file>', 'read the api-key from FILE')
    .option('--header <name=value>', 'extra header on both requests; repeatable', collect, [])
    .option('--brand <id>', 'brand account id')
    .option('--model <name>', 'model name')
    .option('--serial-value <serial>', 'use this serial instead of the configured hardware sources')
    .option('--serial-policy <policy>', 'device (default: propose the hardware serial) or assign (the model\'s serials are assigned by the vault: no serial source is needed)')
    .option('--ca <file>', 'PEM bundle of the CAs to trust for the vault (instead of the built-in roots)')
    .option('--pin <sha256>', 'SPKI SHA-256 pin (sha256/BASE64, base64 or hex) the vault chain must match; repeatable', collect, [])
    .option('--trusted <file>', 'trust anchors (root account + account-key) the serial must chain to; repeatable', collect, [])
    .option('--chain <file>', 'prerequisites shipped in the image (brand account, account-key, model); repeatable', collect, [])
    .option('--model-assertion <file>', 'model assertion to send with the serial-request (a stream is fine)')
    .option('--key-bits <n>', 'size of a newly generated device key: 4096 (default), 3072 or 2048')
    .option('--serial-output <file>', 'where to write the serial assertion (default STATE/serial.assert)')
    .option('--chain-output <file>', 'where to write its signing chain (default STATE/chain.assert)')
    .option('--hook <command>', 'run this shell command once provisioned (env AGENT_SERIAL_FILE, AGENT_CHAIN_FILE, AGENT_SERIAL...)')
    .option('--hook-timeout-ms <ms>', 'bound on the hook (default 60000)')
    .action(async (opts: ProvisionFlags) => exit(await provisionCommand(io, opts)))

  commonOptions(program.command('status'))
    .description('print the provisioning state')
    .option('--json', 'print JSON')
    .action(async (opts: CommonFlags & { json?: boolean }) => exit(await statusCommand(io, opts)))

  commonOptions(program.command('serial'))
    .description('print the hardware serial the configured sources give, and which source gave it')
    .option('--serial-value <serial>', 'use this serial instead of the configured hardware sources')
    .option('--json', 'print JSON (serial, source, detail, every source tried)')
    .action(async (opts: CommonFlags & { json?: boolean; serialValue?: string }) => exit(await serialCommand(io, opts)))

  commonOptions(program.command('reset'))
    .description("factory reset of the agent's state: removes the checkpoint, the device key and the written serial")
    .addOption(new Option('--yes', 'confirm').makeOptionMandatory())
    .action(async (opts: CommonFlags & { yes: boolean }) => exit(await resetCommand(io, opts)))

  return program
}

// --- configuration -------------------------------------------------------------

function commonTree(f: CommonFlags): ConfigTree {
  const t: ConfigTree = {}
  if (f.stateDir !== undefined) t.stateDir = f.stateDir
  if (f.logLevel !== undefined) setPath(t, 'log.level', f.logLevel)
  return t
}

function provisionTree(f: ProvisionFlags): { tree: ConfigTree; problems: string[] } {
  const t = commonTree(f)
  const problems: string[] = []
  const set = (path: string, v: unknown) => {
    if (v !== undefined) setPath(t, path, v)
  }
  const num = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isFinite(n)) problems.push(`--${name}: not a number`)
    return n
  }
  set('brand', f.brand)
  set('model', f.model)
  set('vault.url', f.url)
  set('vault.transport', f.transport)
  set('vault.broker', f.broker)
  set('vault.mqtt.clientId', f.mqttClientId)
  set('vault.mqtt.version', num('mqtt-version', f.mqttVersion))
  set('vault.mqtt.topicPrefix', f.mqttTopicPrefix)
  set('vault.serialLine.port', f.serialPort)
  set('vault.serialLine.baudRate', num('baud', f.baud))
  set('vault.apiKey', f.apiKey)
  set('vault.ca', f.ca)
  if (f.pin.length > 0) set('vault.pins', f.pin)
  if (f.header.length > 0) {
    const headers: Record<string, string> = {}
    for (const h of f.header) {
      const m = /^([^=:]+)[=:]\s*(.*)$/.exec(h)
      if (m) headers[m[1]!.trim()] = m[2]!
      else problems.push(`--header ${h}: expected NAME=VALUE`)
    }
    set('vault.headers', headers)
  }
  if (f.serialValue !== undefined) set('serial.sources', [{ kind: 'value', value: f.serialValue }])
  set('serial.policy', f.serialPolicy)
  if (f.trusted.length > 0) set('trust.anchors', f.trusted)
  if (f.chain.length > 0) set('trust.chain', f.chain)
  set('registration.modelAssertion', f.modelAssertion)
  set('key.bits', num('key-bits', f.keyBits))
  set('output.serial', f.serialOutput)
  set('output.chain', f.chainOutput)
  set('hook.command', f.hook)
  set('hook.timeoutMs', num('hook-timeout-ms', f.hookTimeoutMs))
  return { tree: t, problems }
}

async function loadConfig(io: CliIo, purpose: ConfigPurpose, f: CommonFlags, tree: ConfigTree, flagProblems: string[] = [], apiKeyFile?: string): Promise<{ config: AgentConfig; warnings: string[] }> {
  const file = f.config ?? io.env.AGENT_CONFIG
  if (file !== undefined && !file.endsWith('.json')) {
    const { parse } = await import('yaml')
    setYamlParser((text) => parse(text, { maxAliasCount: 20 }))
  }
  if (flagProblems.length > 0) throw new AgentError('SV_AGENT_CONFIG_INVALID', `invalid command line:\n  ${flagProblems.join('\n  ')}`, { details: { problems: flagProblems } })
  const loaded = loadAgentConfig({
    flags: tree,
    env: io.env,
    readFile: (p) => {
      try {
        return readFileSync(p, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
        throw err
      }
    },
    ...(f.config !== undefined ? { configFile: f.config } : {}),
    ...(apiKeyFile !== undefined ? { apiKeyFile } : {}),
    purpose,
  })
  return loaded
}

function makeLogger(config: AgentConfig, warnings: string[]): Logger {
  const log = createLogger(config.log.level)
  for (const w of warnings) logEvent(log, 'warn', 'config.warning', { warning: w })
  return log
}

/** Reads assertion files; every unreadable file is reported at once as SV_AGENT_CONFIG_INVALID. */
async function readAssertionFiles(files: readonly string[], what: string): Promise<Assertion[]> {
  const problems: string[] = []
  const out: Assertion[] = []
  for (const f of files) {
    try {
      out.push(...decodeStream(await readFile(f)))
    } catch (err) {
      problems.push(`${what} ${f}: ${isVaultError(err) ? `${err.message} (${err.code})` : (err as Error).message}`)
    }
  }
  if (problems.length > 0) throw new AgentError('SV_AGENT_CONFIG_INVALID', problems.join('; '), { details: { problems } })
  return out
}

async function serialDetector(config: AgentConfig): Promise<() => ReturnType<typeof detectSerial>> {
  let createSerialLink: ((r: SerialLinkRequest) => import('./serial/serial-link.js').SerialLink) | undefined
  if (config.serial.sources.some((s) => s.kind === 'serialport')) {
    // serialport (and its native binding) only when a port is configured.
    const { NodeSerialLink } = await import('./serial/serial-link.js')
    createSerialLink = (r) => new NodeSerialLink({ path: r.path, baudRate: r.baudRate, delimiter: r.delimiter })
  }
  return () => detectSerial(config.serial.sources, { root: config.serial.root, readTimeoutMs: config.serial.readTimeoutMs, ...(createSerialLink ? { createSerialLink } : {}) })
}

function userAgent(): string {
  return `device-agent/${VERSION} (series 16) node/${process.versions.node} (${arch()}) linux/${release().slice(0, 25)}`
}

// --- commands ----------------------------------------------------------------------

async function provisionCommand(io: CliIo, f: ProvisionFlags): Promise<number> {
  const { tree, problems } = provisionTree(f)
  const { config, warnings } = await loadConfig(io, 'provision', f, tree, problems, f.apiKeyFile)
  if (f.printConfig) {
    io.out(printableConfig(config))
    return EXIT.OK
  }
  const log = makeLogger(config, warnings)
  const paths = agentPaths(config)
  const brand = config.brand!
  const model = config.model!

  // Files first: a bad trust anchor is a configuration error (exit 2), found before any network.
  const anchors = await readAssertionFiles(config.trust.anchors, 'trust anchor')
  const chain = await readAssertionFiles(config.trust.chain, 'chain')
  let modelAssertion: Assertion | undefined
  if (config.registration.modelAssertion) {
    const found = (await readAssertionFiles([config.registration.modelAssertion], 'model assertion')).find((a) => a instanceof ModelAssertion && a.brandId === brand && a.model === model)
    if (!found) {
      const msg = `model assertion ${config.registration.modelAssertion}: no model ${brand}/${model} in it`
      throw new AgentError('SV_AGENT_CONFIG_INVALID', msg, { details: { problems: [msg] } })
    }
    modelAssertion = found
  }
  let ca: string | undefined
  if (config.vault.ca) {
    try {
      ca = await readFile(config.vault.ca, 'utf8')
    } catch (err) {
      const msg = `vault.ca ${config.vault.ca}: ${(err as Error).message}`
      throw new AgentError('SV_AGENT_CONFIG_INVALID', msg, { details: { problems: [msg] } })
    }
  }

  const pauseAfter = io.env.AGENT_TEST_PAUSE_AFTER
  let pause: ((p: PausePoint) => Promise<void>) | undefined
  if (pauseAfter !== undefined && pauseAfter !== '') {
    if (!isPausePoint(pauseAfter)) throw new AgentError('SV_AGENT_CONFIG_INVALID', `AGENT_TEST_PAUSE_AFTER: unknown step ${pauseAfter}`, { details: { problems: [`AGENT_TEST_PAUSE_AFTER: unknown step ${pauseAfter}`] } })
    logEvent(log, 'warn', 'config.dev_mode', { testPauseAfter: pauseAfter, note: 'test-only: the agent stops dead after this step' })
    pause = (p) => (p === pauseAfter ? testPause(io, p) : Promise.resolve())
  }

  const { mkdir } = await import('node:fs/promises')
  await mkdir(paths.stateDir, { recursive: true, mode: 0o700 })
  const release = await acquireStateLock(paths.lock)
  const client = config.vault.transport === 'mqtt' ? await mqttClient(config, ca) : config.vault.transport === 'serial' ? await serialLineClient(config) : await httpClient(config, ca)
  const controller = new AbortController()
  let stopSignal: NodeJS.Signals | undefined
  const onSignal = (sig: NodeJS.Signals) => {
    stopSignal = sig
    controller.abort(new Error(`stopped by ${sig}`))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  logEvent(log, 'info', 'agent.started', { version: VERSION, command: 'provision', once: f.once === true, brand, model, vault: client.endpoint, stateDir: paths.stateDir })
  const bits = config.key.bits
  const provisioner = new Provisioner({
    brand,
    model,
    paths,
    retry: config.retry,
    notBefore: Date.parse(config.clock.notBefore),
    registration: config.registration,
    ...(config.hook.command !== undefined ? { hook: { command: config.hook.command, timeoutMs: config.hook.timeoutMs } } : {}),
    checkpoints: new CheckpointStore(paths.checkpoint),
    keys: {
      load: () => loadDeviceKey(paths.deviceKey),
      create: () => {
        logEvent(log, 'info', 'device_key.generating', { bits, elapsedMs: 0 })
        const progress = io.isTty
          ? (ms: number) => io.err(`\rdevice-agent: generating the device key (RSA-${bits}): ${(ms / 1000).toFixed(1)} s `)
          : (ms: number) => logEvent(log, 'info', 'device_key.generating', { bits, elapsedMs: ms })
        if (io.isTty) progress(0)
        return createDeviceKey(paths.deviceKey, bits, { onProgress: progress, progressIntervalMs: io.isTty ? 200 : config.key.progressIntervalMs, signal: controller.signal }).finally(() => {
          if (io.isTty) io.err('\n')
        })
      },
    },
    serialPolicy: config.serial.policy,
    detectSerial: await serialDetector(config),
    hardwareInfo: () => readHardwareInfo({ root: config.serial.root }),
    client,
    trust: { anchors, chain },
    ...(modelAssertion ? { modelAssertion } : {}),
    runHook: (env) =>
      runHook({
        command: config.hook.command!,
        timeoutMs: config.hook.timeoutMs,
        env,
        baseEnv: pickEnv(io.env, ['PATH', 'HOME', 'LANG', 'SNAP', 'SNAP_DATA', 'SNAP_COMMON', 'SNAP_NAME']),
      }),
    clock: systemClock,
    log,
    ...(pause ? { pause } : {}),
  })
  let outcome: ProvisionOutcome
  try {
    outcome = await provisioner.run({ once: f.once === true, signal: controller.signal })
  } catch (err) {
    if (stopSignal !== undefined) {
      logEvent(log, 'info', 'agent.stopped', { signal: stopSignal, state: provisioner.checkpoint.state })
      return stopSignal === 'SIGINT' ? 130 : 143
    }
    throw err
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await client.close()
    await release()
  }
  switch (outcome.kind) {
    case 'provisioned': {
      const files = outcome.checkpoint.outputs
      io.out(`provisioned: ${brand}/${model} serial ${outcome.serial}${files ? `\n  serial: ${files.serialFile}\n  chain:  ${files.chainFile}` : ''}\n`)
      return EXIT.OK
    }
    case 'retry-later':
      io.err(`device-agent: not provisioned yet, run again later: ${outcome.error.message} (${outcome.error.code})\n`)
      return EXIT.RETRY_LATER
    case 'failed':
      io.err(`device-agent: provisioning failed: ${outcome.error.message} (${outcome.error.code})\n`)
      return outcome.error.exitCode === EXIT.RETRY_LATER ? EXIT.FAILED : outcome.error.exitCode
  }
}

/** AGENT_TEST_PAUSE_AFTER: say where we stopped, then stop dead until killed (bounded: exit 99 after 2 minutes). */
function testPause(io: CliIo, point: PausePoint): Promise<void> {
  io.err(`device-agent: AGENT_TEST_PAUSE_AFTER reached ${point}\n`)
  return new Promise<void>(() => {
    setTimeout(() => process.exit(99), 120_000)
  })
}

function pickEnv(env: Readonly<Record<string, string | undefined>>, names: string[]): Record<string, string | undefined> {
  return Object.fromEntries(names.map((n) => [n, env[n]]))
}

async function statusCommand(io: CliIo, f: CommonFlags & { json?: boolean }): Promise<number> {
  const { config } = await loadConfig(io, 'status', f, commonTree(f))
  if (f.printConfig) {
    io.out(printableConfig(config))
    return EXIT.OK
  }
  const paths = agentPaths(config)
  const { initialCheckpoint } = await import('./provision/checkpoint.js')
  const cp = (await new CheckpointStore(paths.checkpoint).load()) ?? initialCheckpoint()
  const report = statusReport(cp, paths)
  io.out(f.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report))
  return EXIT.OK
}

async function serialCommand(io: CliIo, f: CommonFlags & { json?: boolean; serialValue?: string }): Promise<number> {
  if (!f.json) return serialCommandBody(io, f)
  try {
    return await serialCommandBody(io, f)
  } catch (err) {
    // a script reading --json gets the failure on stdout too, as {code, message, details}; run() adds the stderr line and the exit code
    if (isAgentError(err) || isVaultError(err)) io.out(`${JSON.stringify({ code: err.code, message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) }, null, 2)}\n`)
    throw err
  }
}

async function serialCommandBody(io: CliIo, f: CommonFlags & { json?: boolean; serialValue?: string }): Promise<number> {
  const tree = commonTree(f)
  if (f.serialValue !== undefined) setPath(tree, 'serial.sources', [{ kind: 'value', value: f.serialValue }])
  const { config } = await loadConfig(io, 'serial', f, tree)
  if (f.printConfig) {
    io.out(printableConfig(config))
    return EXIT.OK
  }
  const found = await (await serialDetector(config))()
  if (f.json) io.out(`${JSON.stringify({ serial: found.serial, source: found.source, detail: found.detail, tried: found.tried }, null, 2)}\n`)
  else io.out(`${found.serial}\nsource: ${found.source} (${found.detail})\n`)
  return EXIT.OK
}

async function resetCommand(io: CliIo, f: CommonFlags & { yes: boolean }): Promise<number> {
  const { config, warnings } = await loadConfig(io, 'reset', f, commonTree(f))
  if (f.printConfig) {
    io.out(printableConfig(config))
    return EXIT.OK
  }
  const log = makeLogger(config, warnings)
  const paths = agentPaths(config)
  const store = new CheckpointStore(paths.checkpoint)
  let release: (() => Promise<void>) | undefined
  try {
    release = await acquireStateLock(paths.lock)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err // no state directory: nothing to reset
  }
  try {
    const cp = await store.load().catch(() => undefined)
    const removed: string[] = []
    // The key goes first: a crash half way leaves a checkpoint that reports the key lost, never a key without its state.
    const targets = [paths.deviceKey, cp?.outputs?.serialFile ?? paths.serialOutput, cp?.outputs?.chainFile ?? paths.chainOutput, paths.checkpoint]
    for (const p of [...new Set(targets)]) {
      const there = await rm(p).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return false
          throw err
        },
      )
      if (there) removed.push(p)
    }
    logEvent(log, 'warn', 'state.reset', { stateDir: paths.stateDir, removed })
    io.out(removed.length > 0 ? `reset: removed ${removed.join(', ')}\n` : 'reset: nothing to remove\n')
    return EXIT.OK
  } finally {
    await release?.()
  }
}

// --- entry -------------------------------------------------------------------------

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  let code: number = EXIT.OK
  const program = buildProgram(io, (c) => (code = c))
  try {
    await program.parseAsync(argv, { from: 'user' })
    return code
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.CONFIG_INVALID
    if (isAgentError(err)) {
      const problems = err.code === 'SV_AGENT_CONFIG_INVALID' && Array.isArray(err.details?.problems) ? (err.details.problems as unknown[]) : undefined
      const text = problems && problems.length > 1 ? `invalid configuration:\n  ${problems.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join('\n  ')}` : err.message
      io.err(`device-agent: ${text} (${err.code})\n`)
      return err.exitCode
    }
    if (isVaultError(err)) {
      io.err(`device-agent: ${err.message} (${err.code})\n`)
      return EXIT.FAILED
    }
    io.err(`device-agent: unexpected error: ${(err as Error).stack ?? String(err)}\n`)
    return EXIT.FAILED
  }
}

/** The HTTP(S) vault client (snapd's device-service protocol). */
async function httpClient(config: AgentConfig, ca: string | undefined): Promise<VaultClient> {
  const { HttpVaultClient } = await import('./vault/http-vault-client.js')
  return new HttpVaultClient({
    url: config.vault.url!,
    ...(config.vault.apiKey !== undefined ? { apiKey: config.vault.apiKey } : {}),
    headers: config.vault.headers,
    ...(ca !== undefined ? { ca } : {}),
    pins: config.vault.pins.map((p) => normalisePin(p)!),
    proxy: config.vault.proxy,
    connectTimeoutMs: config.vault.connectTimeoutMs,
    headersTimeoutMs: config.vault.headersTimeoutMs,
    totalTimeoutMs: config.vault.totalTimeoutMs,
    maxAnswerBytes: config.vault.maxAnswerBytes,
    userAgent: userAgent(),
  })
}

/** The serial-line client: a factory station relays to the vault (serialport loaded only then). */
async function serialLineClient(config: AgentConfig): Promise<VaultClient> {
  const { SerialVaultClient } = await import('./vault/serial-vault-client.js')
  const s = config.vault.serialLine
  return new SerialVaultClient({
    path: s.port!,
    baudRate: s.baudRate,
    ...(s.ackTimeoutMs !== undefined ? { ackTimeoutMs: s.ackTimeoutMs } : {}),
    maxRetries: s.maxRetries,
    maxPayload: s.maxPayload,
    reopenMs: s.reopenMs,
    ...(config.vault.apiKey !== undefined ? { apiKey: config.vault.apiKey } : {}),
    headers: config.vault.headers,
    totalTimeoutMs: config.vault.totalTimeoutMs,
    maxAnswerBytes: config.vault.maxAnswerBytes,
    userAgent: userAgent(),
  })
}

/** The MQTT vault client (loaded only when configured: mqtt.js is not small). */
async function mqttClient(config: AgentConfig, ca: string | undefined): Promise<VaultClient> {
  const { MqttVaultClient } = await import('./vault/mqtt-vault-client.js')
  const { randomBytes } = await import('node:crypto')
  const m = config.vault.mqtt
  return new MqttVaultClient({
    broker: config.vault.broker!,
    clientId: m.clientId ?? `sv-agent-${randomBytes(6).toString('hex')}`,
    protocolVersion: m.version,
    topicPrefix: m.topicPrefix,
    ...(config.vault.apiKey !== undefined ? { apiKey: config.vault.apiKey } : {}),
    ...(m.username !== undefined ? { username: m.username } : {}),
    ...(m.password !== undefined ? { password: m.password } : {}),
    ...(ca !== undefined ? { ca } : {}),
    pins: config.vault.pins.map((p) => normalisePin(p)!),
    connectTimeoutMs: config.vault.connectTimeoutMs,
    totalTimeoutMs: config.vault.totalTimeoutMs,
    maxAnswerBytes: config.vault.maxAnswerBytes,
  })
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0)
    throw e
  })
  process.exitCode = await run(process.argv.slice(2))
}
