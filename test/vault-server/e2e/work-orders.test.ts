/**
 * Work orders end to end against a real LevelDB vault: a model that requires
 * a work order refuses registrations outside an open one with typed errors
 * (HTTPS and MQTT, one registration service), counts each new serial against
 * the order with its binding, lets an identical retry through after the order
 * is exhausted or closed, and the reconciliation report matches what was
 * registered (a clone refused, a serial outside the order). snapd's own
 * checks accept a serial issued under an order.
 */
import test, { type ExecutionContext } from 'ava'
import { readFile } from 'node:fs/promises'
import type { AdminWire } from '@sv/shared'
import { startTestVault, type TestVault } from '../../helpers/vault.js'
import { generateDeviceKeys, joinStream, registerDevice, serialRequestStream, type DeviceKey } from '../../helpers/device.js'
import { snapdVerify, tempDir } from '../../helpers/snapd-check.js'
import { admin, adminJson, assertError, logEntries, serialOf } from '../http/api.js'
import { connectMqtt, mqttRequest, mqttRequestId, subscribeReplies } from '../mqtt/mqtt-helpers.js'

const BRAND = 'acme-brand'
const MODEL = 'acme-pi-gateway'
const STORE = 'acme-brand'
const DAY = 86_400_000

interface Ctx {
  v: TestVault
  modelAssertion: string
}

async function setup(t: ExecutionContext, o: { mqtt?: boolean; assign?: boolean } = {}): Promise<Ctx> {
  const v = await startTestVault(t, {
    workers: 1,
    ...(o.mqtt ? { config: { mqtt: { mode: 'embedded', listen: '127.0.0.1:0' } } } : {}),
    ...(o.assign ? { models: [{ name: 'acme-pi-assigned', serialPolicy: { kind: 'assign', template: 'AS-{n:4}', start: 1 } }] } : {}),
  })
  const m = await admin(v, 'PATCH', `admin/models/${BRAND}/${MODEL}`, { requireWorkOrder: true })
  t.is(m.status, 200, m.body.toString())
  t.true(jsonOf(m).model.requireWorkOrder)
  return { v, modelAssertion: jsonOf(m).model.modelAssertion }
}

function jsonOf(r: { body: Buffer }): { model: AdminWire.ModelWire } {
  return JSON.parse(r.body.toString('utf8')) as { model: AdminWire.ModelWire }
}

async function openOrder(c: Ctx, body: Record<string, unknown>, store = STORE): Promise<AdminWire.WorkOrderWire> {
  return (await adminJson<{ workOrder: AdminWire.WorkOrderWire }>(c.v, 'POST', `admin/stores/${store}/work-orders`, { model: MODEL, notAfter: new Date(Date.now() + DAY).toISOString(), ...body })).workOrder
}

function register(c: Ctx, key: DeviceKey, serial: string, model = MODEL) {
  return registerDevice(c.v.url, c.v.apiKey, { key, brandId: BRAND, model, serial, ...(model === MODEL ? { modelAssertion: c.modelAssertion } : {}) })
}

async function report(c: Ctx, id: string): Promise<AdminWire.WorkOrderReportWire> {
  return adminJson<AdminWire.WorkOrderReportWire>(c.v, 'GET', `admin/stores/${STORE}/work-orders/${id}/report`)
}

test('work orders: refusals outside the order, counting, retries after exhaustion and close, the report, snapd verify', async (t) => {
  const c = await setup(t)
  const keys = await generateDeviceKeys(6)
  const [k1, k2, k3, k4, k5] = keys as [DeviceKey, DeviceKey, DeviceKey, DeviceKey, DeviceKey]

  // no order yet
  assertError(t, await register(c, k1, 'SN-1'), 403, 'SV_NO_WORK_ORDER')

  const wo = await openOrder(c, { plannedQuantity: 2, serials: { kind: 'list', serials: ['SN-1', 'SN-2', 'SN-3'] }, stations: ['st-1'] })
  t.like(wo, { model: MODEL, storeId: STORE, plannedQuantity: 2, status: 'open', provisioned: 0, stations: ['st-1'] })

  const first = await register(c, k1, 'SN-1')
  const { serial, rest } = serialOf(first)
  t.is(serial.serial, 'SN-1')
  // snapd's own checks accept it
  const { dir, cleanup } = await tempDir()
  t.teardown(cleanup)
  const verdict = await snapdVerify(dir, { trusted: await readFile(c.v.trusted), chain: [joinStream([...rest.map((a) => a.encode()), c.modelAssertion])], file: serial.encode() })
  t.is(verdict.code, 0, verdict.stdout + verdict.stderr)
  t.true(verdict.lines.length > 0 && verdict.lines.every((l) => l.ok))

  // outside the order, and a clone of an ordered serial
  assertError(t, await register(c, k2, 'SN-9'), 403, 'SV_SERIAL_NOT_IN_WORK_ORDER', { workOrderId: wo.id })
  assertError(t, await register(c, k2, 'SN-1'), 409, 'SV_SERIAL_TAKEN')
  // an identical retry (fresh request-id) gets the stored bytes
  t.true((await register(c, k1, 'SN-1')).body.equals(first.body))

  t.is(serialOf(await register(c, k3, 'SN-2')).serial.serial, 'SN-2')
  const exhausted = (await adminJson<{ workOrder: AdminWire.WorkOrderWire }>(c.v, 'GET', `admin/stores/${STORE}/work-orders/${wo.id}`)).workOrder
  t.like(exhausted, { status: 'exhausted', provisioned: 2 })
  t.truthy(exhausted.closedAt)
  assertError(t, await register(c, k4, 'SN-3'), 409, 'SV_WORK_ORDER_EXHAUSTED', { workOrderId: wo.id })
  // retry after exhaustion still gets its serial
  t.true((await register(c, k1, 'SN-1')).body.equals(first.body))

  // the log names the order on issuances, retries and the refusals concerning it
  const log = await logEntries(c.v, { model: MODEL })
  t.deepEqual(
    log.map((e) => [e.outcome, e.code ?? '', e.serial ?? '', e.workOrderId ?? '']),
    [
      ['refused', 'SV_NO_WORK_ORDER', 'SN-1', ''],
      ['issued', '', 'SN-1', wo.id],
      ['refused', 'SV_SERIAL_NOT_IN_WORK_ORDER', 'SN-9', wo.id],
      ['refused', 'SV_SERIAL_TAKEN', 'SN-1', wo.id],
      ['retried', '', 'SN-1', wo.id],
      ['issued', '', 'SN-2', wo.id],
      ['refused', 'SV_WORK_ORDER_EXHAUSTED', 'SN-3', wo.id],
      ['retried', '', 'SN-1', wo.id],
    ],
  )

  const expected = {
    planned: 2,
    provisioned: 2,
    reissued: 0,
    retried: 2,
    refused: 2,
    duplicates: 1,
    refusedByCode: { SV_SERIAL_NOT_IN_WORK_ORDER: 1, SV_SERIAL_TAKEN: 1, SV_WORK_ORDER_EXHAUSTED: 1 },
    remaining: 0,
    outstanding: { count: 1, serials: ['SN-3'] },
    provisionedSerials: ['SN-1', 'SN-2'],
  }
  t.like(await report(c, wo.id), expected)

  // CSV, the same figures
  const csv = await admin(c.v, 'GET', `admin/stores/${STORE}/work-orders/${wo.id}/report?format=csv`)
  t.is(csv.status, 200)
  t.regex(String(csv.headers['content-type']), /^text\/csv/)
  const rows = new Map(
    csv.body
      .toString('utf8')
      .trim()
      .split('\r\n')
      .slice(1)
      .map((l) => l.split(',') as [string, string])
      .filter(([k]) => !k.endsWith('_serial')),
  )
  t.like(Object.fromEntries(rows), { planned: '2', provisioned: '2', retried: '2', refused: '2', duplicates: '1', outstanding: '1', 'refused:SV_SERIAL_TAKEN': '1' })
  t.regex(csv.body.toString('utf8'), /\r\noutstanding_serial,SN-3\r\n/)

  // an exhausted order is not closed again; a second order takes SN-3, then is closed by an admin
  assertError(t, await admin(c.v, 'POST', `admin/stores/${STORE}/work-orders/${wo.id}/close`, {}), 409, 'SV_WORK_ORDER_CLOSED')
  const wo2 = await openOrder(c, { plannedQuantity: 5, serials: { kind: 'range', prefix: 'GW-', start: 1, end: 3, width: 4 } })
  t.is(serialOf(await register(c, k4, 'GW-0001')).serial.serial, 'GW-0001')
  assertError(t, await register(c, k5, 'GW-1'), 403, 'SV_SERIAL_NOT_IN_WORK_ORDER')
  const closed = await adminJson<{ workOrder: AdminWire.WorkOrderWire }>(c.v, 'POST', `admin/stores/${STORE}/work-orders/${wo2.id}/close`, { reason: 'line stopped' })
  t.like(closed.workOrder, { status: 'closed', reason: 'line stopped', provisioned: 1 })
  assertError(t, await register(c, k5, 'GW-0002'), 409, 'SV_WORK_ORDER_CLOSED', { workOrderId: wo2.id })
  // retry after the close, and the same figures after it
  t.is(serialOf(await register(c, k4, 'GW-0001')).serial.serial, 'GW-0001')
  t.like(await report(c, wo2.id), { planned: 5, provisioned: 1, retried: 1, refused: 2, refusedByCode: { SV_SERIAL_NOT_IN_WORK_ORDER: 1, SV_WORK_ORDER_CLOSED: 1 }, duplicates: 0, remaining: 4, outstanding: { count: 2, serials: ['GW-0002', 'GW-0003'] } })
  t.like(await report(c, wo.id), expected)

  // listing, and the audit entries of every change
  const list = await adminJson<{ workOrders: AdminWire.WorkOrderWire[] }>(c.v, 'GET', `admin/stores/${STORE}/work-orders?status=closed`)
  t.deepEqual(list.workOrders.map((o) => o.id), [wo2.id])
  const audit = await adminJson<{ entries: Array<{ action: string; target?: { id: string } }> }>(c.v, 'GET', `admin/audit?store=${STORE}&action=work_order.`)
  t.deepEqual(audit.entries.map((e) => [e.action, e.target?.id]), [
    ['work_order.opened', wo.id],
    ['work_order.opened', wo2.id],
    ['work_order.closed', wo2.id],
  ])
})

test('work orders: the validity window, assign orders, invalid orders, unknown ids', async (t) => {
  const c = await setup(t, { assign: true })
  const [k1, k2, k3] = (await generateDeviceKeys(3)) as [DeviceKey, DeviceKey, DeviceKey]
  const later = await openOrder(c, { plannedQuantity: 1, serials: { kind: 'list', serials: ['SN-W'] }, notBefore: new Date(Date.now() + DAY / 2).toISOString() })
  assertError(t, await register(c, k1, 'SN-W'), 403, 'SV_WORK_ORDER_OUTSIDE_WINDOW', { workOrderId: later.id })

  // an assign order for a model that assigns from its template
  const p = await admin(c.v, 'PATCH', `admin/models/${BRAND}/acme-pi-assigned`, { requireWorkOrder: true })
  t.is(p.status, 200)
  assertError(t, await register(c, k2, '', 'acme-pi-assigned'), 403, 'SV_NO_WORK_ORDER')
  const wa = (await adminJson<{ workOrder: AdminWire.WorkOrderWire }>(c.v, 'POST', `admin/stores/${STORE}/work-orders`, { model: 'acme-pi-assigned', plannedQuantity: 1, serials: { kind: 'assign' }, notAfter: Date.now() + DAY })).workOrder
  const s1 = serialOf(await register(c, k2, '', 'acme-pi-assigned')).serial.serial
  t.regex(s1, /^AS-\d{4}$/)
  assertError(t, await register(c, k3, '', 'acme-pi-assigned'), 409, 'SV_WORK_ORDER_EXHAUSTED', { workOrderId: wa.id })
  t.like(await report(c, wa.id), { planned: 1, provisioned: 1, refused: 1, remaining: 0, outstanding: { count: 0 }, provisionedSerials: [s1] })

  // orders that do not fit their model
  const bad = (body: Record<string, unknown>) => admin(c.v, 'POST', `admin/stores/${STORE}/work-orders`, { model: MODEL, notAfter: Date.now() + DAY, plannedQuantity: 1, ...body })
  assertError(t, await bad({ serials: { kind: 'assign' } }), 400, 'SV_WORK_ORDER_INVALID')
  assertError(t, await bad({ model: 'acme-pi-assigned', serials: { kind: 'list', serials: ['X'] } }), 400, 'SV_WORK_ORDER_INVALID')
  assertError(t, await bad({ serials: { kind: 'range', prefix: 'R-', start: 5, end: 1, width: 2 } }), 400, 'SV_WORK_ORDER_INVALID')
  assertError(t, await bad({ serials: { kind: 'range', prefix: 'R-', start: 1, end: 100, width: 2 } }), 400, 'SV_WORK_ORDER_INVALID')
  assertError(t, await bad({ serials: { kind: 'list', serials: ['A', 'A'] } }), 400, 'SV_WORK_ORDER_INVALID')
  assertError(t, await bad({ serials: { kind: 'list', serials: ['A'] }, notBefore: Date.now() + 2 * DAY }), 400, 'SV_WORK_ORDER_INVALID')
  assertError(t, await bad({ serials: { kind: 'list', serials: ['A'] }, model: 'nope' }), 404, 'SV_MODEL_UNKNOWN')
  assertError(t, await bad({ serials: { kind: 'list' } }), 400, 'SV_REQUEST_INVALID')
  assertError(t, await admin(c.v, 'GET', `admin/stores/${STORE}/work-orders/wo_nope`), 404, 'SV_WORK_ORDER_NOT_FOUND')
  assertError(t, await admin(c.v, 'GET', `admin/stores/${STORE}/work-orders/wo_nope/report`), 404, 'SV_WORK_ORDER_NOT_FOUND')
  assertError(t, await admin(c.v, 'POST', `admin/stores/${STORE}/work-orders/wo_nope/close`), 404, 'SV_WORK_ORDER_NOT_FOUND')

  // the flag comes off again: registrations are free
  const off = await admin(c.v, 'PATCH', `admin/models/${BRAND}/${MODEL}`, { requireWorkOrder: false })
  t.false(jsonOf(off).model.requireWorkOrder)
  t.is(serialOf(await register(c, k1, 'SN-FREE')).serial.serial, 'SN-FREE')
})

test('work orders: MQTT gets the same typed refusals and the same counting', async (t) => {
  const c = await setup(t, { mqtt: true })
  const [k1, k2] = (await generateDeviceKeys(2)) as [DeviceKey, DeviceKey]
  const client = await connectMqtt(t, c.v.vault.mqttUrl!, { clientId: 'wo-device', username: 'device', password: c.v.apiKey, rejectUnauthorized: false })
  await subscribeReplies(client, { clientId: 'wo-device' })
  const ask = async (key: DeviceKey, serial: string) => {
    const requestId = await mqttRequestId(client, c.v.apiKey)
    const body = await serialRequestStream({ key, brandId: BRAND, model: MODEL, serial, requestId, modelAssertion: c.modelAssertion })
    return mqttRequest(client, 'serial', { 'api-key': c.v.apiKey, body: body.toString() })
  }
  t.like(await ask(k1, 'SN-M1'), { kind: 'rejected', body: { code: 'SV_NO_WORK_ORDER', status: 403 } })
  const wo = await openOrder(c, { plannedQuantity: 1, serials: { kind: 'list', serials: ['SN-M1', 'SN-M2'] } })
  t.like(await ask(k1, 'SN-X'), { kind: 'rejected', body: { code: 'SV_SERIAL_NOT_IN_WORK_ORDER', status: 403 } })
  t.like(await ask(k1, 'SN-M1'), { kind: 'accepted' })
  t.like(await ask(k2, 'SN-M2'), { kind: 'rejected', body: { code: 'SV_WORK_ORDER_EXHAUSTED', status: 409 } })
  t.like(await ask(k1, 'SN-M1'), { kind: 'accepted' })
  t.like(await report(c, wo.id), { provisioned: 1, retried: 1, refused: 2, outstanding: { serials: ['SN-M2'] } })
  t.like(await logEntries(c.v, { serial: 'SN-M1', outcome: 'issued' }), [{ transport: 'mqtt', workOrderId: wo.id }])
})
