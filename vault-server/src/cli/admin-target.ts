/**
 * Where an admin command goes: a running vault's admin API (`--url`, with
 * `--token`), or, on the vault host, the data directory itself (`--data`):
 * then the command opens the vault in this process and calls the same admin
 * API on a loopback port, authenticated with a credential that lives only in
 * this process and is audited as actor `cli` (the operator on the host). So
 * both ways run the same routes, checks and audit entries.
 */
import { userInfo } from 'node:os'
import { VaultError, exitCodeFor } from '@sv/shared'
import type { VaultConfig } from '../config.js'
import { createApp } from '../app.js'
import { listen } from '../http/server.js'
import { openVault } from '../vault.js'
import type { AdminTarget } from './admin-client.js'
import { CliError, type CliIo } from './io.js'
import { quietLogger, resolveConfig, progressTo, type GlobalFlags } from './vault-commands.js'

export interface TargetFlags extends GlobalFlags {
  url?: string
  token?: string
  ca?: string
  insecure?: boolean
}

/** The operator's login name on the vault host, for the audit actor `cli`. */
export function cliUser(): string {
  try {
    return userInfo().username || 'unknown'
  } catch {
    return 'unknown'
  }
}

/** Runs `fn` against the admin API of a running vault (--url) or of the data directory (--data). */
export async function withAdmin<T>(io: CliIo, f: TargetFlags, fn: (t: AdminTarget) => Promise<T>): Promise<T> {
  const url = f.url ?? io.env.VAULT_URL
  if (url) {
    const token = f.token ?? io.env.VAULT_TOKEN
    if (!token) throw new CliError('--token (or VAULT_TOKEN) is required with --url: an admin token, or a personal token')
    if (f.insecure) io.err('vault-server: warning: --insecure: the server certificate is not checked\n')
    return fn({ url, token, ...(f.ca ? { ca: f.ca } : {}), ...(f.insecure ? { insecure: true } : {}) })
  }
  if (!f.data && !io.env.VAULT_DATA_DIR) throw new CliError('give --url URL --token T (a running vault) or --data DIR (on the vault host, with the vault stopped when it uses LevelDB)')
  const config = resolveConfig(io, f)
  const v = await openVault(config, quietLogger(config), { workers: 1, onProgress: progressTo(io) }).catch((e: unknown) => {
    throw lockedHint(config, e)
  })
  try {
    const app = createApp({ config: { ...config, tls: { ...config.tls, plainHttp: true } }, log: quietLogger(config), metrics: v.metrics, services: v.services, admission: v.admission })
    const server = await listen(app, { host: '127.0.0.1', port: 0 })
    const cred = v.services.admin.core.d.access.cliCredential(cliUser())
    try {
      return await fn({ url: server.url, token: cred.token })
    } finally {
      cred.forget()
      await server.close(1000)
    }
  } finally {
    await v.close()
  }
}

/**
 * A data directory whose LevelDB is held by a running vault (one process
 * only): the one-line way out, `--url` with the address the configuration
 * serves on. `adminTokens`: for `token create`, which has no --url (admin
 * tokens are made on the vault host only): stop the vault instead. Other
 * errors pass through.
 */
export function lockedHint(config: VaultConfig, e: unknown, o: { adminTokens?: boolean } = {}): unknown {
  if (!(e instanceof VaultError) || e.code !== 'SV_STORE_LOCKED') return e
  const url = `${config.tls.plainHttp ? 'http' : 'https'}://${config.listen}/v1/`
  const msg = o.adminTokens
    ? `${config.dataDir} is in use by a running vault (SV_STORE_LOCKED): admin tokens are made only on the vault host with the vault stopped (LevelDB allows one process); stop it and run this again, or use the PostgreSQL store`
    : `${config.dataDir} is in use by a running vault (SV_STORE_LOCKED): run this command against it with --url ${url} --token TOKEN (or VAULT_URL and VAULT_TOKEN)`
  // not retryable as it stands (exit 2, as SV_STORE_LOCKED in the exit-code table): the way out is --url or stopping the vault
  return new CliError(msg, exitCodeFor('SV_STORE_LOCKED'))
}
