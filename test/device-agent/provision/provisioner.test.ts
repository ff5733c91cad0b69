import test from 'ava'
import type { ExecutionContext, TestFn } from 'ava'
import { mkdtemp, readFile, rm, stat, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { ModelAssertion, SerialRequestAssertion, decodeStream, utf8Decode } from '@sv/shared'
import { AgentError } from '../../../device-agent/src/errors.js'
import { AgentConfigSchema, agentPaths } from '../../../device-agent/src/config.js'
import { CheckpointStore, initialCheckpoint } from '../../../device-agent/src/provision/checkpoint.js'
import { Provisioner, type ProvisionerDeps } from '../../../device-agent/src/provision/provisioner.js'
import { PAUSE_POINTS, type PausePoint } from '../../../device-agent/src/provision/states.js'
import type { DeviceKey } from '../../../device-agent/src/identity/device-key.js'
import { readRequestBody } from '../../../vault-server/src/services/registration/request-body.js'
import { FakeClock, ScriptedVault, captureLog, smallDeviceKey, smallModel, smallTrust } from '../helpers/fakes.js'

interface Context {
  dir: string
}
const it = test as TestFn<Context>

it.beforeEach(async (t) => {
  t.context.dir = await mkdtemp(join(tmpdir(), 'sv-provisioner-'))
})
it.afterEach.always(async (t) => {
  await rm(t.context.dir, { recursive: true, force: true })
})

const DEFAULTS = AgentConfigSchema.parse({})
const KEY = smallDeviceKey()
const TRUST = smallTrust()

function unavailable(step: 'request-id' | 'serial', extra: Record<string, unknown> = {}): AgentError {
  return new AgentError('SV_AGENT_VAULT_UNAVAILABLE', `${step}: 503`, { details: { step, reason: 'status', status: 503, ...extra } })
}
function refused(step: 'request-id' | 'serial', code: string, status = 409): AgentError {
  return new AgentError('SV_AGENT_VAULT_REFUSED', `${step}: refused`, { details: { step, status, code, message: 'no' } })
}
function networkDown(): AgentError {
  return new AgentError('SV_AGENT_NETWORK_DOWN', 'request-id: ENETUNREACH', { details: { step: 'request-id', reason: 'ENETUNREACH', code: 'ENETUNREACH' } })
}

interface Rig {
  deps: ProvisionerDeps
  clock: FakeClock
  vault: ScriptedVault
  store: CheckpointStore
  keysCreated: () => number
  events: () => string[]
  lines: Record<string, unknown>[]
  run: (opts?: { once?: boolean; signal?: AbortSignal }) => ReturnType<Provisioner['run']>
}

function rig(t: ExecutionContext<Context>, over: Partial<ProvisionerDeps> & { vault?: ScriptedVault; clock?: FakeClock; keyOnDisk?: boolean } = {}): Rig {
  const dir = t.context.dir
  const clock = over.clock ?? new FakeClock()
  const vault = over.vault ?? new ScriptedVault()
  const paths = agentPaths({ stateDir: dir, output: {} })
  const store = new CheckpointStore(paths.checkpoint, () => clock.now())
  let onDisk: DeviceKey | undefined = over.keyOnDisk ? KEY : undefined
  let created = 0
  const { log, lines, events } = captureLog()
  const deps: ProvisionerDeps = {
    brand: 'acme-brand',
    model: 'acme-pi-gateway',
    paths,
    retry: DEFAULTS.retry,
    notBefore: Date.parse(DEFAULTS.clock.notBefore),
    registration: DEFAULTS.registration,
    checkpoints: store,
    keys: {
      load: async () => onDisk,
      create: async () => {
        created++
        onDisk = KEY
        return KEY
      },
    },
    detectSerial: async () => ({ serial: 'PROV-0001', source: 'value' }),
    hardwareInfo: async () => ({ architecture: 'arm64', board: 'Test Board' }),
    client: vault,
    trust: TRUST,
    clock,
    log,
    random: () => 0.5,
    ...over,
  }
  return {
    deps,
    clock,
    vault,
    store,
    keysCreated: () => created,
    events,
    lines,
    run: (opts = {}) => new Provisioner(deps).run(opts),
  }
}

it('provisioner: from scratch to provisioned, one checkpoint per step, files written, telemetry in the body', async (t) => {
  const r = rig(t, { modelAssertion: smallModel() })
  const saved: string[] = []
  const save = r.store.save.bind(r.store)
  r.store.save = async (cp) => {
    saved.push(cp.state)
    await save(cp)
  }
  const out = await r.run()
  t.is(out.kind, 'provisioned')
  t.is(r.keysCreated(), 1)
  t.is(r.vault.requestIdCalls, 1)
  t.is(r.vault.serialBodies.length, 1)
  for (const s of ['key-ready', 'request-id-received', 'request-signed', 'serial-received', 'serial-written', 'provisioned']) t.true(saved.includes(s), s)
  t.deepEqual(
    r.events().filter((e) => e !== 'serial.detected'),
    ['device_key.generated', 'provision.step.started', 'provision.step.completed', 'provision.step.started', 'provision.step.completed', 'provision.step.started', 'provision.step.completed', 'serial.verified', 'serial.written', 'provision.done'],
  )
  // the stream: serial-request then the model; the request is self-signed with the device key
  const [req, model] = decodeStream(r.vault.serialBodies[0]!)
  t.true(req instanceof SerialRequestAssertion)
  t.true(model instanceof ModelAssertion)
  const sr = req as SerialRequestAssertion
  t.is(sr.deviceKey.id, KEY.publicKey.id)
  t.is(sr.headerString('serial'), 'PROV-0001')
  t.is(sr.headerString('request-id'), 'rid-1')
  const body = parseYaml(utf8Decode(sr.body)) as Record<string, Record<string, unknown>>
  t.is(body.serial as unknown as string, 'PROV-0001')
  t.is(body.hardware!.board, 'Test Board')
  t.is(body.hardware!['serial-source'], 'value')
  t.is(typeof body.telemetry!['request-id-ms'], 'number')
  t.is(body.telemetry!['request-id-attempts'], 1)
  // what the vault will record from this body
  const read = readRequestBody(sr.body)
  t.is(read.serial, 'PROV-0001')
  t.truthy(read.timings)
  t.true('key-generation-ms' in read.timings! && 'request-id-ms' in read.timings! && 'serial-attempts' in read.timings!)

  const cp = await r.store.load()
  t.is(cp?.state, 'provisioned')
  t.is(cp?.issued?.serial, 'PROV-0001')
  const serialFile = await readFile(r.deps.paths.serialOutput, 'utf8')
  t.true(serialFile.startsWith('type: serial\n'))
  const chain = decodeStream(await readFile(r.deps.paths.chainOutput))
  t.deepEqual(
    chain.map((a) => a.typeName),
    ['account', 'account-key'],
  )
  t.is((await stat(r.deps.paths.serialOutput)).mode & 0o777, 0o644)
  t.is((await stat(r.deps.paths.checkpoint)).mode & 0o777, 0o600)
})

/** Stops the run dead at `point`, as a SIGKILL would (nothing after the step runs). */
class Crash extends Error {}
async function crashAt(r: Rig, point: PausePoint): Promise<void> {
  const p = new Provisioner({
    ...r.deps,
    pause: async (at) => {
      if (at === point) throw new Crash(point)
    },
  })
  await p.run().then(
    () => {
      throw new Error(`no crash at ${point}`)
    },
    (err: unknown) => {
      if (!(err instanceof Crash)) throw err
    },
  )
}

for (const point of PAUSE_POINTS) {
  it(`provisioner: a crash right after ${point} resumes to one key and one serial`, async (t) => {
    const r = rig(t)
    await crashAt(r, point)
    const out = await r.run()
    t.is(out.kind, 'provisioned')
    t.is(r.keysCreated(), 1)
    t.is(r.vault.issued, 1, 'the vault signed once')
    // a crash after the request was saved resends the very same bytes
    if (r.vault.serialBodies.length > 1) t.deepEqual(r.vault.serialBodies[1], r.vault.serialBodies[0])
    const cp = await r.store.load()
    t.is(cp?.state, 'provisioned')
    t.is(cp?.counters.restarts, 1, 'the thrown crash still saved the state (a SIGKILL would not: see e2e/crash.test.ts)')
    t.is(cp?.keyId, KEY.publicKey.id)
  })
}

it('provisioner: crashes at every step in turn still end with one key and one serial', async (t) => {
  const r = rig(t)
  for (const point of PAUSE_POINTS) await crashAt(r, point)
  t.is((await r.run()).kind, 'provisioned')
  t.is(r.keysCreated(), 1)
  t.is(r.vault.issued, 1)
})

it('provisioner: no network is retried at the short interval and not counted', async (t) => {
  const r = rig(t, { vault: new ScriptedVault({ requestId: [networkDown(), networkDown(), networkDown()] }) })
  t.is((await r.run()).kind, 'provisioned')
  t.deepEqual(r.clock.sleeps, [5000, 5000, 5000])
  const cp = await r.store.load()
  t.is(cp?.counters.retries, 0)
  t.true(r.events().includes('provision.waiting'))
})

it('provisioner: a temporary failure at the serial step honours Retry-After and starts over with a new request-id', async (t) => {
  const r = rig(t, { vault: new ScriptedVault({ serial: [unavailable('serial', { retryAfterMs: 7000 })] }) })
  t.is((await r.run()).kind, 'provisioned')
  t.deepEqual(r.clock.sleeps, [7000])
  t.is(r.vault.requestIdCalls, 2)
  const ids = r.vault.serialBodies.map((b) => (decodeStream(b)[0] as SerialRequestAssertion).headerString('request-id'))
  t.deepEqual(ids, ['rid-1', 'rid-2'])
  t.is((await r.store.load())?.counters.retries, 1)
})

it('provisioner: temporary failures back off exponentially with jitter', async (t) => {
  const fails = [unavailable('request-id'), unavailable('request-id'), unavailable('request-id'), unavailable('request-id')]
  const r = rig(t, { vault: new ScriptedVault({ requestId: fails }), random: () => 0.5 })
  t.is((await r.run()).kind, 'provisioned')
  t.deepEqual(r.clock.sleeps, [10_000, 20_000, 40_000, 80_000])
  const r2 = rig(t, { vault: new ScriptedVault({ requestId: [unavailable('request-id')] }), random: () => 0 })
  await rm(r2.deps.paths.checkpoint, { force: true })
  t.is((await r2.run()).kind, 'provisioned')
  t.deepEqual(r2.clock.sleeps, [8000], '-20% jitter at random() = 0')
})

it('provisioner: 202 polls the same serial-request after the poll interval', async (t) => {
  const r = rig(t, { vault: new ScriptedVault({ serial: ['pending', 'pending'] }) })
  t.is((await r.run()).kind, 'provisioned')
  t.deepEqual(r.clock.sleeps, [60_000, 60_000])
  t.is(r.vault.serialBodies.length, 3)
  t.deepEqual(r.vault.serialBodies[1], r.vault.serialBodies[0])
  t.deepEqual(r.vault.serialBodies[2], r.vault.serialBodies[0])
  t.is(r.vault.requestIdCalls, 1)
  t.is((await r.store.load())?.counters.polls, 2)
})

it('provisioner: after a 202, a temporary failure keeps the saved serial-request', async (t) => {
  const r = rig(t, { vault: new ScriptedVault({ serial: ['pending', unavailable('serial')] }) })
  t.is((await r.run()).kind, 'provisioned')
  t.is(r.vault.requestIdCalls, 1)
  t.is(r.vault.serialBodies.length, 3)
  t.deepEqual(r.vault.serialBodies[2], r.vault.serialBodies[0])
})

it('provisioner: 15 failed request-ids fail the attempt; the next attempt waits the long backoff', async (t) => {
  const r = rig(t, { vault: new ScriptedVault({ requestId: Array.from({ length: 15 }, () => unavailable('request-id')) }) })
  t.is((await r.run()).kind, 'provisioned')
  t.is(r.clock.sleeps.length, 15)
  t.is(r.clock.sleeps.at(-1), 300_000)
  t.true(r.events().includes('provision.failed'))
  const cp = await r.store.load()
  t.is(cp?.failedAttempts, 1)
  t.is(cp?.attempts, 2)
})

it('provisioner: a refusal fails the attempt (once: failed, with the server code); the daemon backs off 5 min, then 10', async (t) => {
  const once = rig(t, { vault: new ScriptedVault({ serial: [refused('serial', 'SV_SERIAL_TAKEN')] }) })
  const out = await once.run({ once: true })
  t.is(out.kind, 'failed')
  if (out.kind !== 'failed') return
  t.is(out.error.code, 'SV_AGENT_VAULT_REFUSED')
  t.is(out.error.exitCode, 1)
  const cp = await once.store.load()
  t.is(cp?.state, 'key-ready')
  t.is(cp?.lastError?.code, 'SV_AGENT_VAULT_REFUSED')
  t.is(cp?.lastError?.details?.serverCode, 'SV_SERIAL_TAKEN')
  t.is(cp?.lastError?.details?.status, 409)
  t.false(cp?.serialLocked)
  t.true(cp?.keyUsed)

  await rm(once.deps.paths.checkpoint)
  const daemon = rig(t, { vault: new ScriptedVault({ serial: [refused('serial', 'SV_SERIAL_TAKEN'), refused('serial', 'SV_SERIAL_TAKEN')] }) })
  t.is((await daemon.run()).kind, 'provisioned')
  t.deepEqual(daemon.clock.sleeps, [300_000, 600_000])
  t.is(daemon.vault.requestIdCalls, 3)
})

it('provisioner: a stale request-id is renewed at once', async (t) => {
  const r = rig(t, { vault: new ScriptedVault({ serial: [refused('serial', 'SV_REQUEST_ID_EXPIRED', 400), refused('serial', 'invalid-nonce', 400)] }) })
  t.is((await r.run()).kind, 'provisioned')
  t.deepEqual(r.clock.sleeps, [])
  t.is(r.vault.requestIdCalls, 3)
  t.is((await r.store.load())?.counters.nonceRenewals, 2)
})

it('provisioner: with the clock before the release date, it waits for time synchronisation', async (t) => {
  const notBefore = Date.parse(DEFAULTS.clock.notBefore)
  const r = rig(t, { clock: new FakeClock(notBefore - 25_000) })
  t.is((await r.run()).kind, 'provisioned')
  t.deepEqual(r.clock.sleeps, [10_000, 10_000, 10_000])
  t.is(r.vault.requestIdCalls, 1)
})

it('provisioner: once stops at the first temporary condition with retry-later and keeps the state', async (t) => {
  const r = rig(t, { vault: new ScriptedVault({ serial: ['pending'] }) })
  const out = await r.run({ once: true })
  t.is(out.kind, 'retry-later')
  if (out.kind !== 'retry-later') return
  t.is(out.error.code, 'SV_AGENT_SERIAL_PENDING')
  t.is(out.error.exitCode, 3)
  t.is(out.waitMs, 60_000)
  t.is((await r.store.load())?.state, 'request-signed')
  t.is((await r.run({ once: true })).kind, 'provisioned')
  t.is(r.vault.requestIdCalls, 1)
})

it('provisioner: a serial for another model fails verification and the attempt', async (t) => {
  const vault = new ScriptedVault()
  vault.serialScript.push(async (stream) => ({ kind: 'issued', stream: await vault.sign(stream, { model: 'other-model' }) }))
  const r = rig(t, { vault })
  const out = await r.run({ once: true })
  t.is(out.kind, 'failed')
  if (out.kind !== 'failed') return
  t.is(out.error.code, 'SV_AGENT_SERIAL_UNVERIFIED')
  t.is(out.error.details?.reason, 'identity-mismatch')
  t.is(out.error.details?.field, 'model')
  t.is((await r.store.load())?.state, 'key-ready')
})

it('provisioner: a serial that does not chain to the anchors fails verification', async (t) => {
  const r = rig(t, { trust: { anchors: TRUST.anchors, chain: [] } })
  const out = await r.run({ once: true })
  t.is(out.kind, 'failed')
  if (out.kind !== 'failed') return
  t.is(out.error.code, 'SV_AGENT_SERIAL_UNVERIFIED')
  t.is(out.error.details?.reason, 'untrusted')
  t.is(out.error.details?.code, 'SV_SIGNING_KEY_UNKNOWN')
})

it('provisioner: the chain may come in the answer stream, checked against the anchors', async (t) => {
  const vault = new ScriptedVault()
  const { encodeStream } = await import('@sv/shared')
  vault.serialScript.push(async (stream) => ({ kind: 'issued', stream: Buffer.concat([encodeStream(TRUST.chain), Buffer.from('\n'), await vault.sign(stream)]) }))
  const r = rig(t, { vault, trust: { anchors: TRUST.anchors, chain: [] } })
  t.is((await r.run({ once: true })).kind, 'provisioned')
})

it('provisioner: a lost key after a serial-request left the device is a corrupt state, never a new key', async (t) => {
  const r = rig(t)
  await crashAt(r, 'serial-request-signed')
  const lost = rig(t, { vault: r.vault })
  const err = await t.throwsAsync(lost.run(), { instanceOf: AgentError })
  t.is(err?.code, 'SV_AGENT_STATE_CORRUPT')
  t.is((err as AgentError).details?.reason, 'key-lost')
  t.is(lost.keysCreated(), 0)
})

it('provisioner: a different key on disk than the state names is a corrupt state', async (t) => {
  const r = rig(t, { keyOnDisk: true })
  const cp = initialCheckpoint()
  cp.state = 'key-ready'
  cp.keyId = 'another-key-id'
  cp.keyUsed = true
  await r.store.save(cp)
  // key-ready does not need the key; signing does
  const err = await t.throwsAsync(r.run(), { instanceOf: AgentError })
  t.is(err?.code, 'SV_AGENT_STATE_CORRUPT')
  t.is((err as AgentError).details?.reason, 'key-mismatch')
})

it('provisioner: a state directory of another brand or model is refused as a configuration error', async (t) => {
  const r = rig(t)
  await crashAt(r, 'request-id-received')
  const other = rig(t, { model: 'other-model' })
  const err = await t.throwsAsync(other.run(), { instanceOf: AgentError })
  t.is(err?.code, 'SV_AGENT_CONFIG_INVALID')
  t.is((err as AgentError).exitCode, 2)
})

it('provisioner: the serial stays the same once a request carrying it was signed', async (t) => {
  const r = rig(t)
  await crashAt(r, 'serial-request-sent')
  const again = rig(t, { vault: r.vault, keyOnDisk: true, detectSerial: async () => ({ serial: 'CHANGED-0002', source: 'value' }) })
  const out = await again.run()
  t.is(out.kind, 'provisioned')
  if (out.kind === 'provisioned') t.is(out.serial, 'PROV-0001')
  t.is(r.vault.issued, 1)
})

it('provisioner: a failing hook is run again later; the serial is not requested again', async (t) => {
  let calls = 0
  const runHook = async () => {
    calls++
    if (calls === 1) throw new AgentError('SV_AGENT_HOOK_FAILED', 'exit 1', { details: { reason: 'exit-status', exitStatus: 1 } })
    return { durationMs: 1 }
  }
  const r = rig(t, { hook: { command: 'true', timeoutMs: 1000 }, runHook })
  const first = await r.run({ once: true })
  t.is(first.kind, 'failed')
  if (first.kind === 'failed') t.is(first.error.code, 'SV_AGENT_HOOK_FAILED')
  const cp = await r.store.load()
  t.is(cp?.state, 'serial-written')
  t.is(cp?.hook, 'failed')
  t.is((await r.run()).kind, 'provisioned')
  t.is(calls, 2)
  t.is(r.vault.issued, 1)
  t.is((await r.store.load())?.hook, 'done')
})

it('provisioner: when provisioned, missing output files are written again from the state', async (t) => {
  const r = rig(t)
  await r.run()
  const before = await readFile(r.deps.paths.serialOutput, 'utf8')
  await unlink(r.deps.paths.serialOutput)
  await unlink(r.deps.paths.chainOutput)
  t.is((await r.run()).kind, 'provisioned')
  t.is(await readFile(r.deps.paths.serialOutput, 'utf8'), before)
  t.is(r.vault.requestIdCalls, 1)
})

it('provisioner: abort during a wait ends the run with the reason; the state is saved', async (t) => {
  const ac = new AbortController()
  const clock = new FakeClock()
  const sleep = clock.sleep.bind(clock)
  clock.sleep = async (ms, signal) => {
    ac.abort(new Error('stop'))
    return sleep(ms, signal)
  }
  const r = rig(t, { clock, vault: new ScriptedVault({ requestId: [networkDown()] }) })
  const err = await t.throwsAsync(r.run({ signal: ac.signal }))
  t.is(err?.message, 'stop')
  t.is((await r.store.load())?.lastError?.code, 'SV_AGENT_NETWORK_DOWN')
})

it('provisioner: unexpected errors (bugs, disk) end the run and are not retried', async (t) => {
  const r = rig(t, { detectSerial: async () => Promise.reject(new TypeError('boom')) })
  await t.throwsAsync(r.run(), { instanceOf: TypeError })
  t.deepEqual(r.clock.sleeps, [])
})

it('provisioner: no serial source is an attempt failure with the long backoff', async (t) => {
  let n = 0
  const detectSerial = async () => {
    if (n++ === 0) throw new AgentError('SV_AGENT_SERIAL_NOT_FOUND', 'none', { details: { tried: [] } })
    return { serial: 'LATE-0001', source: 'value' }
  }
  const r = rig(t, { detectSerial })
  t.is((await r.run()).kind, 'provisioned')
  t.deepEqual(r.clock.sleeps, [300_000])
})
