import { VaultError } from '@sv/shared'
import type { AuditSeal, WorkOrderRecord, WorkOrderStatus } from '../records.js'
import type { WorkOrderRepository } from '../store.js'
import { type LevelContext, type Op, type Sublevels, defined, put, requireStrings } from './context.js'
import { lastComponent, prefixRange, tupleKey } from './layout.js'

/** The mutex key of one work order: bind (the count) and close hold it, so neither reads a stale order. */
export function workOrderLock(id: string): string {
  return tupleKey('work-order', id)
}

/**
 * The check and the count of a registration under a work order, for bind's
 * batch (the caller holds workOrderLock(id)). Throws the refusal; resolves
 * with the op that writes the counted order (none without `count`).
 */
export function countWorkOrder(s: Sublevels, workOrder: { id: string; count: boolean }, at: number): Op[] {
  const order = s.workOrder.getSync(workOrder.id) as WorkOrderRecord | undefined
  if (order === undefined) throw new VaultError('SV_WORK_ORDER_NOT_FOUND', 'no such work order', { details: { workOrderId: workOrder.id } })
  refuseUnlessOpen(order)
  if (!workOrder.count) return []
  const provisioned = order.provisioned + 1
  const next: WorkOrderRecord = { ...order, provisioned, updatedAt: at }
  if (provisioned >= order.plannedQuantity) {
    next.status = 'exhausted'
    next.closedAt = at
  }
  return [put(s.workOrder, order.id, next)]
}

/** SV_WORK_ORDER_EXHAUSTED or SV_WORK_ORDER_CLOSED unless the order is open (and below its planned quantity). */
export function refuseUnlessOpen(order: WorkOrderRecord): void {
  const details = { workOrderId: order.id, status: order.status, plannedQuantity: order.plannedQuantity, provisioned: order.provisioned }
  if (order.status === 'exhausted' || (order.status === 'open' && order.provisioned >= order.plannedQuantity)) {
    throw new VaultError('SV_WORK_ORDER_EXHAUSTED', `work order ${order.id} has reached its planned quantity of ${order.plannedQuantity}`, { details })
  }
  if (order.status !== 'open') throw new VaultError('SV_WORK_ORDER_CLOSED', `work order ${order.id} is closed`, { details })
}

export class LevelWorkOrders implements WorkOrderRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  create(order: WorkOrderRecord, audit?: AuditSeal): Promise<void> {
    requireStrings({ id: order.id, brandId: order.brandId, model: order.model, storeId: order.storeId })
    return this.#c.locked(
      [workOrderLock(order.id)],
      async (s) => {
        if (await s.workOrder.has(order.id)) throw new VaultError('SV_WORK_ORDER_EXISTS', 'a work order with this id already exists', { details: { workOrderId: order.id } })
        await this.#c.commit(s, [put(s.workOrder, order.id, order), put(s.workOrderByModel, tupleKey(order.brandId, order.model, order.id), '')], audit)
      },
      audit !== undefined,
    )
  }

  get(id: string): Promise<WorkOrderRecord | undefined> {
    return this.#c.run(async (s) => s.workOrder.getSync(id) as WorkOrderRecord | undefined)
  }

  list(filter: { brandId?: string; model?: string; storeId?: string; status?: WorkOrderStatus } = {}): Promise<WorkOrderRecord[]> {
    return this.#c.run(async (s) => {
      let orders: WorkOrderRecord[]
      if (filter.brandId !== undefined && filter.model !== undefined) {
        const keys = await s.workOrderByModel.keys(prefixRange(filter.brandId, filter.model)).all()
        orders = defined(await s.workOrder.getMany(keys.map((k: string) => lastComponent(k))))
      } else orders = await s.workOrder.values().all()
      return orders
        .filter(
          (o) =>
            (filter.brandId === undefined || o.brandId === filter.brandId) &&
            (filter.model === undefined || o.model === filter.model) &&
            (filter.storeId === undefined || o.storeId === filter.storeId) &&
            (filter.status === undefined || o.status === filter.status),
        )
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    })
  }

  close(id: string, change: { at: number; by: string; reason?: string }, audit?: AuditSeal): Promise<WorkOrderRecord> {
    return this.#c.locked(
      [workOrderLock(id)],
      async (s) => {
        const order = (await s.workOrder.get(id)) as WorkOrderRecord | undefined
        if (order === undefined) throw new VaultError('SV_WORK_ORDER_NOT_FOUND', 'no such work order', { details: { workOrderId: id } })
        if (order.status !== 'open') throw new VaultError('SV_WORK_ORDER_CLOSED', `work order ${id} is ${order.status} already`, { details: { workOrderId: id, status: order.status } })
        const next: WorkOrderRecord = { ...order, status: 'closed', closedAt: change.at, closedBy: change.by, updatedAt: change.at, ...(change.reason !== undefined ? { reason: change.reason } : {}) }
        await this.#c.commit(s, [put(s.workOrder, id, next)], audit)
        return next
      },
      audit !== undefined,
    )
  }
}
