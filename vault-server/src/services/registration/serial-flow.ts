/**
 * The serial flow, one named step per check: a serial-request stream in, a
 * serial assertion stream out. RegistrationService runs these steps for every
 * transport (HTTPS, MQTT, later a serial-line relay); pivot.ts holds the steps
 * of a re-registration into another model (remodel).
 *
 * Order of checks (each failure has its own SV_* code, see docs/errors.md):
 *  1. api-key present                                   SV_API_KEY_MISSING
 *  2. stream decodes: serial-request [, model [, serial when pivoting]]
 *                                                       SV_ASSERTION_INVALID / SV_ASSERTION_TOO_LARGE / SV_SERIAL_REQUEST_INVALID
 *  3. model assertion matches the request               SV_MODEL_MISMATCH
 *  4. device key size and self-signature                SV_KEY_TOO_SMALL / SV_SERIAL_REQUEST_SIGNATURE
 *     (a request with original-* headers is a pivot from here on: pivot.ts)
 *  5. model known, api-key valid for it                 SV_API_KEY_INVALID / SV_BRAND_UNKNOWN / SV_MODEL_UNKNOWN
 *  6. serial number: proposed (header, else `serial:` in the YAML body) or assigned
 *                                                       SV_SERIAL_MISSING / SV_SERIAL_INVALID
 *  7. identical retry (same serial, same device key): the stored serial, byte
 *     for byte, no new log entry (the request-id must be the one that obtained
 *     it or a fresh one); a serial issued under a work order gets a `retried`
 *     entry naming the order (the reconciliation counts retries). Before the
 *     work order check: a retry gets its serial after the order closed.
 *  8. request-id consumed (single use)                  SV_REQUEST_ID_UNKNOWN / _EXPIRED / _USED
 *  9. duplicates: another key for this serial is a clone attempt, refused and
 *     logged, unless the model reissues or an admin released the serial
 *                                                       SV_SERIAL_TAKEN / SV_DEVICE_KEY_TAKEN
 * 10. work order (models that require one): an open order allows the serial now
 *                                                       SV_NO_WORK_ORDER / SV_SERIAL_NOT_IN_WORK_ORDER /
 *                                                       SV_WORK_ORDER_EXHAUSTED / _CLOSED / _OUTSIDE_WINDOW
 * 11. sign, then bind + log (+ count the work order) in one durable write,
 *     then answer; the count is checked again in that write (concurrency).
 *
 * The request-id is consumed before signing (step 8): a fault on our side after
 * that burns it, and the device asks for a new one, as snapd does after any
 * status above 500 (spec §5.9).
 */
import { Buffer } from 'node:buffer'
import {
  ModelAssertion,
  SerialAssertion,
  SerialRequestAssertion,
  VaultError,
  decodeStreamPartial,
  formatRfc3339,
  normaliseSerial,
  signAssertion,
  validateSerial,
  verifySignature,
  type Assertion,
} from '@sv/shared'
import type { LogEntry, LogOutcome, ModelRecord, SerialBinding, VaultStore } from '../../store/store.js'
import { selectWorkOrder } from '../work-orders.js'
import { createLogId } from '../../store/log-id.js'
import { hashApiKey, type ModelService, type SignerSource } from '../model-service.js'
import { formatSerial, parseSerialTemplate } from '../serial-template.js'
import type { RequestIdService } from './request-ids.js'
import { readRequestBody } from './request-body.js'

/** What the steps share: the stores and services, and the limits. */
export interface FlowDeps {
  store: VaultStore
  keys: SignerSource
  models: ModelService
  requestIds: RequestIdService
  deviceKeyMinBits: number
  copyBody: boolean
  now: () => number
}

/** Facts of the request as they become known, for its log entry and log line. */
export type FlowContext = Partial<LogEntry> & {
  /** the log entry written for the request, once it is durable (the Live page hears of it) */
  written?: LogEntry
}

/**
 * The log entry of a request from its context: the context's known fields
 * copied one by one (a spread of an object whose fields were added as the
 * flow went costs a dictionary walk on every serial), undefined ones left out.
 */
export function logEntryOf(ctx: FlowContext, time: number, outcome: LogOutcome): LogEntry {
  const e: LogEntry = { id: createLogId(time), time, outcome }
  if (ctx.code !== undefined) e.code = ctx.code
  if (ctx.brandId !== undefined) e.brandId = ctx.brandId
  if (ctx.model !== undefined) e.model = ctx.model
  if (ctx.storeId !== undefined) e.storeId = ctx.storeId
  if (ctx.serial !== undefined) e.serial = ctx.serial
  if (ctx.deviceKeyId !== undefined) e.deviceKeyId = ctx.deviceKeyId
  if (ctx.revision !== undefined) e.revision = ctx.revision
  if (ctx.clientAddress !== undefined) e.clientAddress = ctx.clientAddress
  if (ctx.requestId !== undefined) e.requestId = ctx.requestId
  if (ctx.transport !== undefined) e.transport = ctx.transport
  if (ctx.timings !== undefined) e.timings = ctx.timings
  if (ctx.message !== undefined) e.message = ctx.message
  if (ctx.fromModel !== undefined) e.fromModel = ctx.fromModel
  if (ctx.workOrderId !== undefined) e.workOrderId = ctx.workOrderId
  return e
}

export interface DecodedRequest {
  req: SerialRequestAssertion
  modelA: ModelAssertion | undefined
  /** the device's current serial (pivots only) */
  oldSerial: SerialAssertion | undefined
}

function invalidRequest(message: string, details: Record<string, unknown> = {}): VaultError {
  return new VaultError('SV_SERIAL_REQUEST_INVALID', message, { details })
}

/** Whether the serial-request asks for a re-registration into another model (all three original-* headers, as snapd and Canonical's vault read it). */
export function isPivotRequest(req: SerialRequestAssertion): boolean {
  return req.headerString('original-brand-id') !== '' && req.headerString('original-model') !== '' && req.headerString('original-serial') !== ''
}

/** Step 2: serial-request, then optionally the model, then (pivots only) the device's current serial. */
export function decodeRequest(body: Buffer, ctx: FlowContext): DecodedRequest {
  const { assertions, error } = decodeStreamPartial(body, { maxAssertions: 3 })
  // More assertions than a registration has is a wrong stream shape (as a third one
  // is below), not an assertion over a size limit.
  if (error && assertions.length > 3) throw invalidRequest('the stream holds more assertions than a serial-request, its model and the current serial', { type: assertions[3]!.typeName, index: 4 })
  if (error) throw error
  if (assertions.length === 0) throw invalidRequest('the request body holds no assertion', { reason: 'empty' })
  const [req, modelA, third] = assertions as [Assertion, Assertion | undefined, Assertion | undefined]
  if (!(req instanceof SerialRequestAssertion)) throw invalidRequest(`the first assertion must be a serial-request, not ${req.typeName}`, { type: req.typeName, index: 1 })
  ctx.brandId = req.brandId
  ctx.model = req.model
  ctx.deviceKeyId = req.deviceKey.id
  ctx.requestId = req.requestId
  if (modelA !== undefined && !(modelA instanceof ModelAssertion)) throw invalidRequest(`the second assertion must be the model, not ${modelA.typeName}`, { type: modelA.typeName, index: 2 })
  if (third !== undefined && !isPivotRequest(req)) throw invalidRequest('a third assertion (the current serial) is only sent to re-register into another model, with original-brand-id, original-model and original-serial', { type: third.typeName, index: 3 })
  if (third !== undefined && !(third instanceof SerialAssertion)) throw invalidRequest(`the third assertion must be the current serial, not ${third.typeName}`, { type: third.typeName, index: 3 })
  return { req, modelA, oldSerial: third }
}

/** Step 3: the model assertion's brand and model are the request's (its signature is not ours to judge: it may be store-signed). */
export function checkModelAssertion({ req, modelA }: DecodedRequest): void {
  if (modelA && (modelA.brandId !== req.brandId || modelA.model !== req.model)) {
    throw new VaultError('SV_MODEL_MISMATCH', `the model assertion is for ${modelA.brandId}/${modelA.model}, the serial-request for ${req.brandId}/${req.model}`, {
      details: { requestBrand: req.brandId, requestModel: req.model, modelBrand: modelA.brandId, modelModel: modelA.model },
    })
  }
}

/** Step 4: the device key is large enough and signed the request. */
export async function checkDeviceKey(req: SerialRequestAssertion, minBits: number): Promise<void> {
  if (req.deviceKey.bits < minBits) {
    throw new VaultError('SV_KEY_TOO_SMALL', `the device key has ${req.deviceKey.bits} bits; at least ${minBits} are required`, { details: { bits: req.deviceKey.bits, min: minBits } })
  }
  try {
    await verifySignature(req.content, req.signature, req.deviceKey)
  } catch (e) {
    if (e instanceof VaultError && e.code === 'SV_SIGNATURE_UNSUPPORTED') throw e
    throw new VaultError('SV_SERIAL_REQUEST_SIGNATURE', 'the serial-request is not signed by its device-key', { cause: e, details: { reason: e instanceof VaultError ? e.details?.reason : undefined } })
  }
}

/** Step 5: the model exists and accepts this api-key (a wrong key and an unknown model are told apart). */
export async function resolveModel(d: FlowDeps, brandId: string, model: string, apiKey: string, ctx: FlowContext): Promise<ModelRecord> {
  const rec = await d.models.getCached(brandId, model)
  if (rec && rec.apiKeyHashes.includes(hashApiKey(apiKey))) {
    ctx.storeId = rec.storeId
    return rec
  }
  if ((await d.models.modelsForApiKey(apiKey)).length === 0 || rec) {
    throw new VaultError('SV_API_KEY_INVALID', 'the api-key is not valid for this model', { details: { header: 'api-key' } })
  }
  if (!(await d.store.brands.getBrand(brandId))) throw new VaultError('SV_BRAND_UNKNOWN', `no brand ${brandId} in this vault`, { details: { brandId } })
  throw new VaultError('SV_MODEL_UNKNOWN', `no model ${model} for brand ${brandId} in this vault`, { details: { brandId, model } })
}

/**
 * Step 6: the serial number, and the binding it already has. Device policy:
 * proposed in the header, else `serial:` in the body. Assign policy: the
 * binding of this device key, if any (the number is drawn at step 9).
 */
export async function resolveSerial(d: FlowDeps, req: SerialRequestAssertion, rec: ModelRecord, ctx: FlowContext): Promise<{ serial: string | undefined; existing: SerialBinding | undefined }> {
  const fromBody = readRequestBody(req.body)
  if (fromBody.timings) ctx.timings = fromBody.timings
  if (rec.serialPolicy.kind === 'device') {
    const proposed = normaliseSerial(req.serial || fromBody.serial || '')
    if (!proposed) throw new VaultError('SV_SERIAL_MISSING', 'no serial in the serial-request (header "serial" or "serial:" in the body)', { details: { header: 'serial' } })
    validateSerial(proposed)
    ctx.serial = proposed
    return { serial: proposed, existing: await d.store.registrations.getBinding(req.brandId, req.model, proposed) }
  }
  const existing = await d.store.registrations.getBindingByDeviceKey(req.brandId, req.model, req.deviceKey.id)
  if (existing) ctx.serial = existing.serial
  return { serial: existing?.serial, existing }
}

/** Step 7: the same device asking again for what it has: resolves with its binding, or undefined. */
export async function replayIfRetry(d: FlowDeps, req: SerialRequestAssertion, existing: SerialBinding | undefined): Promise<SerialBinding | undefined> {
  if (!existing || existing.deviceKeyId !== req.deviceKey.id) return undefined
  // A fresh request-id is used up as any other; the one that obtained the binding may come again.
  if (existing.requestId !== req.requestId) await d.requestIds.consume(d.store, req.requestId)
  return existing
}

/**
 * Step 7 (work orders): an identical retry of a serial issued under a work
 * order is logged as `retried` with the order's id, for its reconciliation.
 */
export async function logRetry(d: FlowDeps, existing: SerialBinding, ctx: FlowContext): Promise<void> {
  if (existing.workOrderId === undefined) return
  ctx.workOrderId = existing.workOrderId
  const entry = logEntryOf(ctx, d.now(), 'retried')
  entry.serial = existing.serial
  entry.revision = existing.revision
  await d.store.signingLog.append(entry)
  ctx.written = entry
}

/** Step 9: another key for a bound serial is a clone attempt unless the model reissues or the serial was released. */
export function checkDuplicates(existing: SerialBinding | undefined, rec: ModelRecord, serial: string | undefined, ctx?: FlowContext): { expectRevision: number; outcome: 'issued' | 'reissued' } {
  if (!existing) return { expectRevision: 0, outcome: 'issued' }
  if (rec.duplicatePolicy === 'reissue' || existing.released) return { expectRevision: existing.revision, outcome: 'reissued' }
  // a clone of a serial issued under a work order concerns that order (its report counts it)
  if (ctx && existing.workOrderId !== undefined) ctx.workOrderId = existing.workOrderId
  throw new VaultError('SV_SERIAL_TAKEN', `serial ${serial} is already bound to another device key (clone attempt refused)`, {
    details: { serial, boundKey: existing.deviceKeyId, revision: existing.revision },
  })
}

/**
 * Step 10: the work order a registration falls under, for a model that
 * requires one (services/work-orders.ts, selectWorkOrder, says which and the
 * refusals). Resolves with what bind needs: the order, and whether this
 * registration counts against its planned quantity (a new serial does, a
 * reissue does not); undefined for a model without the requirement.
 * Assigned serials are checked before a number is drawn.
 */
export async function checkWorkOrder(d: FlowDeps, rec: ModelRecord, serial: string | undefined, expectRevision: number, ctx: FlowContext): Promise<{ id: string; count: boolean } | undefined> {
  if (rec.requireWorkOrder !== true) return undefined
  const orders = await d.store.workOrders.list({ brandId: rec.brandId, model: rec.name })
  try {
    const order = selectWorkOrder(orders, serial, d.now())
    ctx.workOrderId = order.id
    return { id: order.id, count: expectRevision === 0 }
  } catch (e) {
    const id = e instanceof VaultError ? e.details?.workOrderId : undefined
    if (typeof id === 'string') ctx.workOrderId = id
    throw e
  }
}

/** Step 9 (assign policy): the next number of the model's sequence, never reused. */
export async function assignSerial(d: FlowDeps, req: SerialRequestAssertion, rec: ModelRecord, ctx: FlowContext): Promise<string> {
  const policy = rec.serialPolicy as { kind: 'assign'; template: string; start: number }
  const serial = formatSerial(parseSerialTemplate(policy.template), await d.store.registrations.nextSerialNumber(req.brandId, req.model, policy.start))
  ctx.serial = serial
  return serial
}

/** The serial assertion for a request: what snapd's device service signs (spec §5.8, §6.4 step 9). */
export async function signSerial(d: FlowDeps, req: SerialRequestAssertion, model: string, serial: string, revision: number, keyId: string, now: number): Promise<string> {
  const signer = await d.keys.signer(keyId)
  const a = await signAssertion(
    'serial',
    {
      'authority-id': req.brandId,
      revision: String(revision),
      'brand-id': req.brandId,
      model,
      serial,
      'device-key': req.headerString('device-key'),
      'device-key-sha3-384': req.deviceKey.id,
      timestamp: formatRfc3339(now),
    },
    d.copyBody ? req.body : undefined,
    signer,
  )
  return a.text()
}

/**
 * Step 10: sign, then bind and log atomically. Under the reissue policy a
 * concurrent request of another key may bind this serial first: then this
 * one is the next revision (as it would be a moment later), so sign again.
 * Resolves with the binding and how it came about.
 */
export async function signAndBind(
  d: FlowDeps,
  req: SerialRequestAssertion,
  rec: ModelRecord,
  serial: string,
  first: { expectRevision: number; outcome: 'issued' | 'reissued' },
  ctx: FlowContext,
  timing: { signingMs?: number },
  workOrder?: { id: string; count: boolean },
): Promise<{ binding: SerialBinding; outcome: 'issued' | 'reissued' | 'retried' }> {
  let { expectRevision, outcome } = first
  for (let attempt = 1; ; attempt++) {
    const revision = expectRevision + 1
    const now = d.now()
    const signStart = performance.now()
    const serialAssertion = await signSerial(d, req, req.model, serial, revision, rec.signingKeyId, now)
    timing.signingMs = performance.now() - signStart
    const binding: SerialBinding = { brandId: req.brandId, model: req.model, serial, deviceKeyId: req.deviceKey.id, revision, serialAssertion, requestId: req.requestId, issuedAt: now, released: false }
    if (workOrder) binding.workOrderId = workOrder.id
    const entry = logEntryOf(ctx, now, outcome)
    entry.serial = serial
    entry.revision = revision
    try {
      await d.store.registrations.bind(binding, entry, expectRevision, workOrder ? { workOrder: { id: workOrder.id, count: workOrder.count && expectRevision === 0 } } : undefined)
      ctx.written = entry
      return { binding, outcome }
    } catch (e) {
      // Lost a race with a concurrent request for the same serial: if it bound
      // this very device key, this is an identical retry after all.
      if (e instanceof VaultError && e.code === 'SV_SERIAL_TAKEN') {
        const now2 = await d.store.registrations.getBinding(req.brandId, req.model, serial)
        if (now2 && now2.deviceKeyId === req.deviceKey.id) return { binding: now2, outcome: 'retried' }
        if (now2 && rec.duplicatePolicy === 'reissue' && attempt < 3) {
          expectRevision = now2.revision
          outcome = 'reissued'
          continue
        }
      }
      // Assigned serials: the concurrent request of this same key drew another number
      // and bound it first (a device that retried before its first answer came).
      if (e instanceof VaultError && e.code === 'SV_DEVICE_KEY_TAKEN' && rec.serialPolicy.kind === 'assign') {
        const now2 = await d.store.registrations.getBindingByDeviceKey(req.brandId, req.model, req.deviceKey.id)
        if (now2) return { binding: now2, outcome: 'retried' }
      }
      throw e
    }
  }
}
