/**
 * The device API, compatible with snapd's registration client and with
 * Canonical serial-vault's signing service (base URL https://HOST:PORT/v1/):
 * POST /v1/request-id, POST /v1/serial, POST /v1/model, GET /v1/version,
 * GET /v1/health, GET /v1/ready. Handlers parse, call the registration
 * service, answer; the checks live in services/registration/.
 */
import { Router } from 'express'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { VaultError } from '@sv/shared'
import type { AppDeps } from '../../app.js'
import { mediaType, readBody, readJson } from '../body.js'
import { ASSERTION_MEDIA_TYPE, reqId, sendAssertions, sendJson } from '../respond.js'
import { VERSION } from '../../version.js'
import { metricsHandler } from './metrics.js'
import type { SerialFacts } from '../../services/registration/registration-service.js'

function apiKey(req: IncomingMessage): string | undefined {
  const v = req.headers['api-key']
  return typeof v === 'string' && v.length > 0 && v.length <= 512 ? v : undefined
}

/** A device API handler on Node's own request and response (express's extend them). */
export type DeviceHandler = (req: IncomingMessage & { svFacts?: object }, res: ServerResponse) => Promise<void>

/**
 * The two registration routes, which factory lines and fleets call thousands
 * of times a day. app.ts serves them on a fast lane in front of express (the
 * same handlers, without express's per-request work); express serves them too
 * for the spellings it also matches (a trailing slash, other letter case).
 */
export function registrationHandlers(deps: AppDeps): { requestId: DeviceHandler; serial: DeviceHandler } {
  const { services, config } = deps

  const requestId: DeviceHandler = async (req, res) => {
    const { requestId: id, expiresIn } = await services.registration.issueRequestId({ apiKey: apiKey(req), transport: 'https', reqId: reqId(req) })
    req.resume()
    sendJson(res, 200, { 'request-id': id, 'expires-in': expiresIn })
  }

  const serial: DeviceHandler = async (req, res) => {
    const clientAddress = req.socket.remoteAddress ?? ''
    const correlation = reqId(req)
    // refusals before the registration service (media type, size, overload) are
    // logged like the others; a timeout is not: the work goes on and logs its outcome
    let reached = false
    const early = async (err: VaultError): Promise<never> => {
      throw await services.registration.refuseEarly({ clientAddress, transport: 'https', reqId: correlation }, err)
    }
    const type = mediaType(req)
    if (type !== ASSERTION_MEDIA_TYPE) {
      req.resume()
      return early(new VaultError('SV_MEDIA_TYPE_UNSUPPORTED', `expected Content-Type: ${ASSERTION_MEDIA_TYPE}`, { details: { contentType: type } }))
    }
    let result
    // brand, model and serial of a refusal too, for this request's request.completed line
    const facts: SerialFacts = {}
    try {
      result = await deps.admission.run(async () => {
        const body = await readBody(req, config.limits.serialBodyBytes)
        reached = true
        return services.registration.requestSerial({ body, apiKey: apiKey(req), clientAddress, transport: 'https', reqId: correlation, facts })
      })
    } catch (e) {
      if (!reached && e instanceof VaultError && (e.code === 'SV_BODY_TOO_LARGE' || e.code === 'SV_OVERLOADED')) return early(e)
      req.svFacts = facts
      throw e
    }
    req.svFacts = { brandId: result.brandId, model: result.model, serial: result.serial, outcome: result.outcome, revision: result.revision }
    sendAssertions(res, result.stream)
  }

  return { requestId, serial }
}

export function deviceRoutes(deps: AppDeps): Router {
  const r = Router()
  const { services, config } = deps
  const registration = registrationHandlers(deps)

  r.post('/v1/request-id', registration.requestId)
  r.post('/v1/serial', registration.serial)

  // Canonical serial-vault compatible: the brand's account, account-key and signed model.
  r.post('/v1/model', async (req, res) => {
    const key = apiKey(req)
    if (!key) throw new VaultError('SV_API_KEY_MISSING', 'the api-key header is required', { details: { header: 'api-key' } })
    const body = (await readJson(req, 64 * 1024)) as Record<string, unknown>
    const brandId = body?.['brand-id']
    const name = body?.model
    if (typeof brandId !== 'string' || typeof name !== 'string') throw new VaultError('SV_REQUEST_INVALID', 'expected {"brand-id": ..., "model": ...}', { details: { fields: ['brand-id', 'model'] } })
    sendAssertions(res, await services.registration.modelChain({ apiKey: key, brandId, model: name }))
  })

  r.get('/v1/version', (_req, res) => sendJson(res, 200, { version: VERSION, api: 'v1' }))
  r.get('/v1/health', (_req, res) => sendJson(res, 200, { status: 'ok' }))
  r.get('/v1/ready', async (_req, res) => {
    const ready = await services.health.readiness()
    if (!ready.ok) {
      res.set('Retry-After', String(config.limits.retryAfterSeconds))
      sendJson(res, 503, { status: 'not ready', checks: ready.checks })
      return
    }
    sendJson(res, 200, { status: 'ready', checks: ready.checks })
  })

  // on the device port unless it has a listener of its own (routes/metrics.ts)
  if (config.metrics.listen === undefined) r.get('/metrics', metricsHandler(deps))

  return r
}
