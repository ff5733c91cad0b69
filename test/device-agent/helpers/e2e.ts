/**
 * The set-up the agent's end-to-end files share: a real vault in this
 * process over HTTPS with its own certificate, a scratch directory, and the
 * vault's certificate in a file for the agent's --ca. The hooks are
 * registered on the calling file; the fields are set once `test.before` ran.
 */
import test from 'ava'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestVault, type TestVault } from '../../helpers/vault.js'

export interface AgentE2E {
  vault: TestVault
  /** scratch directory, removed after the file */
  work: string
  /** the vault's TLS certificate, for --ca */
  caFile: string
}

export function agentE2E(prefix: string): AgentE2E {
  const e2e = {} as AgentE2E
  test.before(async () => {
    e2e.vault = await startTestVault(undefined, { tls: true })
    e2e.work = await mkdtemp(join(tmpdir(), prefix))
    e2e.caFile = join(e2e.work, 'vault-ca.pem')
    await writeFile(e2e.caFile, e2e.vault.caPem!)
  })
  test.after.always(async () => {
    await e2e.vault?.close()
    if (e2e.work) await rm(e2e.work, { recursive: true, force: true })
    if (e2e.vault) await rm(e2e.vault.dataDir, { recursive: true, force: true })
  })
  return e2e
}
