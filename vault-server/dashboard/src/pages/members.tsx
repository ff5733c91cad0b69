/** Members: the people and roles of the selected store (invite, change, remove), and personal tokens. */
import { useState } from 'preact/hooks'
import { api, get } from '../api.ts'
import { Dialog, Empty, ErrorBox, Field, Loading, PageTitle, SecretOnce, TableWrap, fmtTime, useAction, useLoad } from '../components.tsx'
import { can, me, permissionsIn, selectedStore, storeList } from '../session.ts'
import { ROLES, ROLE_NAMES, type MemberWire, type RoleId, type TokenWire } from '../wire.ts'

export function MembersPage() {
  const store = selectedStore.value
  return (
    <section>
      <PageTitle store={store?.id}>Members</PageTitle>
      {store ? <StoreMembers storeId={store.id} /> : <Empty>Select a store first.</Empty>}
      {me.value?.kind === 'person' ? <MyTokens /> : null}
      {store && can(store.id, 'token.manage') ? <StoreTokens storeId={store.id} /> : null}
    </section>
  )
}

function StoreMembers({ storeId }: { storeId: string }) {
  const readable = can(storeId, 'member.read')
  const manage = can(storeId, 'member.manage')
  const members = useLoad((signal) => (readable ? get<{ members: MemberWire[] }>(`/stores/${encodeURIComponent(storeId)}/members`, { signal }) : Promise.resolve({ members: [] })), [storeId, readable])
  const [removing, setRemoving] = useState<MemberWire | undefined>(undefined)
  const remove = useAction(async (m: MemberWire) => {
    await api('DELETE', `/stores/${encodeURIComponent(storeId)}/members/${encodeURIComponent(m.email)}`)
    setRemoving(undefined)
    members.reload()
  })
  if (!readable)
    return (
      <section aria-labelledby="members-h">
        <h2 id="members-h">People and roles</h2>
        <Empty>Your role in this store does not show its people (only Store Administrators see them).</Empty>
      </section>
    )
  const list = members.data?.members ?? []
  return (
    <section aria-labelledby="members-h">
      <h2 id="members-h">People and roles</h2>
      <Loading active={members.loading} />
      <ErrorBox error={members.error} title="The members could not be read" />
      {manage ? <Invite storeId={storeId} onDone={members.reload} /> : null}
      {!members.loading && !members.error && list.length === 0 ? <Empty>Nobody holds a role in this store yet.</Empty> : null}
      {list.length ? (
        <TableWrap label="Members">
          <table data-testid="members-table">
            <thead>
              <tr>
                <th scope="col">Person</th>
                <th scope="col">Role</th>
                <th scope="col">Inherited below</th>
                <th scope="col">Granted by</th>
                <th scope="col">Last login</th>
                {manage ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {list.map((m) => (
                <tr key={m.email} data-testid="member-row" data-email={m.email}>
                  <td>
                    {m.displayName ? <strong>{m.displayName} </strong> : null}
                    <span>{m.email}</span>
                  </td>
                  <td>{manage ? <RoleChanger storeId={storeId} member={m} onDone={members.reload} /> : (ROLE_NAMES[m.role] ?? m.role)}</td>
                  <td>{m.inheritable ? 'yes' : 'no'}</td>
                  <td>{m.grantedBy}</td>
                  <td>{fmtTime(m.lastLoginAt) || 'never'}</td>
                  {manage ? (
                    <td>
                      <button type="button" class="danger" data-testid="member-remove" onClick={() => setRemoving(m)} aria-label={`Remove ${m.email}`}>
                        Remove
                      </button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
      {removing ? (
        <Dialog title="Remove this role?" open onClose={() => setRemoving(undefined)}>
          <p>
            {removing.email} loses the role {ROLE_NAMES[removing.role]} in <code>{storeId}</code>.
          </p>
          <ErrorBox error={remove.error} title="The role was not removed" />
          <Loading active={remove.busy} label="Saving…" />
          <div class="actions">
            <button type="button" onClick={() => setRemoving(undefined)}>
              Cancel
            </button>
            <button type="button" class="danger" data-testid="member-remove-confirm" disabled={remove.busy} onClick={() => void remove.run(removing)}>
              Remove
            </button>
          </div>
        </Dialog>
      ) : null}
    </section>
  )
}

function RoleChanger({ storeId, member, onDone }: { storeId: string; member: MemberWire; onDone: () => void }) {
  const [role, setRole] = useState<RoleId>(member.role)
  const [inheritable, setInheritable] = useState(member.inheritable)
  const act = useAction(async () => {
    await api('PUT', `/stores/${encodeURIComponent(storeId)}/members/${encodeURIComponent(member.email)}`, { role, inheritable })
    onDone()
  })
  const changed = role !== member.role || inheritable !== member.inheritable
  return (
    <div class="role-changer">
      <label class="visually-hidden" for={`role-${member.email}`}>
        Role of {member.email}
      </label>
      <select id={`role-${member.email}`} data-testid="member-role" value={role} onChange={(e) => setRole((e.currentTarget as HTMLSelectElement).value as RoleId)}>
        {ROLES.map((r) => (
          <option key={r} value={r}>
            {ROLE_NAMES[r]}
          </option>
        ))}
      </select>
      <label class="inline">
        <input type="checkbox" checked={inheritable} onChange={(e) => setInheritable((e.currentTarget as HTMLInputElement).checked)} /> inheritable
      </label>
      {changed ? (
        <button type="button" data-testid="member-save" disabled={act.busy} onClick={() => void act.run()}>
          Save
        </button>
      ) : null}
      <ErrorBox error={act.error} title="Not changed" />
      <Loading active={act.busy} label="Saving…" />
    </div>
  )
}

function Invite({ storeId, onDone }: { storeId: string; onDone: () => void }) {
  const [email, setEmail] = useState('')
  const [role, setRole] = useState<RoleId>('viewer')
  const [inheritable, setInheritable] = useState(false)
  const [done, setDone] = useState<string | undefined>(undefined)
  const act = useAction(async () => {
    await api('PUT', `/stores/${encodeURIComponent(storeId)}/members/${encodeURIComponent(email.trim())}`, { role, inheritable })
    setDone(`${email.trim()} is now ${ROLE_NAMES[role]} in ${storeId}.`)
    setEmail('')
    onDone()
  })
  return (
    <form
      class="inline-form"
      data-testid="invite-form"
      onSubmit={(e) => {
        e.preventDefault()
        setDone(undefined)
        void act.run()
      }}
    >
      <h3>Invite a person</h3>
      <Field label="E-mail">
        {(id) => <input id={id} type="email" name="email" required maxLength={254} value={email} onInput={(e) => setEmail((e.currentTarget as HTMLInputElement).value)} />}
      </Field>
      <Field label="Role">
        {(id) => (
          <select id={id} name="role" value={role} onChange={(e) => setRole((e.currentTarget as HTMLSelectElement).value as RoleId)}>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {ROLE_NAMES[r]}
              </option>
            ))}
          </select>
        )}
      </Field>
      <label class="inline">
        <input type="checkbox" name="inheritable" checked={inheritable} onChange={(e) => setInheritable((e.currentTarget as HTMLInputElement).checked)} /> also in the stores below (inheritable)
      </label>
      <button type="submit" class="primary" disabled={act.busy}>
        Invite
      </button>
      {done ? (
        <p class="ok" role="status">
          {done}
        </p>
      ) : null}
      <ErrorBox error={act.error} title="The invitation failed" />
      <Loading active={act.busy} label="Saving…" />
    </form>
  )
}

function TokenTable({ tokens, onRevoke, testid }: { tokens: TokenWire[]; onRevoke?: (t: TokenWire) => void; testid: string }) {
  return (
    <TableWrap label="Tokens">
      <table data-testid={testid}>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Owner</th>
            <th scope="col">Permissions</th>
            <th scope="col">Stores</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            <th scope="col">State</th>
            {onRevoke ? <th scope="col">Actions</th> : null}
          </tr>
        </thead>
        <tbody>
          {tokens.map((t) => (
            <tr key={t.id} data-testid="token-row" data-token-id={t.id}>
              <td>{t.name}</td>
              <td>{t.email ?? t.kind}</td>
              <td>{(t.permissions ?? []).join(', ')}</td>
              <td>{(t.stores ?? ['all yours']).join(', ')}</td>
              <td>{fmtTime(t.expiresAt)}</td>
              <td>{fmtTime(t.lastUsedAt) || 'never'}</td>
              <td>{t.revokedAt ? `revoked ${fmtTime(t.revokedAt)}` : 'active'}</td>
              {onRevoke ? (
                <td>
                  {!t.revokedAt ? (
                    <button type="button" class="danger" data-testid="token-revoke" onClick={() => onRevoke(t)} aria-label={`Revoke token ${t.name}`}>
                      Revoke
                    </button>
                  ) : null}
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  )
}

function MyTokens() {
  const tokens = useLoad((signal) => get<{ tokens: TokenWire[] }>('/tokens', { signal }), [])
  const [creating, setCreating] = useState(false)
  const [secret, setSecret] = useState<string | undefined>(undefined)
  const revoke = useAction(async (t: TokenWire) => {
    await api('DELETE', `/tokens/${encodeURIComponent(t.id)}`)
    tokens.reload()
  })
  const list = tokens.data?.tokens ?? []
  return (
    <section aria-labelledby="tokens-h" data-testid="my-tokens-section">
      <h2 id="tokens-h">Your personal tokens</h2>
      <p class="muted">For the CLI and scripts: a subset of your permissions and stores, expiring. The secret is shown once, when you create it.</p>
      {me.value?.via === 'session' ? (
        <button type="button" data-testid="token-create" onClick={() => setCreating(true)}>
          New personal token
        </button>
      ) : null}
      <Loading active={tokens.loading} />
      <ErrorBox error={tokens.error} title="Your tokens could not be read" />
      <ErrorBox error={revoke.error} title="The token was not revoked" />
      {!tokens.loading && !tokens.error && list.length === 0 ? <Empty>You have no personal tokens.</Empty> : null}
      {list.length ? <TokenTable tokens={list} onRevoke={(t) => void revoke.run(t)} testid="my-tokens" /> : null}
      {creating ? (
        <CreateToken
          onClose={() => setCreating(false)}
          onCreated={(s) => {
            setCreating(false)
            setSecret(s)
            tokens.reload()
          }}
        />
      ) : null}
      <SecretOnce title="Your new personal token" secret={secret} onClose={() => setSecret(undefined)} />
    </section>
  )
}

function CreateToken({ onClose, onCreated }: { onClose: () => void; onCreated: (secret: string) => void }) {
  const [name, setName] = useState('')
  const [days, setDays] = useState(30)
  const [mode, setMode] = useState<'all' | 'pick'>('all')
  const [perms, setPerms] = useState<Set<string>>(new Set())
  const [storeIds, setStoreIds] = useState<Set<string>>(new Set())
  const mine = new Set<string>()
  for (const s of me.value?.stores ?? []) for (const p of permissionsIn(s.id)) mine.add(p)
  const act = useAction(async () => {
    const body = { name, expiresInDays: days, permissions: mode === 'all' ? ['*'] : [...perms], ...(storeIds.size ? { stores: [...storeIds] } : {}) }
    const r = await api<{ token: string }>('POST', '/tokens', body)
    onCreated(r.token)
  })
  return (
    <Dialog title="New personal token" open onClose={onClose} testid="token-create-dialog">
      <form
        onSubmit={(e) => {
          e.preventDefault()
          void act.run()
        }}
      >
        <Field label="Name">{(id) => <input id={id} name="name" required maxLength={100} value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />}</Field>
        <Field label="Expires in (days, 1 to 365)">
          {(id) => <input id={id} name="expiresInDays" type="number" min={1} max={365} required value={days} onInput={(e) => setDays(Number((e.currentTarget as HTMLInputElement).value))} />}
        </Field>
        <fieldset>
          <legend>Permissions</legend>
          <label class="inline">
            <input type="radio" name="permMode" checked={mode === 'all'} onChange={() => setMode('all')} /> all of mine
          </label>
          <label class="inline">
            <input type="radio" name="permMode" checked={mode === 'pick'} onChange={() => setMode('pick')} /> only these:
          </label>
          {mode === 'pick' ? (
            <div class="checks">
              {[...mine].sort().map((p) => (
                <label key={p} class="inline">
                  <input
                    type="checkbox"
                    checked={perms.has(p)}
                    onChange={(e) => {
                      const n = new Set(perms)
                      if ((e.currentTarget as HTMLInputElement).checked) n.add(p)
                      else n.delete(p)
                      setPerms(n)
                    }}
                  />{' '}
                  <code>{p}</code>
                </label>
              ))}
            </div>
          ) : null}
        </fieldset>
        <fieldset>
          <legend>Stores (none checked: all of yours)</legend>
          <div class="checks">
            {storeList.value.map(({ store: s }) => (
              <label key={s.id} class="inline">
                <input
                  type="checkbox"
                  checked={storeIds.has(s.id)}
                  onChange={(e) => {
                    const n = new Set(storeIds)
                    if ((e.currentTarget as HTMLInputElement).checked) n.add(s.id)
                    else n.delete(s.id)
                    setStoreIds(n)
                  }}
                />{' '}
                {s.id}
              </label>
            ))}
          </div>
        </fieldset>
        <ErrorBox error={act.error} title="The token was not created" />
        <Loading active={act.busy} label="Saving…" />
        <div class="actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={act.busy || (mode === 'pick' && perms.size === 0)}>
            Create token
          </button>
        </div>
      </form>
    </Dialog>
  )
}

function StoreTokens({ storeId }: { storeId: string }) {
  const tokens = useLoad((signal) => get<{ tokens: TokenWire[] }>(`/stores/${encodeURIComponent(storeId)}/tokens`, { signal }), [storeId])
  const revoke = useAction(async (t: TokenWire) => {
    await api('DELETE', `/tokens/${encodeURIComponent(t.id)}`)
    tokens.reload()
  })
  const list = tokens.data?.tokens ?? []
  return (
    <section aria-labelledby="store-tokens-h">
      <h2 id="store-tokens-h">Personal tokens of this store's people</h2>
      <Loading active={tokens.loading} />
      <ErrorBox error={tokens.error} title="The tokens could not be read" />
      <ErrorBox error={revoke.error} title="The token was not revoked" />
      {!tokens.loading && !tokens.error && list.length === 0 ? <Empty>Nobody in this store has a personal token.</Empty> : null}
      {list.length ? <TokenTable tokens={list} onRevoke={(t) => void revoke.run(t)} testid="store-tokens" /> : null}
    </section>
  )
}
