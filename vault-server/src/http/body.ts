/**
 * Bounded request body reading: a Content-Length above the limit is refused
 * before reading; a chunked body is cut off as soon as it passes the limit.
 */
import type { IncomingMessage } from 'node:http'
import { Buffer } from 'node:buffer'
import { VaultError } from '@sv/shared'

export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () => new VaultError('SV_BODY_TOO_LARGE', `the body is larger than ${limit} bytes`, { details: { limit } })
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) {
    req.resume()
    return Promise.reject(tooLarge())
  }
  // Listeners rather than an async iterator: a registration body is one or two
  // chunks, and the iterator's promise per chunk shows in the vault's profile.
  // A body already read or a request already gone would never emit again:
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0))
  if (req.destroyed) return Promise.reject(Object.assign(new Error('the request was aborted'), { code: 'ECONNRESET' }))
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (err?: Error) => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('close', onClose)
      if (err) reject(err)
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        done(tooLarge())
        req.resume() // drain the rest without keeping it
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => done()
    const onError = (err: Error) => done(err)
    // the client went away before the end: nothing to answer
    const onClose = () => done(Object.assign(new Error('the request was aborted'), { code: 'ECONNRESET' }))
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
  })
}

/** Media type without parameters, lower case ('' when absent). */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
}

export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = mediaType(req)
  if (type !== 'application/json') throw new VaultError('SV_MEDIA_TYPE_UNSUPPORTED', 'expected Content-Type: application/json', { details: { contentType: type } })
  const body = await readBody(req, limit)
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    throw new VaultError('SV_REQUEST_INVALID', 'the body is not valid JSON', { details: { reason: 'json' } })
  }
}

/** A JSON body that may be left out: no Content-Type and no body read as undefined, anything else as readJson. */
export async function readOptionalJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const empty = req.headers['content-type'] === undefined && (req.headers['content-length'] === undefined || req.headers['content-length'] === '0') && req.headers['transfer-encoding'] === undefined
  if (empty) {
    req.resume()
    return undefined
  }
  return readJson(req, limit)
}
