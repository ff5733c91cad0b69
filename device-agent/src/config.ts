/**
 * The agent's one validated configuration. Layers, lowest first: schema
 * defaults < config file (`--config FILE` or AGENT_CONFIG, YAML or JSON) <
 * environment (AGENT_* from the table below, plus the standard HTTP_PROXY,
 * HTTPS_PROXY and NO_PROXY) < command-line flags. Built once in main.ts and
 * passed down; no other module reads process.env.
 *
 * Secrets (the API key) accept a *_FILE variant and are redacted by
 * `printableConfig` and in logs.
 */
import { z } from 'zod'
import { join } from 'node:path'
import { ACCOUNT_ID_RE, MODEL_NAME_RE, MQTT_PREFIX, MQTT_PREFIX_RE, configFromEnv, getPath, mergeConfig, redactConfig, validateConfig, isVaultError, type ConfigTree, type EnvTable } from '@sv/shared'
import { AgentError } from './errors.js'
import { checkSerialSources, type SerialSourceConfig } from './identity/serial-sources.js'
import { RELEASE_DATE } from './version.js'

const positiveMs = (max: number) => z.number().int().min(1).max(max)

/** "sha256/BASE64", plain base64, or hex (colons allowed) of the SHA-256 of a SubjectPublicKeyInfo. */
const pin = z.string().refine((s) => normalisePin(s) !== undefined, 'expected the SHA-256 of a SubjectPublicKeyInfo: sha256/BASE64, base64 or hex')

const serialSources = z
  .array(z.record(z.string(), z.unknown()))
  .superRefine((list, ctx) => {
    for (const p of checkSerialSources(list)) ctx.addIssue({ code: 'custom', message: p.message, path: p.index >= 0 ? [p.index] : [] })
  })
  .transform((list) => list as unknown as SerialSourceConfig[])

export const AgentConfigSchema = z
  .object({
    /** brand account id (the model's brand-id) */
    brand: z.string().regex(ACCOUNT_ID_RE, 'expected a brand account id').optional(),
    /** model name, lower case */
    model: z.string().regex(MODEL_NAME_RE, 'expected a model name').refine((s) => s === s.toLowerCase(), 'model names are lower case').optional(),
    /** the agent's private state: device key, checkpoint, lock (default /var/lib/device-agent; $SNAP_DATA in the snap) */
    stateDir: z.string().min(1).default('/var/lib/device-agent'),
    vault: z
      .object({
        /** https: snapd's device-service protocol (our vault, Canonical's serial-vault); mqtt: the vault's MQTT topics; serial: a factory station over a UART (docs/serial-line.md) */
        transport: z.enum(['https', 'mqtt', 'serial']).default('https'),
        serialLine: z
          .object({
            /** the port wired to the station (transport serial), e.g. /dev/ttyS0 */
            port: z.string().min(1).optional(),
            baudRate: z.number().int().min(300).max(4_000_000).default(115_200),
            /** retransmission timeout; default 200 ms + twice a maximal frame's time at baudRate */
            ackTimeoutMs: positiveMs(60_000).optional(),
            /** retransmissions of one frame before the call fails (SV_AGENT_LINK_RETRIES_EXHAUSTED) */
            maxRetries: z.number().int().min(1).max(100).default(10),
            /** largest frame payload (the smaller of unit's and station's is used) */
            maxPayload: z.number().int().min(64).max(16_384).default(1024),
            /** wait between attempts to reopen a lost port */
            reopenMs: positiveMs(60_000).default(250),
          })
          .strict()
          .prefault({}),
        /** MQTT broker for transport mqtt: mqtt://HOST:PORT or mqtts://HOST:PORT (the vault's embedded broker or a shared one) */
        broker: z
          .string()
          .refine((s) => URL.canParse(s) && /^mqtts?:$/.test(new URL(s).protocol), 'expected an mqtt:// or mqtts:// URL')
          .optional(),
        mqtt: z
          .object({
            /** MQTT client id, also in the reply topics; default sv-agent-<random> per run (it must be unique per device) */
            clientId: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'expected 1-128 of A-Z a-z 0-9 . _ : -').optional(),
            /** 4 = MQTT 3.1.1 (the embedded broker), 5 = MQTT 5 (response topic and correlation data) */
            version: z.union([z.literal(4), z.literal(5)]).default(4),
            /** the vault deployment's topic prefix */
            topicPrefix: z.string().regex(MQTT_PREFIX_RE, 'expected topic levels of A-Z a-z 0-9 . _ - without wildcards').default(MQTT_PREFIX),
            /** CONNECT credentials for an external broker; default username "device" and the API key as password */
            username: z.string().min(1).max(256).optional(),
            /** secret */
            password: z.string().min(1).max(512).optional(),
          })
          .strict()
          .prefault({}),
        /** device-service base URL; `request-id` and `serial` are resolved against it (a `/` is added), snapd's device-service.url */
        url: z
          .string()
          .refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), 'expected an http:// or https:// URL')
          .optional(),
        /** api-key header (Canonical serial-vault and ours); secret */
        apiKey: z.string().min(1).max(512).optional(),
        /** extra headers on both requests (snapd's device-service.headers) */
        headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/), z.string()).default({}),
        /** PEM bundle of the CAs to trust for the vault instead of the built-in roots */
        ca: z.string().min(1).optional(),
        /** accept the vault only if a certificate of its chain has one of these SPKI SHA-256 pins */
        pins: z.array(pin).default([]),
        /** proxies; default from HTTPS_PROXY / HTTP_PROXY / NO_PROXY */
        proxy: z.object({ http: z.string().optional(), https: z.string().optional(), noProxy: z.string().optional() }).default({}),
        /** snapd: 10 s TLS handshake, 15 s to response headers, 30 s per request */
        connectTimeoutMs: positiveMs(600_000).default(10_000),
        headersTimeoutMs: positiveMs(600_000).default(15_000),
        totalTimeoutMs: positiveMs(600_000).default(30_000),
        /** largest answer read from the vault */
        maxAnswerBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024),
      })
      .strict()
      .prefault({}),
    serial: z
      .object({
        /**
         * Who picks the serial, as the model's serial policy on the vault says:
         * `device` (the default) proposes the one the sources give, and no
         * source answering is SV_AGENT_SERIAL_NOT_FOUND; `assign` (a model with
         * the vault's `assign:TEMPLATE` policy) proposes none and reads no
         * source: the serial-request has no serial header, and the vault answers
         * with the serial it assigned (the same one again for this device key).
         */
        policy: z.enum(['device', 'assign']).default('device'),
        /** tried in order, the first valid serial wins (identity/serial-sources.ts) */
        sources: serialSources.default([{ kind: 'devicetree' }, { kind: 'cpuinfo' }, { kind: 'dmi' }]),
        /** file-system root for devicetree/cpuinfo/dmi/file sources (tests, chroots) */
        root: z.string().min(1).default('/'),
        readTimeoutMs: positiveMs(60_000).default(2000),
      })
      .strict()
      .prefault({}),
    key: z
      .object({
        /** RSA modulus size of a newly generated device key; snapd generates 4096 */
        bits: z.number().int().refine((n) => [2048, 3072, 4096].includes(n), 'expected 2048, 3072 or 4096').default(4096),
        /** progress report interval while the key is generated */
        progressIntervalMs: positiveMs(600_000).default(5000),
      })
      .strict()
      .prefault({}),
    trust: z
      .object({
        /** files with the trust anchors: the root account and account-key (Canonical's, or the vault's own root) */
        anchors: z.array(z.string().min(1)).default([]),
        /** files with prerequisites shipped in the image (brand account, account-key, model), checked against the anchors */
        chain: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .prefault({}),
    registration: z
      .object({
        /** file holding the model assertion (a stream is fine: the one for brand/model is taken); sent after the serial-request, as snapd does */
        modelAssertion: z.string().min(1).optional(),
        /** put hardware details in the serial-request body */
        hardware: z.boolean().default(true),
        /** put step timings in the serial-request body (`telemetry:`) */
        telemetry: z.boolean().default(true),
        /** extra scalar entries for the body (`extra:` map) */
        extra: z.record(z.string().regex(/^[a-z][a-z0-9-]{0,40}$/), z.string().max(256)).default({}),
      })
      .strict()
      .prefault({}),
    output: z
      .object({
        /** where the serial assertion is written (default STATE/serial.assert) */
        serial: z.string().min(1).optional(),
        /** where its signing chain (account, account-key, model when known) is written (default STATE/chain.assert) */
        chain: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    hook: z
      .object({
        /** run once provisioned: a string runs under /bin/sh -c, a list runs without a shell; env AGENT_SERIAL_FILE, AGENT_CHAIN_FILE, AGENT_SERIAL, AGENT_BRAND, AGENT_MODEL */
        command: z.union([z.string().min(1), z.array(z.string()).min(1)]).optional(),
        timeoutMs: positiveMs(3_600_000).default(60_000),
      })
      .strict()
      .prefault({}),
    retry: z
      .object({
        /** temporary failures: exponential backoff with jitter */
        initialMs: positiveMs(86_400_000).default(10_000),
        maxMs: positiveMs(86_400_000).default(300_000),
        factor: z.number().min(1).max(10).default(2),
        jitter: z.number().min(0).max(0.9).default(0.2),
        /** Retry-After values above this are cut to it */
        maxRetryAfterMs: positiveMs(86_400_000).default(3_600_000),
        /** 202 from the vault: poll again after this (snapd: 60 s) unless Retry-After says otherwise */
        pollIntervalMs: positiveMs(86_400_000).default(60_000),
        /** no network yet: retry after this, not counted (snapd: 30 s) */
        noNetworkMs: positiveMs(86_400_000).default(5000),
        /** clock not set: check again after this */
        clockWaitMs: positiveMs(86_400_000).default(10_000),
        /** counted request-id failures before the attempt fails (snapd: 15) */
        requestIdMaxTentatives: z.number().int().min(1).max(10_000).default(15),
        /** whole-attempt backoff after a refusal (snapd: 5 min doubling; past 12 h, 24 h) */
        attemptInitialMs: positiveMs(86_400_000).default(300_000),
        attemptDoublingLimitMs: positiveMs(7 * 86_400_000).default(12 * 3_600_000),
        attemptCeilingMs: positiveMs(7 * 86_400_000).default(24 * 3_600_000),
      })
      .strict()
      .prefault({}),
    clock: z
      .object({
        /** a wall clock before this is taken as "not set yet" (default: the agent's release date) */
        notBefore: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an RFC 3339 time').default(RELEASE_DATE),
      })
      .strict()
      .prefault({}),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().prefault({}),
  })
  .strict()

export type AgentConfig = z.infer<typeof AgentConfigSchema>

/** Which command the configuration is for: `provision` needs the vault, the identity and the trust anchors. */
export type ConfigPurpose = 'provision' | 'status' | 'serial' | 'reset'

export const AGENT_ENV: EnvTable = {
  AGENT_BRAND: { path: 'brand', type: 'string' },
  AGENT_MODEL: { path: 'model', type: 'string' },
  AGENT_STATE_DIR: { path: 'stateDir', type: 'string' },
  AGENT_URL: { path: 'vault.url', type: 'string' },
  AGENT_TRANSPORT: { path: 'vault.transport', type: 'string' },
  AGENT_BROKER: { path: 'vault.broker', type: 'string' },
  AGENT_SERIAL_PORT: { path: 'vault.serialLine.port', type: 'string' },
  AGENT_BAUD: { path: 'vault.serialLine.baudRate', type: 'number' },
  AGENT_SERIAL_ACK_TIMEOUT_MS: { path: 'vault.serialLine.ackTimeoutMs', type: 'number' },
  AGENT_SERIAL_MAX_RETRIES: { path: 'vault.serialLine.maxRetries', type: 'number' },
  AGENT_MQTT_CLIENT_ID: { path: 'vault.mqtt.clientId', type: 'string' },
  AGENT_MQTT_VERSION: { path: 'vault.mqtt.version', type: 'number' },
  AGENT_MQTT_TOPIC_PREFIX: { path: 'vault.mqtt.topicPrefix', type: 'string' },
  AGENT_MQTT_USERNAME: { path: 'vault.mqtt.username', type: 'string' },
  AGENT_MQTT_PASSWORD: { path: 'vault.mqtt.password', type: 'string', secret: true },
  AGENT_API_KEY: { path: 'vault.apiKey', type: 'string', secret: true },
  AGENT_CA: { path: 'vault.ca', type: 'string' },
  AGENT_PINS: { path: 'vault.pins', type: 'list' },
  AGENT_CONNECT_TIMEOUT_MS: { path: 'vault.connectTimeoutMs', type: 'number' },
  AGENT_HEADERS_TIMEOUT_MS: { path: 'vault.headersTimeoutMs', type: 'number' },
  AGENT_TOTAL_TIMEOUT_MS: { path: 'vault.totalTimeoutMs', type: 'number' },
  AGENT_SERIAL_ROOT: { path: 'serial.root', type: 'string' },
  AGENT_SERIAL_POLICY: { path: 'serial.policy', type: 'string' },
  AGENT_KEY_BITS: { path: 'key.bits', type: 'number' },
  AGENT_KEY_PROGRESS_MS: { path: 'key.progressIntervalMs', type: 'number' },
  AGENT_TRUSTED: { path: 'trust.anchors', type: 'list' },
  AGENT_CHAIN: { path: 'trust.chain', type: 'list' },
  AGENT_MODEL_ASSERTION: { path: 'registration.modelAssertion', type: 'string' },
  AGENT_BODY_HARDWARE: { path: 'registration.hardware', type: 'boolean' },
  AGENT_BODY_TELEMETRY: { path: 'registration.telemetry', type: 'boolean' },
  AGENT_SERIAL_OUTPUT: { path: 'output.serial', type: 'string' },
  AGENT_CHAIN_OUTPUT: { path: 'output.chain', type: 'string' },
  AGENT_HOOK: { path: 'hook.command', type: 'string' },
  AGENT_HOOK_TIMEOUT_MS: { path: 'hook.timeoutMs', type: 'number' },
  AGENT_RETRY_INITIAL_MS: { path: 'retry.initialMs', type: 'number' },
  AGENT_RETRY_MAX_MS: { path: 'retry.maxMs', type: 'number' },
  AGENT_RETRY_JITTER: { path: 'retry.jitter', type: 'number' },
  AGENT_MAX_RETRY_AFTER_MS: { path: 'retry.maxRetryAfterMs', type: 'number' },
  AGENT_POLL_INTERVAL_MS: { path: 'retry.pollIntervalMs', type: 'number' },
  AGENT_NO_NETWORK_RETRY_MS: { path: 'retry.noNetworkMs', type: 'number' },
  AGENT_CLOCK_WAIT_MS: { path: 'retry.clockWaitMs', type: 'number' },
  AGENT_REQUEST_ID_MAX_TENTATIVES: { path: 'retry.requestIdMaxTentatives', type: 'number' },
  AGENT_ATTEMPT_BACKOFF_MS: { path: 'retry.attemptInitialMs', type: 'number' },
  AGENT_CLOCK_NOT_BEFORE: { path: 'clock.notBefore', type: 'string' },
  AGENT_LOG_LEVEL: { path: 'log.level', type: 'string' },
}

/** Handled by the loader itself rather than the table. */
const LOADER_ENV = new Set(['AGENT_CONFIG', 'AGENT_API_KEY_FILE', 'AGENT_SERIAL_VALUE'])

export const SECRET_PATHS = ['vault.apiKey', 'vault.mqtt.password']

export interface LoadAgentConfigInput {
  /** command-line values already mapped to config paths (undefined entries are ignored) */
  flags: ConfigTree
  env: Readonly<Record<string, string | undefined>>
  /** file text, or undefined when the file does not exist */
  readFile: (path: string) => string | undefined
  /** `--config FILE` (else AGENT_CONFIG) */
  configFile?: string
  /** `--api-key-file FILE` (else AGENT_API_KEY_FILE) */
  apiKeyFile?: string
  purpose: ConfigPurpose
}

export interface LoadedAgentConfig {
  config: AgentConfig
  /** unknown AGENT_* variables and similar; main logs them as config.warning */
  warnings: string[]
  /** where the file layer came from, if any */
  file?: string
}

function invalid(issues: string[]): AgentError {
  return new AgentError('SV_AGENT_CONFIG_INVALID', `invalid configuration:\n  ${issues.join('\n  ')}`, { details: { problems: issues } })
}

/**
 * Pure loader (tests call it with literals). Throws `SV_AGENT_CONFIG_INVALID`
 * with `details.problems` listing every problem at once.
 */
export function loadAgentConfig(input: LoadAgentConfigInput): LoadedAgentConfig {
  const { env } = input
  const envLayer = configFromEnv(env, AGENT_ENV, ['AGENT_'])
  const warnings = envLayer.warnings.filter((w) => {
    const name = /variable (\S+)/.exec(w)?.[1] ?? ''
    // AGENT_TEST_* are the test-only switches main.ts reads (never config).
    return !LOADER_ENV.has(name) && !name.startsWith('AGENT_TEST_')
  })
  const problems = [...envLayer.problems]

  // Standard proxy variables, lower case winning as in curl and undici.
  const proxy: ConfigTree = {}
  const https = env.https_proxy ?? env.HTTPS_PROXY
  const http = env.http_proxy ?? env.HTTP_PROXY
  const noProxy = env.no_proxy ?? env.NO_PROXY
  if (https) proxy.https = https
  if (http) proxy.http = http
  if (noProxy) proxy.noProxy = noProxy
  const proxyLayer: ConfigTree = Object.keys(proxy).length > 0 ? { vault: { proxy } } : {}

  const path = input.configFile ?? env.AGENT_CONFIG
  let fileLayer: ConfigTree | undefined
  if (path) {
    const text = input.readFile(path)
    if (text === undefined) throw invalid([`${path}: config file not found`])
    fileLayer = parseConfigText(path, text)
  }

  const serialValue = env.AGENT_SERIAL_VALUE
  const envExtra: ConfigTree = {}
  if (serialValue) envExtra.serial = { sources: [{ kind: 'value', value: serialValue }] }

  const keyFile = input.apiKeyFile ?? env.AGENT_API_KEY_FILE
  const keyLayer: ConfigTree = {}
  if (keyFile) {
    const text = input.readFile(keyFile)
    if (text === undefined) problems.push(`${keyFile}: API key file not found`)
    else keyLayer.vault = { apiKey: text.trim() }
  }

  const merged = mergeConfig(fileLayer, proxyLayer, envLayer.tree, envExtra, keyLayer, input.flags)
  // Lists replace rather than merge: the last layer that sets serial.sources wins (mergeConfig does that).
  if (input.purpose === 'provision') {
    const transport = getPath(merged, 'vault.transport')
    const where = transport === 'mqtt' ? 'vault.broker' : transport === 'serial' ? 'vault.serialLine.port' : 'vault.url'
    const over = transport === 'mqtt' ? ' over MQTT' : transport === 'serial' ? ' over a serial line (--serial-port)' : ''
    for (const p of ['brand', 'model', where]) if (getPath(merged, p) === undefined) problems.push(`${p}: required to provision${p === where ? over : ''}`)
    const sources = getPath(merged, 'serial.sources')
    if (getPath(merged, 'serial.policy') === 'assign' && Array.isArray(sources) && sources.some((s) => (s as { kind?: unknown } | null)?.kind === 'value')) {
      problems.push('serial.policy: assign (the vault assigns the serial) and a given serial (--serial-value, AGENT_SERIAL_VALUE, a value source) exclude each other')
    }
    const anchors = getPath(merged, 'trust.anchors')
    if (!Array.isArray(anchors) || anchors.length === 0) problems.push('trust.anchors: at least one trust anchor file (--trusted) is required to verify the serial')
  }
  let config: AgentConfig
  try {
    config = validateConfig(AgentConfigSchema, merged, problems)
  } catch (err) {
    if (isVaultError(err) && err.code === 'SV_CONFIG_INVALID') throw invalid((err.details?.issues as string[] | undefined) ?? [err.message])
    throw err
  }
  const out: LoadedAgentConfig = { config, warnings }
  if (fileLayer && path) out.file = path
  return out
}

function parseConfigText(path: string, text: string): ConfigTree {
  let parsed: unknown
  try {
    // JSON is YAML, but JSON.parse is enough for .json files and keeps the
    // yaml package out of memory; YAML files load it on demand (main.ts).
    parsed = path.endsWith('.json') ? JSON.parse(text) : parseYamlText(text)
  } catch (err) {
    throw invalid([`${path}: ${(err as Error).message}`])
  }
  if (parsed === null || parsed === undefined) return {}
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid([`${path}: expected a mapping`])
  return parsed as ConfigTree
}

let yamlParse: ((text: string) => unknown) | undefined

/** main.ts installs the YAML parser (loaded lazily) before loading a YAML config file. */
export function setYamlParser(parse: (text: string) => unknown): void {
  yamlParse = parse
}

function parseYamlText(text: string): unknown {
  if (!yamlParse) throw new TypeError('a YAML config file needs setYamlParser() first')
  return yamlParse(text)
}

/** The config as printed by `--print-config`: secrets redacted. */
export function printableConfig(config: AgentConfig): string {
  return `${JSON.stringify(redactConfig(config, SECRET_PATHS), null, 2)}\n`
}

/** File locations derived from the config. */
export interface AgentPaths {
  stateDir: string
  checkpoint: string
  deviceKey: string
  lock: string
  serialOutput: string
  chainOutput: string
}

export function agentPaths(config: Pick<AgentConfig, 'stateDir' | 'output'>): AgentPaths {
  const d = config.stateDir
  return {
    stateDir: d,
    checkpoint: join(d, 'state.json'),
    deviceKey: join(d, 'device-key.pem'),
    lock: join(d, 'agent.lock'),
    serialOutput: config.output.serial ?? join(d, 'serial.assert'),
    chainOutput: config.output.chain ?? join(d, 'chain.assert'),
  }
}

/** Canonical form of a pin (base64 of the 32-byte SHA-256), or undefined when it is not one. */
export function normalisePin(pin: string): string | undefined {
  let s = pin.trim()
  if (s.toLowerCase().startsWith('sha256/')) s = s.slice(7)
  let bytes: Buffer | undefined
  const hex = s.replace(/:/g, '')
  if (/^[0-9a-fA-F]{64}$/.test(hex)) bytes = Buffer.from(hex, 'hex')
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(s)) bytes = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64')
  return bytes !== undefined && bytes.length === 32 ? bytes.toString('base64') : undefined
}
