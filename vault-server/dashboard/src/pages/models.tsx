/** Models: list, create and edit (headers validated as you type by the vault's dry run), the signed assertion, API keys. */
import { useEffect, useRef, useState } from 'preact/hooks'
import { ApiError, api, download, get } from '../api.ts'
import { CopyButton, Dialog, Empty, ErrorBox, Field, Loading, PageTitle, SecretOnce, TableWrap, fmtTime, short, useAction, useLoad } from '../components.tsx'
import { DEFAULT_HEADERS, headersOfAssertion, parseHeaders } from '../headers.ts'
import { baseStoreOf, can, selectedStore, stores } from '../session.ts'
import type { KeyWire, ModelWire } from '../wire.ts'
import { BASE } from '../base.ts'

function policyText(m: ModelWire): string {
  return m.serialPolicy.kind === 'device' ? 'device' : `assign:${m.serialPolicy.template}@${m.serialPolicy.start}`
}

export function ModelsPage() {
  const store = selectedStore.value
  const sid = store?.id
  const models = useLoad((signal) => (sid ? get<{ models: ModelWire[] }>(`/models?store=${encodeURIComponent(sid)}`, { signal }) : Promise.resolve({ models: [] })), [sid])
  const [creating, setCreating] = useState(false)
  const [secret, setSecret] = useState<string | undefined>(undefined)
  const manage = sid ? can(sid, 'model.manage') : false
  const readable = sid ? can(sid, 'model.read') : false
  const list = models.data?.models ?? []
  return (
    <section>
      <PageTitle store={sid}>Models</PageTitle>
      {!store ? <Empty>Select a store first.</Empty> : null}
      {manage ? (
        <button type="button" class="primary" data-testid="model-create" onClick={() => setCreating(true)}>
          New model
        </button>
      ) : null}
      <Loading active={models.loading} />
      <ErrorBox error={models.error} title="The models could not be read" />
      {store && !readable ? <Empty>Your role does not show this store's models.</Empty> : null}
      {readable && !models.loading && !models.error && list.length === 0 ? <Empty>No models in this store yet.</Empty> : null}
      {list.length ? (
        <TableWrap label="Models">
          <table data-testid="models-table">
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Brand</th>
                <th scope="col">Revision</th>
                <th scope="col">Serial policy</th>
                <th scope="col">Duplicates</th>
                <th scope="col">API keys</th>
                <th scope="col">Signing key</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {list.map((m) => (
                <tr key={`${m.brandId}/${m.name}`} data-testid="model-row" data-model={m.name}>
                  <td>
                    <a href={`${BASE}/models/${encodeURIComponent(m.brandId)}/${encodeURIComponent(m.name)}`}>{m.name}</a>
                    {!m.assertionNamesStore ? <div class="muted">assertion does not name its store yet</div> : null}
                  </td>
                  <td>{m.brandId}</td>
                  <td>{m.revision}</td>
                  <td>
                    <code>{policyText(m)}</code>
                  </td>
                  <td>{m.duplicatePolicy}</td>
                  <td>{m.apiKeyHashes.length}</td>
                  <td>
                    <code title={m.signingKeyId}>{short(m.signingKeyId)}</code>
                  </td>
                  <td>{fmtTime(m.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
      {creating && store ? (
        <ModelForm
          brandId={store.brandId}
          storeId={store.id}
          onClose={() => setCreating(false)}
          onSaved={(r) => {
            setCreating(false)
            models.reload()
            if (r.apiKeys[0]) setSecret(r.apiKeys.join('\n'))
          }}
        />
      ) : null}
      <SecretOnce title="The model's API key" secret={secret} onClose={() => setSecret(undefined)} note="Put it in the gadget's device-service.headers as api-key. Copy it now: the vault will not show it again." />
    </section>
  )
}

type Validation = { state: 'idle' | 'pending' | 'valid' | 'invalid'; error?: unknown; field?: string }

/** The field an error is about: details.field, or the first issue's path. */
function fieldOf(e: unknown): string | undefined {
  if (!(e instanceof ApiError)) return undefined
  if (typeof e.details?.field === 'string') return e.details.field.split('.')[0]
  const issues = e.details?.issues
  if (Array.isArray(issues) && typeof issues[0] === 'string') return issues[0].split(/[.:]/)[0]
  if (e.code === 'SV_MODEL_INVALID') return 'headers'
  if (e.code === 'SV_MODEL_EXISTS') return 'name'
  if (e.code.startsWith('SV_KEY')) return 'signingKeyId'
  return undefined
}

function ModelForm({ brandId, storeId, model, onClose, onSaved }: { brandId: string; storeId: string; model?: ModelWire; onClose: () => void; onSaved: (r: { model: ModelWire; apiKeys: string[] }) => void }) {
  const editing = model !== undefined
  const [name, setName] = useState(model?.name ?? '')
  const [headers, setHeaders] = useState(model ? headersOfAssertion(model.modelAssertion) : DEFAULT_HEADERS)
  const [policy, setPolicy] = useState(model ? policyText(model) : 'device')
  const [duplicates, setDuplicates] = useState<'refuse' | 'reissue'>(model?.duplicatePolicy ?? 'refuse')
  const [keyId, setKeyId] = useState(model?.signingKeyId ?? '')
  const base = baseStoreOf(storeId)
  const keys = useLoad((signal) => (base && can(base.id, 'key.read') ? get<{ keys: KeyWire[] }>(`/keys?brand=${encodeURIComponent(brandId)}`, { signal }) : Promise.resolve({ keys: [] })), [brandId])
  const [v, setV] = useState<Validation>({ state: 'idle' })
  const [parseError, setParseError] = useState<string | undefined>(undefined)
  const seq = useRef(0)

  const body = (parsed: ReturnType<typeof parseHeaders>) => ({
    brandId,
    name: name.trim(),
    storeId,
    ...(keyId ? { signingKeyId: keyId } : {}),
    ...(policy.trim() ? { serialPolicy: policy.trim() } : {}),
    duplicates,
    ...(parsed ? { headers: parsed } : {}),
  })

  // validated as you type: local syntax at once, the vault's dry run 300 ms after the last keystroke
  useEffect(() => {
    let parsed: ReturnType<typeof parseHeaders>
    try {
      parsed = parseHeaders(headers)
      setParseError(undefined)
    } catch (e) {
      setParseError((e as Error).message)
      setV({ state: 'invalid', field: 'headers' })
      return
    }
    if (!name.trim()) {
      setV({ state: 'idle' })
      return
    }
    const n = ++seq.current
    setV((x) => ({ ...x, state: 'pending' }))
    const ac = new AbortController()
    const t = setTimeout(async () => {
      try {
        await api('POST', '/models?dryRun=true', body(parsed), { signal: ac.signal })
        if (n === seq.current) setV({ state: 'valid' })
      } catch (e) {
        if (ac.signal.aborted || n !== seq.current) return
        // editing: the dry run of a create says the name exists once every other check passed
        if (editing && e instanceof ApiError && e.code === 'SV_MODEL_EXISTS') setV({ state: 'valid' })
        else setV({ state: 'invalid', error: e, field: fieldOf(e) })
      }
    }, 300)
    return () => {
      clearTimeout(t)
      ac.abort()
    }
  }, [name, headers, policy, duplicates, keyId])

  const save = useAction(async () => {
    const parsed = parseHeaders(headers)
    if (editing) {
      const patch = { ...(keyId && keyId !== model.signingKeyId ? { signingKeyId: keyId } : {}), serialPolicy: policy.trim(), duplicates, ...(parsed ? { headers: parsed } : {}) }
      onSaved(await api<{ model: ModelWire; apiKeys: string[] }>('PATCH', `/models/${encodeURIComponent(brandId)}/${encodeURIComponent(model.name)}`, patch))
    } else {
      onSaved(await api<{ model: ModelWire; apiKeys: string[] }>('POST', '/models', body(parsed)))
    }
  })
  const errFor = (f: string) => (v.state === 'invalid' && v.error && v.field === f ? <VaultMessage e={v.error} /> : null)
  const general = v.state === 'invalid' && v.error && !['name', 'headers', 'serialPolicy', 'duplicates', 'signingKeyId'].includes(v.field ?? '') ? v.error : undefined
  return (
    <Dialog title={editing ? `Edit model ${model.name}` : `New model in ${storeId}`} open onClose={onClose} testid="model-dialog">
      <form
        class="model-form"
        data-testid="model-form"
        onSubmit={(e) => {
          e.preventDefault()
          void save.run()
        }}
      >
        <Field label="Model name" error={errFor('name')}>
          {(id, d) => <input id={id} name="name" required maxLength={128} readOnly={editing} aria-describedby={d} aria-invalid={v.field === 'name'} value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />}
        </Field>
        <Field label="Serial policy" hint="device (the device proposes its serial) or assign:TEMPLATE[@START], e.g. assign:ACME-{n:8}" error={errFor('serialPolicy')}>
          {(id, d) => <input id={id} name="serialPolicy" aria-describedby={d} value={policy} onInput={(e) => setPolicy((e.currentTarget as HTMLInputElement).value)} />}
        </Field>
        <Field label="Same serial with another device key" error={errFor('duplicates')}>
          {(id) => (
            <select id={id} name="duplicates" value={duplicates} onChange={(e) => setDuplicates((e.currentTarget as HTMLSelectElement).value as 'refuse')}>
              <option value="refuse">refuse (a clone attempt)</option>
              <option value="reissue">reissue with the next revision</option>
            </select>
          )}
        </Field>
        <Field label="Signing key" error={errFor('signingKeyId')}>
          {(id) => (
            <select id={id} name="signingKeyId" value={keyId} onChange={(e) => setKeyId((e.currentTarget as HTMLSelectElement).value)}>
              {!editing ? <option value="">the brand's default key</option> : null}
              {editing && !(keys.data?.keys ?? []).some((k) => k.keyId === keyId) ? <option value={keyId}>{short(keyId, 20)}</option> : null}
              {(keys.data?.keys ?? [])
                .filter((k) => k.purpose === 'brand')
                .map((k) => (
                  <option key={k.keyId} value={k.keyId} disabled={!k.enabled}>
                    {k.name} ({short(k.keyId, 12)}){k.enabled ? '' : ' disabled'}
                  </option>
                ))}
            </select>
          )}
        </Field>
        <Field
          label="Model assertion headers (YAML or JSON)"
          hint="The vault sets type, authority-id, brand-id, model, series, store, revision and the signing key itself."
          error={
            parseError ? (
              <span data-testid="headers-error" data-code="syntax">
                {parseError}
              </span>
            ) : (
              errFor('headers')
            )
          }
        >
          {(id, d) => <textarea id={id} name="headers" class="code" rows={14} spellcheck={false} aria-describedby={d} aria-invalid={v.field === 'headers'} data-testid="model-headers" value={headers} onInput={(e) => setHeaders((e.currentTarget as HTMLTextAreaElement).value)} />}
        </Field>
        <p class="validation" data-testid="model-validation" data-state={v.state} role="status">
          {v.state === 'pending' ? 'Checking with the vault…' : v.state === 'valid' ? '✓ The vault accepts this model.' : v.state === 'invalid' ? 'The vault would refuse this model.' : ''}
        </p>
        <ErrorBox error={general} title="The vault would refuse this model" />
        <ErrorBox error={save.error} title={editing ? 'The model was not changed' : 'The model was not created'} />
        <Loading active={save.busy} label="Saving…" />
        <div class="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" data-testid="model-save" disabled={save.busy || !!parseError}>
            {editing ? 'Save and re-sign' : 'Create model'}
          </button>
        </div>
      </form>
    </Dialog>
  )
}

function VaultMessage({ e }: { e: unknown }) {
  const code = e instanceof ApiError ? e.code : undefined
  return (
    <span data-testid="field-error" data-code={code}>
      {e instanceof ApiError ? e.message : String(e)} {code ? <code class="error-code">{code}</code> : null}
    </span>
  )
}

export function ModelPage({ brand, model: name }: { brand: string; model: string }) {
  const m = useLoad((signal) => get<{ model: ModelWire }>(`/models/${encodeURIComponent(brand)}/${encodeURIComponent(name)}`, { signal }), [brand, name])
  const [editing, setEditing] = useState(false)
  const [secret, setSecret] = useState<string | undefined>(undefined)
  const [removing, setRemoving] = useState<string | undefined>(undefined)
  const model = m.data?.model
  const sid = model?.storeId
  const dl = useAction(() => download(`/models/${encodeURIComponent(brand)}/${encodeURIComponent(name)}/assertion`, `${brand}-${name}.assert`))
  const addKey = useAction(async () => {
    const r = await api<{ apiKey: string }>('POST', `/models/${encodeURIComponent(brand)}/${encodeURIComponent(name)}/api-keys`, {})
    setSecret(r.apiKey)
    m.reload()
  })
  const removeKey = useAction(async (hash: string) => {
    await api('DELETE', `/models/${encodeURIComponent(brand)}/${encodeURIComponent(name)}/api-keys/${encodeURIComponent(hash)}`)
    setRemoving(undefined)
    m.reload()
  })
  const storeKnown = sid !== undefined && stores.value.some((s) => s.id === sid)
  return (
    <section>
      <PageTitle store={sid}>{`Model ${name}`}</PageTitle>
      <p>
        <a href={`${BASE}/models`}>← All models</a>
      </p>
      <Loading active={m.loading} />
      <ErrorBox error={m.error} title="The model could not be read" />
      {model ? (
        <>
          <dl class="facts" data-testid="model-facts">
            <dt>Brand</dt>
            <dd>{model.brandId}</dd>
            <dt>Store</dt>
            <dd>{model.storeId}</dd>
            <dt>Revision</dt>
            <dd data-testid="model-revision">{model.revision}</dd>
            <dt>Serial policy</dt>
            <dd>
              <code>{policyText(model)}</code>
            </dd>
            <dt>Duplicates</dt>
            <dd>{model.duplicatePolicy}</dd>
            <dt>Signing key</dt>
            <dd>
              <code>{model.signingKeyId}</code>
            </dd>
            <dt>Updated</dt>
            <dd>{fmtTime(model.updatedAt)}</dd>
          </dl>
          <div class="toolbar">
            {storeKnown && can(sid, 'model.manage') ? (
              <button type="button" data-testid="model-edit" onClick={() => setEditing(true)}>
                Edit model
              </button>
            ) : null}
            {storeKnown && can(sid, 'model.download') ? (
              <button type="button" data-testid="model-download" disabled={dl.busy} onClick={() => void dl.run()}>
                Download assertions (.assert)
              </button>
            ) : null}
            <Loading active={dl.busy} label="Downloading…" />
          </div>
          <ErrorBox error={dl.error} title="The download failed" />
          <section aria-labelledby="apikeys-h">
            <h2 id="apikeys-h">API keys</h2>
            <p class="muted">The vault keeps only their SHA-256; a new key is shown once.</p>
            {storeKnown && can(sid, 'apikey.manage') ? (
              <button type="button" data-testid="apikey-add" disabled={addKey.busy} onClick={() => void addKey.run()}>
                Add an API key
              </button>
            ) : null}
            <ErrorBox error={addKey.error} title="No API key was added" />
            {model.apiKeyHashes.length === 0 ? <Empty>This model has no API key: devices cannot register.</Empty> : null}
            <ul class="hashes" data-testid="apikey-list">
              {model.apiKeyHashes.map((h) => (
                <li key={h} data-testid="apikey-row" data-hash={h}>
                  <code>sha256 {short(h, 24)}</code>
                  {storeKnown && can(sid, 'apikey.manage') ? (
                    <button type="button" class="danger" data-testid="apikey-remove" onClick={() => setRemoving(h)} aria-label={`Remove API key ${short(h, 12)}`}>
                      Remove
                    </button>
                  ) : null}
                </li>
              ))}
            </ul>
          </section>
          <section aria-labelledby="assertion-h">
            <h2 id="assertion-h">Signed model assertion</h2>
            <CopyButton text={model.modelAssertion} label="Copy the assertion" />
            <pre class="assertion" tabIndex={0} data-testid="model-assertion">
              {model.modelAssertion}
            </pre>
          </section>
          {editing ? (
            <ModelForm
              brandId={model.brandId}
              storeId={model.storeId}
              model={model}
              onClose={() => setEditing(false)}
              onSaved={() => {
                setEditing(false)
                m.reload()
              }}
            />
          ) : null}
          {removing ? (
            <Dialog title="Remove this API key?" open onClose={() => setRemoving(undefined)}>
              <p>Devices using it can no longer register.</p>
              <ErrorBox error={removeKey.error} title="The key was not removed" />
              <Loading active={removeKey.busy} label="Saving…" />
              <div class="actions">
                <button type="button" onClick={() => setRemoving(undefined)}>
                  Cancel
                </button>
                <button type="button" class="danger" data-testid="apikey-remove-confirm" disabled={removeKey.busy} onClick={() => void removeKey.run(removing)}>
                  Remove
                </button>
              </div>
            </Dialog>
          ) : null}
        </>
      ) : null}
      <SecretOnce title="The new API key" secret={secret} onClose={() => setSecret(undefined)} />
    </section>
  )
}
