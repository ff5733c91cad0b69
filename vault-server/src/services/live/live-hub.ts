/**
 * Provisioning as it happens, for the dashboard's Live page: every signing
 * log entry this instance writes, fanned out as server-sent events to the
 * open Live pages that may see its store, plus per-minute counts of the last
 * hour and the clone alerts (a serial offered with another device key).
 *
 * Cost to registrations, bounded by design (docs/benchmarks.md, "Live"):
 * `publish` is called on the registration path and only counts the entry and
 * queues it (no serialisation, no I/O). A timer flushes the queue every
 * `flushMs` (500 ms): each entry is serialised once, the text of each set of
 * stores is encoded once, and each client gets one write per flush with the
 * entries of its stores, however many registrations came in between.
 *
 * Memory, bounded whatever the clients do:
 * - at most `maxClients` streams (the next is refused with SV_OVERLOADED);
 * - the queue holds at most `maxQueue` entries between two flushes (older
 *   ones are dropped and counted: every client then gets a `gap` event);
 * - a client whose socket does not take what it is sent (it stopped reading)
 *   is skipped while more than `maxBufferBytes` wait in its socket buffer,
 *   the skipped entries are counted and announced by a `gap` event when it
 *   reads again, and a client that has not drained for `stallMs` is cut off.
 *
 * Credentials are checked again every `revalidateMs`: a session that expired
 * or a token revoked ends the stream within that time.
 *
 * The counts cover what this instance wrote since it started: with several
 * instances on one PostgreSQL each Live page shows the instance it is
 * connected to (the signing log, queried by the Devices page, has them all).
 */
import { Buffer } from 'node:buffer'
import type { ServerResponse } from 'node:http'
import { VaultError } from '@sv/shared'
import type { LogEntry, LogOutcome } from '../../store/store.js'

export interface LiveBucket {
  /** epoch ms of the minute's start */
  minute: number
  storeId: string
  brandId: string
  model: string
  transport: string
  outcome: LogOutcome
  count: number
}

export interface LiveHubOptions {
  now?: () => number
  windowMinutes?: number
  maxClients?: number
  maxBufferBytes?: number
  maxQueue?: number
  flushMs?: number
  keepaliveMs?: number
  revalidateMs?: number
  stallMs?: number
  /** the wire view of an entry (services/admin/views.ts) */
  view: (e: LogEntry) => unknown
}

export interface LiveSubscription {
  /** stores whose entries the client sees; undefined: every store (the operator) */
  storeIds: ReadonlySet<string> | undefined
  /** the first event's data (built by the caller: recent entries, alerts) */
  hello: Record<string, unknown>
  /** resolves false when the caller's credentials no longer hold */
  revalidate: () => Promise<boolean>
}

interface Client {
  res: ServerResponse
  storeIds: ReadonlySet<string> | undefined
  revalidate: () => Promise<boolean>
  dropped: number
  stalledSince: number | undefined
  lastCheck: number
  lastWrite: number
  checking: boolean
}

/** Server-sent event framing; `data` is one line of JSON (JSON never holds a raw newline). */
export function sseEvent(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

export class LiveHub {
  readonly #now: () => number
  readonly #view: (e: LogEntry) => unknown
  readonly #window: number
  readonly #maxClients: number
  readonly #maxBuffer: number
  readonly #maxQueue: number
  readonly #flushMs: number
  readonly #keepaliveMs: number
  readonly #revalidateMs: number
  readonly #stallMs: number
  readonly #clients = new Set<Client>()
  /** per-minute counts: key `minute|store|brand|model|transport|outcome` */
  readonly #buckets = new Map<string, LiveBucket>()
  #queue: LogEntry[] = []
  #queueDropped = 0
  #extra: Array<{ storeId: string | undefined; text: string }> = []
  #timer: NodeJS.Timeout | undefined
  #tick: NodeJS.Timeout | undefined
  #closed = false

  constructor(o: LiveHubOptions) {
    this.#now = o.now ?? Date.now
    this.#view = o.view
    this.#window = o.windowMinutes ?? 60
    this.#maxClients = o.maxClients ?? 200
    this.#maxBuffer = o.maxBufferBytes ?? 256 * 1024
    this.#maxQueue = o.maxQueue ?? 5000
    this.#flushMs = o.flushMs ?? 500
    this.#keepaliveMs = o.keepaliveMs ?? 15_000
    this.#revalidateMs = o.revalidateMs ?? 30_000
    this.#stallMs = o.stallMs ?? 60_000
  }

  get clients(): number {
    return this.#clients.size
  }

  /** The most bytes waiting in one client's socket buffer (bounded by maxBufferBytes plus one flush). */
  get maxBufferedBytes(): number {
    let n = 0
    for (const c of this.#clients) n = Math.max(n, c.res.writableLength)
    return n
  }

  /** Bytes waiting in the clients' socket buffers, summed (a metric, and the benchmark's memory check). */
  get bufferedBytes(): number {
    let n = 0
    for (const c of this.#clients) n += c.res.writableLength
    return n
  }

  /** Called for every signing log entry once it is durable. Cheap: counts and queues. */
  publish(e: LogEntry): void {
    if (this.#closed) return
    this.#count(e)
    if (this.#clients.size === 0) return
    if (this.#queue.length >= this.#maxQueue) {
      this.#queue.shift()
      this.#queueDropped++
    }
    this.#queue.push(e)
    this.#schedule()
  }

  /** Another event for the clients that see `storeId` (all clients when undefined), e.g. an acknowledged alert. */
  broadcast(event: string, data: unknown, storeId: string | undefined): void {
    if (this.#closed || this.#clients.size === 0) return
    this.#extra.push({ storeId, text: sseEvent(event, data) })
    this.#schedule()
  }

  /** The last hour's per-minute counts of the given stores (all when undefined). */
  buckets(storeIds: ReadonlySet<string> | undefined): LiveBucket[] {
    this.#expire()
    const out: LiveBucket[] = []
    for (const b of this.#buckets.values()) if (!storeIds || storeIds.has(b.storeId)) out.push({ ...b })
    return out.sort((a, b) => a.minute - b.minute)
  }

  get windowMinutes(): number {
    return this.#window
  }

  /** Starts a stream on `res` (headers not yet sent). SV_OVERLOADED when `maxClients` are open. */
  subscribe(res: ServerResponse, s: LiveSubscription): void {
    if (this.#closed) throw new VaultError('SV_SHUTTING_DOWN', 'the vault is shutting down', { retryAfter: 5 })
    if (this.#clients.size >= this.#maxClients) throw new VaultError('SV_OVERLOADED', `${this.#maxClients} live streams are open: try again later`, { retryAfter: 30, details: { maxClients: this.#maxClients } })
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      Connection: 'keep-alive',
    })
    const now = this.#now()
    const c: Client = { res, storeIds: s.storeIds, revalidate: s.revalidate, dropped: 0, stalledSince: undefined, lastCheck: now, lastWrite: now, checking: false }
    this.#clients.add(c)
    const drop = () => this.#clients.delete(c)
    res.on('close', drop)
    res.on('error', drop)
    res.write(`retry: 3000\n${sseEvent('hello', { ...s.hello, now: new Date(now).toISOString(), windowMinutes: this.#window, buckets: this.buckets(s.storeIds) })}`)
    this.#tick ??= setInterval(() => this.#housekeep(), Math.min(this.#keepaliveMs, 5000)).unref()
  }

  close(): void {
    this.#closed = true
    if (this.#timer) clearTimeout(this.#timer)
    if (this.#tick) clearInterval(this.#tick)
    for (const c of this.#clients) c.res.end()
    this.#clients.clear()
  }

  #count(e: LogEntry): void {
    const minute = e.time - (e.time % 60_000)
    const storeId = e.storeId ?? ''
    const brandId = e.brandId ?? ''
    const model = e.model ?? ''
    const transport = e.transport ?? ''
    const key = `${minute}|${storeId}|${brandId}|${model}|${transport}|${e.outcome}`
    const b = this.#buckets.get(key)
    if (b) b.count++
    else {
      // bounded: at most window x (stores x models x transports x outcomes) buckets, and old minutes go
      if (this.#buckets.size > 50_000) this.#expire()
      if (this.#buckets.size > 50_000) return
      this.#buckets.set(key, { minute, storeId, brandId, model, transport, outcome: e.outcome, count: 1 })
    }
  }

  #expire(): void {
    const oldest = this.#now() - this.#window * 60_000
    for (const [k, b] of this.#buckets) if (b.minute + 60_000 <= oldest) this.#buckets.delete(k)
  }

  #schedule(): void {
    if (this.#timer === undefined) this.#timer = setTimeout(() => this.#flush(), this.#flushMs)
  }

  #flush(): void {
    this.#timer = undefined
    const queue = this.#queue
    const extra = this.#extra
    const queueDropped = this.#queueDropped
    this.#queue = []
    this.#extra = []
    this.#queueDropped = 0
    if (this.#clients.size === 0) return
    // each entry serialised once, whatever the number of clients
    const texts = queue.map((e) => ({ storeId: e.storeId, text: sseEvent('entry', this.#view(e)) }))
    for (const x of extra) texts.push(x)
    // clients with the same stores get the same bytes: joined and encoded once per set
    const joined = new Map<ReadonlySet<string> | undefined, Buffer>()
    const now = this.#now()
    for (const c of this.#clients) {
      if (c.res.writableLength > this.#maxBuffer) {
        // it stopped reading: skip, count, and cut it off if it never comes back
        c.dropped += texts.length + queueDropped
        c.stalledSince ??= now
        if (now - c.stalledSince > this.#stallMs) c.res.destroy()
        continue
      }
      let bytes = joined.get(c.storeIds)
      if (bytes === undefined) {
        let text = ''
        for (const t of texts) if (!c.storeIds || (t.storeId !== undefined && c.storeIds.has(t.storeId))) text += t.text
        bytes = Buffer.from(text, 'utf8')
        joined.set(c.storeIds, bytes)
      }
      const gap = c.dropped + queueDropped
      if (gap > 0) {
        c.res.write(sseEvent('gap', { dropped: gap }))
        c.lastWrite = now
      }
      c.dropped = 0
      c.stalledSince = undefined
      if (bytes.length > 0) {
        c.res.write(bytes)
        c.lastWrite = now
      }
    }
  }

  /** Keep-alives, the credential checks, and old minutes out of the counts. */
  #housekeep(): void {
    const now = this.#now()
    this.#expire()
    for (const c of this.#clients) {
      if (c.stalledSince !== undefined && now - c.stalledSince > this.#stallMs) {
        c.res.destroy()
        continue
      }
      if (now - c.lastWrite >= this.#keepaliveMs && c.res.writableLength <= this.#maxBuffer) {
        c.res.write(': keep-alive\n\n')
        c.lastWrite = now
      }
      if (!c.checking && now - c.lastCheck >= this.#revalidateMs) {
        c.checking = true
        c.lastCheck = now
        c.revalidate().then(
          (ok) => {
            c.checking = false
            if (!ok) {
              c.res.write(sseEvent('end', { reason: 'credentials', message: 'the session ended or the token was revoked: log in again' }))
              c.res.end()
            }
          },
          () => {
            c.checking = false
          },
        )
      }
    }
    if (this.#clients.size === 0 && this.#tick) {
      clearInterval(this.#tick)
      this.#tick = undefined
    }
  }
}
