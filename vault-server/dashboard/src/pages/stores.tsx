/** Stores: the brand's store tree; create sub-stores and edit them (store.manage). */
import { useState } from 'preact/hooks'
import { api } from '../api.ts'
import { Dialog, Empty, ErrorBox, Field, Loading, PageTitle, TableWrap, useAction } from '../components.tsx'
import { can, refreshStores, rolesIn, selectedStore, selectedStoreId, storeList } from '../session.ts'
import { ROLE_NAMES, type StoreWire } from '../wire.ts'

const RELATIONS = ['reseller', 'subsidiary', 'business-partner', 'other'] as const

export function StoresPage() {
  const [creating, setCreating] = useState<StoreWire | undefined>(undefined)
  const [editing, setEditing] = useState<StoreWire | undefined>(undefined)
  const list = storeList.value
  return (
    <section>
      <PageTitle>Stores</PageTitle>
      {list.length === 0 ? <Empty>You do not hold a role in any store yet. Ask a Store Administrator to invite you.</Empty> : null}
      {list.length ? (
        <TableWrap label="Stores">
          <table class="tree" data-testid="store-tree">
            <thead>
              <tr>
                <th scope="col">Store</th>
                <th scope="col">Kind</th>
                <th scope="col">Partner</th>
                <th scope="col">Pivot review</th>
                <th scope="col">Your roles</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.map(({ store: s, depth }) => (
                <tr key={s.id} data-testid="store-row" data-store={s.id} class={selectedStore.value?.id === s.id ? 'selected' : ''}>
                  <td>
                    <span class={`indent d${Math.min(depth, 6)}`}>
                      {depth ? <span aria-hidden="true">└ </span> : null}
                      <strong>{s.displayName}</strong> <code>{s.id}</code>
                    </span>
                  </td>
                  <td>
                    <span class={`badge kind-${s.kind}`}>{s.kind}</span>
                  </td>
                  <td>{s.partner ? `${s.partner.name} (${s.partner.relation})` : ''}</td>
                  <td>{s.requirePivotReview ? 'required' : 'no'}</td>
                  <td>{rolesIn(s.id).map((r) => ROLE_NAMES[r] ?? r).join(', ') || (s.roles ?? []).join(', ')}</td>
                  <td class="row-actions">
                    {selectedStore.value?.id !== s.id ? (
                      <button type="button" onClick={() => (selectedStoreId.value = s.id)} aria-label={`Select store ${s.id}`}>
                        Select
                      </button>
                    ) : (
                      <span class="muted">selected</span>
                    )}
                    {can(s.id, 'store.manage') ? (
                      <>
                        <button type="button" data-testid="store-edit" onClick={() => setEditing(s)} aria-label={`Edit store ${s.id}`}>
                          Edit
                        </button>
                        <button type="button" data-testid="store-create" onClick={() => setCreating(s)} aria-label={`Add sub-store under ${s.id}`}>
                          Add sub-store
                        </button>
                      </>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
      {creating ? <CreateStore parent={creating} onClose={() => setCreating(undefined)} /> : null}
      {editing ? <EditStore store={editing} onClose={() => setEditing(undefined)} /> : null}
    </section>
  )
}

function PartnerFields({ name, relation, setName, setRelation, required }: { name: string; relation: string; setName: (s: string) => void; setRelation: (s: string) => void; required: boolean }) {
  return (
    <>
      <Field label={required ? 'Partner name' : 'Partner name (empty for none)'}>
        {(id) => <input id={id} name="partnerName" value={name} required={required} maxLength={200} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />}
      </Field>
      <Field label="Partner relation">
        {(id) => (
          <select id={id} name="partnerRelation" value={relation} onChange={(e) => setRelation((e.currentTarget as HTMLSelectElement).value)}>
            {RELATIONS.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        )}
      </Field>
    </>
  )
}

function CreateStore({ parent, onClose }: { parent: StoreWire; onClose: () => void }) {
  const [id, setId] = useState('')
  const [kind, setKind] = useState<'product' | 'ecosystem'>('product')
  const [displayName, setDisplayName] = useState('')
  const [partnerName, setPartnerName] = useState('')
  const [relation, setRelation] = useState('business-partner')
  const [review, setReview] = useState(false)
  const act = useAction(async () => {
    const body = {
      id,
      parent: parent.id,
      kind,
      displayName,
      ...(kind === 'ecosystem' && partnerName ? { partner: { name: partnerName, relation } } : {}),
      ...(review ? { requirePivotReview: true } : {}),
    }
    const r = await api<{ store: StoreWire }>('POST', '/stores', body)
    await refreshStores()
    selectedStoreId.value = r.store.id
    onClose()
  })
  return (
    <Dialog title={`New sub-store under ${parent.id}`} open onClose={onClose} testid="store-create-dialog">
      <form
        data-testid="store-create-form"
        onSubmit={(e) => {
          e.preventDefault()
          void act.run()
        }}
      >
        <Field label="Store id" hint="1-64 of A-Z a-z 0-9 and inner -; it becomes the model assertions' store header">
          {(fid, d) => <input id={fid} name="id" aria-describedby={d} required pattern="[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?" value={id} onInput={(e) => setId((e.currentTarget as HTMLInputElement).value)} />}
        </Field>
        <fieldset>
          <legend>Kind</legend>
          {(['product', 'ecosystem'] as const).map((k) => (
            <label key={k} class="inline">
              <input type="radio" name="kind" value={k} checked={kind === k} onChange={() => setKind(k)} /> {k}
            </label>
          ))}
        </fieldset>
        <Field label="Display name">
          {(fid) => <input id={fid} name="displayName" required maxLength={200} value={displayName} onInput={(e) => setDisplayName((e.currentTarget as HTMLInputElement).value)} />}
        </Field>
        {kind === 'ecosystem' ? <PartnerFields name={partnerName} relation={relation} setName={setPartnerName} setRelation={setRelation} required /> : null}
        <label class="inline">
          <input type="checkbox" name="requirePivotReview" checked={review} onChange={(e) => setReview((e.currentTarget as HTMLInputElement).checked)} /> Pivots into this store wait for a Reviewer
        </label>
        <ErrorBox error={act.error} title="The store was not created" />
        <Loading active={act.busy} label="Saving…" />
        <div class="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={act.busy}>
            Create store
          </button>
        </div>
      </form>
    </Dialog>
  )
}

function EditStore({ store, onClose }: { store: StoreWire; onClose: () => void }) {
  const [displayName, setDisplayName] = useState(store.displayName)
  const [partnerName, setPartnerName] = useState(store.partner?.name ?? '')
  const [relation, setRelation] = useState<string>(store.partner?.relation ?? 'business-partner')
  const [review, setReview] = useState(store.requirePivotReview)
  const act = useAction(async () => {
    const body: Record<string, unknown> = { displayName, requirePivotReview: review }
    if (store.kind === 'ecosystem') body.partner = partnerName ? { name: partnerName, relation } : null
    await api('PATCH', `/stores/${encodeURIComponent(store.id)}`, body)
    await refreshStores()
    onClose()
  })
  return (
    <Dialog title={`Edit store ${store.id}`} open onClose={onClose} testid="store-edit-dialog">
      <form
        onSubmit={(e) => {
          e.preventDefault()
          void act.run()
        }}
      >
        <Field label="Display name">
          {(fid) => <input id={fid} name="displayName" required maxLength={200} value={displayName} onInput={(e) => setDisplayName((e.currentTarget as HTMLInputElement).value)} />}
        </Field>
        {store.kind === 'ecosystem' ? <PartnerFields name={partnerName} relation={relation} setName={setPartnerName} setRelation={setRelation} required={false} /> : null}
        <label class="inline">
          <input type="checkbox" name="requirePivotReview" checked={review} onChange={(e) => setReview((e.currentTarget as HTMLInputElement).checked)} /> Pivots into this store wait for a Reviewer
        </label>
        <ErrorBox error={act.error} title="The store was not changed" />
        <Loading active={act.busy} label="Saving…" />
        <div class="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={act.busy}>
            Save
          </button>
        </div>
      </form>
    </Dialog>
  )
}
