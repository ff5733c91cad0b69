/**
 * Bounded request body reading: a Content-Length above the limit is refused
 * before reading; a chunked body is cut off as soon as it passes the limit.
 */
import type { Request } from 'express'
import { Buffer } from 'node:buffer'
import { VaultError } from '@sv/shared'

export async function readBody(req: Request, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) {
    req.resume()
    throw new VaultError('SV_BODY_TOO_LARGE', `the body is larger than ${limit} bytes`, { details: { limit } })
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) {
      req.resume()
      throw new VaultError('SV_BODY_TOO_LARGE', `the body is larger than ${limit} bytes`, { details: { limit } })
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}

/** Media type without parameters, lower case ('' when absent). */
export function mediaType(req: Request): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
}

export async function readJson(req: Request, limit: number): Promise<unknown> {
  const type = mediaType(req)
  if (type !== 'application/json') throw new VaultError('SV_MEDIA_TYPE_UNSUPPORTED', 'expected Content-Type: application/json', { details: { contentType: type } })
  const body = await readBody(req, limit)
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    throw new VaultError('SV_REQUEST_INVALID', 'the body is not valid JSON', { details: { reason: 'json' } })
  }
}
