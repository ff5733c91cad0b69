/**
 * `vault-server demo` (what `npm start` runs): a working vault in development
 * mode on the embedded default (LevelDB under .data/demo, self-signed TLS),
 * with a demo brand under a vault-held root, its stores (the base store, a
 * product store and an ecosystem store run for a partner), a demo model, one
 * person per role with a development identity provider to log in at, and
 * instructions to provision a device and to log in.
 *
 * Development conveniences, all logged as config.dev_mode: the API key, the
 * admin token, the people's passwords and personal tokens are kept in clear in
 * DATA/demo.json (mode 0600); the identity provider runs on loopback only.
 */
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeStream, decodeStream, decodeAssertion, VaultError } from '@sv/shared'
import { createLogger } from '../logger.js'
import { addressError, openVault, startVault, type VaultCore } from '../vault.js'
import { startDevIdentityProvider } from '../auth/dev-idp.js'
import { parseListen } from '../http/server.js'
import { sha256Hex } from '../services/admin/access.js'
import { newPersonalToken } from '../services/admin/people-ops.js'
import type { Role } from '../store/store.js'
import { initCommand, progressTo, resolveConfig, waitForSignal, type GlobalFlags } from './vault-commands.js'
import { CliError, EXIT, type CliIo } from './io.js'

/**
 * snapd-check where `npm start` and `npm test` build it (.ci/snapd-check.mjs,
 * into .cache/snapd-check of the repository): three levels up from src/cli
 * and from dist/cli alike.
 */
const SNAPD_CHECK = fileURLToPath(new URL('../../../.cache/snapd-check/snapd-check', import.meta.url))

const BRAND = 'demo-brand'
const MODEL = 'demo-model'

/** The demo's people: one per role, each in the store that shows the role best. */
const PEOPLE: Array<{ role: Role; store: string; inheritable: boolean; name: string }> = [
  { role: 'admin', store: BRAND, inheritable: true, name: 'Ada Admin' },
  { role: 'publisher', store: 'demo-devices', inheritable: false, name: 'Pat Publisher' },
  { role: 'collaborator', store: 'demo-devices', inheritable: false, name: 'Cole Collaborator' },
  { role: 'reviewer', store: BRAND, inheritable: true, name: 'Rae Reviewer' },
  { role: 'viewer', store: 'demo-partner', inheritable: false, name: 'Vic Viewer' },
]

interface DemoPerson {
  email: string
  role: Role
  store: string
  password: string
  token: string
  tokenExpiresAt: number
}

interface DemoState {
  brand: string
  model: string
  apiKey: string
  adminToken: string
  /** the development identity provider's client secret */
  idpSecret?: string
  people?: DemoPerson[]
  /** serial numbers proposed in the printed instructions (a fresh pair each start) */
  next?: number
}

const PI_HEADERS = {
  'display-name': 'Demo Model',
  architecture: 'arm64',
  base: 'core22',
  grade: 'signed',
  snaps: [
    { name: 'pi', id: 'YbGa9O3dAXl88YLI6Y1bGG74pwBxZyKg', type: 'gadget', 'default-channel': '22/stable' },
    { name: 'pi-kernel', id: 'jeIuP6tfFrvAdic8DMWqHmoaoukAPNbJ', type: 'kernel', 'default-channel': '22/stable' },
  ],
}

/** DATA/demo.json, or undefined on a fresh directory. Unreadable or garbled: SV_CONFIG_INVALID naming the file (exit 2). */
async function readState(path: string): Promise<DemoState | undefined> {
  const invalid = (reason: string, cause: string): never => {
    throw new VaultError('SV_CONFIG_INVALID', `${path}: ${cause}: fix it, or remove the demo data directory to start afresh`, { details: { file: path, reason, issues: [`${path}: ${cause}`] } })
  }
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    return invalid('unreadable', `cannot read (${code})`)
  }
  let state: unknown
  try {
    state = JSON.parse(text)
  } catch (e) {
    return invalid('json', `not valid JSON (${(e as Error).message})`)
  }
  const o = state as Record<string, unknown> | null
  if (o === null || typeof o !== 'object' || Array.isArray(o) || !['brand', 'model', 'apiKey', 'adminToken'].every((k) => typeof o[k] === 'string')) {
    return invalid('shape', 'not a demo state (brand, model, apiKey and adminToken strings)')
  }
  return o as unknown as DemoState
}

/**
 * Where the demo's MQTT broker and identity provider listen unless told:
 * on the host of --listen, at its port + 440 and + 1, which gives the
 * defaults 8883 and 8444 for 8443, and lets a second demo on --listen
 * 127.0.0.1:9443 run beside the first (9883, 9444). Port 0 stays 0.
 */
export function demoAddresses(listen: string, o: { mqttListen?: string | undefined; idpListen?: string | undefined }): { mqtt: string; idp: string } {
  const { host, port } = parseListen(listen)
  const h = host.includes(':') ? `[${host}]` : host
  const at = (delta: number) => `${h}:${port === 0 || port + delta > 65535 ? 0 : port + delta}`
  return { mqtt: o.mqttListen ?? at(440), idp: o.idpListen ?? at(1) }
}

/** Fails SV_ADDRESS_UNAVAILABLE when host:port cannot be listened on now (checked before the slow key generation). */
async function checkFree(address: string, listener: string, setting: string): Promise<void> {
  const { host, port } = parseListen(address)
  if (port === 0) return
  await new Promise<void>((resolvePromise, reject) => {
    const probe = createServer()
    probe.once('error', (e) => reject(addressError(e, listener, address, setting)))
    probe.listen(port, host, () => probe.close(() => resolvePromise()))
  })
}

/** Two serials of the demo model with no binding in this data directory yet, from `from` on (bounded). */
async function unusedSerials(v: VaultCore, from: number): Promise<[number, number]> {
  const found: number[] = []
  for (let n = Math.max(1, from); found.length < 2 && n < from + 10_000; n++) {
    if (!(await v.store.registrations.getBinding(BRAND, MODEL, demoSerial(n)))) found.push(n)
  }
  if (found.length < 2) throw new CliError('no unused demo serial number found in 10000 tries', EXIT.FAILED)
  return [found[0]!, found[1]!]
}

const demoSerial = (n: number): string => `DEMO-${String(n).padStart(4, '0')}`

/** Stores and people of the demo, through the admin service (audited as the host's cli). Idempotent on what exists. */
async function seedStores(v: VaultCore, state: DemoState): Promise<DemoPerson[]> {
  const admin = v.services.admin
  const cred = admin.core.d.access.cliCredential('demo')
  try {
    const p = await admin.authenticate({ authorization: `Bearer ${cred.token}`, method: 'POST' })
    const ctx = { transport: 'cli' }
    const have = new Set((await admin.people.listStores(p)).map((s) => s.id))
    if (!have.has('demo-devices')) await admin.people.createStore(p, ctx, { id: 'demo-devices', parent: BRAND, kind: 'product', displayName: 'Demo devices' })
    if (!have.has('demo-partner')) await admin.people.createStore(p, ctx, { id: 'demo-partner', parent: BRAND, kind: 'ecosystem', displayName: 'Demo partner store', partner: { name: 'Partner Co', relation: 'reseller' }, requirePivotReview: true })
    const models = new Set((await admin.catalog.listModels(p, ctx, { brandId: BRAND })).map((m) => m.name))
    if (!models.has('demo-kiosk')) await admin.catalog.createModel(p, ctx, { brandId: BRAND, name: 'demo-kiosk', storeId: 'demo-devices', apiKeys: [state.apiKey], headers: { ...PI_HEADERS, 'display-name': 'Demo Kiosk' } })
    if (!models.has('demo-partner-gateway')) {
      await admin.catalog.createModel(p, ctx, { brandId: BRAND, name: 'demo-partner-gateway', storeId: 'demo-partner', apiKeys: [state.apiKey], headers: { ...PI_HEADERS, 'display-name': 'Partner Gateway' } })
      await admin.logs.allowPivot(p, ctx, 'demo-partner', { fromModel: MODEL, toModel: 'demo-partner-gateway' })
    }
    const people: DemoPerson[] = []
    const now = Date.now()
    for (const x of PEOPLE) {
      const email = `${x.role}@demo.example`
      const old = state.people?.find((q) => q.email === email)
      await admin.people.setMember(p, ctx, x.store, email, { role: x.role, inheritable: x.inheritable, displayName: x.name })
      const person = (await v.store.people.getByEmail(email))!
      // a personal token for the CLI, renewed when it nears its end (a development convenience)
      let token = old?.token
      let tokenExpiresAt = old?.tokenExpiresAt ?? 0
      if (!token || tokenExpiresAt < now + 86_400_000) {
        token = newPersonalToken()
        tokenExpiresAt = now + 30 * 86_400_000
        await v.store.tokens.put({ hash: sha256Hex(token), kind: 'personal', name: 'demo', roles: [], personId: person.id, permissions: ['*'], expiresAt: tokenExpiresAt, createdAt: now })
      }
      people.push({ email, role: x.role, store: x.store, password: old?.password ?? `demo-${x.role}-${randomBytes(3).toString('hex')}`, token, tokenExpiresAt })
    }
    return people
  } finally {
    cred.forget()
  }
}

export async function demoCommand(io: CliIo, f: GlobalFlags & { once?: boolean; idpListen?: string; mqttListen?: string }): Promise<number> {
  const dataDir = resolve(f.data || io.env.VAULT_DATA_DIR || '.data/demo')
  const listenAt = f.listen || io.env.VAULT_LISTEN || '127.0.0.1:8443'
  const addresses = demoAddresses(listenAt, { mqttListen: f.mqttListen || io.env.VAULT_MQTT_LISTEN || undefined, idpListen: f.idpListen })
  const idpAt = parseListen(addresses.idp)
  // flags beat the environment: the MQTT address goes in as a flag
  const mqttFlag = { mqtt: { listen: addresses.mqtt } }
  const statePath = join(dataDir, 'demo.json')
  let state = await readState(statePath)
  {
    // every address before the slow work (two RSA-4096 keys on a first start)
    const early = resolveConfig(io, { ...f, data: dataDir, dev: true, listen: listenAt }, mqttFlag)
    await checkFree(early.listen, 'the device API', '--listen')
    if (early.mqtt.mode === 'embedded') await checkFree(early.mqtt.listen, 'MQTT', '--mqtt-listen or VAULT_MQTT_LISTEN')
    await checkFree(addresses.idp, 'the demo identity provider', '--idp-listen')
  }
  if (!state) {
    io.err(`vault-server: setting up the demo vault in ${dataDir} (two RSA-4096 keys: a few seconds)\n`)
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    let initOut = ''
    await initCommand({ ...io, out: (t) => void (initOut += t) }, { ...f, data: dataDir, dev: true, json: true })
    const adminToken = (JSON.parse(initOut) as { adminToken: string | null }).adminToken ?? ''
    const config = resolveConfig(io, { ...f, data: dataDir, dev: true })
    const v = await openVault(config, createLogger('warn', process.stderr as never), { workers: 1, onProgress: progressTo(io) })
    try {
      await v.services.brands.createBrand({ id: BRAND, displayName: 'Demo Brand' })
      const { apiKeys } = await v.services.models.create({ brandId: BRAND, name: MODEL, headers: PI_HEADERS })
      state = { brand: BRAND, model: MODEL, apiKey: apiKeys[0]!, adminToken }
      const trusted = await v.services.brands.trustExport()
      const chain = decodeStream(await v.services.brands.trustExport(BRAND)).filter((a) => a.typeName !== 'account' || a.headerString('account-id') === BRAND)
      const model = decodeAssertion((await v.services.models.get(BRAND, MODEL)).modelAssertion)
      await writeFile(join(dataDir, 'trusted.assert'), trusted)
      await writeFile(join(dataDir, 'brand-chain.assert'), encodeStream([...chain.filter((a) => a.typeName !== 'account-key' || a.headerString('account-id') === BRAND), model]))
    } finally {
      await v.close()
    }
    if (io.errIsTTY) io.err('\n')
  }
  state.idpSecret ??= randomBytes(24).toString('base64url')
  let serials: [number, number] = [1, 2]
  const publicUrl = `https://${listenAt}`
  {
    // stores, people and their tokens: made once, renewed when needed (also for a demo directory of an older release)
    const config = resolveConfig(io, { ...f, data: dataDir, dev: true })
    const v = await openVault(config, createLogger('warn', process.stderr as never), { workers: 1 })
    try {
      state.people = await seedStores(v, state)
      // the banner's serials: none bound yet here, so a rerun of the printed commands is not a 409
      serials = await unusedSerials(v, (state.next ?? 0) + 1)
      state.next = serials[1]
    } finally {
      await v.close()
    }
  }
  await writeFile(statePath, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 })

  const idp = await startDevIdentityProvider({
    host: idpAt.host,
    port: idpAt.port,
    accounts: state.people.map((p) => ({ email: p.email, password: p.password, name: PEOPLE.find((x) => x.role === p.role)!.name })),
    clients: [{ clientId: 'serial-vault-demo', clientSecret: state.idpSecret, redirectUris: [`${publicUrl}/v1/auth/callback`] }],
  }).catch((e: unknown) => {
    throw addressError(e, 'the demo identity provider', addresses.idp, '--idp-listen')
  })
  const config = resolveConfig(io, { ...f, data: dataDir, dev: true, listen: listenAt }, {
    ...mqttFlag,
    auth: { publicUrl, oidc: { providers: [{ id: 'demo', displayName: 'Demo identity provider', issuer: idp.issuer, clientId: 'serial-vault-demo', clientSecret: state.idpSecret, allowInsecureHttp: true }] } },
  })
  const log = createLogger(config.log.level)
  log.warn({ dataDir, idp: idp.issuer }, 'config.dev_mode')
  let vault
  try {
    vault = await startVault(config, log)
  } catch (e) {
    await idp.close()
    throw e
  }
  const rel = (p: string) => join(dataDir, p)
  const serialA = demoSerial(serials[0])
  const serialB = demoSerial(serials[1])
  const cli = 'npm exec --no -- vault-server'
  io.out(
    [
      '',
      '  Serial vault demo (development mode: self-signed TLS, vault-held root of trust, development identity provider)',
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
      `    npm exec --no -- device-agent provision --once --url ${vault.url} --api-key ${state.apiKey} \\`,
      `      --brand ${state.brand} --model ${state.model} --serial-value ${serialA} \\`,
      `      --ca ${rel('tls/cert.pem')} --trusted ${rel('trusted.assert')} --state-dir /tmp/demo-agent-${serialA}`,
      '',
      ...snapdCheckLines(),
      `    ${relative(process.cwd(), SNAPD_CHECK)} register --url ${vault.url} --insecure --api-key ${state.apiKey} \\`,
      `      --brand ${state.brand} --model ${state.model} --serial ${serialB} --trusted ${rel('trusted.assert')} --chain ${rel('brand-chain.assert')}`,
      '',
      '  Stores: demo-brand (base) > demo-devices (product, model demo-kiosk), demo-partner (ecosystem for Partner Co,',
      '  model demo-partner-gateway; pivots from demo-model into it are allowed and wait for a Reviewer)',
      '',
      `  Dashboard    ${publicUrl}/dashboard/   (log in with "Demo identity provider" as one of the people below,`,
      '               or as the operator with the admin token at the bottom; Live shows provisioning as it happens)',
      '',
      `  People (log in on the dashboard, or at ${publicUrl}/v1/auth/login/demo?return=/v1/admin/me with the e-mail and password;`,
      `  the browser warns about the self-signed certificate first; the identity provider is ${idp.issuer}):`,
      ...state.people.map((p) => `    ${p.role.padEnd(12)} ${p.email.padEnd(26)} password ${p.password.padEnd(24)} in ${p.store}`),
      '  or with their personal tokens (30 days), e.g. what the Viewer sees:',
      `    ${cli} store list --url ${vault.url} --ca ${rel('tls/cert.pem')} --token ${state.people.find((p) => p.role === 'viewer')!.token}`,
      `    ${cli} role list --store demo-brand --url ${vault.url} --ca ${rel('tls/cert.pem')} --token ${state.people.find((p) => p.role === 'admin')!.token}`,
      '  tokens of the others are in demo.json',
      '',
      `  admin token  ${state.adminToken}   (the operator's break-glass credential)`,
      `  metrics      ${vault.url.replace(/v1\/$/, '')}metrics`,
      `  signing log  ${cli} log query --url ${vault.url} --token ${state.adminToken} --ca ${rel('tls/cert.pem')}`,
      `  audit log    ${cli} audit query --url ${vault.url} --token ${state.adminToken} --ca ${rel('tls/cert.pem')}`,
      '  Ctrl-C stops the vault; the data stays in the data directory.',
      '',
    ].join('\n'),
  )
  if (!f.once) await waitForSignal()
  await vault.close()
  await idp.close()
  return EXIT.OK
}

/** The banner's line before the snapd-check command: what it is, or how to get it when it is not built. */
function snapdCheckLines(): string[] {
  if (existsSync(SNAPD_CHECK)) return ["  or with snapd's own registration client (snapd-check, on snapd's asserts library):"]
  return [
    "  or with snapd's own registration client (snapd-check: not built; from the repository root \"node .ci/snapd-check.mjs\"",
    '  builds it, needs ../shared/snapd-check beside the repository and, while Debian packages are missing, root with apt-get):',
  ]
}
