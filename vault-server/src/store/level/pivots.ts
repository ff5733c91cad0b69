import { VaultError } from '@sv/shared'
import type { AuditSeal, PivotRequest, PivotRequestStatus, PivotRule } from '../records.js'
import type { PivotRepository } from '../store.js'
import { type LevelContext, defined, del, put, requireStrings } from './context.js'
import { lastComponent, padNumber, prefixRange, tupleKey } from './layout.js'

export class LevelPivots implements PivotRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  putRule(rule: PivotRule, audit?: AuditSeal): Promise<void> {
    requireStrings({ id: rule.id, brandId: rule.brandId, fromModel: rule.fromModel, toModel: rule.toModel })
    const key = tupleKey(rule.brandId, rule.fromModel, rule.toModel, rule.serial ?? '')
    return this.#c.locked(
      [tupleKey('pivot-rule', key), tupleKey('pivot-rule-id', rule.id)],
      async (s) => {
        if ((await s.pivotRuleByKey.has(key)) || (await s.pivotRule.has(rule.id))) {
          throw new VaultError('SV_PIVOT_EXISTS', 'this pivot is already allowed', { details: { fromModel: rule.fromModel, toModel: rule.toModel, serial: rule.serial ?? '*' } })
        }
        await this.#c.commit(s, [put(s.pivotRule, rule.id, rule), put(s.pivotRuleByKey, key, rule.id)], audit)
      },
      audit !== undefined,
    )
  }

  deleteRule(id: string, audit?: AuditSeal): Promise<PivotRule | undefined> {
    return this.#c.locked(
      [tupleKey('pivot-rule-id', id)],
      async (s) => {
        const rule = (await s.pivotRule.get(id)) as PivotRule | undefined
        if (rule === undefined) return undefined
        await this.#c.commit(s, [del(s.pivotRule, id), del(s.pivotRuleByKey, tupleKey(rule.brandId, rule.fromModel, rule.toModel, rule.serial ?? ''))], audit)
        return rule
      },
      audit !== undefined,
    )
  }

  getRule(id: string): Promise<PivotRule | undefined> {
    return this.#c.run((s) => s.pivotRule.get(id))
  }

  listRules(filter: { brandId?: string; fromModel?: string; storeId?: string }): Promise<PivotRule[]> {
    return this.#c.run(async (s) => {
      let rules: PivotRule[]
      if (filter.brandId !== undefined) {
        const range = filter.fromModel !== undefined ? prefixRange(filter.brandId, filter.fromModel) : prefixRange(filter.brandId)
        rules = defined(await s.pivotRule.getMany(await s.pivotRuleByKey.values(range).all()))
      } else rules = await s.pivotRule.values().all()
      return rules.filter((r) => (filter.fromModel === undefined || r.fromModel === filter.fromModel) && (filter.storeId === undefined || r.storeId === filter.storeId)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    })
  }

  createRequest(request: PivotRequest): Promise<void> {
    requireStrings({ requestId: request.requestId, storeId: request.storeId })
    return this.#c.locked([tupleKey('pivot-request', request.requestId)], async (s) => {
      if (await s.pivotRequest.has(request.requestId)) throw new VaultError('SV_PIVOT_EXISTS', 'a pivot request with this request-id exists', { details: { requestId: request.requestId } })
      await this.#c.write([put(s.pivotRequest, request.requestId, request), put(s.pivotRequestByStore, tupleKey(request.storeId, padNumber(request.createdAt), request.requestId), '')])
    })
  }

  getRequest(requestId: string): Promise<PivotRequest | undefined> {
    return this.#c.run((s) => s.pivotRequest.get(requestId))
  }

  decideRequest(requestId: string, decision: { status: Exclude<PivotRequestStatus, 'pending'>; at: number; by: string; reason?: string }, audit?: AuditSeal): Promise<PivotRequest> {
    return this.#c.locked(
      [tupleKey('pivot-request', requestId)],
      async (s) => {
        const old = (await s.pivotRequest.get(requestId)) as PivotRequest | undefined
        if (old === undefined) throw new VaultError('SV_PIVOT_NOT_FOUND', 'no such pivot request', { details: { requestId } })
        if (old.status !== 'pending') throw new VaultError('SV_PIVOT_DECIDED', `the pivot request was ${old.status} already`, { details: { requestId, status: old.status } })
        const { reason: _r, ...rest } = old
        const next: PivotRequest = { ...rest, status: decision.status, decidedAt: decision.at, decidedBy: decision.by, ...(decision.reason !== undefined ? { reason: decision.reason } : {}) }
        await this.#c.commit(s, [put(s.pivotRequest, requestId, next)], audit)
        return next
      },
      audit !== undefined,
    )
  }

  listRequests(filter: { storeId: string; status?: PivotRequestStatus; limit?: number }): Promise<PivotRequest[]> {
    const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000)
    return this.#c.run(async (s) => {
      const out: PivotRequest[] = []
      const it = s.pivotRequestByStore.keys({ ...prefixRange(filter.storeId), reverse: true })
      try {
        for (;;) {
          const keys = await it.nextv(256)
          if (keys.length === 0) break
          for (const r of defined<PivotRequest>(await s.pivotRequest.getMany(keys.map(lastComponent)))) {
            if (filter.status === undefined || r.status === filter.status) out.push(r)
            if (out.length >= limit) return out
          }
        }
      } finally {
        await it.close()
      }
      return out
    })
  }
}
