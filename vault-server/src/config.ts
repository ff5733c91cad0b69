/**
 * The vault's one validated configuration. Layers, lowest first: defaults <
 * config file (`--config FILE`, else DATA/vault.yaml when present) <
 * environment (VAULT_*, table below) < command-line flags. Built once in
 * main.ts and passed down; no other module reads process.env.
 */
import { z } from 'zod'
import { OidcAuthConfigSchema } from './auth/oidc.js'
import { parse as parseYaml } from 'yaml'
import { join } from 'node:path'
import { configFromEnv, mergeConfig, redactConfig, validateConfig, VaultError, MQTT_PREFIX, MQTT_PREFIX_RE, type ConfigTree, type EnvTable } from '@sv/shared'

const listen = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected HOST:PORT')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'port out of range')

export const VaultConfigSchema = z
  .object({
    /** data directory: master key, TLS files, LevelDB, vault.yaml */
    dataDir: z.string().min(1),
    /** development mode: demo brand and model, self-signed TLS; logs a warning at start-up */
    dev: z.boolean().default(false),
    listen: listen.default('127.0.0.1:8443'),
    tls: z
      .object({
        cert: z.string().optional(),
        key: z.string().optional(),
        /** plain HTTP, only when asked (behind a TLS-terminating proxy) */
        plainHttp: z.boolean().default(false),
      })
      .default({ plainHttp: false }),
    store: z
      .object({
        driver: z.enum(['level', 'postgres', 'memory']).default('level'),
        /** LevelDB directory (default DATA/db) */
        path: z.string().optional(),
        /** PostgreSQL connection URL (secret: may hold a password) */
        url: z.string().optional(),
        schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).optional(),
        poolSize: z.number().int().min(1).max(200).default(10),
      })
      .default({ driver: 'level', poolSize: 10 }),
    masterKey: z
      .object({
        /** file with the 32-byte master key (default DATA/master.key) */
        file: z.string().optional(),
        /** the key itself (hex or base64); prefer a file */
        value: z.string().optional(),
      })
      .default({}),
    requestId: z.object({ ttlSeconds: z.number().int().min(10).max(86400).default(600) }).default({ ttlSeconds: 600 }),
    serial: z
      .object({
        /** copy the serial-request body into the serial, as Canonical's vault and snapd's mock service do */
        copyBody: z.boolean().default(true),
        /** smallest device key accepted, in bits (snapd generates 4096) */
        deviceKeyMinBits: z.number().int().min(1024).max(16384).default(2048),
      })
      .default({ copyBody: true, deviceKeyMinBits: 2048 }),
    limits: z
      .object({
        /** largest /v1/serial body (serial-request + model + optional serial) */
        serialBodyBytes: z.number().int().min(1024).max(4 * 1024 * 1024).default(256 * 1024),
        /** largest admin API JSON body */
        adminBodyBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024),
        /** registrations processed at once; beyond it: 503 + Retry-After */
        maxConcurrentSerial: z.number().int().min(1).max(100000).default(512),
        /** a registration not done in this time answers 503 SV_TIMEOUT */
        requestTimeoutMs: z.number().int().min(100).max(120000).default(10000),
        /** Retry-After seconds sent with 503 answers */
        retryAfterSeconds: z.number().int().min(1).max(3600).default(5),
        /** open Live page streams (/v1/admin/live) at once; beyond it: 503 SV_OVERLOADED */
        maxLiveStreams: z.number().int().min(1).max(10000).default(200),
      })
      .default({ serialBodyBytes: 256 * 1024, adminBodyBytes: 1024 * 1024, maxConcurrentSerial: 512, requestTimeoutMs: 10000, retryAfterSeconds: 5, maxLiveStreams: 200 }),
    signing: z
      .object({
        /** signing worker threads (0: one per core) */
        workers: z.number().int().min(0).max(256).default(0),
        /** signatures waiting for a worker; beyond it: 503 SV_OVERLOADED */
        maxQueue: z.number().int().min(1).max(100000).default(1024),
      })
      .default({ workers: 0, maxQueue: 1024 }),
    auth: z
      .object({
        /** a login session ends after this long unused */
        sessionIdleMinutes: z.number().int().min(1).max(1440).default(60),
        /** and after this long in any case */
        sessionMaxHours: z.number().int().min(1).max(720).default(8),
        /** the vault's external base URL (https://vault.example.com), for the OpenID Connect redirect URI; default from listen */
        publicUrl: z.string().url().optional(),
        /** Secure session cookies (keep true; the browser sends them over HTTPS only, and to http://localhost) */
        cookieSecure: z.boolean().default(true),
        /** the OpenID Connect providers people log in with (auth/oidc.ts) */
        oidc: OidcAuthConfigSchema.default({ providers: [] }),
      })
      .strict()
      .default({ sessionIdleMinutes: 60, sessionMaxHours: 8, cookieSecure: true, oidc: { providers: [] } }),
    metrics: z
      .object({
        /**
         * serve GET /metrics on this HOST:PORT (plain HTTP, for the scraper's network)
         * and not on the device port; unset: on the device port, as before
         */
        listen: listen.optional(),
        /** secret: when set, /metrics asks for `Authorization: Bearer TOKEN`, wherever it is served */
        token: z.string().min(16, 'at least 16 characters').max(512).optional(),
      })
      .strict()
      .default({}),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
    mqtt: z
      .object({
        /** embedded: an in-process broker (aedes, MQTT 3.1.1); external: a client of a shared broker; off */
        mode: z.enum(['embedded', 'external', 'off']).default('embedded'),
        /** embedded broker address (TLS with the vault's certificate unless tls.plainHttp) */
        listen: listen.default('127.0.0.1:8883'),
        /** external broker URL, e.g. mqtts://broker:8883 (secret: may hold credentials) */
        url: z.string().optional(),
        username: z.string().optional(),
        /** secret */
        password: z.string().optional(),
        /** CA file for the external broker */
        ca: z.string().optional(),
        /** shared subscription group of this deployment */
        group: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default('serial-vault'),
        /** topic prefix; deployments sharing a broker take their own (e.g. acme/serial-vault/v1) */
        topicPrefix: z.string().regex(MQTT_PREFIX_RE, 'expected topic levels of A-Z a-z 0-9 . _ - without wildcards').default(MQTT_PREFIX),
        maxPayloadBytes: z.number().int().min(1024).max(4 * 1024 * 1024).default(256 * 1024),
        /** per-client rate limit: requests per second, and burst */
        ratePerSecond: z.number().min(0.1).max(100000).default(20),
        rateBurst: z.number().int().min(1).max(100000).default(40),
      })
      .default({ mode: 'embedded', listen: '127.0.0.1:8883', group: 'serial-vault', topicPrefix: MQTT_PREFIX, maxPayloadBytes: 256 * 1024, ratePerSecond: 20, rateBurst: 40 }),
  })
  .strict()

export type VaultConfig = z.infer<typeof VaultConfigSchema>

export const VAULT_ENV: EnvTable = {
  VAULT_DATA_DIR: { path: 'dataDir', type: 'string' },
  VAULT_DEV: { path: 'dev', type: 'boolean' },
  VAULT_LISTEN: { path: 'listen', type: 'string' },
  VAULT_TLS_CERT: { path: 'tls.cert', type: 'string' },
  VAULT_TLS_KEY: { path: 'tls.key', type: 'string' },
  VAULT_PLAIN_HTTP: { path: 'tls.plainHttp', type: 'boolean' },
  VAULT_STORE_DRIVER: { path: 'store.driver', type: 'string' },
  VAULT_STORE_PATH: { path: 'store.path', type: 'string' },
  VAULT_STORE_URL: { path: 'store.url', type: 'string', secret: true },
  VAULT_STORE_SCHEMA: { path: 'store.schema', type: 'string' },
  VAULT_STORE_POOL_SIZE: { path: 'store.poolSize', type: 'number' },
  VAULT_MASTER_KEY: { path: 'masterKey.value', type: 'string', secret: true },
  VAULT_MASTER_KEY_FILE: { path: 'masterKey.file', type: 'string' },
  VAULT_REQUEST_ID_TTL: { path: 'requestId.ttlSeconds', type: 'number' },
  VAULT_SERIAL_COPY_BODY: { path: 'serial.copyBody', type: 'boolean' },
  VAULT_DEVICE_KEY_MIN_BITS: { path: 'serial.deviceKeyMinBits', type: 'number' },
  VAULT_MAX_CONCURRENT_SERIAL: { path: 'limits.maxConcurrentSerial', type: 'number' },
  VAULT_MAX_LIVE_STREAMS: { path: 'limits.maxLiveStreams', type: 'number' },
  VAULT_REQUEST_TIMEOUT_MS: { path: 'limits.requestTimeoutMs', type: 'number' },
  VAULT_SIGNING_WORKERS: { path: 'signing.workers', type: 'number' },
  VAULT_LOG_LEVEL: { path: 'log.level', type: 'string' },
  VAULT_PUBLIC_URL: { path: 'auth.publicUrl', type: 'string' },
  VAULT_METRICS_LISTEN: { path: 'metrics.listen', type: 'string' },
  VAULT_METRICS_TOKEN: { path: 'metrics.token', type: 'string', secret: true },
  VAULT_MQTT_MODE: { path: 'mqtt.mode', type: 'string' },
  VAULT_MQTT_LISTEN: { path: 'mqtt.listen', type: 'string' },
  VAULT_MQTT_URL: { path: 'mqtt.url', type: 'string', secret: true },
  VAULT_MQTT_USERNAME: { path: 'mqtt.username', type: 'string' },
  VAULT_MQTT_PASSWORD: { path: 'mqtt.password', type: 'string', secret: true },
  VAULT_MQTT_CA: { path: 'mqtt.ca', type: 'string' },
  VAULT_MQTT_GROUP: { path: 'mqtt.group', type: 'string' },
  VAULT_MQTT_TOPIC_PREFIX: { path: 'mqtt.topicPrefix', type: 'string' },
}

export const SECRET_PATHS = ['store.url', 'masterKey.value', 'mqtt.url', 'mqtt.password', 'metrics.token']

export interface LoadedVaultConfig {
  config: VaultConfig
  warnings: string[]
  /** where the file layer came from, if any */
  file?: string
}

/**
 * Pure loader: `readFile` returns the file text or undefined when absent.
 * `flags` are the command-line values already mapped to config paths.
 */
export function loadVaultConfig(opts: {
  flags: ConfigTree
  env: Readonly<Record<string, string | undefined>>
  readFile: (path: string) => string | undefined
  configFile?: string
}): LoadedVaultConfig {
  const envLayer = configFromEnv(opts.env, VAULT_ENV, ['VAULT_'])
  const dataDir = (opts.flags.dataDir as string | undefined) ?? (envLayer.tree.dataDir as string | undefined)
  const path = opts.configFile ?? (dataDir ? join(dataDir, 'vault.yaml') : undefined)
  let fileLayer: ConfigTree | undefined
  if (path) {
    const text = opts.readFile(path)
    if (text === undefined && opts.configFile) throw new VaultError('SV_CONFIG_INVALID', `config file ${path} not found`, { details: { issues: [`${path}: not found`] } })
    if (text !== undefined) {
      let parsed: unknown
      try {
        parsed = parseYaml(text)
      } catch (e) {
        throw new VaultError('SV_CONFIG_INVALID', `config file ${path}: ${(e as Error).message}`, { details: { issues: [`${path}: ${(e as Error).message}`] } })
      }
      if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
        throw new VaultError('SV_CONFIG_INVALID', `config file ${path}: expected a mapping`, { details: { issues: [`${path}: expected a mapping`] } })
      }
      fileLayer = (parsed ?? {}) as ConfigTree
    }
  }
  const merged = mergeConfig(fileLayer, envLayer.tree, opts.flags)
  let config: VaultConfig
  try {
    config = validateConfig(VaultConfigSchema, merged, envLayer.problems)
  } catch (e) {
    // name the file the settings came from (with the flags and VAULT_* variables over it)
    if (!(e instanceof VaultError) || !fileLayer || !path) throw e
    throw new VaultError(e.code, e.message.replace(/^invalid configuration:/, `invalid configuration (config file ${path}, environment and flags):`), { cause: e, details: { ...e.details, file: path } })
  }
  const out: LoadedVaultConfig = { config, warnings: envLayer.warnings }
  if (fileLayer && path) out.file = path
  return out
}

/**
 * The configuration as the vault will run it, secrets redacted: defaults that
 * are decided at start-up are shown resolved (`signing.workers` 0 as the
 * number of workers, `resolved.workers` passes it in; the TLS files, the
 * master key file and the LevelDB directory inside the data directory).
 */
export function printableConfig(config: VaultConfig, resolved: { workers: number }): string {
  const out = redactConfig(config, SECRET_PATHS) as VaultConfig
  const paths = dataPaths(config)
  if (out.signing.workers === 0) out.signing.workers = resolved.workers
  if (!out.tls.plainHttp) {
    out.tls.cert = paths.tlsCert
    out.tls.key = paths.tlsKey
  }
  if (out.masterKey.value === undefined) out.masterKey.file = paths.masterKey
  if (out.store.driver === 'level') out.store.path = paths.levelDb
  for (const p of out.auth.oidc.providers) if (p.clientSecret !== undefined) p.clientSecret = '<redacted>'
  return `${JSON.stringify(out, null, 2)}\n`
}

/** Resolved file locations inside the data directory. */
export function dataPaths(config: VaultConfig): { masterKey: string; tlsCert: string; tlsKey: string; levelDb: string } {
  return {
    masterKey: config.masterKey.file ?? join(config.dataDir, 'master.key'),
    tlsCert: config.tls.cert ?? join(config.dataDir, 'tls', 'cert.pem'),
    tlsKey: config.tls.key ?? join(config.dataDir, 'tls', 'key.pem'),
    levelDb: config.store.path ?? join(config.dataDir, 'db'),
  }
}
