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
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import { VaultError } from '@sv/shared'
import type { VaultConfig } from './config.js'
import type { Logger } from './logger.js'
import type { VaultMetrics } from './metrics.js'
import type { KeyStore } from './keys/keystore.js'
import type { RegistrationService } from './services/registration/registration-service.js'
import type { ModelService } from './services/model-service.js'
import type { BrandService } from './services/brand-service.js'
import type { HealthService } from './services/health.js'
import type { AdminService } from './services/admin/admin-service.js'
import type { LoginService } from './services/auth/login-service.js'
import type { Admission } from './services/admission.js'
import { deviceRoutes, registrationHandlers, type DeviceHandler } from './http/routes/device.js'
import { adminRoutes } from './http/routes/admin.js'
import { authRoutes } from './http/routes/auth.js'
import { dashboardRoutes } from './http/routes/dashboard.js'
import { pathOf, sendError } from './http/respond.js'
import { randomText } from './random.js'

/** What the transports call. Routes see services only, never a store. */
export interface AppServices {
  registration: RegistrationService
  admin: AdminService
  login: LoginService
  health: HealthService
  /** for the CLI and the demo, which set a vault up in-process */
  brands: BrandService
  models: ModelService
  keys: KeyStore
}

export interface AppDeps {
  config: VaultConfig
  log: Logger
  metrics: VaultMetrics
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

type SvRequest = IncomingMessage & { svId?: string; svFacts?: Record<string, unknown>; svActor?: string }

/** Route label for metrics: the matched pattern, never raw paths (bounded cardinality). */
function routeLabel(req: Request): string {
  const route = (req as Request & { route?: { path?: string } }).route?.path
  return typeof route === 'string' ? route : 'unmatched'
}

/**
 * Every request: a correlation id (X-Request-Id, the client's when it is a
 * plain token), and when the answer is sent the request metrics and one log
 * line. `route` is read at the end, once routing has matched.
 */
function track(deps: AppDeps, req: SvRequest, res: ServerResponse, route: () => string): void {
  const incoming = req.headers['x-request-id']
  req.svId = typeof incoming === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(incoming) ? incoming : randomText(9, 'base64url')
  res.setHeader('X-Request-Id', req.svId)
  const started = performance.now()
  // Read now: by 'finish' Node may have detached the socket (a refused body that was
  // still arriving), and req.socket is then null.
  const client = req.socket?.remoteAddress
  res.on('finish', () => {
    const ms = performance.now() - started
    const label = route()
    deps.metrics.httpRequests.inc({ route: label, method: req.method ?? '', status: String(res.statusCode) })
    deps.metrics.httpDuration.observe({ route: label }, ms / 1000)
    const fields: Record<string, unknown> = { reqId: req.svId, method: req.method, route: label, status: res.statusCode, durationMs: Math.round(ms * 10) / 10, client, ...req.svFacts }
    if (req.svActor) fields.actor = req.svActor
    if (res.statusCode >= 500) deps.log.error(fields, 'request.failed')
    else if (label === '/metrics' || label === '/v1/health') deps.log.debug(fields, 'request.completed')
    else deps.log.info(fields, 'request.completed')
  })
}

/** The answer to a failed request; the 'finish' handler of track() logs it, with the cause for server faults. */
function fail(deps: AppDeps, req: SvRequest, res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    // too late for a status: cut the connection so the client sees the failure
    // ('finish' will not come, so the log line is written here)
    deps.log.error({ reqId: req.svId, method: req.method, err }, 'request.failed')
    res.destroy()
    return
  }
  // body-parser style errors from express internals (malformed URLs and the like)
  let e = err
  if (!(e instanceof VaultError) && typeof (err as { status?: unknown }).status === 'number' && (err as { status: number }).status < 500) {
    e = new VaultError('SV_REQUEST_INVALID', 'malformed request', { cause: err })
  }
  const sent = sendError(req, res, e)
  req.svFacts = { ...req.svFacts, code: sent.code, ...(sent.status >= 500 ? { err: sent.cause ?? sent } : {}) }
}

/**
 * The vault's HTTP request listener: POST /v1/request-id and POST /v1/serial
 * (exact paths) on a fast lane, everything else through express. The lane
 * runs the same handlers, tracking and error answers as the express routes,
 * without express's routing and request decoration: per registration that is
 * about a tenth of a millisecond of the main thread (docs/benchmarks.md).
 */
export type VaultApp = RequestListener & {
  /** the express application behind the fast lane (its router lists every route) */
  readonly express: express.Express
}

export function createApp(deps: AppDeps): VaultApp {
  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)
  app.set('query parser', 'simple')

  app.use((req: Request, res: Response, next: NextFunction) => {
    track(deps, req, res, () => routeLabel(req))
    next()
  })

  app.use(deviceRoutes(deps))
  app.use(['/v1/admin', '/v1/auth'], (_req: Request, res: Response, next: NextFunction) => {
    // answers of the admin and login API are data, never a page to render or frame
    res.setHeader('X-Content-Type-Options', 'nosniff')
    res.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'")
    next()
  })
  app.use(adminRoutes(deps))
  app.use(authRoutes(deps))
  app.use(dashboardRoutes())

  app.use((req: Request, res: Response, next: NextFunction) => {
    // /metrics served on its own listener is unknown here
    const allowed = req.path === '/metrics' && deps.config.metrics.listen !== undefined ? undefined : DEVICE_ROUTES[req.path]
    if (allowed) {
      res.setHeader('Allow', allowed)
      return next(new VaultError('SV_METHOD_NOT_ALLOWED', `${req.path} takes ${allowed}`, { details: { allow: allowed } }))
    }
    next(new VaultError('SV_NOT_FOUND', `no route ${req.method} ${req.path}`))
  })

  app.use((err: unknown, req: SvRequest, res: Response, _next: NextFunction) => fail(deps, req, res, err))

  const registration = registrationHandlers(deps)
  const lane: Record<string, DeviceHandler> = { '/v1/request-id': registration.requestId, '/v1/serial': registration.serial }
  const listener: RequestListener = (req, res) => {
    if (req.method === 'POST') {
      const path = pathOf(req)
      const handler = Object.hasOwn(lane, path) ? lane[path] : undefined
      if (handler) {
        track(deps, req, res, () => path)
        handler(req, res).catch((err: unknown) => fail(deps, req, res, err))
        return
      }
    }
    app(req, res)
  }
  return Object.assign(listener, { express: app })
}
