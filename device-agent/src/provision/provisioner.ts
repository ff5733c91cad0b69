/**
 * Drives the provisioning states (states.ts) through ports: the device key,
 * the serial sources, the vault client, the checkpoint store, the clock. It
 * mirrors snapd's device manager (spec §5): request-id, then a self-signed
 * serial-request (with the model assertion when configured), then the serial,
 * verified before it is written out.
 *
 * Every step ends with a durable checkpoint, and `run` starts from whatever
 * the checkpoint says, so a restart at any point resumes without a second key
 * and without a second serial (see states.ts for why each hazard is safe).
 *
 * What happens on failure (the decision table, `#decide`):
 * - no network yet (NETWORK_DOWN), clock unset (CLOCK_UNSET), 202
 *   (SERIAL_PENDING): wait a short, fixed interval; not counted;
 * - temporary vault failure (VAULT_UNAVAILABLE: status > 500, 429, transport,
 *   timeout, undecodable answer): counted retry after exponential backoff with
 *   jitter, or after Retry-After; at the request-id step at most
 *   `requestIdMaxTentatives` in a row (snapd: 15), then the attempt fails; at
 *   the serial step without limit, with a NEW request-id (snapd starts over
 *   until it has had a 202; the vault may have burnt the nonce) unless a 202
 *   was seen, then the saved request is polled again;
 * - the vault refused (VAULT_REFUSED: 4xx, 500): the attempt fails, with the
 *   server's code and message in the log and status, and the next attempt
 *   waits for snapd's long backoff (5 min doubling, 24 h at most). One
 *   exception: a refused request-id (unknown, expired, used: the nonce went
 *   stale while the agent was down) is renewed at once, a few times;
 * - the serial does not verify, TLS fails, no serial source works, the hook
 *   fails: the attempt fails, long backoff;
 * - anything else (corrupt state, unusable key, disk errors, bugs): thrown,
 *   the process ends (exit code from the error).
 * With `once`, the first wait ends the run as "retry later" and the first
 * failed attempt as "failed", with the state saved.
 */
import { Buffer } from 'node:buffer'
import { mkdir, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { encodeStream, utf8Decode, type Assertion } from '@sv/shared'
import { AgentError, isAgentError, type AgentErrorCode } from '../errors.js'
import { writeFileAtomic } from '../fs/atomic-write.js'
import type { Clock } from '../clock.js'
import { attemptBackoffDelay, temporaryFailureDelay } from '../backoff.js'
import type { AgentConfig, AgentPaths } from '../config.js'
import type { Logger } from '../logger.js'
import { logEvent } from '../logger.js'
import type { DeviceKey } from '../identity/device-key.js'
import { buildSerialRequest, formatRequestBody } from '../identity/serial-request.js'
import type { VaultClient } from '../vault/vault-client.js'
import { type Checkpoint, type CheckpointStore, initialCheckpoint } from './checkpoint.js'
import { assertTransition, type PausePoint, type ProvisionState } from './states.js'
import { decodeAnswer, verifySerialAnswer } from './verify-serial.js'

export interface DeviceKeyPort {
  /** The stored key, or undefined when there is none (device-key.ts loadDeviceKey). */
  load(): Promise<DeviceKey | undefined>
  /** Generates and stores a new key (device-key.ts createDeviceKey); reports progress itself. */
  create(): Promise<DeviceKey>
}

export interface DetectedSerialInfo {
  serial: string
  /** source kind: devicetree, cpuinfo, dmi, file, command, value, serialport */
  source: string
}

export interface ProvisionerDeps {
  brand: string
  model: string
  paths: AgentPaths
  retry: AgentConfig['retry']
  /** epoch ms; a clock before this is "not set" */
  notBefore: number
  registration: Pick<AgentConfig['registration'], 'hardware' | 'telemetry' | 'extra'>
  hook?: { command: string | readonly string[]; timeoutMs: number }
  checkpoints: CheckpointStore
  keys: DeviceKeyPort
  /**
   * `device` (default): the serial-request proposes the serial `detectSerial`
   * finds. `assign`: the model's serials are assigned by the vault, so the
   * request proposes none and `detectSerial` is never called (no source
   * needed); the vault binds the number it draws to the device key, and
   * answers every later request of that key with the same serial.
   */
  serialPolicy?: 'device' | 'assign'
  detectSerial: () => Promise<DetectedSerialInfo>
  hardwareInfo?: () => Promise<Record<string, string>>
  client: VaultClient
  trust: { anchors: readonly Assertion[]; chain: readonly Assertion[] }
  /** sent after the serial-request (snapd does) */
  modelAssertion?: Assertion
  /** runs the hook with these extra env variables (hook.ts runHook) */
  runHook?: (env: Record<string, string>) => Promise<{ durationMs: number }>
  clock: Clock
  log: Logger
  /** [0, 1), for jitter; default Math.random */
  random?: () => number
  /** test hook (AGENT_TEST_PAUSE_AFTER): awaited right after each durable step */
  pause?: (point: PausePoint) => Promise<void>
}

export type ProvisionOutcome =
  | { kind: 'provisioned'; serial: string; checkpoint: Checkpoint }
  /** `once`: a temporary condition; run again later (exit 3) */
  | { kind: 'retry-later'; error: AgentError; waitMs: number }
  /** `once`: this attempt failed (exit 1) */
  | { kind: 'failed'; error: AgentError }

export interface RunOptions {
  /** one attempt: stop at the first wait or failure instead of waiting */
  once?: boolean
  /** ends the run (waits included) with `signal.reason` */
  signal?: AbortSignal
}

type Decision =
  | { kind: 'wait'; ms: number; counted: boolean }
  | { kind: 'again' }
  | { kind: 'attempt-failed' }
  | { kind: 'fatal' }

/** Server codes meaning "this request-id is no good any more": ours and Canonical's. */
const STALE_NONCE = new Set(['SV_REQUEST_ID_UNKNOWN', 'SV_REQUEST_ID_EXPIRED', 'SV_REQUEST_ID_USED', 'invalid-nonce'])
const MAX_NONCE_RENEWALS = 3

const ATTEMPT_FAILURES = new Set<AgentErrorCode>([
  'SV_AGENT_VAULT_REFUSED',
  'SV_AGENT_TLS_FAILED',
  'SV_AGENT_SERIAL_UNVERIFIED',
  'SV_AGENT_SERIAL_NOT_FOUND',
  'SV_AGENT_SERIAL_SOURCE_FAILED',
  'SV_AGENT_SERIAL_PORT',
  'SV_AGENT_KEYGEN_FAILED',
  'SV_AGENT_HOOK_FAILED',
])

export class Provisioner {
  readonly #d: ProvisionerDeps
  readonly #log: Logger
  #cp: Checkpoint = initialCheckpoint()
  #key: DeviceKey | undefined
  /** in-memory, per attempt (snapd keeps its counters per task) */
  #consecutive = 0
  #requestIdTentatives = 0
  #nonceRenewals = 0
  #signal: AbortSignal | undefined

  constructor(deps: ProvisionerDeps) {
    this.#d = deps
    this.#log = deps.log.child({ module: 'provision' })
  }

  /** The checkpoint as last saved or changed (for status after a run). */
  get checkpoint(): Checkpoint {
    return this.#cp
  }

  /**
   * Runs until provisioned (or, with `once`, until the first wait or failure).
   * Throws AgentError for conditions no wait can fix (corrupt state, unusable
   * key, configuration contradicting the state), and `signal.reason` when
   * aborted. The state is saved in every case.
   */
  async run(options: RunOptions = {}): Promise<ProvisionOutcome> {
    const { once = false, signal } = options
    this.#signal = signal
    const d = this.#d
    const saved = await d.checkpoints.load()
    const cp = saved ?? initialCheckpoint()
    this.#cp = cp
    this.#checkIdentity()
    cp.brand = d.brand
    cp.model = d.model
    cp.firstStartedAt ??= d.clock.now()
    if (cp.state !== 'provisioned') {
      if (saved) {
        cp.counters.restarts++
        logEvent(this.#log, 'info', 'provision.resumed', { state: cp.state, attempt: cp.attempts })
      }
      if (cp.attempts === 0) cp.attempts = 1
    }
    // The key must still be there (and be the same) whatever the state: a
    // lost key is reported now, not after the serial is written.
    if (cp.state !== 'new') await this.#ensureKey()
    for (;;) {
      signal?.throwIfAborted()
      if (cp.state === 'provisioned') return this.#provisioned()
      try {
        await this.#step()
        continue
      } catch (err) {
        if (signal?.aborted) throw signal.reason
        const decision = this.#decide(err)
        if (decision.kind === 'fatal') {
          await this.#save().catch(() => undefined)
          throw err
        }
        const error = err as AgentError
        this.#recordError(error)
        if (decision.kind === 'again') {
          await this.#save()
          continue
        }
        if (decision.kind === 'wait') {
          const fields = { code: error.code, ...pickDetails(error), waitMs: decision.ms, ...(decision.counted ? { retry: this.#consecutive } : {}) }
          logEvent(this.#log, 'warn', decision.counted ? 'provision.retry' : 'provision.waiting', fields)
          await this.#save()
          if (once) return { kind: 'retry-later', error, waitMs: decision.ms }
          await this.#wait(decision.ms)
          continue
        }
        // attempt failed
        cp.failedAttempts++
        const waitMs = attemptBackoffDelay(
          { initialMs: d.retry.attemptInitialMs, doublingLimitMs: d.retry.attemptDoublingLimitMs, ceilingMs: d.retry.attemptCeilingMs },
          cp.failedAttempts,
        )
        logEvent(this.#log, 'error', 'provision.failed', { code: error.code, ...pickDetails(error), err: { message: error.message }, attempt: cp.attempts, ...(once ? {} : { nextAttemptMs: waitMs }) })
        await this.#save()
        if (once) return { kind: 'failed', error }
        await this.#wait(waitMs)
        cp.attempts++
        this.#consecutive = 0
        this.#requestIdTentatives = 0
        this.#nonceRenewals = 0
        await this.#save()
      }
    }
  }

  // --- steps -------------------------------------------------------------------

  async #step(): Promise<void> {
    switch (this.#cp.state) {
      case 'new':
        return this.#stepKey()
      case 'key-ready':
        return this.#stepRequestId()
      case 'request-id-received':
        return this.#stepSign()
      case 'request-signed':
        return this.#stepSerial()
      case 'serial-received':
        return this.#stepVerify()
      case 'serial-written':
        return this.#stepHook()
      case 'provisioned':
        return
    }
  }

  async #stepKey(): Promise<void> {
    await this.#detect()
    await this.#ensureKey()
    await this.#transition('key-ready')
  }

  async #stepRequestId(): Promise<void> {
    const { client, clock } = this.#d
    logEvent(this.#log, 'debug', 'provision.step.started', { step: 'request-id' })
    this.#checkClock()
    const cp = this.#cp
    cp.counters.requestIdCalls++
    const t0 = clock.monotonic()
    const id = await client.requestId(this.#signal)
    const ms = clock.monotonic() - t0
    cp.timings['request-id-ms'] = round(ms)
    cp.requestId = id
    cp.requestIdAt = clock.now()
    this.#networkOk()
    this.#requestIdTentatives = 0
    await this.#transition('request-id-received')
    logEvent(this.#log, 'info', 'provision.step.completed', { step: 'request-id', durationMs: round(ms) })
    await this.#pause('request-id-received')
  }

  async #stepSign(): Promise<void> {
    const d = this.#d
    logEvent(this.#log, 'debug', 'provision.step.started', { step: 'serial-request' })
    const cp = this.#cp
    const key = await this.#ensureKey()
    const detected = await this.#detect()
    const hardware = d.registration.hardware ? { ...(d.hardwareInfo ? await d.hardwareInfo() : {}), 'serial-source': detected.source } : undefined
    const body = formatRequestBody({
      ...(cp.serial !== undefined ? { serial: cp.serial } : {}),
      ...(hardware ? { hardware } : {}),
      ...(Object.keys(d.registration.extra).length > 0 ? { extra: d.registration.extra } : {}),
      ...(d.registration.telemetry ? { telemetry: this.#telemetry() } : {}),
    })
    const built = await buildSerialRequest({
      brandId: d.brand,
      model: d.model,
      requestId: cp.requestId!,
      ...(cp.serial !== undefined ? { serial: cp.serial } : {}),
      body,
      key,
      ...(d.modelAssertion ? { modelAssertion: d.modelAssertion } : {}),
    })
    // Saved before it is sent: from now on a serial may be bound to this key.
    cp.serialRequest = built.stream.toString('utf8')
    cp.keyUsed = true
    cp.serialLocked = true
    cp.polls = 0
    await this.#transition('request-signed')
    logEvent(this.#log, 'info', 'provision.step.completed', { step: 'serial-request', ...(cp.serial !== undefined ? { serial: cp.serial } : { serialSource: 'vault' }), requestId: cp.requestId })
    await this.#pause('serial-request-signed')
  }

  async #stepSerial(): Promise<void> {
    const { client, clock } = this.#d
    logEvent(this.#log, 'debug', 'provision.step.started', { step: 'serial' })
    const cp = this.#cp
    this.#checkClock()
    cp.counters.serialCalls++
    const t0 = clock.monotonic()
    let answer
    try {
      answer = await client.serial(Buffer.from(cp.serialRequest!, 'utf8'), this.#signal)
    } finally {
      cp.timings['serial-ms'] = round((cp.timings['serial-ms'] ?? 0) + clock.monotonic() - t0)
    }
    this.#networkOk()
    if (answer.kind === 'pending') {
      cp.polls++
      cp.counters.polls++
      throw new AgentError('SV_AGENT_SERIAL_PENDING', 'the vault accepted the serial-request; polling again later', {
        details: { polls: cp.polls, ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}) },
      })
    }
    await this.#pause('serial-request-sent')
    try {
      decodeAnswer(answer.stream)
    } catch (err) {
      // snapd retries an answer it cannot decode like a transport error (spec §5.8).
      throw new AgentError('SV_AGENT_VAULT_UNAVAILABLE', `the serial answer does not decode: ${(err as Error).message}`, { details: { step: 'serial', reason: 'bad-answer' }, cause: err })
    }
    cp.answer = answer.stream.toString('utf8')
    await this.#transition('serial-received')
    logEvent(this.#log, 'info', 'provision.step.completed', { step: 'serial', durationMs: round(clock.monotonic() - t0) })
    await this.#pause('serial-received')
  }

  async #stepVerify(): Promise<void> {
    const d = this.#d
    const cp = this.#cp
    const v = await verifySerialAnswer(
      decodeAnswer(Buffer.from(cp.answer!, 'utf8')),
      { brandId: d.brand, model: d.model, deviceKeyId: cp.keyId! },
      { anchors: d.trust.anchors, chain: d.trust.chain, now: () => d.clock.now() },
    )
    logEvent(this.#log, 'info', 'serial.verified', { serial: v.serial.serial, revision: v.serial.revision, signKeyId: v.serial.signKeyId })
    const serialText = utf8Decode(encodeStream([v.serial]))
    const chainText = utf8Decode(encodeStream(v.chain))
    const { serialOutput, chainOutput } = d.paths
    await writeOutput(chainOutput, chainText)
    await writeOutput(serialOutput, serialText)
    cp.outputs = { serialFile: serialOutput, chainFile: chainOutput, serialText, chainText }
    cp.issued = { serial: v.serial.serial, revision: v.serial.revision, signKeyId: v.serial.signKeyId, timestamp: v.serial.timestamp }
    cp.hook = d.hook ? 'pending' : 'none'
    delete cp.answer
    await this.#transition('serial-written')
    logEvent(this.#log, 'info', 'serial.written', { serial: v.serial.serial, serialFile: serialOutput, chainFile: chainOutput })
    await this.#pause('serial-written')
  }

  async #stepHook(): Promise<void> {
    const d = this.#d
    const cp = this.#cp
    if (d.hook && d.runHook && cp.hook !== 'done') {
      try {
        const r = await d.runHook({
          AGENT_SERIAL_FILE: cp.outputs!.serialFile,
          AGENT_CHAIN_FILE: cp.outputs!.chainFile,
          AGENT_SERIAL: cp.issued!.serial,
          AGENT_BRAND: d.brand,
          AGENT_MODEL: d.model,
        })
        cp.hook = 'done'
        logEvent(this.#log, 'info', 'hook.completed', { durationMs: r.durationMs })
      } catch (err) {
        cp.hook = 'failed'
        if (isAgentError(err)) logEvent(this.#log, 'error', 'hook.failed', { code: err.code, ...err.details })
        throw err
      }
    }
    cp.provisionedAt = d.clock.now()
    await this.#transition('provisioned')
    logEvent(this.#log, 'info', 'provision.done', { serial: cp.issued!.serial, revision: cp.issued!.revision, attempts: cp.attempts, ...this.#telemetry() })
  }

  /** Already provisioned: put back output files that went missing, from the saved copies. */
  async #provisioned(): Promise<ProvisionOutcome> {
    const cp = this.#cp
    const out = cp.outputs
    if (out) {
      if (!(await exists(out.chainFile))) await writeOutput(out.chainFile, out.chainText)
      if (!(await exists(out.serialFile))) await writeOutput(out.serialFile, out.serialText)
    }
    return { kind: 'provisioned', serial: cp.issued?.serial ?? cp.serial ?? '', checkpoint: cp }
  }

  // --- helpers -----------------------------------------------------------------

  /**
   * The proposed serial: detected while nothing may have been issued for it;
   * once a serial-request carrying it was signed, the recorded one stays
   * (a changed detection is logged, and `reset --yes` is how to change it).
   * Under the assign policy there is none: source `vault`, nothing read.
   */
  async #detect(): Promise<{ serial?: string; source: string }> {
    const cp = this.#cp
    if (this.#d.serialPolicy === 'assign') {
      delete cp.serial
      cp.serialSource = 'vault'
      return { source: 'vault' }
    }
    if (cp.serialLocked && cp.serial !== undefined) return { serial: cp.serial, source: cp.serialSource ?? 'recorded' }
    const t0 = this.#d.clock.monotonic()
    const found = await this.#d.detectSerial()
    cp.timings['serial-detection-ms'] = round(this.#d.clock.monotonic() - t0)
    if (cp.serial !== found.serial || cp.serialSource !== found.source) logEvent(this.#log, 'info', 'serial.detected', { serial: found.serial, source: found.source })
    cp.serial = found.serial
    cp.serialSource = found.source
    return found
  }

  async #ensureKey(): Promise<DeviceKey> {
    if (this.#key) return this.#key
    const cp = this.#cp
    const loaded = await this.#d.keys.load()
    if (loaded) {
      if (cp.keyId !== undefined && cp.keyId !== loaded.publicKey.id) {
        throw new AgentError('SV_AGENT_STATE_CORRUPT', 'the device key on disk is not the one the provisioning state was built with', {
          details: { reason: 'key-mismatch', expected: cp.keyId, found: loaded.publicKey.id },
        })
      }
      if (cp.keyId === undefined) logEvent(this.#log, 'info', 'device_key.loaded', { keyId: loaded.publicKey.id, bits: loaded.bits })
      cp.keyId = loaded.publicKey.id
      cp.keyBits = loaded.bits
      this.#key = loaded
      return loaded
    }
    if (cp.keyUsed) {
      // A serial may be bound to the lost key: a new key would be a second identity.
      throw new AgentError('SV_AGENT_STATE_CORRUPT', `the device key ${this.#d.paths.deviceKey} is gone, but a serial-request signed with it was sent; start over with: device-agent reset --yes`, {
        details: { reason: 'key-lost', keyId: cp.keyId, path: this.#d.paths.deviceKey },
      })
    }
    const t0 = this.#d.clock.monotonic()
    const key = await this.#d.keys.create()
    const ms = round(this.#d.clock.monotonic() - t0)
    cp.timings['key-generation-ms'] = ms
    cp.keyId = key.publicKey.id
    cp.keyBits = key.bits
    this.#key = key
    logEvent(this.#log, 'info', 'device_key.generated', { keyId: key.publicKey.id, bits: key.bits, durationMs: ms })
    await this.#pause('key-written')
    return key
  }

  #checkClock(): void {
    const now = this.#d.clock.now()
    if (now < this.#d.notBefore) {
      throw new AgentError('SV_AGENT_CLOCK_UNSET', `the system clock (${new Date(now).toISOString()}) is before ${new Date(this.#d.notBefore).toISOString()}; waiting for time synchronisation`, {
        details: { reason: 'before-release', now, notBefore: this.#d.notBefore },
      })
    }
  }

  #networkOk(): void {
    this.#consecutive = 0
  }

  #telemetry(): Record<string, number> {
    const cp = this.#cp
    const t = cp.timings
    const c = cp.counters
    const out: Record<string, number | undefined> = {
      'key-generation-ms': t['key-generation-ms'],
      'key-bits': cp.keyBits,
      'serial-detection-ms': t['serial-detection-ms'],
      'request-id-ms': t['request-id-ms'],
      'request-id-attempts': c.requestIdCalls,
      'serial-attempts': c.serialCalls,
      'serial-ms': t['serial-ms'] ?? 0,
      retries: c.retries,
      polls: c.polls,
      restarts: c.restarts,
      attempt: cp.attempts,
      'waited-ms': t['waited-ms'] ?? 0,
      'elapsed-ms': cp.firstStartedAt !== undefined ? Math.max(0, this.#d.clock.now() - cp.firstStartedAt) : undefined,
    }
    return Object.fromEntries(Object.entries(out).filter((e): e is [string, number] => e[1] !== undefined))
  }

  #decide(err: unknown): Decision {
    if (!isAgentError(err)) return { kind: 'fatal' }
    const cp = this.#cp
    const r = this.#d.retry
    const retryAfterMs = typeof err.details?.retryAfterMs === 'number' ? err.details.retryAfterMs : undefined
    switch (err.code) {
      case 'SV_AGENT_NETWORK_DOWN':
        return { kind: 'wait', ms: r.noNetworkMs, counted: false }
      case 'SV_AGENT_CLOCK_UNSET':
        return { kind: 'wait', ms: r.clockWaitMs, counted: false }
      case 'SV_AGENT_SERIAL_PENDING':
        return { kind: 'wait', ms: retryAfterMs !== undefined ? Math.min(retryAfterMs, r.maxRetryAfterMs) : r.pollIntervalMs, counted: false }
      // Serial-line link faults: the vault is as unreachable as over a broken network (the station may
      // have relayed the request, so at the serial step a new request-id is used, as for a timeout).
      case 'SV_AGENT_LINK_TIMEOUT':
      case 'SV_AGENT_LINK_RETRIES_EXHAUSTED':
      case 'SV_AGENT_LINK_CLOSED':
      case 'SV_AGENT_LINK_RESET':
      case 'SV_AGENT_VAULT_UNAVAILABLE': {
        this.#consecutive++
        cp.counters.retries++
        if (cp.state === 'key-ready' && ++this.#requestIdTentatives >= r.requestIdMaxTentatives) {
          this.#abandonAttempt()
          return { kind: 'attempt-failed' }
        }
        // Before any 202 the vault may have consumed the nonce: start over with a new one.
        if (cp.state === 'request-signed' && cp.polls === 0) this.#abandonAttempt()
        return { kind: 'wait', ms: temporaryFailureDelay(r, this.#consecutive, retryAfterMs, r.maxRetryAfterMs, this.#d.random), counted: true }
      }
      case 'SV_AGENT_VAULT_REFUSED': {
        const serverCode = err.details?.code
        const atSerial = err.details?.step === 'serial'
        if (atSerial) cp.serialLocked = false // a definite "no": nothing was issued for this request
        if (atSerial && typeof serverCode === 'string' && STALE_NONCE.has(serverCode) && this.#nonceRenewals < MAX_NONCE_RENEWALS) {
          this.#nonceRenewals++
          cp.counters.nonceRenewals++
          cp.serialLocked = true
          this.#abandonAttempt()
          logEvent(this.#log, 'info', 'provision.retry', { code: err.code, serverCode, step: 'serial', waitMs: 0, reason: 'request-id renewed' })
          return { kind: 'again' }
        }
        this.#abandonAttempt()
        return { kind: 'attempt-failed' }
      }
      default:
        if (ATTEMPT_FAILURES.has(err.code)) {
          this.#abandonAttempt()
          return { kind: 'attempt-failed' }
        }
        return { kind: 'fatal' }
    }
  }

  /** Back to key-ready: the next try asks for a new request-id (nothing to do in earlier or later states). */
  #abandonAttempt(): void {
    const cp = this.#cp
    if (cp.state === 'request-id-received' || cp.state === 'request-signed' || cp.state === 'serial-received') {
      assertTransition(cp.state, 'key-ready')
      cp.state = 'key-ready'
      delete cp.requestId
      delete cp.requestIdAt
      delete cp.serialRequest
      delete cp.answer
      cp.polls = 0
    }
  }

  #recordError(err: AgentError): void {
    this.#cp.lastError = { code: err.code, message: err.message.slice(0, 500), at: this.#d.clock.now(), ...(err.details ? { details: pickDetails(err) } : {}) }
  }

  async #transition(to: ProvisionState): Promise<void> {
    assertTransition(this.#cp.state, to)
    this.#cp.state = to
    await this.#save()
  }

  async #save(): Promise<void> {
    await this.#d.checkpoints.save(this.#cp)
  }

  async #wait(ms: number): Promise<void> {
    const t0 = this.#d.clock.monotonic()
    try {
      await this.#d.clock.sleep(ms, this.#signal)
    } finally {
      this.#cp.timings['waited-ms'] = round((this.#cp.timings['waited-ms'] ?? 0) + this.#d.clock.monotonic() - t0)
    }
  }

  async #pause(point: PausePoint): Promise<void> {
    if (this.#d.pause) await this.#d.pause(point)
  }

  #checkIdentity(): void {
    const cp = this.#cp
    const problems: string[] = []
    if (cp.brand !== undefined && cp.brand !== this.#d.brand) problems.push(`brand: the state directory belongs to brand ${cp.brand}, the configuration says ${this.#d.brand}`)
    if (cp.model !== undefined && cp.model !== this.#d.model) problems.push(`model: the state directory belongs to model ${cp.model}, the configuration says ${this.#d.model}`)
    // A serial-request may have gone out under the other policy: its answer would be a serial the configuration did not ask for.
    const assign = this.#d.serialPolicy === 'assign'
    if (cp.serialLocked && cp.state !== 'provisioned' && assign !== (cp.serialSource === 'vault')) {
      problems.push(`serial.policy: the state directory's serial-request was made under policy ${assign ? 'device' : 'assign'}, the configuration says ${assign ? 'assign' : 'device'}`)
    }
    if (problems.length > 0) {
      throw new AgentError('SV_AGENT_CONFIG_INVALID', `${problems.join('; ')} (device-agent reset --yes starts over)`, { details: { problems } })
    }
  }
}

/**
 * The facts of an error worth keeping in the log and the state: never
 * secrets, never bodies. `details.code` is the vault's own code when there
 * was an answer (serverCode) and an errno/TLS code otherwise (errno).
 */
function pickDetails(err: AgentError): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const d = err.details ?? {}
  const answered = d.status !== undefined
  const names: Record<string, string> = { code: answered ? 'serverCode' : 'errno', message: 'serverMessage' }
  for (const k of ['step', 'reason', 'status', 'code', 'message', 'requestId', 'retryAfterMs', 'field', 'polls', 'exitStatus', 'signal', 'timeoutMs']) {
    if (d[k] !== undefined) out[names[k] ?? k] = d[k]
  }
  return out
}

function round(ms: number): number {
  return Math.round(ms)
}

async function writeOutput(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true })
  // Assertions are public documents: world-readable, so `snap ack` can read them.
  await writeFileAtomic(path, text, { mode: 0o644 })
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}
