/**
 * The CLI's store administration commands: stores, people and roles,
 * personal and admin tokens, the audit log, pivots, system users and model
 * moves. Each works against a running vault (`--url --token`) or on the
 * vault host's data directory (`--data`), through the same admin API
 * (admin-target.ts). `--json` prints the API's answer; otherwise a line per
 * item for people.
 */
import { createWriteStream } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import type { AdminWire } from '@sv/shared'
import { rolesMarkdown, permissionTable } from '../services/admin/permissions.js'
import { adminJson, adminRequest, type AdminTarget } from './admin-client.js'
import { withAdmin, type TargetFlags } from './admin-target.js'
import { CliError, EXIT, type CliIo } from './io.js'

type Json = Record<string, unknown>

function print(io: CliIo, json: boolean | undefined, data: unknown, text: () => string): void {
  io.out(json ? `${JSON.stringify(data, null, 2)}\n` : text())
}

function qs(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== false) q.set(k, String(v))
  const s = q.toString()
  return s ? `?${s}` : ''
}

const enc = encodeURIComponent

// --- stores -------------------------------------------------------------------------------------

export interface StoreFlags extends TargetFlags {
  json?: boolean
  brand?: string
  store?: string
  id?: string
  parent?: string
  kind?: string
  displayName?: string
  partnerName?: string
  partnerRelation?: string
  noPartner?: boolean
  requireReview?: string | boolean
}

function storeLine(s: AdminWire.StoreWire): string {
  return `${s.id}\t${s.kind}\t${s.brandId}\t${s.parentId ?? '-'}\t${s.displayName}${s.partner ? `\tpartner ${s.partner.name} (${s.partner.relation})` : ''}${s.requirePivotReview ? '\tpivots reviewed' : ''}${s.roles?.length ? `\troles ${s.roles.join(',')}` : ''}\n`
}

export function storeList(io: CliIo, f: StoreFlags): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ stores: AdminWire.StoreWire[] }>(t, 'GET', `admin/stores${qs({ brand: f.brand })}`)
    print(io, f.json, r, () => r.stores.map(storeLine).join('') || 'no stores\n')
    return EXIT.OK
  })
}

export function storeShow(io: CliIo, f: StoreFlags & { store: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ store: AdminWire.StoreWire }>(t, 'GET', `admin/stores/${enc(f.store)}`)
    print(io, f.json, r, () => storeLine(r.store))
    return EXIT.OK
  })
}

function partnerOf(f: StoreFlags): Json | undefined {
  if (f.partnerName === undefined && f.partnerRelation === undefined) return undefined
  if (!f.partnerName || !f.partnerRelation) throw new CliError('--partner-name and --partner-relation go together')
  return { name: f.partnerName, relation: f.partnerRelation }
}

function reviewFlag(v: string | boolean | undefined): boolean | undefined {
  if (v === undefined || typeof v === 'boolean') return v
  if (v !== 'true' && v !== 'false') throw new CliError('--require-review takes true or false')
  return v === 'true'
}

export function storeCreate(io: CliIo, f: StoreFlags & { id: string; parent: string; kind: string; displayName: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const partner = partnerOf(f)
    const review = reviewFlag(f.requireReview)
    const r = await adminJson<{ store: AdminWire.StoreWire }>(t, 'POST', 'admin/stores', { id: f.id, parent: f.parent, kind: f.kind, displayName: f.displayName, ...(partner ? { partner } : {}), ...(review !== undefined ? { requirePivotReview: review } : {}) })
    print(io, f.json, r, () => `created store ${r.store.id} (${r.store.kind}) under ${r.store.parentId}\n`)
    return EXIT.OK
  })
}

export function storeUpdate(io: CliIo, f: StoreFlags & { store: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const partner = partnerOf(f)
    const review = reviewFlag(f.requireReview)
    const body: Json = { ...(f.displayName ? { displayName: f.displayName } : {}), ...(review !== undefined ? { requirePivotReview: review } : {}), ...(partner ? { partner } : f.noPartner ? { partner: null } : {}) }
    const r = await adminJson<{ store: AdminWire.StoreWire }>(t, 'PATCH', `admin/stores/${enc(f.store)}`, body)
    print(io, f.json, r, () => storeLine(r.store))
    return EXIT.OK
  })
}

// --- people and roles ------------------------------------------------------------------------------

export function userList(io: CliIo, f: TargetFlags & { json?: boolean }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ people: Array<{ id: string; email: string; disabled: boolean; lastLoginAt?: string; stores: Array<{ storeId: string; role: string; inheritable: boolean }> }> }>(t, 'GET', 'admin/people')
    print(io, f.json, r, () => r.people.map((p) => `${p.email}\t${p.id}\t${p.stores.map((s) => `${s.storeId}:${s.role}${s.inheritable ? '+' : ''}`).join(',') || '-'}\t${p.lastLoginAt ? `last login ${p.lastLoginAt}` : 'never logged in'}${p.disabled ? '\tdisabled' : ''}\n`).join('') || 'no people\n')
    return EXIT.OK
  })
}

export function roleList(io: CliIo, f: TargetFlags & { json?: boolean; store: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ members: AdminWire.MemberWire[] }>(t, 'GET', `admin/stores/${enc(f.store)}/members`)
    print(io, f.json, r, () => r.members.map((m) => `${m.email}\t${m.role}${m.inheritable ? ' (inheritable)' : ''}\tgranted by ${m.grantedBy}\n`).join('') || 'no members\n')
    return EXIT.OK
  })
}

export function roleSet(io: CliIo, f: TargetFlags & { json?: boolean; store: string; email: string; role: string; inheritable?: boolean; displayName?: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ member: AdminWire.MemberWire }>(t, 'PUT', `admin/stores/${enc(f.store)}/members/${enc(f.email)}`, { role: f.role, ...(f.inheritable ? { inheritable: true } : {}), ...(f.displayName ? { displayName: f.displayName } : {}) })
    print(io, f.json, r, () => `${r.member.email} is ${r.member.role} in ${f.store}${r.member.inheritable ? ' and the stores below' : ''}\n`)
    return EXIT.OK
  })
}

export function roleRemove(io: CliIo, f: TargetFlags & { json?: boolean; store: string; email: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<Json>(t, 'DELETE', `admin/stores/${enc(f.store)}/members/${enc(f.email)}`)
    print(io, f.json, r, () => `${f.email} has no role in ${f.store} any more\n`)
    return EXIT.OK
  })
}

/** The permission table, from the code (no vault needed). */
export async function rolesCommand(io: CliIo, f: { markdown?: boolean; json?: boolean }): Promise<number> {
  if (f.markdown) io.out(rolesMarkdown())
  else if (f.json) io.out(`${JSON.stringify(permissionTable(), null, 2)}\n`)
  else {
    const t = permissionTable()
    for (const [role, r] of Object.entries(t.roles)) io.out(`${role}\t${r.name}\t${r.permissions.join(', ')}\n`)
  }
  return EXIT.OK
}

// --- tokens ----------------------------------------------------------------------------------------------

export function remoteTokenList(io: CliIo, f: TargetFlags & { json?: boolean; store?: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ tokens: AdminWire.TokenWire[] }>(t, 'GET', f.store ? `admin/stores/${enc(f.store)}/tokens` : 'admin/tokens')
    print(io, f.json, r, () => r.tokens.map((x) => `${x.id}\t${x.kind}\t${x.name}\t${x.email ?? (x.roles ?? []).join(',')}\t${x.revokedAt ? `revoked ${x.revokedAt}` : x.expiresAt ? `expires ${x.expiresAt}` : 'no expiry'}\n`).join('') || 'no tokens\n')
    return EXIT.OK
  })
}

/**
 * Revokes a token by the id `token list` shows (12 hex digits); a unique
 * prefix of one of the caller's unrevoked tokens (the operator: the admin
 * tokens) is enough. Audited as token.revoked: over --url as the caller, with
 * --data as the cli operator.
 */
export function tokenRevoke(io: CliIo, f: TargetFlags & { json?: boolean; id: string }): Promise<number> {
  if (!/^[0-9a-f]{4,12}$/.test(f.id)) throw new CliError(`--id ${f.id}: a token id is 12 hex digits (token list shows them); 4 or more of them are enough`)
  return withAdmin(io, f, async (t) => {
    let id = f.id
    if (id.length < 12) {
      const mine = (await adminJson<{ tokens: AdminWire.TokenWire[] }>(t, 'GET', 'admin/tokens')).tokens.filter((x) => x.revokedAt === undefined && x.id.startsWith(id))
      if (mine.length !== 1) throw new CliError(mine.length === 0 ? `no token with id ${f.id}` : `id ${f.id} is ambiguous: give more of it`, EXIT.FAILED)
      id = mine[0]!.id
    }
    const r = await adminJson<{ token: AdminWire.TokenWire }>(t, 'DELETE', `admin/tokens/${enc(id)}`)
    print(io, f.json, r, () => `revoked ${r.token.name} (${r.token.id})\n`)
    return EXIT.OK
  })
}

// --- audit -----------------------------------------------------------------------------------------------

export interface AuditFlags extends TargetFlags {
  json?: boolean
  store?: string
  subtree?: boolean
  brand?: string
  actor?: string
  action?: string
  outcome?: string
  from?: string
  to?: string
  limit?: string
  order?: string
  all?: boolean
  out?: string
}

function auditParams(f: AuditFlags): Record<string, string | boolean | undefined> {
  return { store: f.store, subtree: f.subtree ? 'true' : undefined, brand: f.brand, actor: f.actor, action: f.action, outcome: f.outcome, from: f.from, to: f.to }
}

export function auditQuery(io: CliIo, f: AuditFlags): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const all: AdminWire.AuditEntryWire[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await adminJson<{ entries: AdminWire.AuditEntryWire[]; nextCursor?: string }>(t, 'GET', `admin/audit${qs({ ...auditParams(f), limit: f.limit, order: f.order, cursor })}`)
      all.push(...page.entries)
      cursor = page.nextCursor
      if (!f.json) for (const e of page.entries) io.out(`${e.seq}\t${e.time}\t${e.outcome}\t${e.action}\t${e.actor.kind}:${e.actor.email ?? e.actor.name ?? e.actor.id}\t${e.storeId ?? '-'}\t${e.target ? `${e.target.type}:${e.target.id}` : '-'}\n`)
    } while (f.all && cursor && ++pages < 100_000)
    if (f.json) io.out(`${JSON.stringify({ entries: all, ...(cursor && !f.all ? { nextCursor: cursor } : {}) }, null, 2)}\n`)
    else if (cursor && !f.all) io.err('(more entries: --all, or narrow the query)\n')
    return EXIT.OK
  })
}

export function auditExport(io: CliIo, f: AuditFlags): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const res = await adminRequest(t, 'GET', `admin/audit/export${qs({ ...auditParams(f), format: 'jsonl' })}`)
    if (f.out) await pipeline(res, createWriteStream(f.out))
    else for await (const chunk of res) io.out(chunk.toString('utf8'))
    return EXIT.OK
  })
}

/** Checks the whole chain; exit 1 (with each problem on stderr) when an entry was changed, removed or reordered. */
export function auditVerify(io: CliIo, f: AuditFlags): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<AdminWire.AuditReportWire>(t, 'GET', 'admin/audit/verify')
    print(io, f.json, r, () => (r.ok ? `audit log OK: ${r.entries} entries, head ${r.head.seq} ${r.head.hash}${r.macChecked ? '' : ' (macs not checked)'}\n` : `audit log BROKEN (SV_AUDIT_BROKEN): ${r.problems.length} problem(s) in ${r.entries} entries\n`))
    if (!r.ok && !f.json) for (const p of r.problems) io.err(`  entry ${p.seq}: ${p.kind}: ${p.detail}\n`)
    return r.ok ? EXIT.OK : EXIT.FAILED
  })
}

// --- pivots, system users, model moves ------------------------------------------------------------------

export function pivotList(io: CliIo, f: TargetFlags & { json?: boolean; store: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ pivots: AdminWire.PivotRuleWire[] }>(t, 'GET', `admin/stores/${enc(f.store)}/pivots`)
    print(io, f.json, r, () => r.pivots.map((p) => `${p.id}\t${p.fromModel} -> ${p.toModel}\t${p.serial ?? '*'}\t${p.storeId}\n`).join('') || 'no pivots\n')
    return EXIT.OK
  })
}

export function pivotAllow(io: CliIo, f: TargetFlags & { json?: boolean; store: string; fromModel: string; toModel: string; serial?: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ pivot: AdminWire.PivotRuleWire }>(t, 'POST', `admin/stores/${enc(f.store)}/pivots`, { fromModel: f.fromModel, toModel: f.toModel, ...(f.serial ? { serial: f.serial } : {}) })
    print(io, f.json, r, () => `allowed ${r.pivot.fromModel} -> ${r.pivot.toModel} for ${r.pivot.serial ?? 'every serial'} (${r.pivot.id})\n`)
    return EXIT.OK
  })
}

export function pivotRemove(io: CliIo, f: TargetFlags & { json?: boolean; store: string; id: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<Json>(t, 'DELETE', `admin/stores/${enc(f.store)}/pivots/${enc(f.id)}`)
    print(io, f.json, r, () => `removed ${f.id}\n`)
    return EXIT.OK
  })
}

export function pivotRequests(io: CliIo, f: TargetFlags & { json?: boolean; store: string; status?: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ requests: AdminWire.PivotRequestWire[] }>(t, 'GET', `admin/stores/${enc(f.store)}/pivot-requests${qs({ status: f.status })}`)
    print(io, f.json, r, () => r.requests.map((p) => `${p.requestId}\t${p.status}\t${p.serial}\t${p.fromModel} -> ${p.toModel}\t${p.createdAt}${p.reason ? `\t${p.reason}` : ''}\n`).join('') || 'no pivot requests\n')
    return EXIT.OK
  })
}

export function pivotDecide(io: CliIo, f: TargetFlags & { json?: boolean; store: string; requestId: string; reason?: string }, accept: boolean): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ request: AdminWire.PivotRequestWire }>(t, 'POST', `admin/stores/${enc(f.store)}/pivot-requests/${enc(f.requestId)}/${accept ? 'accept' : 'reject'}`, f.reason ? { reason: f.reason } : {})
    print(io, f.json, r, () => `${r.request.serial}: ${r.request.status}\n`)
    return EXIT.OK
  })
}

export function modelMove(io: CliIo, f: TargetFlags & { json?: boolean; brand: string; model: string; store: string }): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ model: AdminWire.ModelWire }>(t, 'POST', `admin/models/${enc(f.brand)}/${enc(f.model)}/move`, { storeId: f.store })
    print(io, f.json, r, () => `${f.brand}/${f.model} is in store ${r.model.storeId} (model assertion revision ${r.model.revision})\n`)
    return EXIT.OK
  })
}

export interface SystemUserFlags extends TargetFlags {
  json?: boolean
  store: string
  email: string
  username: string
  name?: string
  passwordFile?: string
  passwordHash?: string
  sshKey?: string[]
  model?: string[]
  serial?: string[]
  since?: string
  until?: string
  forcePasswordChange?: boolean
  out?: string
}

/** Signs a system-user assertion (the password is read from a file, never from the command line). */
export function systemUserSign(io: CliIo, f: SystemUserFlags): Promise<number> {
  return withAdmin(io, f, async (t: AdminTarget) => {
    let password: string | undefined
    if (f.passwordFile) {
      try {
        password = (await readFile(f.passwordFile, 'utf8')).replace(/\r?\n$/, '')
      } catch (e) {
        throw new CliError(`cannot read --password-file ${f.passwordFile}: ${(e as NodeJS.ErrnoException).code}`)
      }
    }
    const body: Json = {
      email: f.email,
      username: f.username,
      ...(f.name ? { name: f.name } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(f.passwordHash ? { passwordHash: f.passwordHash } : {}),
      ...(f.sshKey?.length ? { sshKeys: f.sshKey } : {}),
      models: f.model ?? [],
      ...(f.serial?.length ? { serials: f.serial } : {}),
      ...(f.since ? { since: f.since } : {}),
      ...(f.until ? { until: f.until } : {}),
      ...(f.forcePasswordChange ? { forcePasswordChange: true } : {}),
    }
    const r = await adminJson<{ assertion: string }>(t, 'POST', `admin/stores/${enc(f.store)}/system-users`, body)
    if (f.out) await writeFile(f.out, r.assertion)
    print(io, f.json, r, () => (f.out ? `wrote ${f.out}\n` : r.assertion))
    return EXIT.OK
  })
}
