/**
 * Admin operations of the Live page: opening a live stream of a store's
 * provisioning (log.read there), and the clone alerts: a serial offered with
 * another device key (a refusal with SV_SERIAL_TAKEN in the signing log),
 * which a Store Administrator or a Reviewer acknowledges (alert.acknowledge).
 *
 * Alerts are read from the signing log, and their acknowledgements from the
 * audit log (action `alert.acknowledged`, target the log entry's id), so
 * every instance sees the same alerts and they survive restarts; both are
 * looked up over the last 7 days, at most ALERT_SCAN refusals deep.
 */
import { VaultError, type AdminWire } from '@sv/shared'
import type { LogEntry } from '../../store/store.js'
import type { LiveHub, LiveSubscription } from '../live/live-hub.js'
import { type Principal, type StoreTree, labelOf } from './access.js'
import type { AdminCore, RequestContext } from './core.js'
import type { StorePermission } from './permissions.js'
import { logEntryView } from './views.js'

export const ALERT_WINDOW_MS = 7 * 86_400_000
/** refusals read to find alerts, at most */
const ALERT_SCAN = 5000
/** alerts answered, at most */
const ALERT_LIMIT = 200

export type AlertWire = AdminWire.AlertWire

export function isCloneAttempt(e: Pick<LogEntry, 'outcome' | 'code'>): boolean {
  return e.outcome === 'refused' && e.code === 'SV_SERIAL_TAKEN'
}

export function alertView(e: LogEntry, ack?: AlertWire['acknowledged']): AlertWire {
  const a: AlertWire = { id: e.id, time: new Date(e.time).toISOString() }
  for (const k of ['storeId', 'brandId', 'model', 'serial', 'deviceKeyId', 'transport', 'clientAddress'] as const) if (e[k] !== undefined) a[k] = e[k]
  if (ack) a.acknowledged = ack
  return a
}

/** The time in a signing log id (`<13 digits of epoch ms>-...`, store/log-id.ts), or undefined. */
function idTime(id: string): number | undefined {
  const m = /^(\d{13})-[0-9a-z]{8}-[0-9a-f]{12}$/.exec(id)
  return m ? Number(m[1]) : undefined
}

export class LiveOps {
  readonly #c: AdminCore
  readonly #hub: LiveHub | undefined

  constructor(core: AdminCore, hub: LiveHub | undefined) {
    this.#c = core
    this.#hub = hub
  }

  /** The stores of a live view: `store` (permission there) and with subtree the ones below where it holds; the operator may name none (all). */
  async #scope(p: Principal, ctx: RequestContext, store: string | undefined, subtree: boolean | undefined, permission: StorePermission): Promise<{ storeIds: string[] | undefined; tree: StoreTree }> {
    if (store === undefined) {
      if (p.kind === 'operator') return { storeIds: undefined, tree: await this.#c.tree() }
      throw new VaultError('SV_REQUEST_INVALID', 'name the store to watch (store=...)', { details: { field: 'store' } })
    }
    const { tree } = await this.#c.store(p, ctx, store, permission)
    if (!subtree) return { storeIds: [store], tree }
    return { storeIds: tree.subtree(store).filter((s) => this.#c.d.access.allows(p, tree, permission, s.id)).map((s) => s.id), tree }
  }

  /** Clone alerts of the stores, newest first, with their acknowledgements. */
  async #alerts(storeIds: string[] | undefined, state: 'open' | 'all'): Promise<AlertWire[]> {
    const now = this.#c.d.now()
    const from = now - ALERT_WINDOW_MS
    const found: LogEntry[] = []
    let cursor: string | undefined
    let read = 0
    do {
      const page = await this.#c.d.store.signingLog.query({ ...(storeIds ? { storeIds } : {}), outcome: 'refused', from, order: 'desc', limit: 1000, ...(cursor ? { cursor } : {}) })
      read += page.entries.length
      for (const e of page.entries) if (isCloneAttempt(e)) found.push(e)
      cursor = page.nextCursor
    } while (cursor && read < ALERT_SCAN && found.length < ALERT_LIMIT * 2)
    const acks = await this.#acks(storeIds, from)
    const out: AlertWire[] = []
    for (const e of found) {
      const ack = acks.get(e.id)
      if (state === 'open' && ack) continue
      out.push(alertView(e, ack))
      if (out.length >= ALERT_LIMIT) break
    }
    return out
  }

  async #acks(storeIds: string[] | undefined, from: number): Promise<Map<string, NonNullable<AlertWire['acknowledged']>>> {
    const acks = new Map<string, NonNullable<AlertWire['acknowledged']>>()
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await this.#c.d.store.audit.query({ ...(storeIds ? { storeIds } : {}), action: 'alert.acknowledged', outcome: 'ok', from, limit: 1000, ...(cursor ? { cursor } : {}) })
      for (const a of page.entries) {
        if (a.target?.type !== 'alert') continue
        const note = (a.after as { note?: unknown } | undefined)?.note
        acks.set(a.target.id, { by: a.actor.email ?? (a.actor.name !== undefined ? `token:${a.actor.name}` : a.actor.id), at: new Date(a.time).toISOString(), ...(typeof note === 'string' ? { note } : {}) })
      }
      cursor = page.nextCursor
    } while (cursor && ++pages < 10)
    return acks
  }

  async listAlerts(p: Principal, ctx: RequestContext, q: { store?: string; subtree?: boolean; state?: 'open' | 'all' }): Promise<AlertWire[]> {
    const { storeIds } = await this.#scope(p, ctx, q.store, q.subtree, 'log.read')
    return this.#alerts(storeIds, q.state ?? 'open')
  }

  /** Acknowledges a clone alert (alert.acknowledge in its store), audited; every open Live page of the store hears of it. */
  async acknowledgeAlert(p: Principal, ctx: RequestContext, id: string, note: string | undefined): Promise<AlertWire> {
    const t = idTime(id)
    const missing = () => new VaultError('SV_ALERT_NOT_FOUND', `no clone alert ${id}`, { details: { alertId: id } })
    if (t === undefined || t < this.#c.d.now() - ALERT_WINDOW_MS) throw missing()
    const page = await this.#c.d.store.signingLog.query({ outcome: 'refused', from: t, to: t + 1, limit: 1000 })
    const e = page.entries.find((x) => x.id === id)
    if (!e || !isCloneAttempt(e) || e.storeId === undefined) throw missing()
    const tree = await this.#c.tree()
    const store = tree.get(e.storeId)
    if (!store) throw missing()
    await this.#c.authorize(p, ctx, tree, 'alert.acknowledge', store, missing, 'alert.acknowledged')
    const acks = await this.#acks([store.id], t)
    const already = acks.get(id)
    if (already) return alertView(e, already)
    const entry = await this.#c.d.store.audit.append(
      this.#c.seal(p, ctx, { action: 'alert.acknowledged', brandId: store.brandId, storeId: store.id, target: { type: 'alert', id }, after: { serial: e.serial, model: e.model, deviceKeyId: e.deviceKeyId, ...(note !== undefined ? { note } : {}) } }),
    )
    const ack = { by: labelOf(p), at: new Date(entry.time).toISOString(), ...(note !== undefined ? { note } : {}) }
    this.#c.d.log.info({ alertId: id, storeId: store.id, serial: e.serial, by: ack.by }, 'alert.acknowledged')
    this.#hub?.broadcast('ack', { id, ...ack }, store.id)
    return alertView(e, ack)
  }

  /** Whether the caller may still watch what it opened (a 4xx from the check: no; a fault of ours: yes, checked again later). */
  async stillAllowed(p: Principal, ctx: RequestContext, q: { store?: string; subtree?: boolean }): Promise<boolean> {
    try {
      await this.#scope(p, ctx, q.store, q.subtree, 'log.read')
      return true
    } catch (e) {
      return !(e instanceof VaultError && e.status < 500)
    }
  }

  /**
   * Opens a live stream of the stores' provisioning on `res`: the hello
   * event carries the last 100 log entries, the open alerts and the hub's
   * per-minute counts. `revalidate` re-checks the caller's credentials.
   */
  async openLive(p: Principal, ctx: RequestContext, q: { store?: string; subtree?: boolean }, res: import('node:http').ServerResponse, revalidate: LiveSubscription['revalidate']): Promise<void> {
    if (!this.#hub) throw new VaultError('SV_SHUTTING_DOWN', 'live streams are not served by this instance', { retryAfter: 5 })
    const { storeIds } = await this.#scope(p, ctx, q.store, q.subtree, 'log.read')
    const recent = await this.#c.d.store.signingLog.query({ ...(storeIds ? { storeIds } : {}), order: 'desc', limit: 100 })
    const alerts = await this.#alerts(storeIds, 'open')
    this.#hub.subscribe(res, {
      storeIds: storeIds ? new Set(storeIds) : undefined,
      hello: { stores: storeIds ?? null, recent: recent.entries.reverse().map(logEntryView), alerts },
      revalidate,
    })
    this.#c.d.log.debug({ stores: storeIds ?? '*', clients: this.#hub.clients }, 'live.opened')
  }
}
