/**
 * Response helpers. Error bodies are JSON with Content-Type exactly
 * `application/json`: snapd shows a device service's message only then (a
 * charset parameter hides it, spec §5.8).
 */
import type { Request, Response } from 'express'
import { Buffer } from 'node:buffer'
import { isVaultError, toErrorBody, VaultError } from '@sv/shared'

export const ASSERTION_MEDIA_TYPE = 'application/x.ubuntu.assertion'

// res.setHeader, not res.set: express's set() appends "; charset=utf-8" to JSON types.
export function sendJson(res: Response, status: number, body: unknown): void {
  res.status(status).setHeader('Content-Type', 'application/json')
  res.end(Buffer.from(`${JSON.stringify(body)}\n`))
}

export function sendAssertions(res: Response, stream: Buffer): void {
  res.status(200).setHeader('Content-Type', ASSERTION_MEDIA_TYPE)
  res.end(stream)
}

/** The request's correlation id (set by the request-id middleware). */
export function reqId(req: Request): string {
  return (req as Request & { svId?: string }).svId ?? ''
}

export function sendError(req: Request, res: Response, err: unknown): VaultError {
  const e = isVaultError(err) ? err : new VaultError('SV_INTERNAL', 'unexpected error', { cause: err })
  if (e.retryAfter !== undefined || e.status === 503) res.set('Retry-After', String(e.retryAfter ?? 5))
  if (e.status === 401) res.set('WWW-Authenticate', req.path.startsWith('/v1/admin') ? 'Bearer realm="serial-vault admin"' : 'api-key')
  sendJson(res, e.status, toErrorBody(e, reqId(req)))
  return e
}
