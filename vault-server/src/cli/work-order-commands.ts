/**
 * `vault-server work-order open|list|show|close|report` and `model
 * require-work-order`: the work order admin API (/v1/admin/stores/:store/work-orders)
 * from the command line, against a running vault (--url, --token) or the
 * data directory (--data), like the other admin commands.
 */
import type { AdminWire } from '@sv/shared'
import { adminJson, adminRequest } from './admin-client.js'
import { withAdmin, type TargetFlags } from './admin-target.js'
import { CliError, EXIT, type CliIo } from './io.js'

const enc = encodeURIComponent

interface WoFlags extends TargetFlags {
  json?: boolean
  store: string
}

function print(io: CliIo, json: boolean | undefined, data: unknown, text: () => string): void {
  io.out(json ? `${JSON.stringify(data, null, 2)}\n` : text())
}

function line(o: AdminWire.WorkOrderWire): string {
  const serials = o.serials.kind === 'list' ? `list of ${o.serials.serials.length}` : o.serials.kind === 'range' ? `range ${o.serials.prefix}${String(o.serials.start).padStart(o.serials.width, '0')}..${String(o.serials.end).padStart(o.serials.width, '0')}` : 'assign'
  return `${o.id}\t${o.status}\t${o.brandId}/${o.model}\t${o.provisioned}/${o.plannedQuantity}\t${serials}\t${o.notBefore} .. ${o.notAfter}\n`
}

/** `--serials A,B,C`, `--range PREFIX:START-END:WIDTH`, or `--assign`: exactly one. */
function serialsOf(f: { serials?: string; range?: string; assign?: boolean }): AdminWire.OpenWorkOrderRequest['serials'] {
  const given = [f.serials !== undefined, f.range !== undefined, f.assign === true].filter(Boolean).length
  if (given !== 1) throw new CliError('give exactly one of --serials A,B,..., --range PREFIX:START-END:WIDTH or --assign')
  if (f.assign) return { kind: 'assign' }
  if (f.serials !== undefined) return { kind: 'list', serials: f.serials.split(',').map((s) => s.trim()).filter((s) => s !== '') }
  const m = /^(.*):(\d{1,15})-(\d{1,15}):(\d{1,2})$/.exec(f.range!)
  if (!m) throw new CliError('--range is PREFIX:START-END:WIDTH, e.g. GW-:1-500:4 for GW-0001..GW-0500')
  return { kind: 'range', prefix: m[1]!, start: Number(m[2]), end: Number(m[3]), width: Number(m[4]) }
}

export function workOrderOpen(
  io: CliIo,
  f: WoFlags & { model: string; quantity: string; serials?: string; range?: string; assign?: boolean; stations?: string; notBefore?: string; notAfter: string },
): Promise<number> {
  const plannedQuantity = Number(f.quantity)
  if (!Number.isSafeInteger(plannedQuantity) || plannedQuantity < 1) throw new CliError('--quantity must be a positive integer')
  const body: AdminWire.OpenWorkOrderRequest = {
    model: f.model,
    plannedQuantity,
    serials: serialsOf(f),
    notAfter: f.notAfter,
    ...(f.notBefore !== undefined ? { notBefore: f.notBefore } : {}),
    ...(f.stations !== undefined ? { stations: f.stations.split(',').map((s) => s.trim()).filter((s) => s !== '') } : {}),
  }
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ workOrder: AdminWire.WorkOrderWire }>(t, 'POST', `admin/stores/${enc(f.store)}/work-orders`, body)
    print(io, f.json, r, () => `opened work order ${r.workOrder.id}\n${line(r.workOrder)}`)
    return EXIT.OK
  })
}

export function workOrderList(io: CliIo, f: WoFlags & { model?: string; status?: string }): Promise<number> {
  const q = new URLSearchParams({ ...(f.model ? { model: f.model } : {}), ...(f.status ? { status: f.status } : {}) }).toString()
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ workOrders: AdminWire.WorkOrderWire[] }>(t, 'GET', `admin/stores/${enc(f.store)}/work-orders${q ? `?${q}` : ''}`)
    print(io, f.json, r, () => r.workOrders.map(line).join('') || 'no work orders\n')
    return EXIT.OK
  })
}

export function workOrderShow(io: CliIo, f: WoFlags, id: string): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ workOrder: AdminWire.WorkOrderWire }>(t, 'GET', `admin/stores/${enc(f.store)}/work-orders/${enc(id)}`)
    print(io, f.json, r, () => line(r.workOrder) + (r.workOrder.stations ? `stations: ${r.workOrder.stations.join(', ')}\n` : '') + (r.workOrder.reason ? `closed: ${r.workOrder.reason}\n` : ''))
    return EXIT.OK
  })
}

export function workOrderClose(io: CliIo, f: WoFlags & { reason?: string }, id: string): Promise<number> {
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ workOrder: AdminWire.WorkOrderWire }>(t, 'POST', `admin/stores/${enc(f.store)}/work-orders/${enc(id)}/close`, f.reason ? { reason: f.reason } : {})
    print(io, f.json, r, () => `closed ${id}: ${r.workOrder.provisioned}/${r.workOrder.plannedQuantity} provisioned\n`)
    return EXIT.OK
  })
}

/** The reconciliation: a summary (default), `--json`, or `--csv` as the vault makes it. */
export function workOrderReport(io: CliIo, f: WoFlags & { csv?: boolean }, id: string): Promise<number> {
  if (f.csv && f.json) throw new CliError('--csv and --json exclude each other')
  return withAdmin(io, f, async (t) => {
    const path = `admin/stores/${enc(f.store)}/work-orders/${enc(id)}/report`
    if (f.csv) {
      const res = await adminRequest(t, 'GET', `${path}?format=csv`)
      for await (const chunk of res) io.out(chunk.toString('utf8'))
      return EXIT.OK
    }
    const r = await adminJson<AdminWire.WorkOrderReportWire>(t, 'GET', path)
    print(io, f.json, r, () => {
      const codes = Object.entries(r.refusedByCode).map(([c, n]) => `  ${c}: ${n}\n`).join('')
      const list = r.outstanding.serials && r.outstanding.serials.length > 0 ? `outstanding serials: ${r.outstanding.serials.slice(0, 50).join(', ')}${r.outstanding.serials.length > 50 ? ', ...' : ''}\n` : ''
      return (
        `work order ${r.workOrder.id} (${r.workOrder.brandId}/${r.workOrder.model}, ${r.workOrder.status})\n` +
        `planned ${r.planned}\nprovisioned ${r.provisioned}\nretried ${r.retried}\nrefused ${r.refused}\nduplicates ${r.duplicates}\noutstanding ${r.outstanding.count}\n${codes}${list}`
      )
    })
    return EXIT.OK
  })
}

/** `model require-work-order --brand B --model M true|false`: the model flag, through PATCH. */
export function modelRequireWorkOrder(io: CliIo, f: TargetFlags & { json?: boolean; brand: string; model: string }, value: string): Promise<number> {
  if (value !== 'true' && value !== 'false') throw new CliError('require-work-order takes true or false')
  return withAdmin(io, f, async (t) => {
    const r = await adminJson<{ model: AdminWire.ModelWire }>(t, 'PATCH', `admin/models/${enc(f.brand)}/${enc(f.model)}`, { requireWorkOrder: value === 'true' })
    print(io, f.json, r, () => `${r.model.brandId}/${r.model.name}: ${r.model.requireWorkOrder ? 'registrations need an open work order' : 'no work order needed'}\n`)
    return EXIT.OK
  })
}
