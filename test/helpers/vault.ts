/**
 * A real vault for tests, in this process: a temp data directory, a fresh
 * master key, LevelDB (or memory-level), HTTP or HTTPS on 127.0.0.1:0, and
 * the snapd vectors' brand imported so no key is generated: the brand is
 * `acme-brand` with the vectors' 4096-bit key, its account and account-key
 * signed by the vectors' root (`oracle-root`, trusted.assert).
 *
 *   const v = await startTestVault(t)
 *   v.url        https://127.0.0.1:PORT/v1/
 *   v.apiKey     API key of model `acme-pi-gateway` (serial policy: device)
 *   v.trusted    path of the trust anchors (fixtures/snapd-vectors/trusted.assert)
 *   v.chainFile  path of a file with the brand account, account-key and model
 */
import type { ExecutionContext } from 'ava'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import '@sv/shared/node' // the codec on node:crypto, as in the vault
import { VaultConfigSchema, type VaultConfig } from '../../vault-server/src/config.js'
import { createLogger } from '../../vault-server/src/logger.js'
import { startVault, type RunningVault } from '../../vault-server/src/vault.js'
import { generateSelfSigned } from '../../vault-server/src/tls.js'
import type { DuplicatePolicy, SerialPolicy } from '../../vault-server/src/store/store.js'
import { hashToken, newToken } from '../../vault-server/src/cli/vault-commands.js'

export const ROOT = new URL('../../', import.meta.url).pathname
export const VECTORS = join(ROOT, 'fixtures/snapd-vectors')

/** The model headers of the vectors' UC22 model (acme-pi-gateway). */
export const PI_MODEL_HEADERS = {
  'display-name': 'ACME Pi Gateway',
  architecture: 'arm64',
  base: 'core22',
  grade: 'signed',
  snaps: [
    { name: 'pi', id: 'YbGa9O3dAXl88YLI6Y1bGG74pwBxZyKg', type: 'gadget', 'default-channel': '22/stable' },
    { name: 'pi-kernel', id: 'jeIuP6tfFrvAdic8DMWqHmoaoukAPNbJ', type: 'kernel', 'default-channel': '22/stable' },
  ],
}

export interface TestModel {
  name: string
  serialPolicy?: SerialPolicy
  duplicatePolicy?: DuplicatePolicy
}

export interface TestVaultOptions {
  tls?: boolean
  store?: 'level' | 'memory'
  /** extra models besides acme-pi-gateway (device policy, refuse duplicates) */
  models?: TestModel[]
  /** config overrides (deep-merged one level) */
  config?: Partial<Record<keyof VaultConfig, unknown>>
  /** reuse a data directory (restart tests) */
  dataDir?: string
  workers?: number
  now?: () => number
  /** capture log lines here instead of discarding them */
  logLines?: Record<string, unknown>[]
  /** size of keys the vault generates (brand create, key rotation); below 4096 allows small keys */
  keyBits?: number
}

export interface TestVault {
  vault: RunningVault
  url: string
  apiKey: string
  adminToken: string
  dataDir: string
  trusted: string
  chainFile: string
  /** PEM of the development certificate when tls */
  caPem?: string
  masterKey: string
  close(): Promise<void>
}

let tlsCache: Promise<{ certPem: string; keyPem: string }> | undefined

export async function startTestVault(t: ExecutionContext | undefined, o: TestVaultOptions = {}): Promise<TestVault> {
  const dataDir = o.dataDir ?? (await mkdtemp(join(tmpdir(), 'sv-vault-')))
  const masterKey = o.dataDir ? (await readFile(join(dataDir, 'test-master.key'), 'utf8')).trim() : randomBytes(32).toString('hex')
  if (!o.dataDir) await writeFile(join(dataDir, 'test-master.key'), masterKey, { mode: 0o600 })
  let tls: { cert?: string; key?: string; plainHttp: boolean } = { plainHttp: true }
  let caPem: string | undefined
  if (o.tls) {
    tlsCache ??= generateSelfSigned()
    const { certPem, keyPem } = await tlsCache
    await writeFile(join(dataDir, 'cert.pem'), certPem)
    await writeFile(join(dataDir, 'key.pem'), keyPem, { mode: 0o600 })
    tls = { cert: join(dataDir, 'cert.pem'), key: join(dataDir, 'key.pem'), plainHttp: false }
    caPem = certPem
  }
  const config = VaultConfigSchema.parse({
    dataDir,
    listen: '127.0.0.1:0',
    tls,
    store: { driver: o.store ?? 'level' },
    masterKey: { value: masterKey },
    log: { level: o.logLines ? 'debug' : 'silent' },
    // MQTT only when a test asks (e.g. config: { mqtt: { mode: 'embedded', listen: '127.0.0.1:0' } })
    mqtt: { mode: 'off' },
    ...o.config,
  })
  // the vault's own logger (its redaction and level names), writing parsed lines into logLines
  const log = createLogger(o.logLines ? 'debug' : 'silent', o.logLines ? { write: (s: string) => void o.logLines!.push(JSON.parse(s) as Record<string, unknown>) } : undefined)
  const vault = await startVault(config, log, { ...(o.workers ? { workers: o.workers } : { workers: 2 }), ...(o.now ? { now: o.now } : {}), ...(o.keyBits ? { keyBits: o.keyBits, allowSmallKeys: o.keyBits < 4096 } : {}) })
  // Closed however the set-up below ends: a vault left listening (and its
  // signing workers) would keep the AVA worker process alive after its tests.
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    await vault.close()
  }
  t?.teardown(async () => {
    await close()
    if (!o.dataDir) await rm(dataDir, { recursive: true, force: true })
  })
  try {
    return await finishTestVault(vault, dataDir, masterKey, caPem, o, close)
  } catch (err) {
    await close()
    throw err
  }
}

async function finishTestVault(
  vault: RunningVault,
  dataDir: string,
  masterKey: string,
  caPem: string | undefined,
  o: TestVaultOptions,
  close: () => Promise<void>,
): Promise<TestVault> {
  const apiKey = `test-api-key-${randomBytes(12).toString('hex')}`
  const adminToken = newToken()
  if (!o.dataDir) {
    await vault.store.tokens.put({ hash: hashToken(adminToken), kind: 'admin', name: 'test', roles: ['admin'], createdAt: Date.now() })
    await vault.services.brands.importBrand({
      pem: await readFile(join(VECTORS, 'keys/brand.key.pem'), 'utf8'),
      account: await readFile(join(VECTORS, 'account.assert'), 'utf8'),
      accountKey: await readFile(join(VECTORS, 'account-key.assert'), 'utf8'),
      trusted: [await readFile(join(VECTORS, 'trusted.assert'), 'utf8')],
    })
    for (const m of [{ name: 'acme-pi-gateway' } as TestModel, ...(o.models ?? [])]) {
      await vault.services.models.create({
        brandId: 'acme-brand',
        name: m.name,
        apiKeys: [apiKey],
        headers: PI_MODEL_HEADERS,
        ...(m.serialPolicy ? { serialPolicy: m.serialPolicy } : {}),
        ...(m.duplicatePolicy ? { duplicatePolicy: m.duplicatePolicy } : {}),
      })
    }
    await writeFile(join(dataDir, 'test-api-key'), apiKey)
    await writeFile(join(dataDir, 'test-admin-token'), adminToken)
  }
  const savedKey = o.dataDir ? (await readFile(join(dataDir, 'test-api-key'), 'utf8')).trim() : apiKey
  const savedToken = o.dataDir ? (await readFile(join(dataDir, 'test-admin-token'), 'utf8')).trim() : adminToken
  const model = await vault.services.models.get('acme-brand', 'acme-pi-gateway')
  const chainFile = join(dataDir, 'chain.assert')
  const parts = [await readFile(join(VECTORS, 'account.assert'), 'utf8'), await readFile(join(VECTORS, 'account-key.assert'), 'utf8'), model.modelAssertion]
  await writeFile(chainFile, parts.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('\n'))
  const tv: TestVault = {
    vault,
    url: vault.url,
    apiKey: savedKey,
    adminToken: savedToken,
    dataDir,
    trusted: join(VECTORS, 'trusted.assert'),
    chainFile,
    masterKey,
    ...(caPem ? { caPem } : {}),
    close,
  }
  return tv
}
