/**
 * The registration service: what every device transport calls (HTTPS, MQTT,
 * and later a serial-line relay). Routes and the MQTT router parse, call one
 * of these and answer; the checks, the signing log, the outcome metric and
 * the outcome log line happen here, once, the same for every transport.
 *
 * - issueRequestId: a request-id for a known api-key (spec §5.6, §6.3);
 * - requestSerial: a serial-request stream in, the serial stream out
 *   (serial-flow.ts, pivot.ts); every outcome is logged durably in the
 *   signing log before the answer (a refusal that cannot be logged answers
 *   503 instead, never a lost refusal) and as one log line;
 * - refuseEarly: a refusal a transport makes before the flow (media type,
 *   size, overload), logged the same way;
 * - modelChain: the brand's account, account-key and signed model for an
 *   api-key of that model (Canonical's /v1/model).
 */
import { Buffer } from 'node:buffer'
import { VaultError, decodeAssertion, encodeStream } from '@sv/shared'
import type { LogEntry, LogOutcome, ModelRecord, SerialBinding, VaultStore } from '../../store/store.js'
import type { Logger } from '../../logger.js'
import type { ModelService, SignerSource } from '../model-service.js'
import type { RequestIdService } from './request-ids.js'
import {
  assignSerial,
  checkDeviceKey,
  checkDuplicates,
  checkModelAssertion,
  checkWorkOrder,
  decodeRequest,
  isPivotRequest,
  logRetry,
  replayIfRetry,
  resolveModel,
  resolveSerial,
  signAndBind,
  type FlowContext,
  logEntryOf,
} from './serial-flow.js'
import { pivotSerial, type PivotDeps } from './pivot.js'

export type Transport = 'https' | 'mqtt'

export interface SerialRequestInput {
  /** the request body: an assertion stream */
  body: Buffer
  apiKey: string | undefined
  clientAddress?: string
  transport: Transport
  /** the transport's correlation id, for the log line (HTTPS: X-Request-Id; MQTT: the payload's token) */
  reqId?: string
  /**
   * Filled with what the request said once its outcome is known, refusals
   * included, for the transport's own request line (brand, model, serial).
   */
  facts?: SerialFacts
}

/** What a serial request named, as far as the flow got (values as the device sent them). */
export interface SerialFacts {
  brandId?: string
  model?: string
  serial?: string
}

export interface SerialResult {
  /** serial, then the signing key's account-key, then the brand's account */
  stream: Buffer
  outcome: Exclude<LogOutcome, 'refused'>
  brandId: string
  model: string
  storeId: string
  serial: string
  revision: number
  deviceKeyId: string
}

export interface OutcomeEvent {
  outcome: LogOutcome | 'pending'
  code?: string
  durationMs: number
  signingMs?: number
  transport: string
  /**
   * Brand and model, only once the model was found and the api-key accepted
   * for it: they are metric labels, and before that point they are whatever
   * the device wrote (unbounded). Brands and models are made by admins.
   */
  brandId?: string
  model?: string
}

export interface RegistrationServiceOptions {
  store: VaultStore
  keys: SignerSource
  models: ModelService
  requestIds: RequestIdService
  deviceKeyMinBits: number
  copyBody: boolean
  log: Logger
  now?: () => number
  /** seconds a device whose pivot waits for review is told to wait (default 60, snapd's poll interval) */
  pendingRetryAfter?: number
  /** called once per serial request with its outcome (metrics) */
  onOutcome?: (e: OutcomeEvent) => void
  /** called with every signing log entry the service wrote, once it is durable (the Live page) */
  onEntry?: (e: LogEntry) => void
  /** called once per request-id issued (metrics) */
  onRequestId?: (transport: Transport) => void
  /** the audit entry of a pivot (services/admin/audit.ts) */
  auditPivot?: PivotDeps['auditPivot']
}

export class RegistrationService {
  readonly #o: RegistrationServiceOptions
  readonly #deps: PivotDeps
  readonly #log: Logger
  /** encoded account-key + account per signing key id (they change only with admin action) */
  readonly #chainCache = new Map<string, Buffer>()

  constructor(options: RegistrationServiceOptions) {
    this.#o = options
    this.#log = options.log
    this.#deps = {
      store: options.store,
      keys: options.keys,
      models: options.models,
      requestIds: options.requestIds,
      deviceKeyMinBits: options.deviceKeyMinBits,
      copyBody: options.copyBody,
      now: options.now ?? Date.now,
      pendingRetryAfter: options.pendingRetryAfter ?? 60,
      ...(options.auditPivot ? { auditPivot: options.auditPivot } : {}),
    }
  }

  get requestIdTtlSeconds(): number {
    return this.#o.requestIds.ttlSeconds
  }

  /** Forget cached brand chains and models (after an admin change). */
  invalidate(): void {
    this.#chainCache.clear()
    this.#o.models.invalidate()
  }

  /** A request-id for a device holding an api-key of some model. SV_API_KEY_MISSING, SV_API_KEY_INVALID. */
  async issueRequestId(input: { apiKey: string | undefined; transport: Transport; reqId?: string }): Promise<{ requestId: string; expiresIn: number }> {
    if (!input.apiKey) throw new VaultError('SV_API_KEY_MISSING', 'the api-key is required', { details: { header: 'api-key' } })
    if ((await this.#o.models.modelsForApiKey(input.apiKey)).length === 0) throw new VaultError('SV_API_KEY_INVALID', 'the api-key is not valid', { details: { header: 'api-key' } })
    const requestId = this.#o.requestIds.issue()
    this.#o.onRequestId?.(input.transport)
    // debug, not info: ops get one info line per serial (the outcome); this one doubles the volume
    this.#log.debug({ reqId: input.reqId, transport: input.transport }, 'request_id.issued')
    return { requestId, expiresIn: this.#o.requestIds.ttlSeconds }
  }

  /** The brand's account, its key's account-key and the signed model, for an api-key of that model. */
  async modelChain(input: { apiKey: string | undefined; brandId: string; model: string }): Promise<Uint8Array> {
    if (!input.apiKey) throw new VaultError('SV_API_KEY_MISSING', 'the api-key is required', { details: { header: 'api-key' } })
    const model = await this.#o.models.get(input.brandId, input.model).catch(() => undefined)
    if (!model || !(await this.#o.models.modelsForApiKey(input.apiKey)).some((m) => m.brandId === input.brandId && m.name === input.model)) {
      throw new VaultError('SV_API_KEY_INVALID', 'the api-key is not valid for this model', { details: { header: 'api-key' } })
    }
    const brand = await this.#o.store.brands.getBrand(input.brandId)
    const key = await this.#o.store.keys.get(model.signingKeyId)
    if (!brand || !key) throw new VaultError('SV_INTERNAL', `brand chain for ${input.brandId} is missing`, { details: { brandId: input.brandId } })
    this.#log.info({ brandId: input.brandId, model: input.model, storeId: model.storeId }, 'model.served')
    return encodeStream([brand.accountAssertion, key.accountKeyAssertion, model.modelAssertion].map((t) => decodeAssertion(t)))
  }

  async requestSerial(input: SerialRequestInput): Promise<SerialResult> {
    const started = performance.now()
    const ctx: FlowContext = { transport: input.transport }
    if (input.clientAddress !== undefined) ctx.clientAddress = input.clientAddress
    const timing: { signingMs?: number } = {}
    try {
      const r = await this.#flow(input, ctx, timing)
      this.#outcome(input, ctx, { outcome: r.outcome, revision: r.revision, durationMs: performance.now() - started, ...timing })
      if (ctx.written) this.#o.onEntry?.(ctx.written)
      return r
    } catch (e) {
      const err = e instanceof VaultError ? e : new VaultError('SV_INTERNAL', 'unexpected error while signing a serial', { cause: e })
      if (err.code === 'SV_PIVOT_PENDING') {
        // not a refusal: the pivot request is on record, the device polls
        this.#outcome(input, ctx, { outcome: 'pending', code: err.code, durationMs: performance.now() - started })
        throw err
      }
      const logged = await this.#logRefusal(ctx, err)
      this.#outcome(input, ctx, { outcome: 'refused', code: err.code, durationMs: performance.now() - started, err: logged })
      throw logged
    }
  }

  /**
   * Records a serial request refused before it reached `requestSerial` (wrong
   * media type, body too large, overload): a durable log entry, the outcome
   * metric and log line, like any other refusal. Resolves with the error to
   * answer with (SV_STORE_UNAVAILABLE when the log cannot be written).
   */
  async refuseEarly(input: Pick<SerialRequestInput, 'clientAddress' | 'transport' | 'reqId'>, err: VaultError): Promise<VaultError> {
    const ctx: FlowContext = { transport: input.transport }
    if (input.clientAddress !== undefined) ctx.clientAddress = input.clientAddress
    const logged = await this.#logRefusal(ctx, err)
    this.#outcome(input, ctx, { outcome: 'refused', code: err.code, durationMs: 0, err: logged })
    return logged
  }

  async #flow(input: SerialRequestInput, ctx: FlowContext, timing: { signingMs?: number }): Promise<SerialResult> {
    const d = this.#deps
    if (!input.apiKey) throw new VaultError('SV_API_KEY_MISSING', 'the api-key is required', { details: { header: 'api-key' } })
    const decoded = decodeRequest(input.body, ctx)
    checkModelAssertion(decoded)
    const { req } = decoded
    await checkDeviceKey(req, d.deviceKeyMinBits)
    if (isPivotRequest(req)) {
      const p = await pivotSerial(d, decoded, input.apiKey, ctx, timing)
      return this.#answer(p.binding, p.outcome, p.rec)
    }
    const rec = await resolveModel(d, req.brandId, req.model, input.apiKey, ctx)
    let { serial, existing } = await resolveSerial(d, req, rec, ctx)
    const retry = await replayIfRetry(d, req, existing)
    if (retry) {
      await logRetry(d, retry, ctx)
      return this.#answer(retry, 'retried', rec)
    }
    await d.requestIds.consume(d.store, req.requestId)
    // (a key already holding another serial of the model is refused by bind with SV_DEVICE_KEY_TAKEN, atomically)
    const dup = checkDuplicates(existing, rec, serial, ctx)
    const workOrder = await checkWorkOrder(d, rec, serial, dup.expectRevision, ctx)
    serial ??= await assignSerial(d, req, rec, ctx)
    const { binding, outcome } = await signAndBind(d, req, rec, serial, dup, ctx, timing, workOrder)
    return this.#answer(binding, outcome, rec)
  }

  async #logRefusal(ctx: FlowContext, err: VaultError): Promise<VaultError> {
    const now = this.#deps.now()
    const entry = logEntryOf(ctx, now, 'refused')
    entry.code = err.code
    entry.message = err.expose ? err.message.slice(0, 500) : 'internal error'
    try {
      await this.#o.store.signingLog.append(entry)
      this.#o.onEntry?.(entry)
      return err
    } catch (logErr) {
      // The refusal could not be made durable: answer "try again later" instead.
      return new VaultError('SV_STORE_UNAVAILABLE', 'the signing log cannot be written', { cause: logErr, retryAfter: 5, details: { refusedWith: err.code } })
    }
  }

  /** The outcome metric and the one log line of a serial request (a clone attempt at warn, a fault of ours at error). */
  #outcome(input: Pick<SerialRequestInput, 'transport' | 'reqId' | 'facts'>, ctx: FlowContext, o: { outcome: OutcomeEvent['outcome']; code?: string; revision?: number; durationMs: number; signingMs?: number; err?: VaultError }): void {
    const event: OutcomeEvent = { outcome: o.outcome, durationMs: o.durationMs, transport: input.transport }
    if (o.code !== undefined) event.code = o.code
    if (o.signingMs !== undefined) event.signingMs = o.signingMs
    if (ctx.storeId !== undefined && ctx.brandId !== undefined && ctx.model !== undefined) {
      event.brandId = ctx.brandId
      event.model = ctx.model
    }
    this.#o.onOutcome?.(event)
    const facts = input.facts
    if (facts) {
      if (ctx.brandId !== undefined) facts.brandId = ctx.brandId
      if (ctx.model !== undefined) facts.model = ctx.model
      if (ctx.serial !== undefined) facts.serial = ctx.serial
    }
    const level = o.outcome !== 'refused' ? 'info' : o.code === 'SV_SERIAL_TAKEN' ? 'warn' : o.err && o.err.status >= 500 ? 'error' : 'info'
    if (!this.#log.isLevelEnabled(level)) return
    const fields: Record<string, unknown> = {
      ...(input.reqId !== undefined ? { reqId: input.reqId } : {}),
      transport: input.transport,
      brandId: ctx.brandId,
      model: ctx.model,
      storeId: ctx.storeId,
      serial: ctx.serial,
      deviceKeyId: ctx.deviceKeyId,
      ...(ctx.fromModel !== undefined ? { fromModel: ctx.fromModel } : {}),
      ...(ctx.workOrderId !== undefined ? { workOrderId: ctx.workOrderId } : {}),
      ...(o.revision !== undefined ? { revision: o.revision } : {}),
      ...(o.code !== undefined ? { code: o.code } : {}),
      clientAddress: ctx.clientAddress,
      durationMs: Math.round(o.durationMs * 10) / 10,
    }
    switch (o.outcome) {
      case 'issued':
        return this.#log.info(fields, 'serial.signed')
      case 'reissued':
        return this.#log.info(fields, 'serial.reissued')
      case 'retried':
        return this.#log.info(fields, 'serial.retried')
      case 'pivoted':
        return this.#log.info(fields, 'serial.pivoted')
      case 'pending':
        return this.#log.info(fields, 'serial.pivot_pending')
      default:
        if (o.code === 'SV_SERIAL_TAKEN') return this.#log.warn(fields, 'serial.clone_refused')
        if (o.err && o.err.status >= 500) return this.#log.error({ ...fields, code: o.err.code, err: o.err.cause ?? o.err }, 'serial.rejected')
        return this.#log.info(fields, 'serial.rejected')
    }
  }

  async #answer(b: SerialBinding, outcome: SerialResult['outcome'], rec: ModelRecord): Promise<SerialResult> {
    const chain = await this.#chain(rec.signingKeyId, b.brandId)
    const serialText = Buffer.from(b.serialAssertion, 'utf8')
    // stream: serial, account-key, account; one blank line between (snapd's Encoder)
    const stream = Buffer.concat([serialText, serialText[serialText.length - 1] === 10 ? Buffer.alloc(0) : Buffer.from('\n'), Buffer.from('\n'), chain])
    return { stream, outcome, brandId: b.brandId, model: b.model, storeId: rec.storeId, serial: b.serial, revision: b.revision, deviceKeyId: b.deviceKeyId }
  }

  /** The signing key's account-key and the brand's account, encoded for the answer stream. */
  async #chain(keyId: string, brandId: string): Promise<Buffer> {
    const hit = this.#chainCache.get(keyId)
    if (hit) return hit
    const key = await this.#o.store.keys.get(keyId)
    const brand = await this.#o.store.brands.getBrand(brandId)
    if (!key || !brand) throw new VaultError('SV_INTERNAL', `brand chain for ${brandId} (key ${keyId}) is missing`, { details: { brandId, keyId } })
    const parts = [key.accountKeyAssertion, brand.accountAssertion].map((t) => (t.endsWith('\n') ? t : `${t}\n`))
    const chain = Buffer.from(parts.join('\n'), 'utf8')
    this.#chainCache.set(keyId, chain)
    return chain
  }
}
