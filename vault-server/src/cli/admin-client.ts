/**
 * A small client for the admin API, used by the CLI's admin commands. TLS
 * with the system CAs, or `--ca FILE` (the vault's self-signed development
 * certificate), or `--insecure` (development only, says so on stderr).
 *
 * Refusals become CliErrors with the vault's message and SV_* code, and the
 * exit code the error table gives that code (@sv/shared exitCodeFor: 1 the
 * answer is no, 2 bad input, 3 retry later); an answer without a known code
 * (a proxy in front) falls back on its status. No connection is 3.
 */
import { request as httpsRequest } from 'node:https'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { readFileSync } from 'node:fs'
import { exitCodeFor } from '@sv/shared'
import { CliError, EXIT } from './io.js'

export interface AdminTarget {
  url: string
  token: string
  ca?: string
  insecure?: boolean
  /** socket idle timeout (default 120 s) */
  timeoutMs?: number
  /** aborts the call (and a response being read) */
  signal?: AbortSignal
}


/** One call (`path` relative to the /v1/ base); resolves with the response of a 2xx. Errors become CliError. */
export function adminRequest(t: AdminTarget, method: string, path: string, body?: unknown): Promise<IncomingMessage> {
  let base: URL
  try {
    base = new URL(t.url.endsWith('/') ? t.url : `${t.url}/`)
  } catch {
    throw new CliError(`--url: not a URL: ${t.url}`)
  }
  const url = new URL(path, base)
  const isHttps = url.protocol === 'https:'
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
  let ca: Buffer | undefined
  if (isHttps && t.ca) {
    try {
      ca = readFileSync(t.ca)
    } catch (e) {
      throw new CliError(`cannot read --ca ${t.ca}: ${(e as NodeJS.ErrnoException).code}`)
    }
  }
  const opts = {
    method,
    headers: { authorization: `Bearer ${t.token}`, accept: 'application/json', ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}) },
    ...(ca ? { ca } : {}),
    ...(isHttps && t.insecure ? { rejectUnauthorized: false } : {}),
    ...(t.signal ? { signal: t.signal } : {}),
  }
  return new Promise((resolve, reject) => {
    const req = (isHttps ? httpsRequest : httpRequest)(url, opts, async (res) => {
      const status = res.statusCode ?? 0
      if (status >= 300) {
        let text = ''
        for await (const c of res) if (text.length < 65536) text += c
        let msg = text
        let code: string | undefined
        try {
          const j = JSON.parse(text) as { code?: string; message?: string }
          msg = `${j.message} (${j.code})`
          code = typeof j.code === 'string' ? j.code : undefined
        } catch {
          // not JSON
        }
        reject(new CliError(`the vault answered ${status}: ${msg}`, exitCodeFor(code, status)))
        return
      }
      resolve(res)
    })
    req.setTimeout(t.timeoutMs ?? 120_000, () => req.destroy(new Error('timed out')))
    req.on('error', (e) => reject(new CliError(`cannot reach the vault at ${url.origin}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, EXIT.UNAVAILABLE)))
    req.end(payload)
  })
}

export function adminGet(t: AdminTarget, path: string): Promise<IncomingMessage> {
  return adminRequest(t, 'GET', path)
}

export async function adminJson<T>(t: AdminTarget, method: string, path: string, body?: unknown): Promise<T> {
  const res = await adminRequest(t, method, path, body)
  let text = ''
  for await (const c of res) text += c
  return JSON.parse(text) as T
}

export async function adminGetJson<T>(t: AdminTarget, path: string): Promise<T> {
  return adminJson<T>(t, 'GET', path)
}
