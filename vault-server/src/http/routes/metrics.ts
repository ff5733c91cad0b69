/**
 * GET /metrics, the Prometheus text format. Where it is served (config
 * `metrics`, docs/deployment.md):
 *
 * - by default on the device port, as before (a scraper that reaches the
 *   devices' address reaches it, and so does every device);
 * - with `metrics.listen` (`--metrics-listen HOST:PORT`, VAULT_METRICS_LISTEN)
 *   on a listener of its own, plain HTTP, and no longer on the device port
 *   (there it is 404 like any unknown path);
 * - with `metrics.token` (VAULT_METRICS_TOKEN), wherever it is served, only
 *   with `Authorization: Bearer TOKEN` (401 SV_UNAUTHENTICATED otherwise).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import { Buffer } from 'node:buffer'
import { VaultError } from '@sv/shared'
import type { VaultConfig } from '../../config.js'
import type { Logger } from '../../logger.js'
import type { VaultMetrics } from '../../metrics.js'
import { pathOf, sendError } from '../respond.js'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** The /metrics handler (token checked when configured). Rejects with SV_UNAUTHENTICATED. */
export function metricsHandler(deps: { config: VaultConfig; metrics: VaultMetrics }): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const want = deps.config.metrics.token === undefined ? undefined : digest(deps.config.metrics.token)
  return async (req, res) => {
    if (want) {
      const auth = req.headers.authorization
      const given = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined
      // compared as digests: equal lengths, constant time
      if (given === undefined || !timingSafeEqual(digest(given), want)) {
        throw new VaultError('SV_UNAUTHENTICATED', '/metrics needs the metrics token: Authorization: Bearer TOKEN', { details: { reason: given === undefined ? 'missing' : 'invalid' } })
      }
    }
    const text = await deps.metrics.registry.metrics()
    res.statusCode = 200
    res.setHeader('Content-Type', deps.metrics.registry.contentType)
    res.end(Buffer.from(text))
  }
}

/**
 * The request listener of the separate metrics listener: GET /metrics, 405
 * for another method there, 404 anywhere else. Refusals are logged at debug
 * (a scraper misconfigured would otherwise log every 15 s); faults at error.
 */
export function metricsListener(deps: { config: VaultConfig; metrics: VaultMetrics; log: Logger }): RequestListener {
  const handler = metricsHandler(deps)
  return (req, res) => {
    const answer = (err: unknown): void => {
      const sent = sendError(req, res, err)
      if (sent.status >= 500) deps.log.error({ route: '/metrics', status: sent.status, code: sent.code, err: sent.cause ?? sent }, 'request.failed')
      else deps.log.debug({ route: '/metrics', status: sent.status, code: sent.code }, 'request.completed')
    }
    req.resume()
    if (pathOf(req) !== '/metrics') return answer(new VaultError('SV_NOT_FOUND', 'this listener serves GET /metrics only'))
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET')
      return answer(new VaultError('SV_METHOD_NOT_ALLOWED', '/metrics takes GET', { details: { allow: 'GET' } }))
    }
    handler(req, res).catch(answer)
  }
}
