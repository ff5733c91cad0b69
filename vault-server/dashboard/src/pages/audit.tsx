/** Audit: the audit log (actor, action, outcome, time; cursor paging) and the hash-chain check. */
import { Fragment } from 'preact'
import { useState } from 'preact/hooks'
import { get, qs } from '../api.ts'
import { Empty, ErrorBox, Field, Loading, PageTitle, TableWrap, fmtTime, short, useLoad } from '../components.tsx'
import { can, isOperator, selectedStore } from '../session.ts'
import type { AuditEntryWire, AuditPage as AuditPageWire, AuditReportWire } from '../wire.ts'
import { isoToLocal, localToIso } from './devices.tsx'

interface Filters {
  actor: string
  action: string
  outcome: string
  from: string
  to: string
}
const EMPTY: Filters = { actor: '', action: '', outcome: '', from: '', to: '' }

function Verify() {
  const [n, setN] = useState(0)
  const r = useLoad((signal) => get<AuditReportWire>('/audit/verify', { signal }), [n])
  const rep = r.data
  return (
    <section aria-labelledby="verify-h" class="verify">
      <h2 id="verify-h">Hash-chain check</h2>
      <Loading active={r.loading} label="Checking the whole chain…" />
      <ErrorBox error={r.error} title="The chain could not be checked" />
      {rep ? (
        <div class={`verify-result ${rep.ok ? 'ok' : 'broken'}`} data-testid="audit-verify" data-ok={String(rep.ok)} role={rep.ok ? 'status' : 'alert'}>
          <strong>{rep.ok ? '✓ The audit chain is intact' : '✗ The audit chain is broken'}</strong>: {rep.entries} entries, head #{rep.head.seq} <code title={rep.head.hash}>{short(rep.head.hash, 16)}</code>, MACs {rep.macChecked ? 'checked' : 'not checked (no master key)'}
          {rep.problems.length ? (
            <ul>
              {rep.problems.map((p) => (
                <li key={`${p.seq}-${p.kind}`}>
                  #{p.seq} {p.kind}: {p.detail}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      <button type="button" data-testid="audit-verify-run" disabled={r.loading} onClick={() => setN(n + 1)}>
        Check again
      </button>
    </section>
  )
}

export function AuditPage() {
  const store = selectedStore.value
  const sid = store?.id
  const [form, setForm] = useState<Filters>(EMPTY)
  const [applied, setApplied] = useState<Filters>(EMPTY)
  const [cursors, setCursors] = useState<string[]>([])
  const cursor = cursors[cursors.length - 1]
  const readable = sid ? can(sid, 'audit.read') : false
  const params = { store: sid, subtree: true, actor: applied.actor.trim() || undefined, action: applied.action.trim() || undefined, outcome: applied.outcome || undefined, from: applied.from || undefined, to: applied.to || undefined }
  const key = JSON.stringify(params)
  const page = useLoad((signal) => (readable ? get<AuditPageWire>(`/audit${qs({ ...params, limit: 50, cursor })}`, { signal }) : Promise.resolve({ entries: [] } as AuditPageWire)), [key, cursor, readable])
  const [open, setOpen] = useState<number | undefined>(undefined)
  const entries = page.data?.entries ?? []
  const set = (k: keyof Filters) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value })
  return (
    <section>
      <PageTitle store={sid}>Audit log</PageTitle>
      {isOperator.value ? (
        <Verify />
      ) : (
        <p class="muted" data-testid="audit-verify-unavailable">
          The check of the whole hash chain (<code>GET /v1/admin/audit/verify</code>, <code>vault-server audit verify</code>) is the operator's: it needs the vault's admin token.
        </p>
      )}
      {!store ? <Empty>Select a store first.</Empty> : null}
      {store && !readable ? <Empty>Your role does not show this store's audit log (Store Administrators see it).</Empty> : null}
      {readable ? (
        <form
          class="filters"
          role="search"
          aria-label="Search the audit log"
          data-testid="audit-filters"
          onSubmit={(e) => {
            e.preventDefault()
            setCursors([])
            setApplied(form)
          }}
        >
          <Field label="Actor (person id, e-mail or token)">{(id) => <input id={id} name="actor" value={form.actor} onInput={set('actor')} />}</Field>
          <Field label="Action or prefix">{(id) => <input id={id} name="action" placeholder="e.g. model. or member.set" value={form.action} onInput={set('action')} />}</Field>
          <Field label="Outcome">
            {(id) => (
              <select id={id} name="outcome" value={form.outcome} onChange={set('outcome')}>
                <option value="">any</option>
                <option value="ok">ok</option>
                <option value="denied">denied</option>
              </select>
            )}
          </Field>
          <Field label="From (local time)">{(id) => <input id={id} type="datetime-local" value={isoToLocal(form.from)} onInput={(e) => setForm({ ...form, from: localToIso((e.currentTarget as HTMLInputElement).value) ?? '' })} />}</Field>
          <Field label="To (local time)">{(id) => <input id={id} type="datetime-local" value={isoToLocal(form.to)} onInput={(e) => setForm({ ...form, to: localToIso((e.currentTarget as HTMLInputElement).value) ?? '' })} />}</Field>
          <div class="filter-actions">
            <button type="submit" class="primary">
              Search
            </button>
            <button
              type="button"
              onClick={() => {
                setForm(EMPTY)
                setApplied(EMPTY)
                setCursors([])
              }}
            >
              Clear
            </button>
          </div>
        </form>
      ) : null}
      <Loading active={page.loading} />
      <ErrorBox error={page.error} title="The audit log could not be read" />
      {readable && !page.loading && !page.error && entries.length === 0 ? <Empty>No audit entries match this search.</Empty> : null}
      {entries.length ? (
        <TableWrap label="Audit entries">
          <table data-testid="audit-table">
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Time (UTC)</th>
                <th scope="col">Actor</th>
                <th scope="col">Action</th>
                <th scope="col">Outcome</th>
                <th scope="col">Store</th>
                <th scope="col">Target</th>
                <th scope="col">From</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e: AuditEntryWire) => (
                <Fragment key={e.seq}>
                  <tr data-testid="audit-row" data-action={e.action} data-outcome={e.outcome}>
                    <td>{e.seq}</td>
                    <td class="nowrap">{fmtTime(e.time)}</td>
                    <td>{e.actor.email ?? e.actor.name ?? `${e.actor.kind}:${e.actor.id}`}</td>
                    <td>
                      <code>{e.action}</code>
                    </td>
                    <td>
                      <span class={`badge ${e.outcome === 'ok' ? 'ok' : 'off'}`}>{e.outcome}</span>
                      {e.code ? <code class="error-code">{e.code}</code> : null}
                    </td>
                    <td>{e.storeId ?? ''}</td>
                    <td>{e.target ? `${e.target.type} ${e.target.id}` : ''}</td>
                    <td>{e.source?.ip ?? ''}</td>
                    <td>
                      <button type="button" aria-expanded={open === e.seq} onClick={() => setOpen(open === e.seq ? undefined : e.seq)} aria-label={`${open === e.seq ? "Hide" : "Show"} details of entry ${e.seq}`}>
                        {open === e.seq ? 'Hide' : 'Show'}
                      </button>
                    </td>
                  </tr>
                  {open === e.seq ? (
                    <tr key={`${e.seq}-d`} class="audit-detail">
                      <td colSpan={9}>
                        <pre class="assertion">{JSON.stringify({ before: e.before, after: e.after, requestId: e.requestId, source: e.source, hash: e.hash, prevHash: e.prevHash }, null, 2)}</pre>
                      </td>
                    </tr>
                  ) : null}
                </Fragment>
              ))}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
      {readable ? (
        <nav class="pager" aria-label="Pages of the audit log">
          <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
            ← Newer
          </button>
          <span class="muted">page {cursors.length + 1}</span>
          <button type="button" disabled={!page.data?.nextCursor} onClick={() => page.data?.nextCursor && setCursors([...cursors, page.data.nextCursor])}>
            Older →
          </button>
        </nav>
      ) : null}
    </section>
  )
}
