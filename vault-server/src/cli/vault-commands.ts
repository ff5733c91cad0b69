/**
 * The vault's own commands. init, serve, demo and the admin-token commands
 * work on a data directory (`--data DIR`); brand, key, model and trust go
 * through the admin API, of a running vault (`--url`, `--token`) or of the
 * data directory opened in this process (`--data`, admin-target.ts), so both
 * ways run the same checks and write the same audit entries. Output for
 * people on stdout, `--json` for scripts; secrets (admin tokens, API keys)
 * are printed once, at creation, and never again.
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
import type { AdminWire } from '@sv/shared'
import { openVault, startVault } from '../vault.js'
import { tokenId, type TokenRecord } from '../store/store.js'
import { auditView } from '../services/admin/audit.js'
import { openStore } from '../store/open-store.js'
import { storeConfig } from '../vault.js'
import { parseSerialPolicyFlag } from '../services/serial-template.js'
import { adminJson, adminRequest } from './admin-client.js'
import { cliUser, lockedHint, withAdmin, type TargetFlags } from './admin-target.js'
import { DEFAULT_MODEL_HEADERS } from '../services/model-service.js'
import { CliError, EXIT, type CliIo } from './io.js'

export interface GlobalFlags {
  data?: string
  config?: string
  listen?: string
  metricsListen?: string
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
  if (f.metricsListen) flags.metrics = { listen: f.metricsListen }
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

/** The store of the data directory, for the admin-token commands (with the one-line hint when a running vault holds it). */
async function openDataStore(config: VaultConfig, o: { adminTokens?: boolean } = {}): ReturnType<typeof openStore> {
  return openStore(storeConfig(config)).catch((e: unknown) => {
    throw lockedHint(config, e, o)
  })
}

const enc = encodeURIComponent

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

export async function brandCreateCommand(io: CliIo, f: TargetFlags & { id: string; displayName: string; rootId?: string; json?: boolean }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ brand: { id: string; displayName: string }; key: AdminWire.KeyWire; rootId: string }>(t, 'POST', 'admin/brands', { id: f.id, displayName: f.displayName, ...(f.rootId ? { rootId: f.rootId } : {}) })
    out(io, f.json, { brand: r.brand.id, displayName: r.brand.displayName, keyId: r.key.keyId, rootId: r.rootId }, `created brand ${r.brand.id} ("${r.brand.displayName}") under the vault root ${r.rootId}\n  signing key ${r.key.keyId} (RSA ${r.key.bits})\n  devices need the trust anchors: vault-server trust export\n`)
    return EXIT.OK
  })
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost'])

/**
 * Imports a store-registered brand with its private key. Over --url the key
 * travels in the request body (never in an answer, a log line or the audit
 * log), so only over TLS, or plain HTTP to this host (the --data way); the
 * vault seals it under its master key at once, so no clear copy of the key
 * needs to sit on the vault host.
 */
export async function brandImportCommand(io: CliIo, f: TargetFlags & { key: string; account: string; accountKey: string; trusted?: string[]; chain?: string[]; skipChainCheck?: boolean; json?: boolean }): Promise<number> {
  const url = f.url ?? io.env.VAULT_URL
  if (url) {
    let u: URL | undefined
    try {
      u = new URL(url)
    } catch {
      // adminRequest reports it
    }
    if (u && u.protocol !== 'https:' && !LOOPBACK.has(u.hostname)) throw new CliError(`brand import sends the brand's private key: use an https:// --url (not ${u.protocol}//${u.host}), or run it on the vault host with --data`)
  }
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
    ...(f.trusted?.length ? { trusted: await Promise.all(f.trusted.map((p) => read(p, 'trusted file'))) } : {}),
    ...(f.chain?.length ? { chain: await Promise.all(f.chain.map((p) => read(p, 'chain file'))) } : {}),
    ...(f.skipChainCheck ? { skipChainCheck: true } : {}),
  }
  if (f.skipChainCheck) io.err('vault-server: warning: --skip-chain-check: the brand assertions are not checked against a trusted root\n')
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ brand: { id: string }; key: AdminWire.KeyWire }>(t, 'POST', 'admin/brands/import', input)
    out(io, f.json, { brand: r.brand.id, keyId: r.key.keyId }, `imported brand ${r.brand.id} with signing key ${r.key.keyId} (RSA ${r.key.bits})\n`)
    return EXIT.OK
  })
}

export async function brandListCommand(io: CliIo, f: TargetFlags & { json?: boolean }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const { brands } = await adminJson<{ brands: Array<{ id: string; displayName: string; origin: string }> }>(t, 'GET', 'admin/brands')
    const { keys } = await adminJson<{ keys: AdminWire.KeyWire[] }>(t, 'GET', 'admin/keys')
    const rows = brands.map((b) => ({ id: b.id, displayName: b.displayName, origin: b.origin, keys: keys.filter((k) => k.accountId === b.id).map((k) => ({ keyId: k.keyId, name: k.name, enabled: k.enabled })) }))
    out(io, f.json, { brands: rows }, rows.map((b) => `${b.id}\t${b.origin}\t${b.displayName}\n${b.keys.map((k) => `  key ${k.keyId} ${k.name}${k.enabled ? '' : ' (disabled)'}\n`).join('')}`).join('') || 'no brands\n')
    return EXIT.OK
  })
}

export async function keyListCommand(io: CliIo, f: TargetFlags & { json?: boolean; account?: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    // every key the caller may read, then the account (a brand or the vault root) picked here
    const r = await adminJson<{ keys: AdminWire.KeyWire[] }>(t, 'GET', 'admin/keys')
    const keys = r.keys.filter((k) => f.account === undefined || k.accountId === f.account).map((k) => ({ keyId: k.keyId, accountId: k.accountId, purpose: k.purpose, name: k.name, bits: k.bits, enabled: k.enabled }))
    out(io, f.json, { keys }, keys.map((k) => `${k.keyId}\t${k.accountId}\t${k.purpose}\t${k.name}\tRSA ${k.bits}\t${k.enabled ? 'enabled' : 'disabled'}\n`).join('') || 'no keys\n')
    return EXIT.OK
  })
}

/** Enables or disables a signing key (a reason is required to disable; a key a model signs with is refused, SV_KEY_IN_USE). */
export async function keySetEnabledCommand(io: CliIo, f: TargetFlags & { keyId: string; reason?: string; json?: boolean }, enabled: boolean): Promise<number> {
  if (!enabled && !f.reason) throw new CliError('key disable: --reason TEXT is required (it goes into the audit log)')
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ key: AdminWire.KeyWire }>(t, 'POST', `admin/keys/${enc(f.keyId)}/${enabled ? 'enable' : 'disable'}`, f.reason ? { reason: f.reason } : {})
    out(io, f.json, r, `${r.key.keyId} ${r.key.enabled ? 'enabled' : 'disabled'}\n`)
    return EXIT.OK
  })
}

export async function trustExportCommand(io: CliIo, f: TargetFlags & { brand?: string; out?: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const res = await adminRequest(t, 'GET', `admin/trust${f.brand ? `?brand=${enc(f.brand)}` : ''}`)
    const chunks: Buffer[] = []
    for await (const c of res) chunks.push(c as Buffer)
    const stream = Buffer.concat(chunks)
    if (f.out) await writeFile(f.out, stream)
    else io.out(stream.toString('utf8'))
    return EXIT.OK
  })
}

// --- models ------------------------------------------------------------------------

export async function modelAddCommand(
  io: CliIo,
  f: TargetFlags & { brand: string; model: string; apiKey?: string[]; serialPolicy?: string; duplicates?: string; headers?: string; defaultHeaders?: boolean; key?: string; json?: boolean },
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
  // checked here too, so a typo is exit 2 before anything is sent
  if (f.serialPolicy) parseSerialPolicyFlag(f.serialPolicy)
  if (f.defaultHeaders) {
    const snaps = (DEFAULT_MODEL_HEADERS.snaps as Array<Record<string, string>>).map((x) => `${x.name} (${x.type})`).join(', ')
    io.err(`vault-server: --default-headers: signing the generic model headers architecture ${DEFAULT_MODEL_HEADERS.architecture}, base ${DEFAULT_MODEL_HEADERS.base}, grade ${DEFAULT_MODEL_HEADERS.grade}, snaps ${snaps}; give --headers FILE for a real device\n`)
  }
  return withAdmin(io, f, async (t) => {
    const { model, apiKeys } = await adminJson<{ model: AdminWire.ModelWire; apiKeys: string[] }>(t, 'POST', 'admin/models', {
      brandId: f.brand,
      name: f.model,
      ...(f.key ? { signingKeyId: f.key } : {}),
      ...(f.apiKey?.length ? { apiKeys: f.apiKey } : {}),
      ...(f.serialPolicy ? { serialPolicy: f.serialPolicy } : {}),
      ...(f.duplicates ? { duplicates: f.duplicates } : {}),
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

export async function modelListCommand(io: CliIo, f: TargetFlags & { brand?: string; json?: boolean }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ models: AdminWire.ModelWire[] }>(t, 'GET', `admin/models${f.brand ? `?brand=${enc(f.brand)}` : ''}`)
    const models = r.models.map((m) => ({ brand: m.brandId, model: m.name, storeId: m.storeId, assertionNamesStore: m.assertionNamesStore, signingKeyId: m.signingKeyId, serialPolicy: m.serialPolicy, duplicatePolicy: m.duplicatePolicy, apiKeys: m.apiKeyHashes.length, revision: m.revision }))
    out(io, f.json, { models }, models.map((m) => `${m.brand}/${m.model}\tstore ${m.storeId}${m.assertionNamesStore ? '' : ' (assertion not re-signed for it yet)'}\t${m.serialPolicy.kind}\t${m.duplicatePolicy}\tkey ${m.signingKeyId}\n`).join('') || 'no models\n')
    return EXIT.OK
  })
}

export async function modelShowCommand(io: CliIo, f: TargetFlags & { brand: string; model: string; json?: boolean }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ model: AdminWire.ModelWire }>(t, 'GET', `admin/models/${enc(f.brand)}/${enc(f.model)}`)
    io.out(f.json ? `${JSON.stringify(r, null, 2)}\n` : r.model.modelAssertion)
    return EXIT.OK
  })
}

// --- tokens ------------------------------------------------------------------------

/**
 * A new admin token, audited as token.created by the cli operator (never the
 * secret: its id and name). Issue 8: the break-glass credential is never
 * made over the network, only here, with the data directory opened in this
 * process.
 */
export async function tokenCreateCommand(io: CliIo, f: GlobalFlags & { name: string; role?: string[]; json?: boolean; url?: string }): Promise<number> {
  if (f.url) throw new CliError('token create makes an admin token, only on the vault host: give --data DIR, not --url (people make personal tokens in the dashboard)')
  const config = resolveConfig(io, f)
  const v = await openVault(config, quietLogger(config), { workers: 1, onProgress: progressTo(io) }).catch((e: unknown) => {
    throw lockedHint(config, e, { adminTokens: true })
  })
  try {
    const core = v.services.admin.core
    const cred = core.d.access.cliCredential(cliUser())
    try {
      const operator = await core.d.access.authenticate({ authorization: `Bearer ${cred.token}`, method: 'POST' })
      const token = newToken()
      const roles = f.role?.length ? f.role : ['admin']
      const record: TokenRecord = { hash: hashToken(token), kind: 'admin', name: f.name, roles, createdAt: Date.now() }
      await core.d.store.tokens.put(record, core.seal(operator, { transport: 'cli' }, { action: 'token.created', target: { type: 'token', id: tokenId(record.hash) }, after: auditView('token', { ...record }) }))
      out(io, f.json, { name: f.name, roles, token }, `token ${f.name} (${roles.join(', ')}), shown once:\n  ${token}\n`)
      return EXIT.OK
    } finally {
      cred.forget()
    }
  } finally {
    await v.close()
  }
}

export async function tokenListCommand(io: CliIo, f: GlobalFlags & { json?: boolean }): Promise<number> {
  const config = resolveConfig(io, f)
  const store = await openDataStore(config)
  try {
    const tokens = (await store.tokens.list()).filter((t) => t.revokedAt === undefined).map((t) => ({ name: t.name, roles: t.roles, id: t.hash.slice(0, 12), createdAt: new Date(t.createdAt).toISOString() }))
    out(io, f.json, { tokens }, tokens.map((t) => `${t.id}\t${t.name}\t${t.roles.join(',')}\t${t.createdAt}\n`).join('') || 'no tokens\n')
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
  io.err(`vault-server: serving ${vault.url}${vault.mqttUrl ? ` and ${vault.mqttUrl.replace(/\/\/[^@/]*@/, '//')}` : ''} (store ${config.store.driver}${config.tls.plainHttp ? ', plain HTTP' : ''})${vault.metricsUrl ? `, metrics on ${vault.metricsUrl}` : ''}\n`)
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

