/**
 * Admin operations on work orders (issue 10): open, list, show, close, and
 * the reconciliation report. Each asks its permission in the store
 * (`workorder.manage` to open and close, `workorder.read` to read), writes
 * the change with its audit entry atomically, and answers the wire views.
 */
import { VaultError, type AdminWire } from '@sv/shared'
import type { WorkOrderRecord, WorkOrderStatus } from '../../store/store.js'
import { randomText } from '../../random.js'
import { allowedSerials, checkWorkOrderSpec } from '../work-orders.js'
import { type Principal, labelOf } from './access.js'
import { type AdminCore, type RequestContext, notFound } from './core.js'

const iso = (t: number): string => new Date(t).toISOString()

/** Refusals of a serial bound to another device (clone attempts): the report's `duplicates`. */
const DUPLICATE_CODES = new Set(['SV_SERIAL_TAKEN', 'SV_DEVICE_KEY_TAKEN'])

export function workOrderView(o: WorkOrderRecord): AdminWire.WorkOrderWire {
  return {
    id: o.id,
    brandId: o.brandId,
    model: o.model,
    storeId: o.storeId,
    plannedQuantity: o.plannedQuantity,
    serials: o.serials,
    ...(o.stations !== undefined ? { stations: o.stations } : {}),
    notBefore: iso(o.notBefore),
    notAfter: iso(o.notAfter),
    status: o.status,
    provisioned: o.provisioned,
    createdBy: o.createdBy,
    createdAt: iso(o.createdAt),
    ...(o.closedAt !== undefined ? { closedAt: iso(o.closedAt) } : {}),
    ...(o.closedBy !== undefined ? { closedBy: o.closedBy } : {}),
    ...(o.reason !== undefined ? { reason: o.reason } : {}),
  }
}

/** What of an order goes into the audit log: an explicit list as its size (it may hold a million serials). */
function auditOf(o: WorkOrderRecord): Record<string, unknown> {
  const { serials, ...rest } = o
  return { ...rest, serials: serials.kind === 'list' ? { kind: 'list', count: serials.serials.length, first: serials.serials[0] } : serials }
}

function wireTime(v: string | number | undefined, field: string): number | undefined {
  if (v === undefined) return undefined
  const t = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : Date.parse(v)
  if (!Number.isFinite(t)) throw new VaultError('SV_REQUEST_INVALID', `${field} must be an ISO 8601 time or epoch milliseconds`, { details: { field } })
  return t
}

function csvField(v: unknown): string {
  const s = String(v)
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s
}

/**
 * The report as CSV (RFC 4180): a `figure,value` table, the figures first,
 * then one `refused:CODE` row per code, one `provisioned_serial` row per
 * provisioned serial and one `outstanding_serial` row per outstanding one.
 */
export function workOrderReportCsv(r: AdminWire.WorkOrderReportWire): string {
  const rows: Array<[string, string | number]> = [
    ['work_order', r.workOrder.id],
    ['model', `${r.workOrder.brandId}/${r.workOrder.model}`],
    ['status', r.workOrder.status],
    ['planned', r.planned],
    ['provisioned', r.provisioned],
    ['reissued', r.reissued],
    ['retried', r.retried],
    ['refused', r.refused],
    ['duplicates', r.duplicates],
    ['remaining', r.remaining],
    ['outstanding', r.outstanding.count],
    ...Object.entries(r.refusedByCode).map(([code, n]): [string, number] => [`refused:${code}`, n]),
    ...r.provisionedSerials.map((s): [string, string] => ['provisioned_serial', s]),
    ...(r.outstanding.serials ?? []).map((s): [string, string] => ['outstanding_serial', s]),
  ]
  return ['figure,value', ...rows.map(([k, v]) => `${csvField(k)},${csvField(v)}`)].join('\r\n') + '\r\n'
}

export class WorkOrderOps {
  readonly #c: AdminCore

  constructor(core: AdminCore) {
    this.#c = core
  }

  /** A work order of the store's own store (invisible or another store's: SV_WORK_ORDER_NOT_FOUND). */
  async #order(p: Principal, ctx: RequestContext, storeId: string, id: string, permission: 'workorder.read' | 'workorder.manage', write?: string): Promise<WorkOrderRecord> {
    await this.#c.store(p, ctx, storeId, permission, write)
    const o = await this.#c.d.store.workOrders.get(id)
    if (!o || o.storeId !== storeId) throw new VaultError('SV_WORK_ORDER_NOT_FOUND', `no work order ${id} in store ${storeId}`, { details: { workOrderId: id, storeId } })
    return o
  }

  /** Opens a work order for a model of the store (workorder.manage). SV_MODEL_UNKNOWN, SV_WORK_ORDER_INVALID. */
  async open(p: Principal, ctx: RequestContext, storeId: string, input: AdminWire.OpenWorkOrderRequest): Promise<AdminWire.WorkOrderWire> {
    const { store } = await this.#c.store(p, ctx, storeId, 'workorder.manage', 'work_order.opened')
    const model = await this.#c.d.store.brands.getModel(store.brandId, input.model)
    if (!model || model.storeId !== storeId) throw notFound.model(store.brandId, input.model)()
    const now = this.#c.d.now()
    const notBefore = wireTime(input.notBefore, 'notBefore') ?? now
    const notAfter = wireTime(input.notAfter, 'notAfter')!
    const serials = checkWorkOrderSpec(model, { plannedQuantity: input.plannedQuantity, serials: input.serials, notBefore, notAfter })
    const order: WorkOrderRecord = {
      id: `wo_${randomText(12, 'hex')}`,
      brandId: store.brandId,
      model: model.name,
      storeId,
      plannedQuantity: input.plannedQuantity,
      serials,
      ...(input.stations !== undefined ? { stations: [...new Set(input.stations)] } : {}),
      notBefore,
      notAfter,
      status: 'open',
      provisioned: 0,
      createdBy: labelOf(p),
      createdAt: now,
      updatedAt: now,
    }
    await this.#c.d.store.workOrders.create(order, this.#c.seal(p, ctx, { action: 'work_order.opened', brandId: store.brandId, storeId, target: { type: 'work-order', id: order.id }, after: auditOf(order) }))
    this.#c.d.log.info({ workOrderId: order.id, brandId: order.brandId, model: order.model, storeId, plannedQuantity: order.plannedQuantity, serials: serials.kind }, 'work_order.opened')
    return workOrderView(order)
  }

  /** The store's work orders, optionally of one model or status (workorder.read). */
  async list(p: Principal, ctx: RequestContext, storeId: string, filter: { model?: string; status?: WorkOrderStatus } = {}): Promise<AdminWire.WorkOrderWire[]> {
    await this.#c.store(p, ctx, storeId, 'workorder.read')
    return (await this.#c.d.store.workOrders.list({ storeId, ...filter })).map(workOrderView)
  }

  async get(p: Principal, ctx: RequestContext, storeId: string, id: string): Promise<AdminWire.WorkOrderWire> {
    return workOrderView(await this.#order(p, ctx, storeId, id, 'workorder.read'))
  }

  /** Closes an open work order (workorder.manage); registrations under it stop, its report stays. SV_WORK_ORDER_CLOSED. */
  async close(p: Principal, ctx: RequestContext, storeId: string, id: string, reason: string | undefined): Promise<AdminWire.WorkOrderWire> {
    const before = await this.#order(p, ctx, storeId, id, 'workorder.manage', 'work_order.closed')
    const at = this.#c.d.now()
    const seal = this.#c.seal(p, ctx, { action: 'work_order.closed', brandId: before.brandId, storeId, target: { type: 'work-order', id }, before: { status: before.status, provisioned: before.provisioned }, after: { status: 'closed', ...(reason !== undefined ? { reason } : {}) } })
    const after = await this.#c.d.store.workOrders.close(id, { at, by: labelOf(p), ...(reason !== undefined ? { reason } : {}) }, seal)
    this.#c.d.log.info({ workOrderId: id, storeId, provisioned: after.provisioned, plannedQuantity: after.plannedQuantity }, 'work_order.closed')
    return workOrderView(after)
  }

  /**
   * The reconciliation of a work order (workorder.read), from the signing log
   * entries that name it (AdminWire.WorkOrderReportWire says what each figure
   * counts). The same figures before and after the order closes: they come
   * from the log, which a close does not change.
   */
  async report(p: Principal, ctx: RequestContext, storeId: string, id: string): Promise<AdminWire.WorkOrderReportWire> {
    const order = await this.#order(p, ctx, storeId, id, 'workorder.read')
    const provisioned = new Set<string>()
    let reissued = 0
    let retried = 0
    let refused = 0
    let duplicates = 0
    const byCode: Record<string, number> = {}
    // Entries of the order are written after it was opened: the log's time filter narrows the scan.
    for await (const e of this.#c.d.store.signingLog.export({ brandId: order.brandId, model: order.model, from: order.createdAt })) {
      if (e.workOrderId !== id) continue
      if (e.outcome === 'issued' || e.outcome === 'reissued') {
        if (e.serial !== undefined) provisioned.add(e.serial)
        if (e.outcome === 'reissued') reissued++
      } else if (e.outcome === 'retried') retried++
      else if (e.outcome === 'refused') {
        const code = e.code ?? 'unknown'
        byCode[code] = (byCode[code] ?? 0) + 1
        if (DUPLICATE_CODES.has(code)) duplicates++
        else refused++
      }
    }
    const remaining = Math.max(0, order.plannedQuantity - provisioned.size)
    let outstanding: AdminWire.WorkOrderReportWire['outstanding']
    if (order.serials.kind === 'assign') outstanding = { count: remaining }
    else {
      const serials = [...allowedSerials(order.serials)].filter((s) => !provisioned.has(s))
      outstanding = { count: serials.length, serials }
    }
    return {
      workOrder: workOrderView(order),
      planned: order.plannedQuantity,
      provisioned: provisioned.size,
      reissued,
      retried,
      refused,
      duplicates,
      refusedByCode: Object.fromEntries(Object.entries(byCode).sort(([a], [b]) => (a < b ? -1 : 1))),
      remaining,
      outstanding,
      provisionedSerials: [...provisioned].sort(),
      generatedAt: iso(this.#c.d.now()),
    }
  }
}
