/**
 * The serial flow: a serial-request stream in, a serial assertion stream out.
 * Transport-agnostic: HTTPS and MQTT call `requestSerial` with the same input
 * and get the same answer or the same VaultError.
 *
 * Order of checks (each failure has its own SV_* code, see docs/errors.md):
 *  1. api-key present                                   SV_API_KEY_MISSING
 *  2. stream decodes: serial-request [, model]          SV_ASSERTION_INVALID / SV_ASSERTION_TOO_LARGE / SV_SERIAL_REQUEST_INVALID
 *  3. model assertion matches the request               SV_MODEL_MISMATCH
 *  4. device key size and self-signature                SV_KEY_TOO_SMALL / SV_SERIAL_REQUEST_SIGNATURE
 *  5. model known, api-key valid for it                 SV_API_KEY_INVALID / SV_BRAND_UNKNOWN / SV_MODEL_UNKNOWN
 *  6. serial number: proposed (header, else `serial:` in the YAML body) or assigned
 *                                                       SV_SERIAL_MISSING / SV_SERIAL_INVALID
 *  7. identical retry (same serial, same device key): the stored serial, byte
 *     for byte, no new log entry (the request-id must be the one that obtained
 *     it or a fresh one)
 *  8. request-id consumed (single use)                  SV_REQUEST_ID_UNKNOWN / _EXPIRED / _USED
 *  9. duplicates: another key for this serial is a clone attempt, refused and
 *     logged, unless the model reissues or an admin released the serial
 *                                                       SV_SERIAL_TAKEN / SV_DEVICE_KEY_TAKEN
 * 10. sign, then bind + log in one durable write, then answer.
 *
 * The request-id is consumed before signing (step 8): a fault on our side after
 * that burns it, and the device asks for a new one, as snapd does after any
 * status above 500 (spec §5.9). Every refusal is logged, durably, before the
 * answer; if that log write fails the answer is 503, never a lost refusal.
 */
import { Buffer } from 'node:buffer'
import { parse as parseYaml } from 'yaml'
import {
  ModelAssertion,
  SerialRequestAssertion,
  VaultError,
  decodeStreamPartial,
  formatRfc3339,
  normaliseSerial,
  signAssertion,
  utf8Decode,
  validateSerial,
  verifySignature,
  type Assertion,
} from '@sv/shared'
import type { LogEntry, LogOutcome, ModelRecord, SerialBinding, VaultStore } from '../store/store.js'
import { createLogId } from '../store/log-id.js'
import { hashApiKey, type ModelService, type SignerSource } from './model-service.js'
import type { RequestIdService } from './request-ids.js'
import { formatSerial, parseSerialTemplate } from './serial-template.js'

export interface SerialRequestInput {
  /** the request body: an assertion stream */
  body: Buffer
  apiKey: string | undefined
  clientAddress?: string
  transport: 'https' | 'mqtt'
}

export interface SerialResult {
  /** serial, then the signing key's account-key, then the brand's account */
  stream: Buffer
  outcome: Exclude<LogOutcome, 'refused'>
  brandId: string
  model: string
  serial: string
  revision: number
  deviceKeyId: string
}

export interface OutcomeEvent {
  outcome: LogOutcome
  code?: string
  durationMs: number
  signingMs?: number
  transport: string
}

export interface SigningServiceOptions {
  store: VaultStore
  keys: SignerSource
  models: ModelService
  requestIds: RequestIdService
  deviceKeyMinBits: number
  copyBody: boolean
  now?: () => number
  /** called once per request with its outcome (metrics) */
  onOutcome?: (e: OutcomeEvent) => void
}

const MAX_BODY_YAML = 16 * 1024
const MAX_TIMINGS = 32

/**
 * `serial:` and agent telemetry from a serial-request body (YAML), best effort
 * and bounded. The flat shape the device agent writes (top-level `key: value`
 * lines, `telemetry:` with indented `name: number` lines) is read line by
 * line; anything else goes through the YAML parser.
 */
export function readRequestBody(body: Uint8Array): { serial?: string; timings?: Record<string, number> } {
  if (body.length === 0 || body.length > MAX_BODY_YAML) return {}
  const text = utf8Decode(body)
  return readFlatBody(text) ?? readYamlBody(text)
}

const FLAT_TOP = /^([a-z][a-z0-9-]{0,40}):(?: ("(?:[^"\\]|\\.)*"|[^'"{}[\]&*!|>%@`#]*))?$/
/** a scalar YAML reads as a plain string: no indicator first, no ': ' or ' #' inside */
const PLAIN_SCALAR = /^(?![-?:,[\]{}#&*!|>'"%@`\s])(?:(?!: | #)[^\t])*(?<![\s:])$/
const FLAT_NESTED = /^ {2}([a-z][a-z0-9-]{0,40}): (.*)$/
const YAML_WORDS = /^(?:true|false|null|yes|no|on|off|y|n)$/i
const PLAIN_NUMBER = /^-?(?:0|[1-9]\d{0,15})(?:\.\d{1,9})?$/

/** The agent's flat YAML, or undefined when the body is anything else. */
function readFlatBody(text: string): { serial?: string; timings?: Record<string, number> } | undefined {
  const out: { serial?: string; timings?: Record<string, number> } = {}
  let section: string | undefined
  for (const line of text.split('\n')) {
    if (line === '') continue
    const nested = FLAT_NESTED.exec(line)
    if (nested) {
      if (section === undefined) return undefined
      if (section === 'telemetry') {
        if (!PLAIN_NUMBER.test(nested[2]!)) return undefined
        out.timings ??= {}
        if (Object.keys(out.timings).length < MAX_TIMINGS) out.timings[nested[1]!] = Number(nested[2])
      } else if (jsonString(nested[2]!) === undefined && !PLAIN_SCALAR.test(nested[2]!)) {
        return undefined
      }
      continue
    }
    const top = FLAT_TOP.exec(line)
    if (!top) return undefined
    const value = top[2]
    // anything YAML would read differently goes to the parser
    if (value !== undefined && (value.includes(': ') || value.startsWith('- ') || value.endsWith(':'))) return undefined
    section = value === undefined || value === '' ? top[1] : undefined
    if (top[1] === 'serial') {
      // a JSON-quoted string (valid YAML, same meaning: what the device agent
      // writes), or a plain serial YAML reads as the same string: a letter
      // first, no keyword
      const quoted = value === undefined ? undefined : jsonString(value)
      if (quoted !== undefined) out.serial = quoted
      else if (value !== undefined && /^[A-Za-z][A-Za-z0-9._:-]*$/.test(value) && !YAML_WORDS.test(value)) out.serial = value
      else return undefined
    }
  }
  return out
}

/** The value of a JSON string literal (also a YAML double-quoted scalar), or undefined. */
function jsonString(v: string): string | undefined {
  if (v.length < 2 || v[0] !== '"' || v[v.length - 1] !== '"') return undefined
  try {
    const s = JSON.parse(v) as unknown
    return typeof s === 'string' ? s : undefined
  } catch {
    return undefined
  }
}

function readYamlBody(text: string): { serial?: string; timings?: Record<string, number> } {
  let doc: unknown
  try {
    doc = parseYaml(text, { maxAliasCount: 10, prettyErrors: false })
  } catch {
    return {}
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return {}
  const out: { serial?: string; timings?: Record<string, number> } = {}
  const d = doc as Record<string, unknown>
  if (typeof d.serial === 'string' || typeof d.serial === 'number') out.serial = String(d.serial)
  const t = d.telemetry
  if (t !== null && typeof t === 'object' && !Array.isArray(t)) {
    const timings: Record<string, number> = {}
    for (const [k, v] of Object.entries(t).slice(0, MAX_TIMINGS)) {
      if (typeof v === 'number' && Number.isFinite(v) && /^[a-z][a-z0-9-]{0,40}$/.test(k)) timings[k] = v
    }
    if (Object.keys(timings).length > 0) out.timings = timings
  }
  return out
}

function invalidRequest(message: string, details: Record<string, unknown> = {}): VaultError {
  return new VaultError('SV_SERIAL_REQUEST_INVALID', message, { details })
}

export class SigningService {
  readonly #o: SigningServiceOptions
  readonly #now: () => number
  /** encoded account-key + account per signing key id (they change only with admin action) */
  readonly #chainCache = new Map<string, Buffer>()

  constructor(options: SigningServiceOptions) {
    this.#o = options
    this.#now = options.now ?? Date.now
  }

  /** Forget cached brand chains (after an admin change). */
  invalidate(): void {
    this.#chainCache.clear()
  }

  async requestSerial(input: SerialRequestInput): Promise<SerialResult> {
    const started = performance.now()
    const ctx: Partial<LogEntry> = { transport: input.transport }
    if (input.clientAddress !== undefined) ctx.clientAddress = input.clientAddress
    const timing: { signingMs?: number } = {}
    try {
      const r = await this.#requestSerial(input, ctx, timing)
      this.#emit({ outcome: r.outcome, durationMs: performance.now() - started, transport: input.transport, ...timing })
      return r
    } catch (e) {
      const err = e instanceof VaultError ? e : new VaultError('SV_INTERNAL', 'unexpected error while signing a serial', { cause: e })
      await this.#logRefusal(ctx, err)
      this.#emit({ outcome: 'refused', code: err.code, durationMs: performance.now() - started, transport: input.transport })
      throw err
    }
  }

  /**
   * Records a serial request refused before it reached `requestSerial` (wrong
   * media type, body too large, overload): a durable log entry and the
   * outcome metric, like any other refusal. Resolves with the error to answer
   * with (SV_STORE_UNAVAILABLE when the log cannot be written).
   */
  async refuseEarly(input: Pick<SerialRequestInput, 'clientAddress' | 'transport'>, err: VaultError): Promise<VaultError> {
    const ctx: Partial<LogEntry> = { transport: input.transport }
    if (input.clientAddress !== undefined) ctx.clientAddress = input.clientAddress
    this.#emit({ outcome: 'refused', code: err.code, durationMs: 0, transport: input.transport })
    try {
      await this.#logRefusal(ctx, err)
    } catch (logErr) {
      return logErr as VaultError
    }
    return err
  }

  #emit(e: OutcomeEvent): void {
    this.#o.onOutcome?.(e)
  }

  async #logRefusal(ctx: Partial<LogEntry>, err: VaultError): Promise<void> {
    const now = this.#now()
    const entry: LogEntry = { ...ctx, id: createLogId(now), time: now, outcome: 'refused', code: err.code, message: err.expose ? err.message.slice(0, 500) : 'internal error' }
    try {
      await this.#o.store.appendLog(entry)
    } catch (logErr) {
      // The refusal could not be made durable: answer "try again later" instead.
      throw new VaultError('SV_STORE_UNAVAILABLE', 'the signing log cannot be written', { cause: logErr, retryAfter: 5, details: { refusedWith: err.code } })
    }
  }

  async #requestSerial(input: SerialRequestInput, ctx: Partial<LogEntry>, timing: { signingMs?: number }): Promise<SerialResult> {
    const { store, models, requestIds } = this.#o
    if (!input.apiKey) throw new VaultError('SV_API_KEY_MISSING', 'the api-key header is required', { details: { header: 'api-key' } })

    // 2. the stream: serial-request, then optionally the model (what snapd sends)
    const { assertions, error } = decodeStreamPartial(input.body, { maxAssertions: 3 })
    // More assertions than a registration has is a wrong stream shape (as a third one
    // is below), not an assertion over a size limit.
    if (error && assertions.length > 3) throw invalidRequest('the stream holds more assertions than a serial-request and its model', { type: assertions[3]!.typeName, index: 4 })
    if (error) throw error
    if (assertions.length === 0) throw invalidRequest('the request body holds no assertion', { reason: 'empty' })
    const [req, modelA, third] = assertions as [Assertion, Assertion | undefined, Assertion | undefined]
    if (!(req instanceof SerialRequestAssertion)) throw invalidRequest(`the first assertion must be a serial-request, not ${req.typeName}`, { type: req.typeName, index: 1 })
    ctx.brandId = req.brandId
    ctx.model = req.model
    ctx.deviceKeyId = req.deviceKey.id
    ctx.requestId = req.requestId
    if (modelA !== undefined && !(modelA instanceof ModelAssertion)) throw invalidRequest(`the second assertion must be the model, not ${modelA.typeName}`, { type: modelA.typeName, index: 2 })
    if (third !== undefined) throw invalidRequest('re-registration with the previous serial (remodel) is not supported', { type: third.typeName, index: 3 })

    // 3. model assertion consistency (its signature is not ours to judge: it may be store-signed)
    if (modelA && (modelA.brandId !== req.brandId || modelA.model !== req.model)) {
      throw new VaultError('SV_MODEL_MISMATCH', `the model assertion is for ${modelA.brandId}/${modelA.model}, the serial-request for ${req.brandId}/${req.model}`, {
        details: { requestBrand: req.brandId, requestModel: req.model, modelBrand: modelA.brandId, modelModel: modelA.model },
      })
    }

    // 4. device key
    if (req.deviceKey.bits < this.#o.deviceKeyMinBits) {
      throw new VaultError('SV_KEY_TOO_SMALL', `the device key has ${req.deviceKey.bits} bits; at least ${this.#o.deviceKeyMinBits} are required`, { details: { bits: req.deviceKey.bits, min: this.#o.deviceKeyMinBits } })
    }
    try {
      await verifySignature(req.content, req.signature, req.deviceKey)
    } catch (e) {
      if (e instanceof VaultError && e.code === 'SV_SIGNATURE_UNSUPPORTED') throw e
      throw new VaultError('SV_SERIAL_REQUEST_SIGNATURE', 'the serial-request is not signed by its device-key', { cause: e, details: { reason: e instanceof VaultError ? e.details?.reason : undefined } })
    }

    // 5. model and api key
    const rec = await this.#modelFor(req.brandId, req.model, input.apiKey)

    // 6. serial number
    const fromBody = readRequestBody(req.body)
    if (fromBody.timings) ctx.timings = fromBody.timings
    let serial: string | undefined
    let existing: SerialBinding | undefined
    if (rec.serialPolicy.kind === 'device') {
      const proposed = normaliseSerial(req.serial || fromBody.serial || '')
      if (!proposed) throw new VaultError('SV_SERIAL_MISSING', 'no serial in the serial-request (header "serial" or "serial:" in the body)', { details: { header: 'serial' } })
      validateSerial(proposed)
      serial = proposed
      ctx.serial = serial
      existing = await store.getSerialBinding(req.brandId, req.model, serial)
    } else {
      existing = await store.getSerialBindingByDeviceKey(req.brandId, req.model, req.deviceKey.id)
      if (existing) ctx.serial = serial = existing.serial
    }

    // 7. identical retry
    if (existing && existing.deviceKeyId === req.deviceKey.id) {
      if (existing.requestId !== req.requestId) await requestIds.consume(store, req.requestId)
      return this.#answer(existing, 'retried', rec)
    }

    // 8. single use of the request-id
    await requestIds.consume(store, req.requestId)

    // 9. duplicates (a key already holding another serial of the model is
    // refused by bindSerial with SV_DEVICE_KEY_TAKEN, atomically)
    let expectRevision = 0
    let outcome: 'issued' | 'reissued' = 'issued'
    if (existing) {
      if (rec.duplicatePolicy === 'reissue' || existing.released) {
        expectRevision = existing.revision
        outcome = 'reissued'
      } else {
        throw new VaultError('SV_SERIAL_TAKEN', `serial ${serial} is already bound to another device key (clone attempt refused)`, {
          details: { serial, boundKey: existing.deviceKeyId, revision: existing.revision },
        })
      }
    }
    if (serial === undefined) {
      const policy = rec.serialPolicy as { kind: 'assign'; template: string; start: number }
      serial = formatSerial(parseSerialTemplate(policy.template), await store.nextSerialNumber(req.brandId, req.model, policy.start))
      ctx.serial = serial
    }

    // 10. sign, bind and log atomically, answer. Under the reissue policy a
    // concurrent request of another key may bind this serial first: then this
    // one is the next revision (as it would be a moment later), so sign again.
    for (let attempt = 1; ; attempt++) {
      const revision = expectRevision + 1
      const now = this.#now()
      const signStart = performance.now()
      const signer = await this.#o.keys.signer(rec.signingKeyId)
      const serialA = await signAssertion(
        'serial',
        {
          'authority-id': req.brandId,
          revision: String(revision),
          'brand-id': req.brandId,
          model: req.model,
          serial,
          'device-key': req.headerString('device-key'),
          'device-key-sha3-384': req.deviceKey.id,
          timestamp: formatRfc3339(now),
        },
        this.#o.copyBody ? req.body : undefined,
        signer,
      )
      timing.signingMs = performance.now() - signStart
      const binding: SerialBinding = {
        brandId: req.brandId,
        model: req.model,
        serial,
        deviceKeyId: req.deviceKey.id,
        revision,
        serialAssertion: serialA.text(),
        requestId: req.requestId,
        issuedAt: now,
        released: false,
      }
      const entry: LogEntry = { ...ctx, id: createLogId(now), time: now, outcome, serial, revision } as LogEntry
      try {
        await store.bindSerial(binding, entry, expectRevision)
      } catch (e) {
        // Lost a race with a concurrent request for the same serial: if it bound
        // this very device key, this is an identical retry after all.
        if (e instanceof VaultError && e.code === 'SV_SERIAL_TAKEN') {
          const now2 = await store.getSerialBinding(req.brandId, req.model, serial)
          if (now2 && now2.deviceKeyId === req.deviceKey.id) return this.#answer(now2, 'retried', rec)
          if (now2 && rec.duplicatePolicy === 'reissue' && attempt < 3) {
            expectRevision = now2.revision
            outcome = 'reissued'
            continue
          }
        }
        // Assigned serials: the concurrent request of this same key drew another number
        // and bound it first (a device that retried before its first answer came).
        if (e instanceof VaultError && e.code === 'SV_DEVICE_KEY_TAKEN' && rec.serialPolicy.kind === 'assign') {
          const now2 = await store.getSerialBindingByDeviceKey(req.brandId, req.model, req.deviceKey.id)
          if (now2) return this.#answer(now2, 'retried', rec)
        }
        throw e
      }
      return this.#answer(binding, outcome, rec)
    }
  }

  async #modelFor(brandId: string, model: string, apiKey: string): Promise<ModelRecord> {
    const { store, models } = this.#o
    const rec = await models.getCached(brandId, model)
    if (rec && rec.apiKeyHashes.includes(hashApiKey(apiKey))) return rec
    // Distinguish for the device: a wrong key, or a right key asking for an unknown model.
    if ((await models.modelsForApiKey(apiKey)).length === 0 || rec) {
      throw new VaultError('SV_API_KEY_INVALID', 'the api-key is not valid for this model', { details: { header: 'api-key' } })
    }
    if (!(await store.getBrand(brandId))) throw new VaultError('SV_BRAND_UNKNOWN', `no brand ${brandId} in this vault`, { details: { brandId } })
    throw new VaultError('SV_MODEL_UNKNOWN', `no model ${model} for brand ${brandId} in this vault`, { details: { brandId, model } })
  }

  async #answer(b: SerialBinding, outcome: SerialResult['outcome'], rec: ModelRecord): Promise<SerialResult> {
    const chain = await this.#chain(rec.signingKeyId, b.brandId)
    const serialText = Buffer.from(b.serialAssertion, 'utf8')
    // stream: serial, account-key, account; one blank line between (snapd's Encoder)
    const stream = Buffer.concat([serialText, serialText[serialText.length - 1] === 10 ? Buffer.alloc(0) : Buffer.from('\n'), Buffer.from('\n'), chain])
    return { stream, outcome, brandId: b.brandId, model: b.model, serial: b.serial, revision: b.revision, deviceKeyId: b.deviceKeyId }
  }

  /** The signing key's account-key and the brand's account, encoded for the answer stream. */
  async #chain(keyId: string, brandId: string): Promise<Buffer> {
    const hit = this.#chainCache.get(keyId)
    if (hit) return hit
    const key = await this.#o.store.getSigningKey(keyId)
    const brand = await this.#o.store.getBrand(brandId)
    if (!key || !brand) throw new VaultError('SV_INTERNAL', `brand chain for ${brandId} (key ${keyId}) is missing`, { details: { brandId, keyId } })
    const parts = [key.accountKeyAssertion, brand.accountAssertion].map((t) => (t.endsWith('\n') ? t : `${t}\n`))
    const chain = Buffer.from(parts.join('\n'), 'utf8')
    this.#chainCache.set(keyId, chain)
    return chain
  }
}
