/**
 * `vault-server demo` (what `npm start` runs): a working vault in development
 * mode on the embedded default (LevelDB under .data/demo, self-signed TLS),
 * with a demo brand under a vault-held root, a demo model and its API key,
 * and instructions to provision a device against it.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { encodeStream, decodeStream, decodeAssertion } from '@sv/shared'
import { createLogger } from '../logger.js'
import { openVault, startVault } from '../vault.js'
import { initCommand, progressTo, resolveConfig, waitForSignal, type GlobalFlags } from './vault-commands.js'
import { EXIT, type CliIo } from './io.js'

interface DemoState {
  brand: string
  model: string
  apiKey: string
  adminToken: string
}

export async function demoCommand(io: CliIo, f: GlobalFlags & { once?: boolean }): Promise<number> {
  const dataDir = resolve(f.data ?? io.env.VAULT_DATA_DIR ?? '.data/demo')
  const flags: GlobalFlags = { ...f, data: dataDir, dev: true, listen: f.listen ?? io.env.VAULT_LISTEN ?? '127.0.0.1:8443' }
  const statePath = join(dataDir, 'demo.json')
  let state: DemoState | undefined = await readFile(statePath, 'utf8').then(
    (t) => JSON.parse(t) as DemoState,
    () => undefined,
  )
  if (!state) {
    io.err(`vault-server: setting up the demo vault in ${dataDir} (two RSA-4096 keys: a few seconds)\n`)
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    let initOut = ''
    await initCommand({ ...io, out: (t) => void (initOut += t) }, { ...flags, json: true })
    const adminToken = (JSON.parse(initOut) as { adminToken: string | null }).adminToken ?? ''
    const config = resolveConfig(io, flags)
    const v = await openVault(config, createLogger('warn', process.stderr as never), { workers: 1, onProgress: progressTo(io) })
    try {
      await v.services.brands.createBrand({ id: 'demo-brand', displayName: 'Demo Brand' })
      const { apiKeys } = await v.services.models.create({
        brandId: 'demo-brand',
        name: 'demo-model',
        headers: {
          'display-name': 'Demo Model',
          architecture: 'arm64',
          base: 'core22',
          grade: 'signed',
          snaps: [
            { name: 'pi', id: 'YbGa9O3dAXl88YLI6Y1bGG74pwBxZyKg', type: 'gadget', 'default-channel': '22/stable' },
            { name: 'pi-kernel', id: 'jeIuP6tfFrvAdic8DMWqHmoaoukAPNbJ', type: 'kernel', 'default-channel': '22/stable' },
          ],
        },
      })
      state = { brand: 'demo-brand', model: 'demo-model', apiKey: apiKeys[0]!, adminToken }
      const trusted = await v.services.brands.trustExport()
      const chain = decodeStream(await v.services.brands.trustExport('demo-brand')).filter((a) => a.typeName !== 'account' || a.headerString('account-id') === 'demo-brand')
      const model = decodeAssertion((await v.services.models.get('demo-brand', 'demo-model')).modelAssertion)
      await writeFile(join(dataDir, 'trusted.assert'), trusted)
      await writeFile(join(dataDir, 'brand-chain.assert'), encodeStream([...chain.filter((a) => a.typeName !== 'account-key' || a.headerString('account-id') === 'demo-brand'), model]))
      // development convenience only: the demo API key and admin token are kept in clear here (mode 0600)
      await writeFile(statePath, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 })
    } finally {
      await v.close()
    }
    io.err('\n')
  }
  const config = resolveConfig(io, flags)
  const log = createLogger(config.log.level)
  log.warn({ dataDir }, 'config.dev_mode')
  const vault = await startVault(config, log)
  const rel = (p: string) => join(dataDir, p)
  io.out(
    [
      '',
      '  Serial vault demo (development mode: self-signed TLS, vault-held root of trust)',
      '',
      `  device API   ${vault.url}`,
      `  MQTT         ${vault.mqttUrl ?? 'off'}   (topics serial-vault/v1/request-id and serial-vault/v1/serial)`,
      `  brand/model  ${state.brand} / ${state.model}`,
      `  api-key      ${state.apiKey}`,
      `  TLS cert     ${rel('tls/cert.pem')}`,
      `  trust anchor ${rel('trusted.assert')}   (the vault root a device must trust)`,
      `  brand chain  ${rel('brand-chain.assert')}`,
      '',
      '  Provision a device with the device agent (in another terminal):',
      `    npx device-agent provision --once --url ${vault.url} --api-key ${state.apiKey} \\`,
      `      --brand ${state.brand} --model ${state.model} --serial-value DEMO-0001 \\`,
      `      --ca ${rel('tls/cert.pem')} --trusted ${rel('trusted.assert')} --state-dir /tmp/demo-agent`,
      '',
      "  or with snapd's own registration client (../shared/snapd-check):",
      `    .cache/snapd-check/snapd-check register --url ${vault.url} --insecure --api-key ${state.apiKey} \\`,
      `      --brand ${state.brand} --model ${state.model} --serial DEMO-0002 --trusted ${rel('trusted.assert')} --chain ${rel('brand-chain.assert')}`,
      '',
      '  or by hand:',
      `    curl --cacert ${rel('tls/cert.pem')} -X POST -H 'api-key: ${state.apiKey}' ${vault.url}request-id`,
      '',
      `  admin token  ${state.adminToken}`,
      `  metrics      ${vault.url.replace(/v1\/$/, '')}metrics`,
      `  signing log  npx vault-server log query --url ${vault.url} --token ${state.adminToken} --ca ${rel('tls/cert.pem')}`,
      '  Ctrl-C stops the vault; the data stays in the data directory.',
      '',
    ].join('\n'),
  )
  if (!f.once) await waitForSignal()
  await vault.close()
  return EXIT.OK
}
