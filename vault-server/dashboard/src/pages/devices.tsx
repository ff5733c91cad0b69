/** Devices and the signing log: search (serial, model, outcome, time), cursor paging, export, one device's history. */
import { useState } from 'preact/hooks'
import { useLocation } from 'preact-iso'
import { download, get, qs } from '../api.ts'
import { Empty, ErrorBox, Field, Loading, PageTitle, TableWrap, fmtTime, short, useAction, useLoad } from '../components.tsx'
import { can, selectedStore } from '../session.ts'
import { OUTCOMES, type LogEntryWire, type LogPageWire, type ModelWire, type SerialBindingWire } from '../wire.ts'
import { BASE } from '../base.ts'

const PAGE = 50

/** datetime-local value (local time) to ISO, and back. */
export function localToIso(v: string): string | undefined {
  if (!v) return undefined
  const d = new Date(v)
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString()
}
export function isoToLocal(v: string | undefined): string {
  if (!v) return ''
  const d = new Date(v)
  if (Number.isNaN(d.getTime())) return ''
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`
}

export function deviceHref(e: { brandId?: string; model?: string; serial?: string }): string | undefined {
  if (!e.brandId || !e.model || !e.serial) return undefined
  return `${BASE}/devices/${encodeURIComponent(e.brandId)}/${encodeURIComponent(e.model)}/${encodeURIComponent(e.serial)}`
}

export function OutcomeBadge({ outcome, code }: { outcome: string; code?: string | undefined }) {
  return (
    <span class={`badge outcome-${outcome}`} data-outcome={outcome}>
      {outcome}
      {code ? <span class="visually-hidden"> {code}</span> : null}
    </span>
  )
}

export function LogTable({ entries, testid, rowTestid = 'log-row', showStore = true }: { entries: LogEntryWire[]; testid: string; rowTestid?: string; showStore?: boolean }) {
  return (
    <TableWrap label="Signing log entries">
      <table data-testid={testid} class="log">
        <thead>
          <tr>
            <th scope="col">Time (UTC)</th>
            <th scope="col">Outcome</th>
            <th scope="col">Code</th>
            <th scope="col">Serial</th>
            <th scope="col">Model</th>
            {showStore ? <th scope="col">Store</th> : null}
            <th scope="col">Rev.</th>
            <th scope="col">Transport</th>
            <th scope="col">Device key</th>
            <th scope="col">Request id</th>
            <th scope="col">Client</th>
            <th scope="col">Message</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => {
            const href = deviceHref(e)
            return (
              <tr key={e.id} data-testid={rowTestid} data-serial={e.serial ?? ''} data-outcome={e.outcome} data-id={e.id}>
                <td class="nowrap">{fmtTime(e.time)}</td>
                <td>
                  <OutcomeBadge outcome={e.outcome} code={e.code} />
                </td>
                <td>{e.code ? <code>{e.code}</code> : null}</td>
                <td class="nowrap">{href ? <a href={href}>{e.serial}</a> : (e.serial ?? '')}</td>
                <td class="nowrap">
                  {e.model ?? ''}
                  {e.fromModel ? <div class="muted">from {e.fromModel}</div> : null}
                </td>
                {showStore ? <td class="nowrap">{e.storeId ?? ''}</td> : null}
                <td>{e.revision ?? ''}</td>
                <td>{e.transport ?? ''}</td>
                <td>
                  <code title={e.deviceKeyId}>{short(e.deviceKeyId, 10)}</code>
                </td>
                <td>
                  <code title={e.requestId}>{short(e.requestId, 10)}</code>
                </td>
                <td>{e.clientAddress ?? ''}</td>
                <td class="message">{e.message ?? ''}</td>
              </tr>
            )
          })}
        </tbody>
      </table>
    </TableWrap>
  )
}

interface Filters {
  serial: string
  model: string
  outcome: string
  from: string
  to: string
}

export function DevicesPage() {
  const loc = useLocation()
  const store = selectedStore.value
  const sid = store?.id
  const q = loc.query
  const applied: Filters = { serial: q.serial ?? '', model: q.model ?? '', outcome: q.outcome ?? '', from: q.from ?? '', to: q.to ?? '' }
  const [form, setForm] = useState<Filters>(applied)
  const [cursors, setCursors] = useState<string[]>([])
  const cursor = cursors[cursors.length - 1]
  const filterParams = { store: sid, subtree: true, serial: applied.serial.trim() || undefined, model: applied.model.trim() || undefined, outcome: applied.outcome || undefined, from: applied.from || undefined, to: applied.to || undefined }
  const key = JSON.stringify(filterParams)
  const readable = sid ? can(sid, 'log.read') : false
  const page = useLoad((signal) => (sid && readable ? get<LogPageWire>(`/log${qs({ ...filterParams, limit: PAGE, cursor, order: 'desc' })}`, { signal }) : Promise.resolve({ entries: [] } as LogPageWire)), [key, cursor, readable])
  const exp = useAction(async (format: 'csv' | 'jsonl') => {
    const stamp = new Date().toISOString().replace(/[:]/g, '').replace(/\..*/, 'Z')
    await download(`/log/export${qs({ ...filterParams, format, order: 'desc' })}`, `signing-log-${sid}-${stamp}.${format}`)
  })
  const set = (k: keyof Filters) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value })
  const entries = page.data?.entries ?? []
  return (
    <section>
      <PageTitle store={sid}>Devices and signing log</PageTitle>
      {!store ? <Empty>Select a store first.</Empty> : null}
      {store && !readable ? <Empty>Your role does not show this store's signing log.</Empty> : null}
      {readable ? (
        <form
          class="filters"
          data-testid="log-filters"
          role="search"
          aria-label="Search the signing log"
          onSubmit={(e) => {
            e.preventDefault()
            setCursors([])
            loc.route(`${BASE}/devices${qs({ serial: form.serial.trim() || undefined, model: form.model.trim() || undefined, outcome: form.outcome || undefined, from: form.from || undefined, to: form.to || undefined })}`, true)
          }}
        >
          <Field label="Serial">{(id) => <input id={id} name="serial" data-testid="filter-serial" value={form.serial} onInput={set('serial')} />}</Field>
          <Field label="Model">{(id) => <input id={id} name="model" data-testid="filter-model" value={form.model} onInput={set('model')} />}</Field>
          <Field label="Outcome">
            {(id) => (
              <select id={id} name="outcome" data-testid="filter-outcome" value={form.outcome} onChange={set('outcome')}>
                <option value="">any</option>
                {OUTCOMES.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field label="From (local time)">
            {(id) => <input id={id} type="datetime-local" name="from" data-testid="filter-from" value={isoToLocal(form.from)} onInput={(e) => setForm({ ...form, from: localToIso((e.currentTarget as HTMLInputElement).value) ?? '' })} />}
          </Field>
          <Field label="To (local time)">
            {(id) => <input id={id} type="datetime-local" name="to" data-testid="filter-to" value={isoToLocal(form.to)} onInput={(e) => setForm({ ...form, to: localToIso((e.currentTarget as HTMLInputElement).value) ?? '' })} />}
          </Field>
          <div class="filter-actions">
            <button type="submit" class="primary" data-testid="log-search">
              Search
            </button>
            <button
              type="button"
              onClick={() => {
                setForm({ serial: '', model: '', outcome: '', from: '', to: '' })
                setCursors([])
                loc.route(`${BASE}/devices`, true)
              }}
            >
              Clear
            </button>
          </div>
        </form>
      ) : null}
      {readable && sid && can(sid, 'log.export') ? (
        <div class="toolbar">
          <span>Export what the filter shows:</span>
          <button type="button" data-testid="export-csv" disabled={exp.busy} onClick={() => void exp.run('csv')}>
            CSV
          </button>
          <button type="button" data-testid="export-jsonl" disabled={exp.busy} onClick={() => void exp.run('jsonl')}>
            JSON lines
          </button>
          <Loading active={exp.busy} label="Exporting…" />
        </div>
      ) : null}
      <ErrorBox error={exp.error} title="The export failed" />
      <Loading active={page.loading} />
      <ErrorBox error={page.error} title="The signing log could not be read" />
      {readable && !page.loading && !page.error && entries.length === 0 ? <Empty>{cursor ? 'No more entries.' : 'No signing log entries match this search.'}</Empty> : null}
      {entries.length ? <LogTable entries={entries} testid="log-table" /> : null}
      {readable ? (
        <nav class="pager" aria-label="Pages of the signing log">
          <button type="button" data-testid="log-prev" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
            ← Newer
          </button>
          <span class="muted" data-testid="log-page">
            page {cursors.length + 1}
          </span>
          <button type="button" data-testid="log-next" disabled={!page.data?.nextCursor} onClick={() => page.data?.nextCursor && setCursors([...cursors, page.data.nextCursor])}>
            Older →
          </button>
        </nav>
      ) : null}
    </section>
  )
}

export function DevicePage({ brand, model, serial }: { brand: string; model: string; serial: string }) {
  const path = `${encodeURIComponent(brand)}/${encodeURIComponent(model)}/${encodeURIComponent(serial)}`
  const binding = useLoad((signal) => get<{ binding: SerialBindingWire }>(`/serials/${path}`, { signal }), [path])
  const history = useLoad(
    async (signal) => {
      // the model's store, else the selected store and those below it
      const m = await get<{ model: ModelWire }>(`/models/${encodeURIComponent(brand)}/${encodeURIComponent(model)}`, { signal }).catch(() => undefined)
      const store = m?.model.storeId ?? selectedStore.value?.id
      const out: LogEntryWire[] = []
      let cursor: string | undefined
      // the serial's whole history: every page (a device has few entries), at most 1000
      do {
        const p = await get<LogPageWire>(`/log${qs({ store, subtree: true, brand, model, serial, limit: 200, cursor })}`, { signal })
        out.push(...p.entries)
        cursor = p.nextCursor
      } while (cursor && out.length < 1000)
      // also the entries of a pivot into another model keep the serial: search by serial across models
      const pivots = await get<LogPageWire>(`/log${qs({ store: selectedStore.value?.id ?? store, subtree: true, serial, outcome: 'pivoted', limit: 100 })}`, { signal }).catch(() => ({ entries: [] }) as LogPageWire)
      for (const e of pivots.entries) if (!out.some((x) => x.id === e.id)) out.push(e)
      out.sort((a, b) => b.time.localeCompare(a.time))
      return out
    },
    [path],
  )
  const b = binding.data?.binding
  const entries = history.data ?? []
  return (
    <section>
      <PageTitle>{`Device ${serial}`}</PageTitle>
      <p>
        <a href={`${BASE}/devices?serial=${encodeURIComponent(serial)}`}>← Back to the signing log</a>
      </p>
      <h2>Binding</h2>
      <Loading active={binding.loading} />
      <ErrorBox error={binding.error} title="The binding could not be read" />
      {b ? (
        <dl class="facts" data-testid="device-binding">
          {Object.entries(b)
            .filter(([k, v]) => v !== undefined && typeof v !== 'object' && k !== 'serialAssertion')
            .map(([k, v]) => (
              <div key={k} class="fact">
                <dt>{k}</dt>
                <dd>{k.endsWith('At') ? fmtTime(String(v)) : String(v)}</dd>
              </div>
            ))}
        </dl>
      ) : null}
      {typeof b?.serialAssertion === 'string' ? (
        <details>
          <summary>The serial assertion (revision {String(b.revision)})</summary>
          <pre class="assertion" tabIndex={0} data-testid="device-serial-assertion">
            {b.serialAssertion}
          </pre>
        </details>
      ) : null}
      <h2>History</h2>
      <p class="muted">Issuances, reissues, pivots and refusals of this serial, newest first, with their request ids and revisions.</p>
      <Loading active={history.loading} />
      <ErrorBox error={history.error} title="The history could not be read" />
      {!history.loading && !history.error && entries.length === 0 ? <Empty>No signing log entry for this serial.</Empty> : null}
      {entries.length ? <LogTable entries={entries} testid="device-history" rowTestid="history-row" /> : null}
    </section>
  )
}
