/**
 * `vault-server log follow`: provisioning outcomes of a running vault as they
 * happen, one line per signing log entry (`--json`: one JSON object per line),
 * from the admin API's live stream (GET /v1/admin/live, server-sent events,
 * the dashboard's Live page).
 *
 * For scripts, everything is bounded:
 * - `--count N` ends it (exit 0) after N printed entries; `--timeout S` after
 *   S seconds: exit 0, or exit 1 when `--count` was given and not reached
 *   ("the device did not provision in time");
 * - a lost connection (the vault restarting, a network fault, a 5xx) is
 *   retried up to `--retries` times in a row (default 10) with a backoff of
 *   1, 2, 4 ... 30 s; a refusal (401, 403, 404) is not retried. After a
 *   reconnection the entries written meanwhile are printed from the stream's
 *   first event (its last 100 entries), each once; when more may have been
 *   missed it says so on stderr;
 * - SIGINT or SIGTERM ends it with exit 0.
 *
 * Filters (`--brand`, `--model`, `--serial`, `--outcome`, `--transport`) apply
 * here; `--store S [--subtree]` asks the vault for that store's entries only
 * (what a personal token needs; an admin token sees every store).
 */
import type { IncomingMessage } from 'node:http'
import { AdminWire, type LogEntryWire } from '@sv/shared'
import { adminGet, type AdminTarget } from './admin-client.js'
import { CliError, EXIT, type CliIo } from './io.js'
import { entryLine, remoteTarget } from './log-commands.js'

export interface LogFollowFlags {
  url?: string
  token?: string
  ca?: string
  insecure?: boolean
  store?: string
  subtree?: boolean
  brand?: string
  model?: string
  serial?: string
  outcome?: string
  transport?: string
  recent?: boolean
  count?: string
  timeout?: string
  retries?: string
  json?: boolean
}

/** The live stream is silent at most 15 s (keep-alives): past this it is taken for lost. */
const IDLE_MS = 45_000
/** a server-sent event larger than this is not one the vault sends */
const MAX_EVENT_BYTES = 1024 * 1024
const OUTCOMES: readonly string[] = AdminWire.LOG_OUTCOME_IDS

function intFlag(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) throw new CliError(`--${name} must be an integer from ${min} to ${max}`)
  return n
}

type Stop = 'count' | 'timeout' | 'signal'

export async function logFollowCommand(io: CliIo, f: LogFollowFlags): Promise<number> {
  const count = intFlag('count', f.count, 1, 1_000_000)
  const timeoutS = intFlag('timeout', f.timeout, 1, 7 * 86_400)
  const retries = intFlag('retries', f.retries, 0, 1000) ?? 10
  if (f.outcome !== undefined && !OUTCOMES.includes(f.outcome)) throw new CliError(`--outcome must be one of ${OUTCOMES.join(', ')}`)
  if (f.transport !== undefined && f.transport !== 'https' && f.transport !== 'mqtt') throw new CliError('--transport must be https or mqtt')
  if (f.subtree && !f.store) throw new CliError('--subtree needs --store')
  const abort = new AbortController()
  const target: AdminTarget = { ...remoteTarget(io, f), timeoutMs: IDLE_MS, signal: abort.signal }
  const q = new URLSearchParams()
  if (f.store) q.set('store', f.store)
  if (f.subtree) q.set('subtree', 'true')
  const path = `admin/live${q.size ? `?${q}` : ''}`

  const wanted = (e: LogEntryWire): boolean =>
    (f.brand === undefined || e.brandId === f.brand) &&
    (f.model === undefined || e.model === f.model) &&
    (f.serial === undefined || e.serial === f.serial) &&
    (f.outcome === undefined || e.outcome === f.outcome) &&
    (f.transport === undefined || e.transport === f.transport)

  let printed = 0
  /** the newest entry id seen (ids sort in time order, store/log-id.ts) */
  let lastId: string | undefined
  let stopped: Stop | undefined
  let current: IncomingMessage | undefined
  let wake: (() => void) | undefined
  const stop = (why: Stop): void => {
    stopped ??= why
    abort.abort()
    current?.destroy()
    wake?.()
  }
  const onSignal = (): void => stop('signal')
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const timer = timeoutS === undefined ? undefined : setTimeout(() => stop('timeout'), timeoutS * 1000)

  /** Prints an entry once (by id) when it passes the filters; true when --count is reached. */
  const show = (e: LogEntryWire): boolean => {
    if (lastId !== undefined && e.id <= lastId) return false
    lastId = e.id
    if (!wanted(e)) return false
    io.out(f.json ? `${JSON.stringify(e)}\n` : `${entryLine(e)}\n`)
    printed++
    if (count !== undefined && printed >= count) {
      stop('count')
      return true
    }
    return false
  }

  try {
    let failures = 0
    let first = true
    while (stopped === undefined) {
      let delivered = false
      try {
        const res = await adminGet(target, path)
        current = res
        if (stopped !== undefined) break
        const started = Date.now()
        await readEvents(res, (event, data) => {
          if (event === 'hello') {
            const recent = ((data as { recent?: LogEntryWire[] }).recent ?? []).filter((e) => typeof e?.id === 'string')
            if (first && !f.recent) lastId = recent.at(-1)?.id ?? ''
            else {
              if (!first && lastId !== undefined && recent.length >= 100 && recent[0]!.id > lastId) io.err('vault-server: log follow: reconnected; entries may be missing between the two connections (see log query --from)\n')
              for (const e of recent) if (show(e)) return
            }
            first = false
          } else if (event === 'entry') {
            delivered = true
            show(data as LogEntryWire)
          } else if (event === 'gap') {
            io.err(`vault-server: log follow: the vault dropped ${(data as { dropped?: number }).dropped ?? '?'} entries for this stream (it read too slowly)\n`)
          } else if (event === 'end') {
            throw new CliError(`the vault ended the stream: ${(data as { message?: string }).message ?? 'no reason given'}`, EXIT.FAILED)
          }
        })
        if (stopped !== undefined) break
        // the vault closed the stream (restarting): reconnect; a stream that was up a while starts the count again
        if (delivered || Date.now() - started >= 10_000) failures = 0
        throw new CliError('the vault closed the stream', EXIT.UNAVAILABLE)
      } catch (e) {
        if (stopped !== undefined) break
        if (!(e instanceof CliError) || e.exitCode !== EXIT.UNAVAILABLE) throw e
        failures++
        if (failures > retries) throw new CliError(`${e.message}; gave up after ${retries} ${retries === 1 ? 'retry' : 'retries'}`, EXIT.UNAVAILABLE)
        const delayS = Math.min(30, 2 ** (failures - 1))
        io.err(`vault-server: log follow: ${e.message}; reconnecting in ${delayS} s (${failures}/${retries})\n`)
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delayS * 1000)
          wake = () => {
            clearTimeout(t)
            resolve()
          }
        })
        wake = undefined
      } finally {
        current?.destroy()
        current = undefined
      }
    }
  } finally {
    if (timer) clearTimeout(timer)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  if (stopped === 'timeout' && count !== undefined) {
    io.err(`vault-server: log follow: ${printed} of ${count} entries before the timeout (${timeoutS} s)\n`)
    return EXIT.FAILED
  }
  return EXIT.OK
}

/**
 * Reads server-sent events (event:, data:, blank line; comments skipped)
 * until the stream ends; `on` may throw to end it. Resolves at the end,
 * rejects (CliError, exit 3) when the connection breaks.
 */
async function readEvents(res: IncomingMessage, on: (event: string, data: unknown) => void): Promise<void> {
  if (!String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    res.destroy()
    throw new CliError(`the vault did not answer with an event stream (${res.headers['content-type'] ?? 'no content type'})`, EXIT.UNAVAILABLE)
  }
  res.setEncoding('utf8')
  let buf = ''
  try {
    for await (const chunk of res as AsyncIterable<string>) {
      buf += chunk
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i)
        buf = buf.slice(i + 2)
        let event = 'message'
        let data = ''
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7)
          else if (line.startsWith('data: ')) data += line.slice(6)
        }
        if (data === '') continue
        let parsed: unknown
        try {
          parsed = JSON.parse(data)
        } catch {
          continue
        }
        on(event, parsed)
      }
      if (buf.length > MAX_EVENT_BYTES) throw new CliError('the event stream sent an event larger than 1 MiB', EXIT.UNAVAILABLE)
    }
  } catch (e) {
    if (e instanceof CliError) throw e
    throw new CliError(`the connection to the vault broke: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.UNAVAILABLE)
  }
}
