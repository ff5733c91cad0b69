/**
 * Live: provisioning as it happens. A uPlot chart of serials and refusals per
 * minute over the stream's window (60 minutes), by model and transport; the
 * last events; clone alerts (a serial offered with another device key) that
 * stand out and can be acknowledged (alert.acknowledge).
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { api, get, qs } from '../api.ts'
import { Dialog, Empty, ErrorBox, Field, Loading, PageTitle, TableWrap, fmtTime, short, useAction } from '../components.tsx'
import { can, selectedStore } from '../session.ts'
import { runLive } from '../live-stream.ts'
import type { Alert, LiveBucket, LogEntryWire } from '../wire.ts'
import { deviceHref, OutcomeBadge } from './devices.tsx'

const MAX_EVENTS = 200
const MINUTE = 60_000
const SERIAL_OUTCOMES = new Set(['issued', 'reissued', 'pivoted'])

type Status = 'connecting' | 'live' | 'reconnecting' | 'error'

interface LiveData {
  /** minute|brand|model|transport|outcome -> count */
  counts: Map<string, number>
  events: LogEntryWire[]
  alerts: Map<string, Alert>
  windowMinutes: number
  /** server clock minus ours */
  skew: number
  models: Set<string>
  transports: Set<string>
}

const fresh = (): LiveData => ({ counts: new Map(), events: [], alerts: new Map(), windowMinutes: 60, skew: 0, models: new Set(), transports: new Set(['https', 'mqtt']) })
const keyOf = (b: Pick<LiveBucket, 'minute' | 'brandId' | 'model' | 'transport' | 'outcome'>) => `${b.minute}|${b.brandId ?? ''}|${b.model ?? ''}|${b.transport ?? ''}|${b.outcome}`
const modelKey = (brand: string | undefined, model: string | undefined) => `${brand ?? ''}/${model ?? ''}`

function addCount(d: LiveData, b: Omit<LiveBucket, 'count'>, n: number) {
  const k = keyOf(b)
  d.counts.set(k, (d.counts.get(k) ?? 0) + n)
  if (b.model) d.models.add(modelKey(b.brandId, b.model))
  if (b.transport) d.transports.add(b.transport)
}

interface Series {
  xs: number[]
  serials: number[]
  refusals: number[]
  totalSerials: number
  totalIssued: number
  totalRefusals: number
}

function series(d: LiveData, model: string, transport: string, now: number): Series {
  const end = Math.floor(now / MINUTE) * MINUTE
  const start = end - (d.windowMinutes - 1) * MINUTE
  const n = d.windowMinutes
  const serials = new Array<number>(n).fill(0)
  const refusals = new Array<number>(n).fill(0)
  let totalIssued = 0
  for (const [k, c] of d.counts) {
    const [m, brand, mod, tr, outcome] = k.split('|') as [string, string, string, string, string]
    const minute = Number(m)
    if (minute < start || minute > end) continue
    if (model && modelKey(brand, mod) !== model) continue
    if (transport && tr !== transport) continue
    const i = (minute - start) / MINUTE
    if (SERIAL_OUTCOMES.has(outcome)) serials[i]! += c
    else if (outcome === 'refused') refusals[i]! += c
    if (outcome === 'issued') totalIssued += c
  }
  return {
    xs: Array.from({ length: n }, (_, i) => (start + i * MINUTE) / 1000),
    serials,
    refusals,
    totalSerials: serials.reduce((a, b) => a + b, 0),
    totalIssued,
    totalRefusals: refusals.reduce((a, b) => a + b, 0),
  }
}

function Chart({ s, version }: { s: Series; version: number }) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  useEffect(() => {
    const el = box.current!
    const width = Math.max(280, el.clientWidth || 600)
    const u = new uPlot(
      {
        width,
        height: width < 500 ? 220 : 300,
        title: undefined,
        // UTC, as every table of the dashboard shows times
        tzDate: (ts: number) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(4, Math.ceil(max * 1.2))] } },
        axes: [{ stroke: '#1f2933', grid: { stroke: '#e4e7eb' } }, { stroke: '#1f2933', grid: { stroke: '#e4e7eb' }, label: 'per minute' }],
        series: [
          { label: 'time (UTC)' },
          { label: 'serials (issued, reissued, pivoted)', stroke: '#0b63ce', width: 2, fill: 'rgba(11,99,206,0.12)', points: { show: false } },
          { label: 'refusals', stroke: '#b3261e', width: 2, dash: [6, 3], points: { show: false } },
        ],
        // the series names only: values appear under the cursor, never as '--'
        legend: { show: true, live: false },
      },
      [s.xs, s.serials, s.refusals],
      el,
    )
    plot.current = u
    const ro = new ResizeObserver(() => {
      const w = Math.max(280, el.clientWidth)
      u.setSize({ width: w, height: w < 500 ? 220 : 300 })
    })
    ro.observe(el)
    return () => {
      ro.disconnect()
      u.destroy()
      plot.current = null
    }
  }, [])
  useEffect(() => {
    plot.current?.setData([s.xs, s.serials, s.refusals])
  }, [version, s])
  const last = s.serials.length - 1
  return (
    <figure class="chart">
      <div
        ref={box}
        class="chart-box"
        data-testid="live-chart"
        data-points={s.xs.length}
        data-version={version}
        data-total-serials={s.totalSerials}
        data-total-refusals={s.totalRefusals}
        data-last-serials={s.serials[last] ?? 0}
        data-last-refusals={s.refusals[last] ?? 0}
        data-last-minute={s.xs[last] !== undefined ? new Date(s.xs[last]! * 1000).toISOString() : ''}
        role="img"
        aria-label={`Serials and refusals per minute over the last ${s.xs.length} minutes: ${s.totalSerials} serials, ${s.totalRefusals} refusals`}
      />
      <figcaption class="muted">Serials per minute (solid blue) and refusals per minute (dashed red), last {s.xs.length} minutes, times in UTC.</figcaption>
    </figure>
  )
}

export function LivePage() {
  const store = selectedStore.value
  const sid = store?.id
  const data = useRef<LiveData>(fresh())
  const [version, setVersion] = useState(0)
  const [status, setStatus] = useState<{ s: Status; detail?: unknown }>({ s: 'connecting' })
  const [gap, setGap] = useState<number | undefined>(undefined)
  const [model, setModel] = useState('')
  const [transport, setTransport] = useState('')
  const [acking, setAcking] = useState<Alert | undefined>(undefined)
  const [now, setNow] = useState(Date.now())
  const pending = useRef<number | undefined>(undefined)
  const bump = () => {
    if (pending.current !== undefined) return
    pending.current = window.setTimeout(() => {
      pending.current = undefined
      setVersion((v) => v + 1)
    }, 150)
  }
  const readable = sid ? can(sid, 'log.read') : false

  useEffect(() => {
    if (!sid || !readable) return
    const ac = new AbortController()
    data.current = fresh()
    setGap(undefined)
    setVersion((v) => v + 1)
    void runLive(
      `/v1/admin/live${qs({ store: sid, subtree: true })}`,
      {
        hello(h) {
          const d = fresh()
          d.windowMinutes = h.windowMinutes || 60
          const serverNow = typeof h.now === 'number' ? h.now : Date.parse(h.now)
          d.skew = Number.isFinite(serverNow) ? serverNow - Date.now() : 0
          for (const b of h.buckets ?? []) {
            const minute = typeof b.minute === 'number' ? b.minute : Date.parse(String(b.minute))
            if (Number.isFinite(minute)) addCount(d, { ...b, minute: Math.floor(minute / MINUTE) * MINUTE }, b.count)
          }
          d.events = [...(h.recent ?? [])].reverse().slice(0, MAX_EVENTS)
          for (const a of h.alerts ?? []) d.alerts.set(a.id, a)
          data.current = d
          setNow(Date.now())
          bump()
          // the acknowledged ones too (the hello carries the open ones)
          get<{ alerts: Alert[] }>(`/alerts${qs({ store: sid, subtree: true, state: 'all' })}`, { signal: ac.signal }).then(
            (r) => {
              if (data.current !== d) return
              for (const a of r.alerts) if (!d.alerts.has(a.id) || a.acknowledged) d.alerts.set(a.id, { ...d.alerts.get(a.id), ...a })
              bump()
            },
            () => undefined,
          )
        },
        entry(e) {
          const d = data.current
          if (d.events.some((x) => x.id === e.id)) return
          const t = Date.parse(e.time)
          addCount(d, { minute: Math.floor(t / MINUTE) * MINUTE, brandId: e.brandId, model: e.model, transport: e.transport, outcome: e.outcome } as LiveBucket, 1)
          d.events = [e, ...d.events].slice(0, MAX_EVENTS)
          bump()
        },
        alert(a) {
          data.current.alerts.set(a.id, { ...data.current.alerts.get(a.id), ...a })
          bump()
        },
        ack(k) {
          const a = data.current.alerts.get(k.id)
          if (a) data.current.alerts.set(k.id, { ...a, acknowledged: { by: k.by, at: k.at, ...(k.note ? { note: k.note } : {}) } })
          bump()
        },
        gap(g) {
          setGap(g.dropped)
        },
        status(s, detail) {
          setStatus({ s, detail })
        },
      },
      ac.signal,
    )
    return () => ac.abort()
  }, [sid, readable])

  // the window slides with the clock
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 10_000)
    return () => clearInterval(t)
  }, [])

  const d = data.current
  const s = useMemo(() => series(d, model, transport, now + d.skew), [version, model, transport, now])
  const events = d.events.filter((e) => (!model || modelKey(e.brandId, e.model) === model) && (!transport || e.transport === transport))
  const alerts = [...d.alerts.values()].sort((a, b) => b.time.localeCompare(a.time))
  const open = alerts.filter((a) => !a.acknowledged)
  const done = alerts.filter((a) => a.acknowledged)

  return (
    <section class="live">
      <PageTitle store={sid}>Live provisioning</PageTitle>
      {!store ? <Empty>Select a store first.</Empty> : null}
      {store && !readable ? <Empty>Your role does not show this store's signing log, so not its live view either.</Empty> : null}
      {readable ? (
        <>
          <p class={`live-status state-${status.s}`} data-testid="live-status" data-state={status.s} role="status">
            {status.s === 'live' ? '● Live' : status.s === 'connecting' ? 'Connecting…' : status.s === 'reconnecting' ? 'Connection lost, reconnecting…' : 'The live view is not available'} <span class="muted">(store {sid} and the stores below)</span>
          </p>
          {status.s === 'error' ? <ErrorBox error={status.detail} title="The live stream was refused" /> : null}
          {gap !== undefined ? (
            <p class="notice" role="status" data-testid="live-gap">
              Some events were skipped ({gap} dropped while this page fell behind); the figures were reloaded.
            </p>
          ) : null}

          <section aria-labelledby="alerts-h" class={`alerts ${open.length ? 'has-open' : ''}`} data-testid="clone-alerts">
            <h2 id="alerts-h">Clone alerts {open.length ? <span class="count" data-testid="clone-alert-count">{open.length}</span> : null}</h2>
            <div role={open.length ? 'alert' : undefined}>
              {open.length === 0 ? <Empty>No open clone alerts: no serial has been offered with another device key.</Empty> : null}
              <ul class="alert-list">
                {open.map((a) => (
                  <AlertItem key={a.id} a={a} canAck={can(a.storeId ?? sid, 'alert.acknowledge')} onAck={() => setAcking(a)} />
                ))}
              </ul>
            </div>
            {done.length ? (
              <details>
                <summary>Acknowledged ({done.length})</summary>
                <ul class="alert-list acknowledged">
                  {done.map((a) => (
                    <AlertItem key={a.id} a={a} canAck={false} onAck={() => undefined} />
                  ))}
                </ul>
              </details>
            ) : null}
          </section>

          <div class="live-controls">
            <Field label="Model">
              {(id) => (
                <select id={id} data-testid="live-model" value={model} onChange={(e) => setModel((e.currentTarget as HTMLSelectElement).value)}>
                  <option value="">all models</option>
                  {[...d.models].sort().map((m) => (
                    <option key={m} value={m}>
                      {m}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field label="Transport">
              {(id) => (
                <select id={id} data-testid="live-transport" value={transport} onChange={(e) => setTransport((e.currentTarget as HTMLSelectElement).value)}>
                  <option value="">all transports</option>
                  {[...d.transports].sort().map((t) => (
                    <option key={t} value={t}>
                      {t}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <div class="counters">
              <div class="counter">
                <span class="counter-value" data-testid="live-issued-count">
                  {s.totalSerials}
                </span>
                <span class="counter-label">serials in {d.windowMinutes} min</span>
              </div>
              <div class="counter">
                <span class="counter-value" data-testid="live-new-count">
                  {s.totalIssued}
                </span>
                <span class="counter-label">first issued</span>
              </div>
              <div class="counter refusals">
                <span class="counter-value" data-testid="live-refused-count">
                  {s.totalRefusals}
                </span>
                <span class="counter-label">refusals</span>
              </div>
            </div>
          </div>
          <Chart s={s} version={version} />

          <h2>Last events</h2>
          {events.length === 0 ? <Empty>No registration in this window yet.</Empty> : null}
          {events.length ? (
            <TableWrap label="Last events">
              <table data-testid="live-events" class="log">
                <thead>
                  <tr>
                    <th scope="col">Time (UTC)</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">Serial</th>
                    <th scope="col">Model</th>
                    <th scope="col">Transport</th>
                    <th scope="col">Rev.</th>
                    <th scope="col">Code</th>
                    <th scope="col">Client</th>
                  </tr>
                </thead>
                <tbody>
                  {events.map((e) => {
                    const href = deviceHref(e)
                    return (
                      <tr key={e.id} data-testid="live-event" data-serial={e.serial ?? ''} data-outcome={e.outcome} data-model={e.model ?? ''} data-transport={e.transport ?? ''}>
                        <td class="nowrap">{fmtTime(e.time)}</td>
                        <td>
                          <OutcomeBadge outcome={e.outcome} code={e.code} />
                        </td>
                        <td>{href ? <a href={href}>{e.serial}</a> : (e.serial ?? '')}</td>
                        <td>{e.model ?? ''}</td>
                        <td>{e.transport ?? ''}</td>
                        <td>{e.revision ?? ''}</td>
                        <td>{e.code ? <code>{e.code}</code> : null}</td>
                        <td>{e.clientAddress ?? ''}</td>
                      </tr>
                    )
                  })}
                </tbody>
              </table>
            </TableWrap>
          ) : null}
        </>
      ) : null}
      {acking ? (
        <AckDialog
          a={acking}
          onClose={() => setAcking(undefined)}
          onDone={(a) => {
            data.current.alerts.set(a.id, a)
            setAcking(undefined)
            bump()
          }}
        />
      ) : null}
    </section>
  )
}

function AlertItem({ a, canAck, onAck }: { a: Alert; canAck: boolean; onAck: () => void }) {
  const href = deviceHref(a)
  return (
    <li class={`clone-alert ${a.acknowledged ? 'acked' : ''}`} data-testid="clone-alert" data-serial={a.serial ?? ''} data-alert-id={a.id} data-acknowledged={String(!!a.acknowledged)}>
      <div>
        <strong>Clone attempt</strong>: serial {href ? <a href={href}>{a.serial}</a> : <code>{a.serial}</code>} of {a.brandId}/{a.model} offered with another device key <code title={a.deviceKeyId}>{short(a.deviceKeyId, 12)}</code>
      </div>
      <div class="muted-strong">
        {fmtTime(a.time)} · {a.transport ?? ''} {a.clientAddress ? `from ${a.clientAddress}` : ''} {a.storeId ? `· store ${a.storeId}` : ''}
      </div>
      {a.acknowledged ? (
        <div class="muted">
          acknowledged by {a.acknowledged.by} at {fmtTime(a.acknowledged.at)}
          {a.acknowledged.note ? `: ${a.acknowledged.note}` : ''}
        </div>
      ) : null}
      {canAck && !a.acknowledged ? (
        <button type="button" data-testid="alert-ack" onClick={onAck} aria-label={`Acknowledge the clone alert for serial ${a.serial ?? ''}`}>
          Acknowledge
        </button>
      ) : null}
    </li>
  )
}

function AckDialog({ a, onClose, onDone }: { a: Alert; onClose: () => void; onDone: (a: Alert) => void }) {
  const [note, setNote] = useState('')
  const act = useAction(async () => {
    const r = await api<{ alert: Alert }>('POST', `/alerts/${encodeURIComponent(a.id)}/acknowledge`, note.trim() ? { note: note.trim() } : {})
    onDone(r.alert)
  })
  return (
    <Dialog title={`Acknowledge the alert for ${a.serial ?? a.id}`} open onClose={onClose} testid="alert-ack-dialog">
      <form
        onSubmit={(e) => {
          e.preventDefault()
          void act.run()
        }}
      >
        <Field label="Note (optional)">{(id) => <textarea id={id} name="note" rows={3} maxLength={500} value={note} onInput={(e) => setNote((e.currentTarget as HTMLTextAreaElement).value)} />}</Field>
        <ErrorBox error={act.error} title="The alert was not acknowledged" />
        <Loading active={act.busy} label="Saving…" />
        <div class="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" data-testid="alert-ack-confirm" disabled={act.busy}>
            Acknowledge
          </button>
        </div>
      </form>
    </Dialog>
  )
}
