/**
 * Admin operations that read the logs (signing log, audit log, a store's
 * registration figures) and the pivot (remodel) allow-lists and requests.
 */
import { VaultError, type AdminWire } from '@sv/shared'
import { LOG_OUTCOMES, type AuditQuery, type LogEntry, type LogOutcome, type LogQuery, type PivotRule } from '../../store/store.js'
import { randomText } from '../../random.js'
import { type Principal, type StoreTree, labelOf } from './access.js'
import { auditView } from './audit.js'
import { type AdminCore, type RequestContext, notFound } from './core.js'
import type { StorePermission } from './permissions.js'
import { auditEntryView, logEntryView, pivotRequestView, pivotRuleView } from './views.js'
import type { AuditReport } from './audit.js'

/** A log query as the admin API takes it: the filters, and the store whose view of the log it is. */
export type ScopedLogQuery = Omit<LogQuery, 'storeIds'> & { store?: string; subtree?: boolean }
export type ScopedAuditQuery = Omit<AuditQuery, 'storeIds'> & { store?: string; subtree?: boolean }

/** Entries a store's figures are counted over, at most. */
const METRICS_SCAN_LIMIT = 200_000

export class LogOps {
  readonly #c: AdminCore

  constructor(core: AdminCore) {
    this.#c = core
  }

  /**
   * The stores a log query covers: the store asked for (the permission there),
   * with `subtree` every store below it where the caller holds it too. The
   * operator may leave the store out (the whole log); everyone else names one.
   */
  async #scope(p: Principal, ctx: RequestContext, store: string | undefined, subtree: boolean | undefined, permission: StorePermission): Promise<string[] | undefined> {
    if (store === undefined) {
      if (p.kind === 'operator') return undefined
      throw new VaultError('SV_REQUEST_INVALID', 'name the store whose log you read (store=...)', { details: { field: 'store' } })
    }
    const { tree } = await this.#c.store(p, ctx, store, permission)
    if (!subtree) return [store]
    return this.#below(p, tree, store, permission)
  }

  #below(p: Principal, tree: StoreTree, store: string, permission: StorePermission): string[] {
    return tree
      .subtree(store)
      .filter((s) => this.#c.d.access.allows(p, tree, permission, s.id))
      .map((s) => s.id)
  }

  async queryLog(p: Principal, ctx: RequestContext, q: ScopedLogQuery): Promise<AdminWire.LogPageWire> {
    const { store, subtree, ...rest } = q
    const storeIds = await this.#scope(p, ctx, store, subtree, 'log.read')
    const page = await this.#c.d.store.signingLog.query({ ...rest, ...(storeIds ? { storeIds } : {}) })
    return { entries: page.entries.map(logEntryView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) }
  }

  /** The export's selection, checked (log.export) before the first entry is read. */
  async exportLog(p: Principal, ctx: RequestContext, q: Omit<ScopedLogQuery, 'limit' | 'cursor'>): Promise<AsyncIterable<LogEntry>> {
    const { store, subtree, ...rest } = q
    const storeIds = await this.#scope(p, ctx, store, subtree, 'log.export')
    return this.#c.d.store.signingLog.export({ ...rest, ...(storeIds ? { storeIds } : {}) })
  }

  /**
   * Registration figures of a store (and, with subtree, the stores below):
   * outcomes per model over a time window (default the last 24 h), counted
   * from the signing log so every instance's registrations are in them.
   */
  async storeMetrics(p: Principal, ctx: RequestContext, storeId: string, o: { from?: number; to?: number; subtree?: boolean }): Promise<{ store: string; from: string; to: string; models: Record<string, Record<LogOutcome, number>>; total: Record<LogOutcome, number>; truncated: boolean }> {
    const storeIds = (await this.#scope(p, ctx, storeId, o.subtree, 'metrics.read'))!
    const to = o.to ?? this.#c.d.now()
    const from = o.from ?? to - 86_400_000
    const zero = (): Record<LogOutcome, number> => Object.fromEntries(LOG_OUTCOMES.map((x) => [x, 0])) as Record<LogOutcome, number>
    const models: Record<string, Record<LogOutcome, number>> = {}
    const total = zero()
    let n = 0
    let truncated = false
    for await (const e of this.#c.d.store.signingLog.export({ storeIds, from, to })) {
      if (++n > METRICS_SCAN_LIMIT) {
        truncated = true
        break
      }
      const key = `${e.brandId ?? ''}/${e.model ?? ''}`
      models[key] ??= zero()
      models[key]![e.outcome]++
      total[e.outcome]++
    }
    return { store: storeId, from: new Date(from).toISOString(), to: new Date(to).toISOString(), models, total, truncated }
  }

  // --- audit ------------------------------------------------------------------------------------

  async queryAudit(p: Principal, ctx: RequestContext, q: ScopedAuditQuery): Promise<{ entries: AdminWire.AuditEntryWire[]; nextCursor?: string }> {
    const { store, subtree, ...rest } = q
    const storeIds = await this.#scope(p, ctx, store, subtree, 'audit.read')
    const page = await this.#c.d.store.audit.query({ ...rest, ...(storeIds ? { storeIds } : {}) })
    return { entries: page.entries.map(auditEntryView), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) }
  }

  async exportAudit(p: Principal, ctx: RequestContext, q: Omit<ScopedAuditQuery, 'limit' | 'cursor'>): Promise<AsyncIterable<AdminWire.AuditEntryWire>> {
    const { store, subtree, ...rest } = q
    const storeIds = await this.#scope(p, ctx, store, subtree, 'audit.read')
    const it = this.#c.d.store.audit.export({ ...rest, ...(storeIds ? { storeIds } : {}) })
    return (async function* () {
      for await (const e of it) yield auditEntryView(e)
    })()
  }

  /** The whole chain, checked (the operator's: audit.verify). */
  async verifyAudit(p: Principal, ctx: RequestContext): Promise<AuditReport> {
    await this.#c.authorize(p, ctx, await this.#c.tree(), 'audit.verify', 'vault', () => new VaultError('SV_NOT_FOUND', 'no such audit log'), undefined)
    const head = await this.#c.d.store.audit.head()
    const report = await this.#c.d.audit.verify(this.#c.d.store.audit.export({}), head)
    this.#c.d.log[report.ok ? 'info' : 'error']({ ok: report.ok, entries: report.entries, problems: report.problems.length }, 'audit.verified')
    return report
  }

  // --- pivots -------------------------------------------------------------------------------------

  /** Pivot rules into the store's models and out of them (pivot.read). */
  async listPivots(p: Principal, ctx: RequestContext, storeId: string): Promise<AdminWire.PivotRuleWire[]> {
    const { store } = await this.#c.store(p, ctx, storeId, 'pivot.read')
    const own = new Set((await this.#c.d.store.brands.listModels({ storeId })).map((m) => m.name))
    return (await this.#c.d.store.pivots.listRules({ brandId: store.brandId })).filter((r) => r.storeId === storeId || own.has(r.fromModel)).map(pivotRuleView)
  }

  /**
   * Allows devices of `fromModel` (one serial, or all) to move to `toModel`,
   * a model of this store: pivot.manage here and in fromModel's store.
   */
  async allowPivot(p: Principal, ctx: RequestContext, storeId: string, input: AdminWire.AllowPivotRequest): Promise<AdminWire.PivotRuleWire> {
    const { store, tree } = await this.#c.store(p, ctx, storeId, 'pivot.manage', 'pivot.allowed')
    const to = await this.#c.d.store.brands.getModel(store.brandId, input.toModel)
    if (!to || to.storeId !== storeId) throw new VaultError('SV_REQUEST_INVALID', `${input.toModel} is not a model of store ${storeId}`, { details: { field: 'toModel' } })
    const from = await this.#c.d.store.brands.getModel(store.brandId, input.fromModel)
    if (!from) throw notFound.model(store.brandId, input.fromModel)()
    if (from.name === to.name) throw new VaultError('SV_REQUEST_INVALID', 'a pivot goes to another model', { details: { field: 'toModel' } })
    const fromStore = tree.get(from.storeId)!
    await this.#c.authorize(p, ctx, tree, 'pivot.manage', fromStore, notFound.model(store.brandId, input.fromModel), 'pivot.allowed')
    const rule: PivotRule = { id: `pvr_${randomText(12, 'hex')}`, brandId: store.brandId, fromModel: from.name, toModel: to.name, storeId, ...(input.serial ? { serial: input.serial } : {}), createdBy: labelOf(p), createdAt: this.#c.d.now() }
    await this.#c.d.store.pivots.putRule(rule, this.#c.seal(p, ctx, { action: 'pivot.allowed', brandId: store.brandId, storeId, target: { type: 'pivot-rule', id: rule.id }, after: auditView('pivot-rule', { ...rule }) }))
    this.#c.d.log.info({ ruleId: rule.id, fromModel: rule.fromModel, toModel: rule.toModel, serial: rule.serial ?? '*' }, 'pivot.allowed')
    return pivotRuleView(rule)
  }

  async removePivot(p: Principal, ctx: RequestContext, storeId: string, id: string): Promise<{ removed: boolean }> {
    const { store } = await this.#c.store(p, ctx, storeId, 'pivot.manage', 'pivot.removed')
    const rule = await this.#c.d.store.pivots.getRule(id)
    if (!rule || rule.storeId !== storeId) throw new VaultError('SV_PIVOT_NOT_FOUND', `no pivot rule ${id} in store ${storeId}`, { details: { ruleId: id } })
    await this.#c.d.store.pivots.deleteRule(id, this.#c.seal(p, ctx, { action: 'pivot.removed', brandId: store.brandId, storeId, target: { type: 'pivot-rule', id }, before: auditView('pivot-rule', { ...rule }) }))
    this.#c.d.log.info({ ruleId: id }, 'pivot.removed')
    return { removed: true }
  }

  async listPivotRequests(p: Principal, ctx: RequestContext, storeId: string, status: 'pending' | 'accepted' | 'rejected' | undefined, limit: number | undefined): Promise<AdminWire.PivotRequestWire[]> {
    await this.#c.store(p, ctx, storeId, 'pivot.read')
    return (await this.#c.d.store.pivots.listRequests({ storeId, ...(status ? { status } : {}), ...(limit ? { limit } : {}) })).map(pivotRequestView)
  }

  /** A Reviewer's decision on a pivot waiting in the store (pivot.review); the device gets its serial or the refusal on its next poll. */
  async decidePivot(p: Principal, ctx: RequestContext, storeId: string, requestId: string, accept: boolean, reason: string | undefined): Promise<AdminWire.PivotRequestWire> {
    const action = accept ? 'pivot.accepted' : 'pivot.rejected'
    const { store } = await this.#c.store(p, ctx, storeId, 'pivot.review', action)
    const cur = await this.#c.d.store.pivots.getRequest(requestId)
    if (!cur || cur.storeId !== storeId) throw new VaultError('SV_PIVOT_NOT_FOUND', `no pivot request ${requestId} in store ${storeId}`, { details: { requestId } })
    const decided = await this.#c.d.store.pivots.decideRequest(
      requestId,
      { status: accept ? 'accepted' : 'rejected', at: this.#c.d.now(), by: labelOf(p), ...(reason !== undefined ? { reason } : {}) },
      this.#c.seal(p, ctx, { action, brandId: store.brandId, storeId, target: { type: 'pivot-request', id: requestId }, before: { status: cur.status }, after: { status: accept ? 'accepted' : 'rejected', reason, serial: cur.serial, fromModel: cur.fromModel, toModel: cur.toModel } }),
    )
    this.#c.d.log.info({ requestId, storeId, status: decided.status }, action)
    return pivotRequestView(decided)
  }
}
