/**
 * The one way the dashboard calls the vault: same-origin fetch, the session
 * cookie (credentials: same-origin) or the operator's admin token held only in
 * memory (a signal, gone on reload), X-CSRF-Token on every state-changing call
 * made with the cookie, and errors as ApiError with the vault's SV_* code.
 */
import { signal } from '@preact/signals'

/** The break-glass admin token: memory only, never written to storage or the DOM. */
export const bearerToken = signal<string | undefined>(undefined)
/** The session's CSRF token (from GET /v1/admin/me). */
export const csrfToken = signal<string | undefined>(undefined)
/** Set when a call answered 401: the shell shows the login page with this message. */
export const sessionProblem = signal<string | undefined>(undefined)

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly requestId?: string,
  ) {
    super(message)
  }
}

const UNAUTHENTICATED = new Set(['SV_UNAUTHENTICATED', 'SV_SESSION_INVALID', 'SV_AUTH_REQUIRED', 'SV_AUTH_INVALID'])

export function headers(method: string, extra?: Record<string, string>): Record<string, string> {
  const h: Record<string, string> = { Accept: 'application/json', ...extra }
  const t = bearerToken.value
  if (t) h.Authorization = `Bearer ${t}`
  else if (method !== 'GET' && method !== 'HEAD' && csrfToken.value) h['X-CSRF-Token'] = csrfToken.value
  return h
}

async function errorOf(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`
  let message = res.statusText || `HTTP ${res.status}`
  let details: Record<string, unknown> | undefined
  let requestId: string | undefined
  try {
    const j = (await res.json()) as Record<string, unknown>
    // the vault answers {code, message, details, requestId}; accept {error: {...}} too
    const b = (j && typeof j.error === 'object' && j.error !== null ? j.error : j) as Record<string, unknown>
    if (typeof b.code === 'string') code = b.code
    if (typeof b.message === 'string') message = b.message
    if (b.details && typeof b.details === 'object') details = b.details as Record<string, unknown>
    if (typeof b.requestId === 'string') requestId = b.requestId
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, code, message, details, requestId)
}

/** Marks the session as ended when the vault says so (any 401 on the admin API). */
export function noteAuthFailure(e: ApiError): void {
  if (e.status === 401 || UNAUTHENTICATED.has(e.code)) {
    sessionProblem.value = `${e.code === 'SV_SESSION_INVALID' ? 'Your session has ended' : 'You are not logged in (or your session expired)'}: ${e.message} (${e.code})`
  }
}

export async function raw(method: string, path: string, body?: unknown, init?: RequestInit): Promise<Response> {
  const h = headers(method, body !== undefined ? { 'Content-Type': 'application/json' } : undefined)
  let res: Response
  try {
    res = await fetch(path, { method, credentials: 'same-origin', headers: h, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), ...init })
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err
    throw new ApiError(0, 'NETWORK', `the vault could not be reached: ${(err as Error).message}`)
  }
  if (!res.ok) {
    const e = await errorOf(res)
    noteAuthFailure(e)
    throw e
  }
  return res
}

export async function api<T>(method: string, path: string, body?: unknown, init?: RequestInit): Promise<T> {
  const res = await raw(method, path.startsWith('/v1/') ? path : `/v1/admin${path}`, body, init)
  const text = await res.text()
  return (text ? JSON.parse(text) : {}) as T
}

export const get = <T>(path: string, init?: RequestInit) => api<T>('GET', path, undefined, init)

/** A query string from the defined, non-empty values. */
export function qs(params: Record<string, string | number | boolean | undefined>): string {
  const u = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, String(v))
  const s = u.toString()
  return s ? `?${s}` : ''
}

/** Fetches a file with the caller's credentials and saves it (works for token logins too). */
export async function download(path: string, filename: string): Promise<number> {
  const res = await raw('GET', path.startsWith('/v1/') ? path : `/v1/admin${path}`, undefined, { headers: { ...headers('GET'), Accept: '*/*' } })
  const blob = await res.blob()
  saveBlob(blob, filename)
  return blob.size
}

export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  a.rel = 'noopener'
  document.body.appendChild(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.message} (${e.code})`
  return e instanceof Error ? e.message : String(e)
}
