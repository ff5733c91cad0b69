/**
 * Work orders across two vault instances on one PostgreSQL schema (a fresh
 * one, dropped at the end): 24 devices with 24 different allowed serials
 * register at the same moment, half through each instance, under an order
 * planned for 10. Exactly 10 get a serial, the 14 others SV_WORK_ORDER_EXHAUSTED
 * (never a 5xx), the order counts 10, and the report agrees.
 */
import test from 'ava'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { AdminWire } from '@sv/shared'
import { startTestVault } from '../../helpers/vault.js'
import { fetchRequestId, generateDeviceKeys, postSerial, serialRequestStream } from '../../helpers/device.js'
import { admin, adminJson } from '../http/api.js'
import { PG_URL } from '../mqtt/mqtt-helpers.js'

const BRAND = 'acme-brand'
const MODEL = 'acme-pi-gateway'

test('work orders on PostgreSQL: two instances never issue past the planned quantity', async (t) => {
  const schema = `wo_${randomBytes(6).toString('hex')}`
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 })
  pool.on('error', () => {})
  t.teardown(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {})
    await pool.end()
  })
  const config = { store: { driver: 'postgres', url: PG_URL, schema, poolSize: 8 } }
  const a = await startTestVault(t, { workers: 1, config })
  const b = await startTestVault(t, { workers: 1, config, dataDir: a.dataDir })
  const m = await adminJson<{ model: AdminWire.ModelWire }>(a, 'PATCH', `admin/models/${BRAND}/${MODEL}`, { requireWorkOrder: true })
  const serials = Array.from({ length: 24 }, (_, i) => `PG-${String(i + 1).padStart(3, '0')}`)
  const wo = (await adminJson<{ workOrder: AdminWire.WorkOrderWire }>(a, 'POST', `admin/stores/${BRAND}/work-orders`, { model: MODEL, plannedQuantity: 10, serials: { kind: 'list', serials }, notAfter: Date.now() + 86_400_000 })).workOrder
  const keys = await generateDeviceKeys(serials.length)
  // everything prepared first, then sent at once
  const bodies = await Promise.all(
    serials.map(async (serial, i) => {
      const v = i % 2 === 0 ? a : b
      const requestId = await fetchRequestId(v.url, v.apiKey)
      return { v, body: await serialRequestStream({ key: keys[i]!, brandId: BRAND, model: MODEL, serial, requestId, modelAssertion: m.model.modelAssertion }) }
    }),
  )
  const answers = await Promise.all(bodies.map(({ v, body }) => postSerial(v.url, v.apiKey, body)))
  const statuses = answers.map((r) => r.status)
  t.is(statuses.filter((s) => s === 200).length, 10, JSON.stringify(statuses))
  t.is(statuses.filter((s) => s === 409).length, 14, JSON.stringify(statuses))
  for (const r of answers.filter((x) => x.status === 409)) t.is(JSON.parse(r.body.toString('utf8')).code, 'SV_WORK_ORDER_EXHAUSTED')
  const order = (await adminJson<{ workOrder: AdminWire.WorkOrderWire }>(b, 'GET', `admin/stores/${BRAND}/work-orders/${wo.id}`)).workOrder
  t.like(order, { provisioned: 10, status: 'exhausted' })
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".serial_bindings WHERE work_order_id = $1`, [wo.id])
  t.is(rows[0].n, 10)
  const report = await adminJson<AdminWire.WorkOrderReportWire>(a, 'GET', `admin/stores/${BRAND}/work-orders/${wo.id}/report`)
  t.like(report, { planned: 10, provisioned: 10, refused: 14, refusedByCode: { SV_WORK_ORDER_EXHAUSTED: 14 }, remaining: 0, outstanding: { count: 14 } })
  t.is((await admin(b, 'GET', `admin/stores/${BRAND}/work-orders/${wo.id}/report?format=csv`)).status, 200)
})
