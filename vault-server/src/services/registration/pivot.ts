/**
 * Pivots (remodels): a registered device moves from model A to model B of the
 * same brand, keeping its serial number, with a serial-request signed by its
 * own device key. The request is snapd's remodel re-registration (spec §4.4,
 * §6.4 step 5): `original-brand-id`, `original-model`, `original-serial`
 * headers, and the stream carries the new model and the device's current
 * serial. It arrives over the same transports as a registration.
 *
 * Checks, after the request's own (stream, model assertion, device key):
 *  1. the stream carries the new model and the current serial, whose brand,
 *     model and serial are the original-* headers, and the brand is the
 *     request's (pivots stay within a brand)             SV_PIVOT_INVALID / SV_PIVOT_NOT_ALLOWED
 *  2. both models exist; the api-key belongs to one of them
 *                                                       SV_MODEL_UNKNOWN / SV_API_KEY_INVALID
 *  3. the current serial is one this vault signed (a key of the brand held
 *     here, and the signature verifies)                 SV_PIVOT_INVALID
 *  4. the vault's binding of the original serial holds THIS device key (the
 *     request is signed by the bound key; Canonical's serial-vault does not
 *     check this)                                       SV_PIVOT_KEY_MISMATCH
 *  5. a Store Administrator allowed A -> B for this serial or all serials
 *                                                       SV_PIVOT_NOT_ALLOWED
 *  6. an identical retry gets the serial it already has; another key on the
 *     new (model, serial) is refused                    SV_SERIAL_TAKEN
 *  7. when B's store requires review, the request waits for a Reviewer: 202
 *     with Retry-After until accepted (snapd polls with the same request)
 *                                                       SV_PIVOT_PENDING / SV_PIVOT_REJECTED
 *  8. the request-id is used once (a pending request keeps it for its polls)
 *  9. a serial for B (revision 1) is signed with B's key; the new binding,
 *     the mark on the old one, the signing log entry and the audit entry are
 *     one atomic write.
 */
import { VaultError, verifySignature, AccountKeyAssertion, decodeAssertion, type SerialAssertion } from '@sv/shared'
import type { AuditSeal, ModelRecord, SerialBinding } from '../../store/store.js'
import { hashApiKey } from '../model-service.js'
import { type DecodedRequest, type FlowContext, type FlowDeps, logEntryOf, signSerial } from './serial-flow.js'

export interface PivotDeps extends FlowDeps {
  /** seconds a device waiting for review is told to wait */
  pendingRetryAfter: number
  /** the audit entry of a pivot, written with it */
  auditPivot?: (facts: { brandId: string; fromModel: string; toModel: string; serial: string; storeId: string; deviceKeyId: string; revision: number; requestId: string }) => AuditSeal
}

function invalid(reason: string, message: string, details: Record<string, unknown> = {}): VaultError {
  return new VaultError('SV_PIVOT_INVALID', message, { details: { reason, ...details } })
}

async function modelOrUnknown(d: FlowDeps, brandId: string, model: string): Promise<ModelRecord> {
  const rec = await d.models.getCached(brandId, model)
  if (!rec) throw new VaultError('SV_MODEL_UNKNOWN', `no model ${model} for brand ${brandId} in this vault`, { details: { brandId, model } })
  return rec
}

/** Check 3: the current serial was signed by a key of the brand that this vault holds. */
async function checkOurSerial(d: FlowDeps, old: SerialAssertion, brandId: string): Promise<void> {
  const key = await d.store.keys.get(old.signKeyId)
  if (!key || key.accountId !== brandId || key.purpose !== 'brand') throw invalid('unknown-signer', 'the current serial was not signed by a key of this vault', { signKeyId: old.signKeyId })
  const accountKey = decodeAssertion(key.accountKeyAssertion) as AccountKeyAssertion
  try {
    await verifySignature(old.content, old.signature, accountKey.publicKey)
  } catch {
    throw invalid('signature', 'the current serial does not verify with the key that it names')
  }
}

/**
 * The pivot of a decoded, self-signed request. Resolves with the new binding
 * (outcome `pivoted`, or `retried` when the device already has it).
 */
export async function pivotSerial(d: PivotDeps, decoded: DecodedRequest, apiKey: string, ctx: FlowContext, timing: { signingMs?: number }): Promise<{ binding: SerialBinding; outcome: 'pivoted' | 'retried'; rec: ModelRecord }> {
  const { req, modelA, oldSerial } = decoded
  const brandId = req.brandId
  const fromModel = req.headerString('original-model')
  const serial = req.headerString('original-serial')
  const toModel = req.model
  ctx.fromModel = fromModel
  ctx.serial = serial

  // 1. the stream and the headers agree
  if (req.headerString('original-brand-id') !== brandId) throw new VaultError('SV_PIVOT_NOT_ALLOWED', 'a device pivots only between models of its own brand', { details: { reason: 'brand', brandId, originalBrandId: req.headerString('original-brand-id') } })
  if (!modelA) throw invalid('model-missing', 'a pivot request carries the new model assertion after the serial-request')
  if (!oldSerial) throw invalid('serial-missing', 'a pivot request carries the current serial assertion after the model')
  if (oldSerial.brandId !== brandId || oldSerial.model !== fromModel || oldSerial.serial !== serial) {
    throw invalid('serial-mismatch', 'the current serial is not the one the original-* headers name', { serialBrand: oldSerial.brandId, serialModel: oldSerial.model, serial: oldSerial.serial })
  }
  if (fromModel === toModel) throw invalid('same-model', 'the original model and the requested model are the same')

  // 2. models and api-key
  const fromRec = await modelOrUnknown(d, brandId, fromModel)
  const toRec = await modelOrUnknown(d, brandId, toModel)
  ctx.storeId = toRec.storeId
  const hash = hashApiKey(apiKey)
  if (!fromRec.apiKeyHashes.includes(hash) && !toRec.apiKeyHashes.includes(hash)) throw new VaultError('SV_API_KEY_INVALID', 'the api-key is valid for neither the original nor the new model', { details: { header: 'api-key' } })

  // 3. the current serial is ours
  await checkOurSerial(d, oldSerial, brandId)

  // 4. the request is signed by the key bound to the original serial
  const from = await d.store.registrations.getBinding(brandId, fromModel, serial)
  if (!from) throw invalid('not-bound', `serial ${serial} of ${fromModel} is not bound in this vault`)
  if (from.deviceKeyId !== req.deviceKey.id || oldSerial.deviceKeyId !== req.deviceKey.id) {
    throw new VaultError('SV_PIVOT_KEY_MISMATCH', 'the pivot request is not signed by the device key bound to the serial', { details: { serial, boundKey: from.deviceKeyId, requestKey: req.deviceKey.id } })
  }

  // 6 (first half). an identical retry gets what it has
  const existing = await d.store.registrations.getBinding(brandId, toModel, serial)
  if (existing) {
    if (existing.deviceKeyId !== req.deviceKey.id) throw new VaultError('SV_SERIAL_TAKEN', `serial ${serial} of ${toModel} is bound to another device key`, { details: { serial, model: toModel } })
    if (existing.requestId !== req.requestId) await d.requestIds.consume(d.store, req.requestId)
    return { binding: existing, outcome: 'retried', rec: toRec }
  }
  if (from.pivotedTo && from.pivotedTo.model !== toModel) throw invalid('already-pivoted', `the device moved to ${from.pivotedTo.model} already`, { pivotedTo: from.pivotedTo.model })

  // 5. allowed
  const rules = await d.store.pivots.listRules({ brandId, fromModel })
  if (!rules.some((r) => r.toModel === toModel && (r.serial === undefined || r.serial === serial))) {
    throw new VaultError('SV_PIVOT_NOT_ALLOWED', `no pivot from ${fromModel} to ${toModel} is allowed for serial ${serial}`, { details: { reason: 'not-allowed', fromModel, toModel, serial } })
  }

  // 7 and 8. review, and the request-id
  const toStore = await d.store.stores.get(toRec.storeId)
  if (toStore?.requirePivotReview) {
    const pending = await d.store.pivots.getRequest(req.requestId)
    if (!pending) {
      await d.requestIds.consume(d.store, req.requestId)
      await d.store.pivots.createRequest({ requestId: req.requestId, brandId, fromModel, toModel, storeId: toRec.storeId, serial, deviceKeyId: req.deviceKey.id, status: 'pending', createdAt: d.now() })
      throw pendingError(d, toRec.storeId)
    }
    if (pending.deviceKeyId !== req.deviceKey.id || pending.serial !== serial || pending.fromModel !== fromModel || pending.toModel !== toModel) {
      throw new VaultError('SV_REQUEST_ID_USED', 'the request-id was used for another pivot request', { details: { header: 'request-id' } })
    }
    if (pending.status === 'pending') throw pendingError(d, toRec.storeId)
    if (pending.status === 'rejected') throw new VaultError('SV_PIVOT_REJECTED', `a reviewer refused this pivot${pending.reason ? `: ${pending.reason}` : ''}`, { details: { reason: pending.reason ?? '' } })
  } else {
    await d.requestIds.consume(d.store, req.requestId)
  }

  // 9. sign and bind
  const now = d.now()
  const signStart = performance.now()
  const serialAssertion = await signSerial(d, req, toModel, serial, 1, toRec.signingKeyId, now)
  timing.signingMs = performance.now() - signStart
  const binding: SerialBinding = { brandId, model: toModel, serial, deviceKeyId: req.deviceKey.id, revision: 1, serialAssertion, requestId: req.requestId, issuedAt: now, released: false, pivotedFrom: fromModel }
  const entry = logEntryOf(ctx, now, 'pivoted')
  entry.serial = serial
  entry.revision = 1
  const audit = d.auditPivot?.({ brandId, fromModel, toModel, serial, storeId: toRec.storeId, deviceKeyId: req.deviceKey.id, revision: 1, requestId: req.requestId })
  try {
    await d.store.registrations.bind(binding, entry, 0, { pivotFrom: { model: fromModel }, ...(audit ? { audit } : {}) })
  } catch (e) {
    if (e instanceof VaultError && e.code === 'SV_SERIAL_TAKEN') {
      const now2 = await d.store.registrations.getBinding(brandId, toModel, serial)
      if (now2 && now2.deviceKeyId === req.deviceKey.id) return { binding: now2, outcome: 'retried', rec: toRec }
    }
    throw e
  }
  ctx.written = entry
  return { binding, outcome: 'pivoted', rec: toRec }
}

function pendingError(d: PivotDeps, storeId: string): VaultError {
  return new VaultError('SV_PIVOT_PENDING', 'the pivot waits for a reviewer of the store; ask again with the same request', { retryAfter: d.pendingRetryAfter, details: { storeId } })
}
