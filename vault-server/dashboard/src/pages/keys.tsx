/** Keys: the brand's signing keys, their account-key assertions, enable/disable with a reason, the models using each. */
import { useState } from 'preact/hooks'
import { api, get, headers, raw } from '../api.ts'
import { CopyButton, Dialog, Empty, ErrorBox, Field, Loading, PageTitle, TableWrap, fmtTime, short, useAction, useLoad } from '../components.tsx'
import { baseStoreOf, can, selectedStore } from '../session.ts'
import type { KeyWire, ModelWire } from '../wire.ts'

/** The assertions of a stream (each starts with its `type:` header line). */
export function splitAssertions(text: string): string[] {
  return text
    .split(/(?=^type: )/m)
    .map((s) => s.trim())
    .filter(Boolean)
}

/**
 * A key's account-key assertion: from the key list when the vault gives it,
 * else from the assertion stream of a model signed with it (model.download).
 */
async function accountKeyAssertion(k: KeyWire, models: ModelWire[]): Promise<string> {
  if (k.accountKeyAssertion) return k.accountKeyAssertion
  const m = models.find((x) => x.signingKeyId === k.keyId)
  if (!m) throw new Error('The vault does not list this key\'s account-key assertion, and no model of yours signs with it.')
  const res = await raw('GET', `/v1/admin/models/${encodeURIComponent(m.brandId)}/${encodeURIComponent(m.name)}/assertion`, undefined, { headers: headers('GET', { Accept: 'application/x.ubuntu.assertion' }) })
  const found = splitAssertions(await res.text()).find((a) => /^type: account-key$/m.test(a) && new RegExp(`^public-key-sha3-384: ${k.keyId}$`, 'm').test(a))
  if (!found) throw new Error('The account-key assertion was not found in the model assertion stream.')
  return found
}

export function KeysPage() {
  const store = selectedStore.value
  const base = baseStoreOf(store?.id)
  const brand = store?.brandId
  const readable = base ? can(base.id, 'key.read') : false
  const manage = base ? can(base.id, 'key.manage') : false
  const keys = useLoad((signal) => (brand && readable ? get<{ keys: KeyWire[] }>(`/keys?brand=${encodeURIComponent(brand)}`, { signal }) : Promise.resolve({ keys: [] })), [brand, readable])
  const models = useLoad((signal) => (brand && readable ? get<{ models: ModelWire[] }>(`/models?brand=${encodeURIComponent(brand)}`, { signal }).catch(() => ({ models: [] })) : Promise.resolve({ models: [] })), [brand, readable])
  const [viewing, setViewing] = useState<KeyWire | undefined>(undefined)
  const [toggling, setToggling] = useState<KeyWire | undefined>(undefined)
  const list = keys.data?.keys ?? []
  return (
    <section>
      <PageTitle store={base?.id}>Signing keys</PageTitle>
      {brand ? (
        <p class="muted">
          Brand <code>{brand}</code>: keys belong to the brand's base store.
        </p>
      ) : null}
      {!store ? <Empty>Select a store first.</Empty> : null}
      {store && !readable ? <Empty>Your role does not show this brand's signing keys (Store Administrators of the base store see them).</Empty> : null}
      <Loading active={keys.loading} />
      <ErrorBox error={keys.error} title="The keys could not be read" />
      {readable && !keys.loading && !keys.error && list.length === 0 ? <Empty>This brand has no signing keys yet.</Empty> : null}
      {list.length ? (
        <TableWrap label="Signing keys">
          <table data-testid="keys-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key id (SHA3-384)</th>
                <th scope="col">Purpose</th>
                <th scope="col">Bits</th>
                <th scope="col">State</th>
                <th scope="col">Used by models</th>
                <th scope="col">Created</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {list.map((k) => (
                <tr key={k.keyId} data-testid="key-row" data-key-id={k.keyId} data-enabled={String(k.enabled)}>
                  <td>{k.name}</td>
                  <td>
                    <code title={k.keyId}>{short(k.keyId, 16)}</code>
                  </td>
                  <td>{k.purpose}</td>
                  <td>{k.bits}</td>
                  <td>
                    <span class={`badge ${k.enabled ? 'ok' : 'off'}`}>{k.enabled ? 'enabled' : 'disabled'}</span>
                    {k.reason ? <div class="muted">{k.reason}</div> : null}
                    {k.changedAt ? <div class="muted">{fmtTime(k.changedAt)}</div> : null}
                  </td>
                  <td>{k.models?.length ? k.models.join(', ') : <span class="muted">none</span>}</td>
                  <td>{fmtTime(k.createdAt)}</td>
                  <td class="row-actions">
                    {k.purpose === 'brand' ? (
                      <button type="button" data-testid="key-view" onClick={() => setViewing(k)} aria-label={`Account-key assertion of ${k.name}`}>
                        Account-key
                      </button>
                    ) : null}
                    {manage ? (
                      <button type="button" data-testid={k.enabled ? 'key-disable' : 'key-enable'} class={k.enabled ? 'danger' : ''} onClick={() => setToggling(k)} aria-label={`${k.enabled ? 'Disable' : 'Enable'} key ${k.name}`}>
                        {k.enabled ? 'Disable' : 'Enable'}
                      </button>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
      {viewing ? <AssertionDialog k={viewing} models={models.data?.models ?? []} onClose={() => setViewing(undefined)} /> : null}
      {toggling ? (
        <ToggleKey
          k={toggling}
          onClose={() => setToggling(undefined)}
          onDone={() => {
            setToggling(undefined)
            keys.reload()
          }}
        />
      ) : null}
    </section>
  )
}

function AssertionDialog({ k, models, onClose }: { k: KeyWire; models: ModelWire[]; onClose: () => void }) {
  const a = useLoad(() => accountKeyAssertion(k, models), [k.keyId])
  return (
    <Dialog title={`Account-key assertion of ${k.name}`} open onClose={onClose} testid="key-assertion-dialog">
      <Loading active={a.loading} />
      <ErrorBox error={a.error} title="Not available" />
      {a.data ? (
        <>
          <pre class="assertion" tabIndex={0} data-testid="key-assertion">
            {a.data}
          </pre>
          <CopyButton text={a.data} />
        </>
      ) : null}
    </Dialog>
  )
}

function ToggleKey({ k, onClose, onDone }: { k: KeyWire; onClose: () => void; onDone: () => void }) {
  const [reason, setReason] = useState('')
  const enable = !k.enabled
  const act = useAction(async () => {
    await api('POST', `/keys/${encodeURIComponent(k.keyId)}/${enable ? 'enable' : 'disable'}`, reason.trim() ? { reason: reason.trim() } : {})
    onDone()
  })
  return (
    <Dialog title={`${enable ? 'Enable' : 'Disable'} key ${k.name}`} open onClose={onClose} testid="key-toggle-dialog">
      <form
        onSubmit={(e) => {
          e.preventDefault()
          void act.run()
        }}
      >
        <Field label={enable ? 'Reason (optional)' : 'Reason (required)'} hint={enable ? undefined : 'A key a model signs with cannot be disabled: move the models to another key first.'}>
          {(id, d) => <textarea id={id} name="reason" aria-describedby={d} rows={3} maxLength={500} required={!enable} value={reason} onInput={(e) => setReason((e.currentTarget as HTMLTextAreaElement).value)} />}
        </Field>
        <ErrorBox error={act.error} title="The key was not changed" />
        <Loading active={act.busy} label="Saving…" />
        <div class="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class={enable ? 'primary' : 'danger'} disabled={act.busy || (!enable && !reason.trim())}>
            {enable ? 'Enable' : 'Disable'}
          </button>
        </div>
      </form>
    </Dialog>
  )
}
