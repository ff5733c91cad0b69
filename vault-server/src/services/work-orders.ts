/**
 * Work orders, the pure part shared by the registration step
 * (registration/serial-flow.ts, checkWorkOrder) and the admin service
 * (admin/work-order-ops.ts): which serials an order allows, which order a
 * registration falls under, and the refusal when none does.
 */
import { VaultError, normaliseSerial, validateSerial } from '@sv/shared'
import type { ModelRecord, WorkOrderRecord, WorkOrderSerials } from '../store/store.js'

/** Largest range or list an order may hold (the report lists its outstanding serials). */
export const MAX_WORK_ORDER_SERIALS = 1_000_000

/** The serial of a range at `n`: prefix + n zero-padded to `width`. */
export function rangeSerial(s: Extract<WorkOrderSerials, { kind: 'range' }>, n: number): string {
  return s.prefix + String(n).padStart(s.width, '0')
}

/** Whether the order allows this serial (assign orders allow what the template draws). */
export function allowsSerial(order: WorkOrderRecord, serial: string | undefined): boolean {
  const s = order.serials
  switch (s.kind) {
    case 'assign':
      return true
    case 'list':
      return serial !== undefined && s.serials.includes(serial)
    case 'range': {
      if (serial === undefined || !serial.startsWith(s.prefix)) return false
      const digits = serial.slice(s.prefix.length)
      // fixed width: GW-0001 is in 1..9 width 4, GW-1 and GW-00001 are not
      if (digits.length !== s.width || !/^\d+$/.test(digits)) return false
      const n = Number(digits)
      return n >= s.start && n <= s.end && rangeSerial(s, n) === serial
    }
  }
}

/** How many serials an order allows (undefined for assign orders: as many as the template draws). */
export function allowedCount(s: WorkOrderSerials): number | undefined {
  return s.kind === 'list' ? s.serials.length : s.kind === 'range' ? s.end - s.start + 1 : undefined
}

/** The allowed serials in order (list and range orders). */
export function* allowedSerials(s: WorkOrderSerials): Generator<string> {
  if (s.kind === 'list') yield* s.serials
  else if (s.kind === 'range') for (let n = s.start; n <= s.end; n++) yield rangeSerial(s, n)
}

function isOpenNow(o: WorkOrderRecord, now: number): boolean {
  return o.status === 'open' && o.provisioned < o.plannedQuantity && o.notBefore <= now && now < o.notAfter
}

/**
 * The order a registration of `serial` falls under at `now`, or the refusal.
 * Of the orders that allow the serial, the first (by id) open one inside its
 * window wins. Otherwise:
 * - none of the model's orders allows it: SV_NO_WORK_ORDER when none is open
 *   now, else SV_SERIAL_NOT_IN_WORK_ORDER (naming the first open order);
 * - the newest order that allows it is exhausted (SV_WORK_ORDER_EXHAUSTED),
 *   closed (SV_WORK_ORDER_CLOSED) or outside its window (SV_WORK_ORDER_OUTSIDE_WINDOW).
 * The refusal's `details.workOrderId` names the order it concerns.
 */
export function selectWorkOrder(orders: readonly WorkOrderRecord[], serial: string | undefined, now: number): WorkOrderRecord {
  const matching = orders.filter((o) => allowsSerial(o, serial))
  const usable = matching.find((o) => isOpenNow(o, now))
  if (usable) return usable
  if (matching.length === 0) {
    const open = orders.find((o) => isOpenNow(o, now))
    if (!open) throw new VaultError('SV_NO_WORK_ORDER', 'this model requires a work order and none is open now', { details: { serial } })
    throw new VaultError('SV_SERIAL_NOT_IN_WORK_ORDER', `serial ${serial} is not in an open work order of this model`, { details: { serial, workOrderId: open.id } })
  }
  const o = [...matching].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1))[0]!
  const details = { serial, workOrderId: o.id, status: o.status, plannedQuantity: o.plannedQuantity, provisioned: o.provisioned, notBefore: o.notBefore, notAfter: o.notAfter }
  if (o.status === 'exhausted' || (o.status === 'open' && o.provisioned >= o.plannedQuantity)) {
    throw new VaultError('SV_WORK_ORDER_EXHAUSTED', `work order ${o.id} has reached its planned quantity of ${o.plannedQuantity}`, { details })
  }
  if (o.status === 'closed') throw new VaultError('SV_WORK_ORDER_CLOSED', `work order ${o.id} is closed`, { details })
  throw new VaultError('SV_WORK_ORDER_OUTSIDE_WINDOW', `work order ${o.id} is not valid now`, { details: { ...details, now } })
}

function invalid(message: string, field: string): VaultError {
  return new VaultError('SV_WORK_ORDER_INVALID', message, { details: { field } })
}

/**
 * Checks what an admin asks for against the model (SV_WORK_ORDER_INVALID):
 * assign orders only for models with an assign policy, list and range orders
 * only for device-policy models; serials valid, no duplicates in a list; a
 * range within MAX_WORK_ORDER_SERIALS whose numbers fit the width; a
 * non-empty window; a positive planned quantity. Resolves with the serials
 * normalised (list entries as the registration normalises them).
 */
export function checkWorkOrderSpec(model: ModelRecord, spec: { plannedQuantity: number; serials: WorkOrderSerials; notBefore: number; notAfter: number }): WorkOrderSerials {
  if (!Number.isSafeInteger(spec.plannedQuantity) || spec.plannedQuantity < 1) throw invalid('plannedQuantity must be a positive integer', 'plannedQuantity')
  if (!(spec.notBefore < spec.notAfter)) throw invalid('notBefore must be before notAfter', 'notAfter')
  const s = spec.serials
  if (s.kind === 'assign') {
    if (model.serialPolicy.kind !== 'assign') throw invalid(`model ${model.name} has a device serial policy: give a list or a range`, 'serials.kind')
    return { kind: 'assign' }
  }
  if (model.serialPolicy.kind === 'assign') throw invalid(`model ${model.name} assigns serials from its template: use an assign order`, 'serials.kind')
  const check = (serial: string, field: string): void => {
    try {
      validateSerial(serial)
    } catch (e) {
      if (e instanceof VaultError) throw invalid(`${JSON.stringify(serial)} is not a valid serial: ${e.message}`, field)
      throw e
    }
  }
  if (s.kind === 'list') {
    if (s.serials.length === 0 || s.serials.length > MAX_WORK_ORDER_SERIALS) throw invalid(`a list holds 1 to ${MAX_WORK_ORDER_SERIALS} serials`, 'serials.serials')
    const serials = s.serials.map((x) => normaliseSerial(x))
    serials.forEach((x, i) => check(x, `serials.serials[${i}]`))
    if (new Set(serials).size !== serials.length) throw invalid('the list names a serial twice', 'serials.serials')
    return { kind: 'list', serials }
  }
  if (!Number.isSafeInteger(s.start) || !Number.isSafeInteger(s.end) || s.start < 0 || s.end < s.start) throw invalid('a range needs integers 0 <= start <= end', 'serials.end')
  if (s.end - s.start + 1 > MAX_WORK_ORDER_SERIALS) throw invalid(`a range holds at most ${MAX_WORK_ORDER_SERIALS} serials`, 'serials.end')
  if (!Number.isSafeInteger(s.width) || s.width < 1 || s.width > 20 || String(s.end).length > s.width) throw invalid('width must be 1..20 digits and hold the end of the range', 'serials.width')
  const range = { kind: 'range' as const, prefix: s.prefix, start: s.start, end: s.end, width: s.width }
  check(rangeSerial(range, s.start), 'serials.prefix')
  return range
}
