/**
 * `vault-server log query` and `vault-server log export`: the signing log of a
 * running vault through its admin API.
 */
import { createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import type { LogEntryWire } from '@sv/shared'
import { adminGet, adminGetJson, type AdminTarget } from './admin-client.js'
import { CliError, EXIT, type CliIo } from './io.js'

export interface LogFilterFlags {
  brand?: string
  model?: string
  serial?: string
  outcome?: string
  from?: string
  to?: string
}

/** --url/--token (or VAULT_URL/VAULT_TOKEN), --ca, --insecure: the running vault to ask. */
export function remoteTarget(io: CliIo, f: { url?: string; token?: string; ca?: string; insecure?: boolean }): AdminTarget {
  const url = f.url ?? io.env.VAULT_URL
  const token = f.token ?? io.env.VAULT_TOKEN
  if (!url) throw new CliError('--url (or VAULT_URL) is required, e.g. https://127.0.0.1:8443/v1/')
  if (!token) throw new CliError('--token (or VAULT_TOKEN) is required')
  if (f.insecure) io.err('vault-server: warning: --insecure: the server certificate is not checked\n')
  return { url, token, ...(f.ca ? { ca: f.ca } : {}), ...(f.insecure ? { insecure: true } : {}) }
}

function query(f: LogFilterFlags & { limit?: string; order?: string }, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams()
  for (const k of ['brand', 'model', 'serial', 'outcome', 'from', 'to', 'limit', 'order'] as const) {
    const v = f[k]
    if (v !== undefined) q.set(k, v)
  }
  for (const [k, v] of Object.entries(extra)) q.set(k, v)
  const s = q.toString()
  return s ? `?${s}` : ''
}

type Entry = LogEntryWire

/** One signing log entry as a line for people (log query, log follow): time, outcome, code, brand/model, serial, revision, key id prefix, client. */
export function entryLine(e: Entry): string {
  return `${e.time}  ${e.outcome.padEnd(8)} ${(e.code ?? '').padEnd(26)} ${e.brandId ?? '-'}/${e.model ?? '-'}  serial=${e.serial ?? '-'}${e.revision ? ` rev=${e.revision}` : ''}  key=${(e.deviceKeyId ?? '-').slice(0, 12)}  client=${e.clientAddress ?? '-'}`
}

export async function logQueryCommand(io: CliIo, f: LogFilterFlags & { url?: string; token?: string; ca?: string; insecure?: boolean; limit?: string; order?: string; all?: boolean; json?: boolean }): Promise<number> {
  const t = remoteTarget(io, f)
  let cursor: string | undefined
  let pages = 0
  const all: Entry[] = []
  do {
    const page: { entries: Entry[]; nextCursor?: string } = await adminGetJson(t, `admin/log${query(f, cursor ? { cursor } : {})}`)
    all.push(...page.entries)
    cursor = page.nextCursor
    if (!f.json) {
      for (const e of page.entries) {
        io.out(`${entryLine(e)}\n`)
      }
    }
  } while (f.all && cursor && ++pages < 100_000)
  if (f.json) io.out(`${JSON.stringify({ entries: all, ...(cursor && !f.all ? { nextCursor: cursor } : {}) }, null, 2)}\n`)
  else if (cursor && !f.all) io.err(`(more entries: --all, or narrow the query)\n`)
  return EXIT.OK
}

export async function logExportCommand(io: CliIo, f: LogFilterFlags & { url?: string; token?: string; ca?: string; insecure?: boolean; format?: string; out?: string }): Promise<number> {
  const format = f.format ?? 'jsonl'
  if (format !== 'jsonl' && format !== 'csv') throw new CliError('--format must be jsonl or csv')
  const res = await adminGet(remoteTarget(io, f), `admin/log/export${query(f, { format })}`)
  if (f.out) await pipeline(res, createWriteStream(f.out))
  else for await (const chunk of res) io.out(chunk.toString('utf8'))
  return EXIT.OK
}
