import type { WorkOrderRecord } from '../../../vault-server/src/store/store.js'
import { T0, binding, issuedLog, race, workOrderRecord, type Suite } from '../fixtures.js'

export function workOrdersGroup({ test, title, open }: Suite): void {
  const g = (text: string): string => title('work orders', text)

  test(g('create, get, list by brand, model, store and status, ordered by id'), async (t) => {
    const store = await open(t)
    t.is(await store.workOrders.get('wo_1'), undefined)
    t.deepEqual(await store.workOrders.list(), [])
    const a = workOrderRecord('wo_b')
    const b = workOrderRecord('wo_a', { serials: { kind: 'range', prefix: 'GW-', start: 1, end: 9, width: 4 }, stations: ['st_1', 'st_2'] })
    const c = workOrderRecord('wo_c', { model: 'gadget', storeId: 'acme-line', serials: { kind: 'assign' }, status: 'closed', closedAt: T0 + 5, closedBy: 'prs_admin', reason: 'done' })
    const d = workOrderRecord('wo_d', { brandId: 'beta', storeId: 'beta' })
    for (const o of [d, a, c, b]) await store.workOrders.create(o)
    t.deepEqual(await store.workOrders.get('wo_a'), b)
    t.deepEqual(await store.workOrders.get('wo_c'), c)
    t.deepEqual(await store.workOrders.list(), [b, a, c, d])
    t.deepEqual(await store.workOrders.list({ brandId: 'acme' }), [b, a, c])
    t.deepEqual(await store.workOrders.list({ brandId: 'acme', model: 'widget' }), [b, a])
    t.deepEqual(await store.workOrders.list({ storeId: 'acme-line' }), [c])
    t.deepEqual(await store.workOrders.list({ brandId: 'acme', status: 'open' }), [b, a])
    t.deepEqual(await store.workOrders.list({ brandId: 'acme', model: 'widget', status: 'closed' }), [])
    t.deepEqual(await store.workOrders.list({ model: 'gadget' }), [c])
    await t.throwsAsync(store.workOrders.create(workOrderRecord('wo_a')), { code: 'SV_WORK_ORDER_EXISTS' })
    t.deepEqual(await store.workOrders.get('wo_a'), b)
  })

  test(g('close: compare-and-set from open; SV_WORK_ORDER_NOT_FOUND, SV_WORK_ORDER_CLOSED'), async (t) => {
    const store = await open(t)
    await store.workOrders.create(workOrderRecord('wo_1'))
    await t.throwsAsync(store.workOrders.close('wo_9', { at: T0, by: 'prs_admin' }), { code: 'SV_WORK_ORDER_NOT_FOUND' })
    const closed = await store.workOrders.close('wo_1', { at: T0 + 10, by: 'prs_admin', reason: 'line stopped' })
    const expected: WorkOrderRecord = { ...workOrderRecord('wo_1'), status: 'closed', closedAt: T0 + 10, closedBy: 'prs_admin', reason: 'line stopped', updatedAt: T0 + 10 }
    t.deepEqual(closed, expected)
    t.deepEqual(await store.workOrders.get('wo_1'), expected)
    await t.throwsAsync(store.workOrders.close('wo_1', { at: T0 + 11, by: 'prs_other' }), { code: 'SV_WORK_ORDER_CLOSED' })
    await store.workOrders.create(workOrderRecord('wo_2'))
    const { won, codes } = await race(Array.from({ length: 5 }, (_, i) => store.workOrders.close('wo_2', { at: T0 + i, by: `prs_${i}` }).then(() => i)))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_WORK_ORDER_CLOSED']))
  })

  test(g('bind under a work order counts it with the binding; exhausted at the planned quantity; the log entry keeps workOrderId'), async (t) => {
    const store = await open(t)
    await store.workOrders.create(workOrderRecord('wo_1'))
    const b1 = binding('SN-1', 'dk-1', { workOrderId: 'wo_1' })
    const log1 = issuedLog(b1, T0 + 1, { workOrderId: 'wo_1' })
    await store.registrations.bind(b1, log1, 0, { workOrder: { id: 'wo_1', count: true } })
    t.deepEqual(await store.registrations.getBinding('acme', 'widget', 'SN-1'), b1)
    t.deepEqual((await store.signingLog.query({ serial: 'SN-1' })).entries, [log1])
    t.like(await store.workOrders.get('wo_1'), { status: 'open', provisioned: 1 })
    const b2 = binding('SN-2', 'dk-2', { workOrderId: 'wo_1', issuedAt: T0 + 2 })
    await store.registrations.bind(b2, issuedLog(b2, T0 + 2, { workOrderId: 'wo_1' }), 0, { workOrder: { id: 'wo_1', count: true } })
    t.deepEqual(await store.workOrders.get('wo_1'), { ...workOrderRecord('wo_1'), provisioned: 2, status: 'exhausted', closedAt: T0 + 2, updatedAt: T0 + 2 })
    // the refused bind writes nothing: no binding, no log entry, no count
    const b3 = binding('SN-3', 'dk-3', { workOrderId: 'wo_1' })
    await t.throwsAsync(store.registrations.bind(b3, issuedLog(b3, T0 + 3), 0, { workOrder: { id: 'wo_1', count: true } }), { code: 'SV_WORK_ORDER_EXHAUSTED' })
    t.is(await store.registrations.getBinding('acme', 'widget', 'SN-3'), undefined)
    t.deepEqual((await store.signingLog.query({ serial: 'SN-3' })).entries, [])
    t.like(await store.workOrders.get('wo_1'), { provisioned: 2 })
    await t.throwsAsync(store.registrations.bind(b3, issuedLog(b3), 0, { workOrder: { id: 'wo_9', count: true } }), { code: 'SV_WORK_ORDER_NOT_FOUND' })
    // a closed order refuses even without a count (a reissue)
    await store.workOrders.create(workOrderRecord('wo_2'))
    await store.workOrders.close('wo_2', { at: T0, by: 'prs_admin' })
    await t.throwsAsync(store.registrations.bind(b3, issuedLog(b3), 0, { workOrder: { id: 'wo_2', count: false } }), { code: 'SV_WORK_ORDER_CLOSED' })
    t.is(await store.registrations.getBinding('acme', 'widget', 'SN-3'), undefined)
    await t.throwsAsync(store.workOrders.close('wo_1', { at: T0, by: 'prs_admin' }), { code: 'SV_WORK_ORDER_CLOSED' })
  })

  test(g('concurrent binds under one order never count past the planned quantity'), async (t) => {
    const store = await open(t)
    await store.workOrders.create(workOrderRecord('wo_1', { plannedQuantity: 3, serials: { kind: 'range', prefix: 'SN-', start: 1, end: 20, width: 2 } }))
    const { won, codes } = await race(
      Array.from({ length: 12 }, (_, i) => {
        const b = binding(`SN-${String(i + 1).padStart(2, '0')}`, `dk-${i}`, { workOrderId: 'wo_1' })
        return store.registrations.bind(b, issuedLog(b, T0 + i), 0, { workOrder: { id: 'wo_1', count: true } }).then(() => i)
      }),
    )
    t.is(won.length, 3)
    t.deepEqual(new Set(codes), new Set(['SV_WORK_ORDER_EXHAUSTED']))
    t.like(await store.workOrders.get('wo_1'), { provisioned: 3, status: 'exhausted' })
    t.is((await store.signingLog.query({ brandId: 'acme' })).entries.length, 3)
  })

  test(g('a failed bind (serial taken) does not count'), async (t) => {
    const store = await open(t)
    await store.workOrders.create(workOrderRecord('wo_1'))
    const b = binding('SN-1', 'dk-1')
    await store.registrations.bind(b, issuedLog(b), 0)
    const clone = binding('SN-1', 'dk-2', { workOrderId: 'wo_1' })
    await t.throwsAsync(store.registrations.bind(clone, issuedLog(clone), 0, { workOrder: { id: 'wo_1', count: true } }), { code: 'SV_SERIAL_TAKEN' })
    t.like(await store.workOrders.get('wo_1'), { provisioned: 0, status: 'open' })
  })
}
