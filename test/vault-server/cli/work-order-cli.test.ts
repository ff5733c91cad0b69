/**
 * `vault-server work-order` and `model require-work-order` as real processes
 * against a running vault (--url, --token): open, list, show, a registration
 * under the order and one outside it, report as JSON, CSV and text, close.
 */
import test from 'ava'
import { runVaultCli, type CliRun } from '../../helpers/cli.js'
import { startTestVault } from '../../helpers/vault.js'
import { generateDeviceKeys, registerDevice } from '../../helpers/device.js'

const json = <T>(r: CliRun): T => JSON.parse(r.stdout) as T

test('work-order commands against a running vault', async (t) => {
  t.timeout(240_000)
  const v = await startTestVault(t, { workers: 1 })
  const cli = (args: string[]): Promise<CliRun> => runVaultCli([...args, '--url', v.url, '--token', v.adminToken])
  const ok = (r: CliRun, what: string): CliRun => {
    t.is(r.code, 0, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`)
    return r
  }
  const flag = ok(await cli(['model', 'require-work-order', 'true', '--brand', 'acme-brand', '--model', 'acme-pi-gateway', '--json']), 'require-work-order')
  t.true(json<{ model: { requireWorkOrder: boolean } }>(flag).model.requireWorkOrder)
  const notAfter = new Date(Date.now() + 86_400_000).toISOString()
  const opened = ok(await cli(['work-order', 'open', '--store', 'acme-brand', '--model', 'acme-pi-gateway', '--quantity', '2', '--range', 'CL-:1-3:3', '--stations', 'st-1,st-2', '--not-after', notAfter, '--json']), 'open')
  const wo = json<{ workOrder: { id: string; serials: unknown; stations: string[] } }>(opened).workOrder
  t.deepEqual(wo.serials, { kind: 'range', prefix: 'CL-', start: 1, end: 3, width: 3 })
  t.deepEqual(wo.stations, ['st-1', 'st-2'])
  const bad = await cli(['work-order', 'open', '--store', 'acme-brand', '--model', 'acme-pi-gateway', '--quantity', '2', '--not-after', notAfter])
  t.is(bad.code, 2, bad.stderr)

  const [k1, k2] = await generateDeviceKeys(2)
  t.is((await registerDevice(v.url, v.apiKey, { key: k1!, brandId: 'acme-brand', model: 'acme-pi-gateway', serial: 'CL-001' })).status, 200)
  t.is((await registerDevice(v.url, v.apiKey, { key: k2!, brandId: 'acme-brand', model: 'acme-pi-gateway', serial: 'XX-1' })).status, 403)

  const list = ok(await cli(['work-order', 'list', '--store', 'acme-brand', '--status', 'open']), 'list')
  t.regex(list.stdout, new RegExp(`^${wo.id}\\topen\\tacme-brand/acme-pi-gateway\\t1/2\\t`, 'm'))
  t.like(json<{ workOrder: object }>(ok(await cli(['work-order', 'show', wo.id, '--store', 'acme-brand', '--json']), 'show')).workOrder, { id: wo.id, provisioned: 1 })
  const report = json<{ planned: number; provisioned: number; refused: number; outstanding: { serials: string[] } }>(ok(await cli(['work-order', 'report', wo.id, '--store', 'acme-brand', '--json']), 'report'))
  t.like(report, { planned: 2, provisioned: 1, refused: 1, outstanding: { serials: ['CL-002', 'CL-003'] } })
  const csv = ok(await cli(['work-order', 'report', wo.id, '--store', 'acme-brand', '--csv']), 'report csv')
  t.regex(csv.stdout, /^figure,value\r\n/)
  t.regex(csv.stdout, /\r\nprovisioned,1\r\n/)
  ok(await cli(['work-order', 'close', wo.id, '--store', 'acme-brand', '--reason', 'done']), 'close')
  const again = await cli(['work-order', 'close', wo.id, '--store', 'acme-brand'])
  t.is(again.code, 1, again.stderr)
  t.regex(again.stderr, /SV_WORK_ORDER_CLOSED/)
  const text = ok(await cli(['work-order', 'report', wo.id, '--store', 'acme-brand']), 'report text')
  t.regex(text.stdout, /planned 2\nprovisioned 1\n/)
  t.regex(text.stdout, /closed\)/)
})
