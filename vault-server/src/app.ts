/**
 * createApp(deps): the express application (device API, admin API, metrics).
 * It never listens; http/server.ts does, and tests drive it the same way.
 *
 * Status policy (docs/errors.md): 4xx only for the client's own faults, with
 * a JSON body {code, message, requestId} and Content-Type exactly
 * application/json; 503 + Retry-After for anything temporary on our side;
 * 500 for bugs. One log line per request outcome: 4xx at info, 5xx at error.
 */
import express, { type NextFunction, type Request, type Response } from 'express'
import { randomBytes } from 'node:crypto'
import { VaultError } from '@sv/shared'
import type { VaultConfig } from './config.js'
import type { Logger } from './logger.js'
import type { VaultMetrics } from './metrics.js'
import type { VaultStore } from './store/store.js'
import type { KeyStore } from './keys/keystore.js'
import type { SigningService } from './services/signing-service.js'
import type { ModelService } from './services/model-service.js'
import type { BrandService } from './services/brand-service.js'
import type { RequestIdService } from './services/request-ids.js'
import type { Admission } from './services/admission.js'
import { deviceRoutes } from './http/routes/device.js'
import { adminRoutes } from './http/routes/admin.js'
import { sendError } from './http/respond.js'

export interface AppServices {
  signing: SigningService
  models: ModelService
  brands: BrandService
  requestIds: RequestIdService
  keys: KeyStore
}

export interface AppDeps {
  config: VaultConfig
  log: Logger
  metrics: VaultMetrics
  store: VaultStore
  services: AppServices
  admission: Admission
}

/** Device and ops routes with their method, for 405 answers (GET /v1/serial is a common mistake). */
const DEVICE_ROUTES: Record<string, string> = {
  '/v1/request-id': 'POST',
  '/v1/serial': 'POST',
  '/v1/model': 'POST',
  '/v1/version': 'GET',
  '/v1/health': 'GET',
  '/v1/ready': 'GET',
  '/metrics': 'GET',
}

type SvRequest = Request & { svId?: string; svFacts?: Record<string, unknown>; svActor?: string }

/** Route label for metrics: the matched pattern, never raw paths (bounded cardinality). */
function routeLabel(req: Request): string {
  const route = (req as Request & { route?: { path?: string } }).route?.path
  return typeof route === 'string' ? route : 'unmatched'
}

export function createApp(deps: AppDeps): express.Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)
  app.set('query parser', 'simple')

  app.use((req: SvRequest, res: Response, next: NextFunction) => {
    const incoming = req.headers['x-request-id']
    req.svId = typeof incoming === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(incoming) ? incoming : randomBytes(9).toString('base64url')
    res.set('X-Request-Id', req.svId)
    const started = performance.now()
    // Read now: by 'finish' Node may have detached the socket (a refused body that was
    // still arriving), and req.socket is then null.
    const client = req.socket?.remoteAddress
    res.on('finish', () => {
      const ms = performance.now() - started
      const route = routeLabel(req)
      deps.metrics.httpRequests.inc({ route, method: req.method, status: String(res.statusCode) })
      deps.metrics.httpDuration.observe({ route }, ms / 1000)
      const fields: Record<string, unknown> = { reqId: req.svId, method: req.method, route, status: res.statusCode, durationMs: Math.round(ms * 10) / 10, client, ...req.svFacts }
      if (req.svActor) fields.actor = req.svActor
      if (res.statusCode >= 500) deps.log.error(fields, 'request.failed')
      else if (route === '/metrics' || route === '/v1/health') deps.log.debug(fields, 'request.completed')
      else deps.log.info(fields, 'request.completed')
    })
    next()
  })

  app.use(deviceRoutes(deps))
  app.use(adminRoutes(deps))

  app.use((req: Request, res: Response, next: NextFunction) => {
    const allowed = DEVICE_ROUTES[req.path]
    if (allowed) {
      res.setHeader('Allow', allowed)
      return next(new VaultError('SV_METHOD_NOT_ALLOWED', `${req.path} takes ${allowed}`, { details: { allow: allowed } }))
    }
    next(new VaultError('SV_NOT_FOUND', `no route ${req.method} ${req.path}`))
  })

  app.use((err: unknown, req: SvRequest, res: Response, _next: NextFunction) => {
    // body-parser style errors from express internals (malformed URLs and the like)
    let e = err
    if (!(e instanceof VaultError) && typeof (err as { status?: unknown }).status === 'number' && (err as { status: number }).status < 500) {
      e = new VaultError('SV_REQUEST_INVALID', 'malformed request', { cause: err })
    }
    const sent = sendError(req, res, e)
    // the 'finish' handler above logs it, with the cause for server faults
    req.svFacts = { ...req.svFacts, code: sent.code, ...(sent.status >= 500 ? { err: sent.cause ?? sent } : {}) }
  })

  return app
}
