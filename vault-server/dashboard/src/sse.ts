/**
 * Server-sent events read with fetch (so that the admin token's
 * Authorization header works as well as the session cookie), parsed as the
 * HTML standard says (event/data/id/retry fields, comments, CR/LF/CRLF line
 * ends). The parser has eventsource-parser's interface: to use that package
 * instead, replace the createParser below with
 * `export { createParser } from 'eventsource-parser'`.
 */
export interface SseEvent {
  event?: string | undefined
  data: string
  id?: string | undefined
}

export interface SseParser {
  feed(chunk: string): void
  reset(): void
}

export function createParser(cb: { onEvent: (e: SseEvent) => void; onRetry?: (ms: number) => void }): SseParser {
  let buf = ''
  let data: string[] = []
  let event: string | undefined
  let id: string | undefined
  let first = true
  let afterCR = false
  const dispatch = () => {
    if (data.length) cb.onEvent({ event, data: data.join('\n'), id })
    data = []
    event = undefined
  }
  const line = (l: string) => {
    if (l === '') return dispatch()
    if (l.startsWith(':')) return
    const i = l.indexOf(':')
    const field = i < 0 ? l : l.slice(0, i)
    let value = i < 0 ? '' : l.slice(i + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') data.push(value)
    else if (field === 'event') event = value
    else if (field === 'id') {
      if (!value.includes('\0')) id = value
    } else if (field === 'retry' && /^\d+$/.test(value)) cb.onRetry?.(Number(value))
  }
  return {
    feed(chunk: string) {
      if (first) {
        first = false
        if (chunk.startsWith('\ufeff')) chunk = chunk.slice(1)
      }
      // the LF of a CRLF whose CR ended the previous chunk
      if (afterCR && chunk.startsWith('\n')) chunk = chunk.slice(1)
      afterCR = false
      buf += chunk
      let start = 0
      for (let i = 0; i < buf.length; i++) {
        const c = buf[i]
        if (c === '\n' || c === '\r') {
          line(buf.slice(start, i))
          if (c === '\r') {
            if (i === buf.length - 1) afterCR = true
            else if (buf[i + 1] === '\n') i++
          }
          start = i + 1
        }
      }
      buf = buf.slice(start)
    },
    reset() {
      buf = ''
      data = []
      event = undefined
      first = true
      afterCR = false
    },
  }
}
