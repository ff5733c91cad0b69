import { VaultError } from '@sv/shared'
import type { AuditEntry, AuditHead, AuditSeal, PivotRequest, PivotRequestStatus, PivotRule } from '../records.js'
import type { AuditPage, AuditQuery, AuditRepository, MetaRepository, PivotRepository } from '../store.js'
import { AUDIT_SCAN_BUDGET, normalizeAuditQuery, toAuditPage, type NormalizedAuditQuery } from '../audit-query.js'
import { type Db, type PgContext, appendAudit } from './context.js'
import { PIVOT_REQUEST_COLUMNS, PIVOT_RULE_COLUMNS, auditFromRow, insertSql, pivotRequestFromRow, pivotRequestParams, pivotRuleFromRow, pivotRuleParams } from './rows.js'

const EXPORT_BATCH = 500

/** The filters as SQL; `action` ending in '.' is a prefix. */
async function selectAudit(db: Db, q: NormalizedAuditQuery, after: number | undefined, limit: number): Promise<AuditEntry[]> {
  const where: string[] = []
  const params: unknown[] = []
  const add = (sql: string, value: unknown): void => {
    params.push(value)
    where.push(sql.replace('?', `$${params.length}`))
  }
  if (q.storeIds !== undefined) add('store_id = ANY(?)', q.storeIds)
  if (q.brandId !== undefined) add('brand_id = ?', q.brandId)
  if (q.actorId !== undefined) add('actor_id = ?', q.actorId)
  if (q.action !== undefined) {
    if (q.action.endsWith('.')) add("starts_with(action, ?)", q.action)
    else add('action = ?', q.action)
  }
  if (q.outcome !== undefined) add('outcome = ?', q.outcome)
  if (q.from !== undefined) add('logged_at >= ?', q.from)
  if (q.to !== undefined) add('logged_at < ?', q.to)
  if (after !== undefined) add(q.order === 'asc' ? 'seq > ?' : 'seq < ?', after)
  params.push(limit)
  const sql = `SELECT entry FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${q.order === 'asc' ? 'ASC' : 'DESC'} LIMIT $${params.length}`
  return (await db.query(sql, params)).rows.map(auditFromRow)
}

export class PgAudit implements AuditRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  head(): Promise<AuditHead> {
    return this.#c.one('SELECT seq, hash FROM audit_head WHERE one', [], (r) => ({ seq: Number(r.seq), hash: r.hash as string })).then((h) => h!)
  }

  append(seal: AuditSeal): Promise<AuditEntry> {
    return this.#c.transaction((c) => appendAudit(c, seal))
  }

  query(query: AuditQuery): Promise<AuditPage> {
    return this.#c.run(async (db) => {
      const q = normalizeAuditQuery(query)
      // the database filters with its indexes; the page size bounds the work
      return toAuditPage(await selectAudit(db, q, q.after, Math.min(q.limit + 1, AUDIT_SCAN_BUDGET)), q.limit)
    })
  }

  async *export(query: Omit<AuditQuery, 'limit' | 'cursor'>): AsyncIterable<AuditEntry> {
    const q = normalizeAuditQuery({ ...query, limit: undefined, cursor: undefined })
    let after: number | undefined
    for (;;) {
      const batch = await this.#c.run((db) => selectAudit(db, q, after, EXPORT_BATCH))
      yield* batch
      if (batch.length < EXPORT_BATCH) return
      after = batch[batch.length - 1]!.seq
    }
  }
}

export class PgPivots implements PivotRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  putRule(rule: PivotRule, audit?: AuditSeal): Promise<void> {
    return this.#c.audited(audit, async (db) => void (await db.query(insertSql('pivot_rules', PIVOT_RULE_COLUMNS), pivotRuleParams(rule))), true)
  }

  deleteRule(id: string, audit?: AuditSeal): Promise<PivotRule | undefined> {
    return this.#c.transaction(async (c) => {
      const r = await c.query('DELETE FROM pivot_rules WHERE id = $1 RETURNING *', [id])
      if (r.rowCount === 0) return undefined
      if (audit) await appendAudit(c, audit)
      return pivotRuleFromRow(r.rows[0]!)
    })
  }

  getRule(id: string): Promise<PivotRule | undefined> {
    return this.#c.one('SELECT * FROM pivot_rules WHERE id = $1', [id], pivotRuleFromRow)
  }

  listRules(filter: { brandId?: string; fromModel?: string; storeId?: string }): Promise<PivotRule[]> {
    const where: string[] = []
    const params: unknown[] = []
    if (filter.brandId !== undefined) where.push(`brand_id = $${params.push(filter.brandId)}`)
    if (filter.fromModel !== undefined) where.push(`from_model = $${params.push(filter.fromModel)}`)
    if (filter.storeId !== undefined) where.push(`store_id = $${params.push(filter.storeId)}`)
    return this.#c.all(`SELECT * FROM pivot_rules ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`, params, pivotRuleFromRow)
  }

  createRequest(request: PivotRequest): Promise<void> {
    return this.#c.exec(insertSql('pivot_requests', PIVOT_REQUEST_COLUMNS), pivotRequestParams(request))
  }

  getRequest(requestId: string): Promise<PivotRequest | undefined> {
    return this.#c.one('SELECT * FROM pivot_requests WHERE request_id = $1', [requestId], pivotRequestFromRow)
  }

  decideRequest(requestId: string, decision: { status: Exclude<PivotRequestStatus, 'pending'>; at: number; by: string; reason?: string }, audit?: AuditSeal): Promise<PivotRequest> {
    return this.#c.transaction(async (c) => {
      const r = await c.query(
        "UPDATE pivot_requests SET status = $2, decided_at = $3, decided_by = $4, reason = $5 WHERE request_id = $1 AND status = 'pending' RETURNING *",
        [requestId, decision.status, decision.at, decision.by, decision.reason ?? null],
      )
      if (r.rowCount === 0) {
        const cur = await c.query('SELECT status FROM pivot_requests WHERE request_id = $1', [requestId])
        if (cur.rowCount === 0) throw new VaultError('SV_PIVOT_NOT_FOUND', 'no such pivot request', { details: { requestId } })
        throw new VaultError('SV_PIVOT_DECIDED', `the pivot request was ${cur.rows[0]!.status} already`, { details: { requestId, status: cur.rows[0]!.status } })
      }
      if (audit) await appendAudit(c, audit)
      return pivotRequestFromRow(r.rows[0]!)
    })
  }

  listRequests(filter: { storeId: string; status?: PivotRequestStatus; limit?: number }): Promise<PivotRequest[]> {
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000)
    return filter.status === undefined
      ? this.#c.all('SELECT * FROM pivot_requests WHERE store_id = $1 ORDER BY created_at DESC, request_id DESC LIMIT $2', [filter.storeId, limit], pivotRequestFromRow)
      : this.#c.all('SELECT * FROM pivot_requests WHERE store_id = $1 AND status = $2 ORDER BY created_at DESC, request_id DESC LIMIT $3', [filter.storeId, filter.status, limit], pivotRequestFromRow)
  }
}

export class PgMeta implements MetaRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  get(name: string): Promise<string | undefined> {
    return this.#c.one('SELECT value FROM meta WHERE name = $1', [name], (r) => r.value as string)
  }

  put(name: string, value: string, onlyIfAbsent = false): Promise<boolean> {
    const conflict = onlyIfAbsent ? 'DO NOTHING' : 'DO UPDATE SET value = EXCLUDED.value'
    return this.#c.run(async (db) => (await db.query(`INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) ${conflict}`, [name, value])).rowCount === 1)
  }
}
