/**
 * The Live page's connection: GET /v1/admin/live (text/event-stream) read
 * with fetch and parsed as SSE, reconnecting with backoff when the stream
 * ends or fails, and at once after a `gap` (the server dropped events for
 * this slow reader: reconnecting fetches a fresh `hello`).
 */
import { ApiError, headers, noteAuthFailure } from './api.ts'
import { createParser } from './sse.ts'
import type { Alert, LiveHello, LogEntryWire } from './wire.ts'

export interface LiveHandlers {
  hello(h: LiveHello): void
  entry(e: LogEntryWire): void
  alert(a: Alert): void
  ack(a: { id: string; by: string; at: string; note?: string }): void
  gap(g: { dropped: number }): void
  status(s: 'connecting' | 'live' | 'reconnecting' | 'error', detail?: unknown): void
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true })
  })

async function errorOf(res: Response): Promise<ApiError> {
  try {
    const b = (await res.json()) as { code?: string; message?: string; details?: Record<string, unknown>; error?: { code?: string; message?: string } }
    const x = b.error ?? b
    return new ApiError(res.status, x.code ?? `HTTP_${res.status}`, x.message ?? res.statusText, b.details)
  } catch {
    return new ApiError(res.status, `HTTP_${res.status}`, res.statusText)
  }
}

/** Runs until `signal` aborts. */
export async function runLive(url: string, h: LiveHandlers, signal: AbortSignal): Promise<void> {
  let delay = 1000
  let retry: number | undefined
  while (!signal.aborted) {
    const attempt = new AbortController()
    const stop = () => attempt.abort()
    signal.addEventListener('abort', stop, { once: true })
    let gotHello = false
    try {
      h.status(gotHello ? 'live' : 'connecting')
      const res = await fetch(url, { headers: headers('GET', { Accept: 'text/event-stream' }), credentials: 'same-origin', cache: 'no-store', signal: attempt.signal })
      if (!res.ok) {
        const e = await errorOf(res)
        noteAuthFailure(e)
        // no point retrying what the vault refuses for good
        if (res.status === 401 || res.status === 403 || res.status === 404 || res.status === 400) {
          h.status('error', e)
          return
        }
        throw e
      }
      if (!res.body) throw new Error('the live stream has no body')
      const parser = createParser({
        onRetry: (ms) => (retry = ms),
        onEvent: (ev) => {
          let data: unknown
          try {
            data = JSON.parse(ev.data)
          } catch {
            return
          }
          switch (ev.event) {
            case 'hello':
              gotHello = true
              delay = 1000
              h.hello(data as LiveHello)
              h.status('live')
              break
            case 'entry':
              h.entry(data as LogEntryWire)
              break
            case 'alert':
              h.alert(data as Alert)
              break
            case 'ack':
              h.ack(data as { id: string; by: string; at: string })
              break
            case 'gap':
              h.gap(data as { dropped: number })
              // a fresh hello: reconnect now
              attempt.abort()
              delay = 0
              break
            default:
              break
          }
        },
      })
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        parser.feed(value)
      }
    } catch (e) {
      if (signal.aborted) return
      if (!attempt.signal.aborted) h.status('reconnecting', e)
    } finally {
      signal.removeEventListener('abort', stop)
    }
    if (signal.aborted) return
    h.status('reconnecting')
    await sleep(delay || 0, signal)
    delay = Math.min(Math.max(retry ?? 1000, delay * 2 || 1000), 30_000)
  }
}
