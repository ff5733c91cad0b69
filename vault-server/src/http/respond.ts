/**
 * Response helpers. Error bodies are JSON with Content-Type exactly
 * `application/json`: snapd shows a device service's message only then (a
 * charset parameter hides it, spec §5.8).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Buffer } from 'node:buffer'
import { isVaultError, rejection, VaultError } from '@sv/shared'

export const ASSERTION_MEDIA_TYPE = 'application/x.ubuntu.assertion'

// Plain Node response API (express's Response extends it), so that the device
// fast lane (app.ts) and the express routes answer through the same code.
// setHeader, not express's set(): set() appends "; charset=utf-8" to JSON types.
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status
  res.setHeader('Content-Type', 'application/json')
  res.end(Buffer.from(`${JSON.stringify(body)}\n`))
}

export function sendAssertions(res: ServerResponse, stream: Uint8Array): void {
  res.statusCode = 200
  res.setHeader('Content-Type', ASSERTION_MEDIA_TYPE)
  res.end(stream)
}

/** The request's correlation id (set by the request tracking in app.ts). */
export function reqId(req: IncomingMessage): string {
  return (req as IncomingMessage & { svId?: string }).svId ?? ''
}

/** The request's path, without the query string. */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? ''
  const q = url.indexOf('?')
  return q < 0 ? url : url.slice(0, q)
}

export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown): VaultError {
  const e = isVaultError(err) ? err : new VaultError('SV_INTERNAL', 'unexpected error', { cause: err })
  const r = rejection(e, reqId(req))
  if (r.retryAfter !== undefined) res.setHeader('Retry-After', String(r.retryAfter))
  if (e.status === 401) {
    const path = pathOf(req)
    res.setHeader('WWW-Authenticate', path.startsWith('/v1/admin') ? 'Bearer realm="serial-vault admin"' : path === '/metrics' ? 'Bearer realm="serial-vault metrics"' : 'api-key')
  }
  sendJson(res, r.status, r.body)
  return e
}
