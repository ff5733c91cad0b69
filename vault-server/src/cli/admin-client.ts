/**
 * A small client for the admin API, used by `vault-server log ...`. TLS with
 * the system CAs, or `--ca FILE` (the vault's self-signed development
 * certificate), or `--insecure` (development only, says so on stderr).
 */
import { request as httpsRequest } from 'node:https'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { readFileSync } from 'node:fs'
import { CliError, EXIT } from './io.js'

export interface AdminTarget {
  url: string
  token: string
  ca?: string
  insecure?: boolean
  timeoutMs?: number
}

/** GET `path` (relative to the /v1/ base) and hand the response over. Errors become CliError. */
export function adminGet(t: AdminTarget, path: string): Promise<IncomingMessage> {
  let base: URL
  try {
    base = new URL(t.url.endsWith('/') ? t.url : `${t.url}/`)
  } catch {
    throw new CliError(`--url: not a URL: ${t.url}`)
  }
  const url = new URL(path, base)
  const isHttps = url.protocol === 'https:'
  const opts = {
    method: 'GET',
    headers: { authorization: `Bearer ${t.token}`, accept: 'application/json' },
    ...(isHttps && t.ca ? { ca: readFileSync(t.ca) } : {}),
    ...(isHttps && t.insecure ? { rejectUnauthorized: false } : {}),
  }
  return new Promise((resolve, reject) => {
    const req = (isHttps ? httpsRequest : httpRequest)(url, opts, async (res) => {
      if ((res.statusCode ?? 0) >= 400) {
        let text = ''
        for await (const c of res) if (text.length < 65536) text += c
        let msg = text
        try {
          const j = JSON.parse(text) as { code?: string; message?: string }
          msg = `${j.message} (${j.code})`
        } catch {
          // not JSON
        }
        reject(new CliError(`the vault answered ${res.statusCode}: ${msg}`, (res.statusCode ?? 0) >= 500 ? EXIT.UNAVAILABLE : EXIT.FAILED))
        return
      }
      resolve(res)
    })
    req.setTimeout(t.timeoutMs ?? 30_000, () => req.destroy(new Error('timed out')))
    req.on('error', (e) => reject(new CliError(`cannot reach the vault at ${url.origin}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, EXIT.UNAVAILABLE)))
    req.end()
  })
}

export async function adminGetJson<T>(t: AdminTarget, path: string): Promise<T> {
  const res = await adminGet(t, path)
  let text = ''
  for await (const c of res) text += c
  return JSON.parse(text) as T
}
