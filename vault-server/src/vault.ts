/**
 * Assembly of a vault from its configuration: store, master key, signing
 * pool, key store, services; `startVault` adds the HTTP(S) server. The CLI's
 * offline commands (brand, model, token ...) use `openVault` on the same data.
 */
import { X509Certificate } from 'node:crypto'
import { VaultError } from '@sv/shared'
import type { VaultConfig } from './config.js'
import { dataPaths } from './config.js'
import { readTlsFiles } from './tls.js'
import type { Logger } from './logger.js'
import { openStore, type StoreConfig } from './store/open-store.js'
import type { VaultStore } from './store/store.js'
import { loadMasterKey, type MasterKey } from './keys/master-key.js'
import { SignerPool } from './keys/signer-pool.js'
import { SealedKeyStore } from './keys/sealed-key-store.js'
import type { KeyStore } from './keys/keystore.js'
import { RequestIdService } from './services/registration/request-ids.js'
import { RegistrationService } from './services/registration/registration-service.js'
import { ModelService } from './services/model-service.js'
import { BrandService } from './services/brand-service.js'
import { HealthService } from './services/health.js'
import { AdminService } from './services/admin/admin-service.js'
import { LiveHub } from './services/live/live-hub.js'
import { alertView, isCloneAttempt } from './services/admin/live-ops.js'
import { logEntryView } from './services/admin/views.js'
import { AccessService } from './services/admin/access.js'
import { AuditService } from './services/admin/audit.js'
import { Admission } from './services/admission.js'
import { LoginService } from './services/auth/login-service.js'
import { OidcLogin, oidcRedirectUri } from './auth/oidc.js'
import { createMetrics, type VaultMetrics } from './metrics.js'
import { createApp, type AppServices } from './app.js'
import { listen, parseListen, type RunningServer } from './http/server.js'
import { MqttRouter } from './mqtt/router.js'
import { metricsListener } from './http/routes/metrics.js'
import { startEmbeddedBroker } from './mqtt/embedded.js'
import { startExternalBridge } from './mqtt/external.js'

export interface VaultCore {
  config: VaultConfig
  log: Logger
  store: VaultStore
  masterKey: MasterKey
  pool: SignerPool
  keys: KeyStore
  services: AppServices
  metrics: VaultMetrics
  admission: Admission
  /** the Live page's streams of this instance */
  live: LiveHub
  close(): Promise<void>
}

export function storeConfig(config: VaultConfig): StoreConfig {
  switch (config.store.driver) {
    case 'memory':
      return { driver: 'memory' }
    case 'postgres':
      if (!config.store.url) throw new VaultError('SV_CONFIG_INVALID', 'store.driver is postgres but store.url (VAULT_STORE_URL) is not set', { details: { issues: ['store.url: required for postgres'] } })
      return { driver: 'postgres', url: config.store.url, ...(config.store.schema ? { schema: config.store.schema } : {}), poolSize: config.store.poolSize }
    default:
      return { driver: 'level', path: dataPaths(config).levelDb }
  }
}

export interface OpenVaultOptions {
  /** signing workers (default from config: 0 = one per core) */
  workers?: number
  /** key size of keys generated here (tests use 2048) */
  keyBits?: number
  onProgress?: (what: string, elapsedMs: number) => void
  now?: () => number
  /** accept keys below 4096 bits (tests only) */
  allowSmallKeys?: boolean
}

export async function openVault(config: VaultConfig, log: Logger, o: OpenVaultOptions = {}): Promise<VaultCore> {
  const paths = dataPaths(config)
  const masterKey = await loadMasterKey(config.masterKey.value ? { value: config.masterKey.value } : { file: paths.masterKey }).catch((e) => {
    if (e instanceof VaultError && !config.masterKey.value) {
      throw new VaultError('SV_MASTER_KEY_INVALID', `${e.message} (run "vault-server init --data ${config.dataDir}" first, or set VAULT_MASTER_KEY_FILE)`, { cause: e })
    }
    throw e
  })
  const store = await openStore(storeConfig(config), { log })
  const closers: (() => Promise<void>)[] = [
    async () => {
      await store.close()
      log.info({ driver: config.store.driver }, 'store.closed')
    },
  ]
  try {
    const workers = o.workers ?? config.signing.workers
    const pool = new SignerPool({ ...(workers > 0 ? { size: workers } : {}), maxPending: config.signing.maxQueue, timeoutMs: config.limits.requestTimeoutMs, log })
    closers.unshift(() => pool.close())
    await pool.ready()
    const now = o.now ?? Date.now
    const keys = new SealedKeyStore({ store: store.keys, masterKey, pool, now, ...(o.allowSmallKeys ? { allowSmallKeys: true } : {}) })
    const requestIds = new RequestIdService({ masterKey: masterKey.secret, ttlSeconds: config.requestId.ttlSeconds, now })
    const models = new ModelService(store, keys, { now })
    const brands = new BrandService(store, keys, { now, ...(o.keyBits ? { keyBits: o.keyBits } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) })
    const admission = new Admission({ max: config.limits.maxConcurrentSerial, timeoutMs: config.limits.requestTimeoutMs, retryAfterSeconds: config.limits.retryAfterSeconds })
    const audit = new AuditService({ masterKey: masterKey.secret, now })
    const access = new AccessService({ store, masterKey: masterKey.secret, now, sessionIdleMs: config.auth.sessionIdleMinutes * 60_000 })
    let metrics: VaultMetrics | undefined
    const live = new LiveHub({ now, view: logEntryView, maxClients: config.limits.maxLiveStreams })
    closers.unshift(async () => live.close())
    const registration = new RegistrationService({
      store,
      keys,
      models,
      requestIds,
      deviceKeyMinBits: config.serial.deviceKeyMinBits,
      copyBody: config.serial.copyBody,
      log: log.child({ module: 'registration' }),
      now,
      onOutcome: (e) => metrics?.recordOutcome(e),
      onEntry: (e) => {
        live.publish(e)
        if (isCloneAttempt(e)) live.broadcast('alert', alertView(e), e.storeId)
      },
      onRequestId: (transport) => metrics?.requestIdsIssued.inc({ transport }),
      auditPivot: (f) =>
        audit.seal({
          actor: { kind: 'device', id: f.deviceKeyId },
          action: 'serial.pivoted',
          brandId: f.brandId,
          storeId: f.storeId,
          target: { type: 'serial', id: `${f.brandId}/${f.toModel}/${f.serial}` },
          before: { model: f.fromModel },
          after: { model: f.toModel, revision: f.revision },
          requestId: f.requestId,
        }),
    })
    const admin = new AdminService({ store, access, audit, brands, models, keys, registration, live, log: log.child({ module: 'admin' }), now })
    const providers = config.auth.oidc.providers
    const publicUrl = config.auth.publicUrl ?? `${config.tls.plainHttp ? 'http' : 'https'}://${config.listen}`
    const oidc =
      providers.length === 0
        ? undefined
        : new OidcLogin({
            providers,
            redirectUri: oidcRedirectUri(publicUrl),
            now,
            transactions: { put: (tx) => store.sessions.putLoginTransaction(tx), take: (id) => store.sessions.takeLoginTransaction(id) },
          })
    const login = new LoginService({ store, oidc, access, audit, log: log.child({ module: 'login' }), now, sessionMaxMs: config.auth.sessionMaxHours * 3_600_000 })
    metrics = createMetrics({ outstandingRequestIds: () => requestIds.outstanding(), signerQueueDepth: () => pool.metrics().queued, inflight: () => admission.inflight, liveStreams: () => live.clients, liveBufferedBytes: () => live.bufferedBytes, liveMaxBufferedBytes: () => live.maxBufferedBytes })
    return {
      config,
      log,
      store,
      masterKey,
      pool,
      keys,
      services: { registration, admin, login, health: new HealthService(store), brands, models, keys },
      metrics,
      admission,
      live,
      close: async () => {
        for (const c of closers) await c().catch(() => undefined)
      },
    }
  } catch (e) {
    for (const c of closers) await c().catch(() => undefined)
    throw e
  }
}

export interface RunningVault extends VaultCore {
  server: RunningServer
  url: string
  /** the embedded broker's URL or the external broker's; undefined when MQTT is off */
  mqttUrl: string | undefined
  /** http://HOST:PORT/metrics of the separate metrics listener (metrics.listen); undefined when /metrics is on the device port */
  metricsUrl: string | undefined
}

async function startMqtt(core: VaultCore, tls: { cert: Buffer; key: Buffer } | undefined): Promise<{ url: string; close(): Promise<void> } | undefined> {
  const { config, log, services, admission, metrics } = core
  if (config.mqtt.mode === 'off') return undefined
  const router = new MqttRouter({
    registration: services.registration,
    admission,
    log: log.child({ module: 'mqtt' }),
    maxPayloadBytes: config.mqtt.maxPayloadBytes,
    topicPrefix: config.mqtt.topicPrefix,
    ratePerSecond: config.mqtt.ratePerSecond,
    rateBurst: config.mqtt.rateBurst,
    onMessage: (op, result) => metrics.mqttMessages.inc({ op, result }),
  })
  if (config.mqtt.mode === 'external') {
    if (!config.mqtt.url) throw new VaultError('SV_CONFIG_INVALID', 'mqtt.mode is external but mqtt.url (VAULT_MQTT_URL) is not set', { details: { issues: ['mqtt.url: required for external'] } })
    return startExternalBridge({
      url: config.mqtt.url,
      group: config.mqtt.group,
      topicPrefix: config.mqtt.topicPrefix,
      router,
      log,
      ...(config.mqtt.username ? { username: config.mqtt.username } : {}),
      ...(config.mqtt.password ? { password: config.mqtt.password } : {}),
      ...(config.mqtt.ca ? { ca: config.mqtt.ca } : {}),
    })
  }
  const { host, port } = parseListen(config.mqtt.listen)
  return startEmbeddedBroker({
    host,
    port,
    ...(tls ? { tls } : {}),
    router,
    log: log.child({ module: 'mqtt' }),
    maxPayloadBytes: config.mqtt.maxPayloadBytes,
    topicPrefix: config.mqtt.topicPrefix,
    isValidApiKey: async (key) => (await services.models.modelsForApiKey(key)).length > 0,
  })
}

/**
 * A listen failure (address in use, not local, not permitted) as
 * SV_ADDRESS_UNAVAILABLE naming the listener, the address and the setting
 * that moves it (exit 2: another process holds it, a retry does not help).
 * details: { listener, address, reason: the errno code }. Other errors pass.
 */
export function addressError(e: unknown, listener: string, address: string, setting: string): unknown {
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number }
  if (err?.code !== 'EADDRINUSE' && err?.code !== 'EACCES' && err?.code !== 'EADDRNOTAVAIL') return e
  const at = err.address !== undefined && err.port !== undefined ? `${err.address.includes(':') ? `[${err.address}]` : err.address}:${err.port}` : address
  return new VaultError('SV_ADDRESS_UNAVAILABLE', `cannot listen on ${at} for ${listener}: ${err.code} (another process there? choose another with ${setting})`, { cause: e, details: { listener, address: at, reason: err.code } })
}

/** Opens the vault and serves it. `close()` stops accepting, finishes requests in flight, then closes everything. */
export async function startVault(config: VaultConfig, log: Logger, o: OpenVaultOptions = {}): Promise<RunningVault> {
  const core = await openVault(config, log, o)
  try {
    const paths = dataPaths(config)
    let tls: { cert: Buffer; key: Buffer } | undefined
    if (!config.tls.plainHttp) {
      tls = await readTlsFiles(paths.tlsCert, paths.tlsKey)
      const cert = new X509Certificate(tls.cert)
      if (cert.checkIssued(cert)) log.warn({ cert: paths.tlsCert, subject: cert.subject, validTo: cert.validTo }, 'tls.self_signed')
    }
    const app = createApp({ config, log, metrics: core.metrics, services: core.services, admission: core.admission })
    const { host, port } = parseListen(config.listen)
    const server = await listen(app, { host, port, ...(tls ? { tls } : {}) }).catch((e) => {
      throw addressError(e, 'the device API', config.listen, '--listen or VAULT_LISTEN')
    })
    let mqtt: Awaited<ReturnType<typeof startMqtt>>
    let metricsServer: RunningServer | undefined
    try {
      mqtt = await startMqtt(core, tls).catch((e) => {
        throw addressError(e, 'MQTT', config.mqtt.listen, 'mqtt.listen or VAULT_MQTT_LISTEN (demo: --mqtt-listen)')
      })
      try {
        if (config.metrics.listen !== undefined)
          metricsServer = await listen(metricsListener({ config, metrics: core.metrics, log }), parseListen(config.metrics.listen)).catch((e) => {
            throw addressError(e, 'the metrics endpoint', config.metrics.listen!, 'metrics.listen or --metrics-listen')
          })
      } catch (e) {
        await mqtt?.close()
        throw e
      }
    } catch (e) {
      await server.close(0)
      throw e
    }
    const metricsUrl = metricsServer ? new URL('/metrics', metricsServer.url).href : undefined
    const purge = setInterval(() => {
      const now = Date.now()
      for (const [what, run] of [
        ['request-ids', () => core.store.registrations.purgeExpired(now)],
        ['sessions', () => core.store.sessions.purgeExpired(now)],
      ] as const) {
        run().then(
          (n) => n > 0 && log.debug({ purged: n, what }, 'store.purged'),
          () => undefined,
        )
      }
    }, 60_000)
    purge.unref()
    log.info({ url: server.url, mqtt: mqtt?.url.replace(/\/\/[^@/]*@/, '//<credentials>@'), metrics: metricsUrl ?? new URL('/metrics', server.url).href, store: config.store.driver, dev: config.dev, workers: core.pool.metrics().size }, 'vault.started')
    return {
      ...core,
      server,
      url: server.url,
      mqttUrl: mqtt?.url,
      metricsUrl,
      close: async () => {
        log.info({}, 'vault.stopping')
        clearInterval(purge)
        await mqtt?.close()
        await metricsServer?.close(1000)
        // the Live streams never end by themselves: end them first, so that the
        // server's close waits only for requests in flight
        core.live.close()
        await server.close()
        await core.close()
        log.info({}, 'vault.stopped')
      },
    }
  } catch (e) {
    await core.close()
    throw e
  }
}
