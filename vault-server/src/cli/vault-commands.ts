/**
 * The vault's own commands: init, brand, model, key, token, trust, serve and
 * demo work on a data directory (`--data DIR`); log query/export talk to a
 * running vault's admin API (`--url`, `--token`). Output for people on
 * stdout, `--json` for scripts; secrets (admin tokens, API keys) are printed
 * once, at creation, and never again.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { VaultError, type HeaderValue } from '@sv/shared'
import { loadVaultConfig, printableConfig, dataPaths, type VaultConfig } from '../config.js'
import { createLogger, type Logger } from '../logger.js'
import { generateMasterKeyFile } from '../keys/master-key.js'
import { defaultSignerPoolSize } from '../keys/signer-pool.js'
import { generateSelfSigned } from '../tls.js'
import { openVault, startVault, type VaultCore } from '../vault.js'
import { openStore } from '../store/open-store.js'
import { storeConfig } from '../vault.js'
import { parseSerialPolicyFlag } from '../services/serial-template.js'
import { DEFAULT_MODEL_HEADERS } from '../services/model-service.js'
import { modelView } from '../services/admin/views.js'
import type { DuplicatePolicy } from '../store/store.js'
import { CliError, EXIT, type CliIo } from './io.js'

export interface GlobalFlags {
  data?: string
  config?: string
  listen?: string
  tlsCert?: string
  tlsKey?: string
  plainHttp?: boolean
  logLevel?: string
  dev?: boolean
  printConfig?: boolean
}

/** Flags to config paths, then the layered, validated config. */
export function resolveConfig(io: CliIo, f: GlobalFlags, extra: Record<string, unknown> = {}): VaultConfig {
  const flags: Record<string, unknown> = { ...extra }
  if (f.data) flags.dataDir = f.data
  if (f.listen) flags.listen = f.listen
  if (f.dev) flags.dev = true
  if (f.logLevel) flags.log = { level: f.logLevel }
  const tls: Record<string, unknown> = {}
  if (f.tlsCert) tls.cert = f.tlsCert
  if (f.tlsKey) tls.key = f.tlsKey
  if (f.plainHttp) tls.plainHttp = true
  if (Object.keys(tls).length) flags.tls = tls
  if ((f.tlsCert === undefined) !== (f.tlsKey === undefined)) throw new CliError('--tls-cert and --tls-key go together')
  if (f.plainHttp && f.tlsCert) throw new CliError('--plain-http and --tls-cert/--tls-key exclude each other')
  const loaded = loadVaultConfig({
    flags,
    env: io.env,
    configFile: f.config,
    readFile: (p) => {
      try {
        return readFileSync(p, 'utf8')
      } catch (e) {
        // absent is the loader's business (DATA/vault.yaml is optional); anything else names the file
        const code = (e as NodeJS.ErrnoException).code
        if (code === 'ENOENT') return undefined
        throw new VaultError('SV_CONFIG_INVALID', `cannot read config file ${p}: ${code ?? (e as Error).message}`, { details: { file: p, reason: code, issues: [`${p}: ${code}`] } })
      }
    },
  })
  for (const w of loaded.warnings) io.err(`vault-server: warning: ${w}\n`)
  return loaded.config
}

export function quietLogger(config: VaultConfig): Logger {
  return createLogger(config.log.level === 'info' ? 'warn' : config.log.level, process.stderr as never)
}

async function withVault<T>(io: CliIo, f: GlobalFlags, fn: (v: VaultCore) => Promise<T>): Promise<T> {
  const config = resolveConfig(io, f)
  const v = await openVault(config, quietLogger(config), { workers: 1, onProgress: progressTo(io) })
  try {
    return await fn(v)
  } finally {
    await v.close()
  }
}

/**
 * Progress of key generation on stderr: on a terminal one line per key,
 * redrawn each second; otherwise (a log file, a pipe, CI) one plain line
 * when each key starts, and no carriage returns.
 */
export function progressTo(io: CliIo): (what: string, ms: number) => void {
  let current = ''
  let shown = -1
  if (!io.errIsTTY) {
    return (what) => {
      if (what === current) return
      current = what
      io.err(`  generating ${what} (RSA-4096 takes seconds, up to a minute on slow hardware)...\n`)
    }
  }
  return (what, ms) => {
    const s = Math.floor(ms / 1000)
    if (what !== current) {
      if (current) io.err('\n')
      current = what
      shown = -1
    }
    if (s !== shown) {
      shown = s
      io.err(`\r  generating ${what} (RSA-4096 takes seconds, up to a minute on slow hardware)... ${s} s`)
    }
  }
}

function out(io: CliIo, json: boolean | undefined, data: unknown, text: string): void {
  io.out(json ? `${JSON.stringify(data, null, 2)}\n` : text)
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  )
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/** Admin bearer tokens: `svat_` + 32 random bytes base64url. */
export function newToken(): string {
  return `svat_${randomBytes(32).toString('base64url')}`
}

// --- init ---------------------------------------------------------------------------

export async function initCommand(io: CliIo, f: GlobalFlags & { tlsName?: string[]; json?: boolean; noToken?: boolean }): Promise<number> {
  if (!f.data) throw new CliError('init: --data DIR is required')
  const config = resolveConfig(io, f)
  const paths = dataPaths(config)
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 })
  const created: string[] = []
  if (!config.masterKey.value && !(await exists(paths.masterKey))) {
    await generateMasterKeyFile(paths.masterKey)
    created.push(paths.masterKey)
  }
  if (!config.tls.plainHttp && !(await exists(paths.tlsCert))) {
    await mkdir(join(config.dataDir, 'tls'), { recursive: true, mode: 0o700 })
    const { certPem, keyPem } = await generateSelfSigned({ names: f.tlsName ?? [] })
    await writeFile(paths.tlsKey, keyPem, { mode: 0o600 })
    await writeFile(paths.tlsCert, certPem, { mode: 0o644 })
    created.push(paths.tlsCert, paths.tlsKey)
  }
  const store = await openStore(storeConfig(config))
  let token: string | undefined
  try {
    if (!f.noToken && (await store.tokens.list()).length === 0) {
      token = newToken()
      await store.tokens.put({ hash: hashToken(token), kind: 'admin', name: 'init', roles: ['admin'], createdAt: Date.now() })
    }
  } finally {
    await store.close()
  }
  out(
    io,
    f.json,
    { dataDir: config.dataDir, created, adminToken: token ?? null },
    [
      `initialised ${config.dataDir}`,
      ...created.map((c) => `  created ${c}`),
      ...(created.some((c) => c.endsWith('cert.pem')) ? ['  the TLS certificate is self-signed: for development only; use --tls-cert/--tls-key in production'] : []),
      token ? `\nadmin token (shown once; keep it safe):\n  ${token}` : '  (an admin token already exists; make another with "vault-server token create")',
      '',
      'next: vault-server brand create --data DIR --id BRAND --display-name NAME   (or brand import)',
      '      vault-server model add --data DIR --brand BRAND --model MODEL --headers model.yaml',
      '      vault-server serve --data DIR',
      '',
    ].join('\n'),
  )
  return EXIT.OK
}

// --- brands, keys, trust ----------------------------------------------------------------

export async function brandCreateCommand(io: CliIo, f: GlobalFlags & { id: string; displayName: string; rootId?: string; json?: boolean }): Promise<number> {
  return withVault(io, f, async (v) => {
    if (f.rootId) await v.services.brands.ensureRoot(f.rootId)
    const { brand, key } = await v.services.brands.createBrand({ id: f.id, displayName: f.displayName })
    const rootId = await v.services.brands.rootId()
    out(io, f.json, { brand: brand.id, displayName: brand.displayName, keyId: key.keyId, rootId }, `created brand ${brand.id} ("${brand.displayName}") under the vault root ${rootId}\n  signing key ${key.keyId} (RSA ${key.bits})\n  devices need the trust anchors: vault-server trust export --data DIR\n`)
    return EXIT.OK
  })
}

export async function brandImportCommand(io: CliIo, f: GlobalFlags & { key: string; account: string; accountKey: string; trusted?: string[]; chain?: string[]; skipChainCheck?: boolean; json?: boolean }): Promise<number> {
  const read = async (p: string, what: string) => {
    try {
      return await readFile(p, 'utf8')
    } catch (e) {
      throw new CliError(`cannot read ${what} ${p}: ${(e as NodeJS.ErrnoException).code}`)
    }
  }
  const input = {
    pem: await read(f.key, 'key'),
    account: await read(f.account, 'account assertion'),
    accountKey: await read(f.accountKey, 'account-key assertion'),
    trusted: await Promise.all((f.trusted ?? []).map((p) => read(p, 'trusted file'))),
    chain: await Promise.all((f.chain ?? []).map((p) => read(p, 'chain file'))),
    ...(f.skipChainCheck ? { skipChainCheck: true } : {}),
  }
  if (f.skipChainCheck) io.err('vault-server: warning: --skip-chain-check: the brand assertions are not checked against a trusted root\n')
  return withVault(io, f, async (v) => {
    const { brand, key } = await v.services.brands.importBrand(input)
    out(io, f.json, { brand: brand.id, keyId: key.keyId }, `imported brand ${brand.id} with signing key ${key.keyId} (RSA ${key.bits})\n`)
    return EXIT.OK
  })
}

export async function brandListCommand(io: CliIo, f: GlobalFlags & { json?: boolean }): Promise<number> {
  return withVault(io, f, async (v) => {
    const brands = await v.services.brands.listBrands()
    const keys = await v.keys.listKeys()
    const rows = brands.map((b) => ({ id: b.id, displayName: b.displayName, origin: b.origin, keys: keys.filter((k) => k.accountId === b.id).map((k) => ({ keyId: k.keyId, name: k.name, enabled: k.enabled })) }))
    out(io, f.json, { brands: rows }, rows.map((b) => `${b.id}\t${b.origin}\t${b.displayName}\n${b.keys.map((k) => `  key ${k.keyId} ${k.name}${k.enabled ? '' : ' (disabled)'}\n`).join('')}`).join('') || 'no brands\n')
    return EXIT.OK
  })
}

export async function keyListCommand(io: CliIo, f: GlobalFlags & { json?: boolean; account?: string }): Promise<number> {
  return withVault(io, f, async (v) => {
    const keys = (await v.keys.listKeys(f.account)).map((k) => ({ keyId: k.keyId, accountId: k.accountId, purpose: k.purpose, name: k.name, bits: k.bits, enabled: k.enabled }))
    out(io, f.json, { keys }, keys.map((k) => `${k.keyId}\t${k.accountId}\t${k.purpose}\t${k.name}\tRSA ${k.bits}\t${k.enabled ? 'enabled' : 'disabled'}\n`).join('') || 'no keys\n')
    return EXIT.OK
  })
}

export async function keySetEnabledCommand(io: CliIo, f: GlobalFlags & { keyId: string }, enabled: boolean): Promise<number> {
  return withVault(io, f, async (v) => {
    await v.keys.setEnabled(f.keyId, { enabled })
    io.out(`${f.keyId} ${enabled ? 'enabled' : 'disabled'}\n`)
    return EXIT.OK
  })
}

export async function trustExportCommand(io: CliIo, f: GlobalFlags & { brand?: string; out?: string }): Promise<number> {
  return withVault(io, f, async (v) => {
    const stream = await v.services.brands.trustExport(f.brand)
    if (f.out) await writeFile(f.out, stream)
    else io.out(stream.toString('utf8'))
    return EXIT.OK
  })
}

// --- models ------------------------------------------------------------------------

export async function modelAddCommand(
  io: CliIo,
  f: GlobalFlags & { brand: string; model: string; apiKey?: string[]; serialPolicy?: string; duplicates?: string; headers?: string; defaultHeaders?: boolean; key?: string; json?: boolean },
): Promise<number> {
  // A model assertion is signed once and must match the devices' image: never
  // sign made-up headers unasked (issue 13). The generic model is opt-in, and says what it signed.
  if (!f.headers && !f.defaultHeaders) {
    throw new CliError('model add: --headers FILE is required (the model assertion headers: architecture, base, grade, snaps, ...); --default-headers signs a generic amd64 core22 "pc" model, for trying things out')
  }
  if (f.headers && f.defaultHeaders) throw new CliError('model add: --headers and --default-headers exclude each other')
  let headers: Record<string, HeaderValue> | undefined
  if (f.headers) {
    let text: string
    try {
      text = await readFile(f.headers, 'utf8')
    } catch (e) {
      throw new CliError(`cannot read headers file ${f.headers}: ${(e as NodeJS.ErrnoException).code}`)
    }
    let parsed: unknown
    try {
      parsed = f.headers.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
    } catch (e) {
      throw new CliError(`${f.headers}: ${(e as Error).message}`)
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CliError(`${f.headers}: expected a mapping of model headers`)
    headers = stringify(parsed) as Record<string, HeaderValue>
  }
  if (f.duplicates && f.duplicates !== 'refuse' && f.duplicates !== 'reissue') throw new CliError('--duplicates must be refuse or reissue')
  const serialPolicy = f.serialPolicy ? parseSerialPolicyFlag(f.serialPolicy) : undefined
  if (f.defaultHeaders) {
    const snaps = (DEFAULT_MODEL_HEADERS.snaps as Array<Record<string, string>>).map((x) => `${x.name} (${x.type})`).join(', ')
    io.err(`vault-server: --default-headers: signing the generic model headers architecture ${DEFAULT_MODEL_HEADERS.architecture}, base ${DEFAULT_MODEL_HEADERS.base}, grade ${DEFAULT_MODEL_HEADERS.grade}, snaps ${snaps}; give --headers FILE for a real device\n`)
  }
  return withVault(io, f, async (v) => {
    const { model, apiKeys } = await v.services.models.create({
      brandId: f.brand,
      name: f.model,
      ...(f.key ? { signingKeyId: f.key } : {}),
      ...(f.apiKey?.length ? { apiKeys: f.apiKey } : {}),
      ...(serialPolicy ? { serialPolicy } : {}),
      ...(f.duplicates ? { duplicatePolicy: f.duplicates as DuplicatePolicy } : {}),
      ...(headers ? { headers } : {}),
    })
    const generated = !f.apiKey?.length
    out(
      io,
      f.json,
      { brand: model.brandId, model: model.name, signingKeyId: model.signingKeyId, serialPolicy: model.serialPolicy, duplicatePolicy: model.duplicatePolicy, apiKeys: generated ? apiKeys : [] },
      `created model ${model.brandId}/${model.name}, serials signed by ${model.signingKeyId}\n  serial policy ${model.serialPolicy.kind === 'device' ? 'device (the device proposes its serial)' : `assign ${model.serialPolicy.template}`}, duplicates: ${model.duplicatePolicy}\n${generated ? `  API key (shown once): ${apiKeys[0]}\n` : ''}`,
    )
    return EXIT.OK
  })
}

function stringify(v: unknown): unknown {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return v.map(stringify)
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, stringify(e)]))
  return v
}

export async function modelListCommand(io: CliIo, f: GlobalFlags & { brand?: string; json?: boolean }): Promise<number> {
  return withVault(io, f, async (v) => {
    const models = (await v.services.models.list(f.brand ? { brandId: f.brand } : {})).map((m) => {
      const view = modelView(m)
      return { brand: m.brandId, model: m.name, storeId: m.storeId, assertionNamesStore: view.assertionNamesStore, signingKeyId: m.signingKeyId, serialPolicy: m.serialPolicy, duplicatePolicy: m.duplicatePolicy, apiKeys: m.apiKeyHashes.length, revision: m.revision }
    })
    out(io, f.json, { models }, models.map((m) => `${m.brand}/${m.model}\tstore ${m.storeId}${m.assertionNamesStore ? '' : ' (assertion not re-signed for it yet)'}\t${m.serialPolicy.kind}\t${m.duplicatePolicy}\tkey ${m.signingKeyId}\n`).join('') || 'no models\n')
    return EXIT.OK
  })
}

export async function modelShowCommand(io: CliIo, f: GlobalFlags & { brand: string; model: string }): Promise<number> {
  return withVault(io, f, async (v) => {
    io.out((await v.services.models.get(f.brand, f.model)).modelAssertion)
    return EXIT.OK
  })
}

// --- tokens ------------------------------------------------------------------------

export async function tokenCreateCommand(io: CliIo, f: GlobalFlags & { name: string; role?: string[]; json?: boolean }): Promise<number> {
  const config = resolveConfig(io, f)
  const store = await openStore(storeConfig(config))
  try {
    const token = newToken()
    const roles = f.role?.length ? f.role : ['admin']
    await store.tokens.put({ hash: hashToken(token), kind: 'admin', name: f.name, roles, createdAt: Date.now() })
    out(io, f.json, { name: f.name, roles, token }, `token ${f.name} (${roles.join(', ')}), shown once:\n  ${token}\n`)
    return EXIT.OK
  } finally {
    await store.close()
  }
}

export async function tokenListCommand(io: CliIo, f: GlobalFlags & { json?: boolean }): Promise<number> {
  const config = resolveConfig(io, f)
  const store = await openStore(storeConfig(config))
  try {
    const tokens = (await store.tokens.list()).filter((t) => t.revokedAt === undefined).map((t) => ({ name: t.name, roles: t.roles, id: t.hash.slice(0, 12), createdAt: new Date(t.createdAt).toISOString() }))
    out(io, f.json, { tokens }, tokens.map((t) => `${t.id}\t${t.name}\t${t.roles.join(',')}\t${t.createdAt}\n`).join('') || 'no tokens\n')
    return EXIT.OK
  } finally {
    await store.close()
  }
}

export async function tokenRevokeCommand(io: CliIo, f: GlobalFlags & { id: string }): Promise<number> {
  const config = resolveConfig(io, f)
  const store = await openStore(storeConfig(config))
  try {
    const match = (await store.tokens.list()).filter((t) => t.hash.startsWith(f.id) && t.revokedAt === undefined)
    if (match.length !== 1) throw new CliError(match.length === 0 ? `no token with id ${f.id}` : `id ${f.id} is ambiguous`, EXIT.FAILED)
    await store.tokens.revoke(match[0]!.hash, { at: Date.now(), by: 'cli' })
    io.out(`revoked ${match[0]!.name}\n`)
    return EXIT.OK
  } finally {
    await store.close()
  }
}

// --- serve -------------------------------------------------------------------------

/** Runs until SIGINT/SIGTERM. */
export async function serveCommand(io: CliIo, f: GlobalFlags): Promise<number> {
  const config = resolveConfig(io, f)
  if (f.printConfig) {
    io.out(printableConfig(config, { workers: config.signing.workers || defaultSignerPoolSize() }))
    return EXIT.OK
  }
  const log = createLogger(config.log.level)
  if (config.dev) log.warn({ dataDir: config.dataDir }, 'config.dev_mode')
  const vault = await startVault(config, log)
  io.err(`vault-server: serving ${vault.url}${vault.mqttUrl ? ` and ${vault.mqttUrl.replace(/\/\/[^@/]*@/, '//')}` : ''} (store ${config.store.driver}${config.tls.plainHttp ? ', plain HTTP' : ''})\n`)
  await waitForSignal()
  await vault.close()
  return EXIT.OK
}

export function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => {
      process.off('SIGINT', on)
      process.off('SIGTERM', on)
      resolve(sig)
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
  })
}

