import { VaultError } from '@sv/shared'
import type { AuditSeal, WorkOrderRecord, WorkOrderStatus } from '../records.js'
import type { WorkOrderRepository } from '../store.js'
import { type Db, type PgContext, appendAudit } from './context.js'
import { WORK_ORDER_COLUMNS, insertSql, workOrderFromRow, workOrderParams } from './rows.js'

/**
 * The check and the count of a registration under a work order, inside
 * bind's transaction: the order's row is locked FOR UPDATE first, so
 * concurrent binds of every instance take turns on it and never count past
 * the planned quantity (the table's CHECK would refuse that anyway).
 */
export async function countWorkOrder(c: Db, workOrder: { id: string; count: boolean }, at: number): Promise<void> {
  const { rows } = await c.query('SELECT * FROM work_orders WHERE id = $1 FOR UPDATE', [workOrder.id])
  if (rows.length === 0) throw new VaultError('SV_WORK_ORDER_NOT_FOUND', 'no such work order', { details: { workOrderId: workOrder.id } })
  const order = workOrderFromRow(rows[0]!)
  const details = { workOrderId: order.id, status: order.status, plannedQuantity: order.plannedQuantity, provisioned: order.provisioned }
  if (order.status === 'exhausted' || (order.status === 'open' && order.provisioned >= order.plannedQuantity)) {
    throw new VaultError('SV_WORK_ORDER_EXHAUSTED', `work order ${order.id} has reached its planned quantity of ${order.plannedQuantity}`, { details })
  }
  if (order.status !== 'open') throw new VaultError('SV_WORK_ORDER_CLOSED', `work order ${order.id} is closed`, { details })
  if (!workOrder.count) return
  await c.query(
    `UPDATE work_orders SET provisioned = provisioned + 1, updated_at = $2,
       status = CASE WHEN provisioned + 1 >= planned_quantity THEN 'exhausted' ELSE status END,
       closed_at = CASE WHEN provisioned + 1 >= planned_quantity THEN $2 ELSE closed_at END
     WHERE id = $1`,
    [order.id, at],
  )
}

export class PgWorkOrders implements WorkOrderRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  create(order: WorkOrderRecord, audit?: AuditSeal): Promise<void> {
    // A taken id is 23505 on work_orders_pkey: SV_WORK_ORDER_EXISTS (context.ts).
    return this.#c.audited(audit, async (db) => void (await db.query(insertSql('work_orders', WORK_ORDER_COLUMNS), workOrderParams(order))), true)
  }

  get(id: string): Promise<WorkOrderRecord | undefined> {
    return this.#c.one('SELECT * FROM work_orders WHERE id = $1', [id], workOrderFromRow)
  }

  list(filter: { brandId?: string; model?: string; storeId?: string; status?: WorkOrderStatus } = {}): Promise<WorkOrderRecord[]> {
    const where: string[] = []
    const params: unknown[] = []
    if (filter.brandId !== undefined) where.push(`brand_id = $${params.push(filter.brandId)}`)
    if (filter.model !== undefined) where.push(`model = $${params.push(filter.model)}`)
    if (filter.storeId !== undefined) where.push(`store_id = $${params.push(filter.storeId)}`)
    if (filter.status !== undefined) where.push(`status = $${params.push(filter.status)}`)
    return this.#c.all(`SELECT * FROM work_orders ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id`, params, workOrderFromRow)
  }

  close(id: string, change: { at: number; by: string; reason?: string }, audit?: AuditSeal): Promise<WorkOrderRecord> {
    return this.#c.transaction(async (c) => {
      // The row lock orders this close against concurrent binds (countWorkOrder).
      const r = await c.query(
        `UPDATE work_orders SET status = 'closed', closed_at = $2, closed_by = $3, reason = COALESCE($4, reason), updated_at = $2
         WHERE id = $1 AND status = 'open' RETURNING *`,
        [id, change.at, change.by, change.reason ?? null],
      )
      if (r.rowCount === 0) {
        const found = await c.query('SELECT status FROM work_orders WHERE id = $1', [id])
        if (found.rows.length === 0) throw new VaultError('SV_WORK_ORDER_NOT_FOUND', 'no such work order', { details: { workOrderId: id } })
        throw new VaultError('SV_WORK_ORDER_CLOSED', `work order ${id} is ${found.rows[0]!.status} already`, { details: { workOrderId: id, status: found.rows[0]!.status } })
      }
      if (audit) await appendAudit(c, audit)
      return workOrderFromRow(r.rows[0]!)
    })
  }
}
