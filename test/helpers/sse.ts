/**
 * A server-sent events reader for the Live tests: one real HTTP connection,
 * the stream parsed as the EventSource specification frames it (event:,
 * data:, blank line; comments skipped), and `next(name)` waiting, bounded,
 * for the next event of that name.
 */
import { request as httpRequestFn, type IncomingMessage, type ClientRequest } from 'node:http'
import { request as httpsRequestFn } from 'node:https'

export interface SseEvent {
  event: string
  data: unknown
}

export interface SseStream {
  status: number
  headers: IncomingMessage['headers']
  /** every event received so far */
  events: SseEvent[]
  /** the next event named `name` not yet taken (or already received), within `timeoutMs` */
  next(name: string, timeoutMs?: number): Promise<SseEvent>
  /** stop reading from the socket (the server's buffers fill), and resume */
  pause(): void
  resume(): void
  /** resolves when the server ends the stream */
  ended: Promise<void>
  close(): void
  /** the raw body when the answer was not a stream (an error) */
  body(): Promise<string>
}

export function openSse(url: string | URL, headers: Record<string, string> = {}): Promise<SseStream> {
  const u = typeof url === 'string' ? new URL(url) : url
  const fn = u.protocol === 'https:' ? httpsRequestFn : httpRequestFn
  return new Promise((resolve, reject) => {
    let req: ClientRequest
    const timer = setTimeout(() => {
      req.destroy(new Error(`GET ${u.href}: no answer within 15 s`))
    }, 15_000)
    req = fn(u, { headers: { accept: 'text/event-stream', ...headers }, agent: false, ...(u.protocol === 'https:' ? { rejectUnauthorized: false } : {}) }, (res) => {
      clearTimeout(timer)
      const events: SseEvent[] = []
      const taken = new Set<SseEvent>()
      const waiters: Array<{ name: string; resolve: (e: SseEvent) => void }> = []
      let buf = ''
      let raw = ''
      const isStream = String(res.headers['content-type'] ?? '').startsWith('text/event-stream')
      res.setEncoding('utf8')
      const ended = new Promise<void>((done) => {
        res.on('end', done)
        res.on('close', done)
        res.on('error', () => done())
      })
      res.on('data', (chunk: string) => {
        if (!isStream) {
          raw += chunk
          return
        }
        buf += chunk
        for (;;) {
          const i = buf.indexOf('\n\n')
          if (i < 0) break
          const block = buf.slice(0, i)
          buf = buf.slice(i + 2)
          let name = 'message'
          const data: string[] = []
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue
            if (line.startsWith('event: ')) name = line.slice(7)
            else if (line.startsWith('data: ')) data.push(line.slice(6))
          }
          if (data.length === 0) continue
          const ev: SseEvent = { event: name, data: JSON.parse(data.join('\n')) }
          events.push(ev)
          const w = waiters.findIndex((x) => x.name === name)
          if (w >= 0) {
            taken.add(ev)
            waiters.splice(w, 1)[0]!.resolve(ev)
          }
        }
      })
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        next(name, timeoutMs = 5000) {
          const have = events.find((e) => e.event === name && !taken.has(e))
          if (have) {
            taken.add(have)
            return Promise.resolve(have)
          }
          return new Promise((res2, rej) => {
            const w = { name, resolve: (e: SseEvent) => (clearTimeout(t), res2(e)) }
            const t = setTimeout(() => {
              waiters.splice(waiters.indexOf(w), 1)
              rej(new Error(`no ${name} event within ${timeoutMs} ms (got ${events.length} events, the last: ${events.slice(-5).map((e) => e.event).join(', ')})`))
            }, timeoutMs)
            waiters.push(w)
          })
        },
        pause: () => res.pause(),
        resume: () => res.resume(),
        ended,
        close: () => req.destroy(),
        body: async () => {
          await ended
          return raw
        },
      })
    })
    req.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    req.end()
  })
}
