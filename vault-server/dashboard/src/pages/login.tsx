/** The login page: the OpenID Connect providers, and the operator's admin token (kept in memory only). */
import { useRef, useState } from 'preact/hooks'
import { bearerToken, get, sessionProblem } from '../api.ts'
import { ErrorBox, Loading, useLoad } from '../components.tsx'
import { loadSession } from '../session.ts'

export function LoginPage() {
  const providers = useLoad((signal) => get<{ providers: Array<{ id: string; displayName: string }> }>('/v1/auth/providers', { signal }), [])
  const [error, setError] = useState<unknown>(undefined)
  const [busy, setBusy] = useState(false)
  const input = useRef<HTMLInputElement>(null)
  const returnTo = location.pathname.startsWith('/dashboard/') ? location.pathname + location.search : '/dashboard/'
  return (
    <main id="main" class="login">
      <h1>Serial vault dashboard</h1>
      {sessionProblem.value ? (
        <p class="notice" role="alert" data-testid="session-problem">
          {sessionProblem.value}
        </p>
      ) : null}
      <section aria-labelledby="login-people">
        <h2 id="login-people">Log in</h2>
        <Loading active={providers.loading} />
        <ErrorBox error={providers.error} title="The login providers could not be read" />
        {providers.data && providers.data.providers.length === 0 ? <p class="empty">No identity provider is configured on this vault.</p> : null}
        <ul class="providers">
          {(providers.data?.providers ?? []).map((p) => (
            <li key={p.id}>
              <a class="button primary" data-testid={`login-${p.id}`} href={`/v1/auth/login/${encodeURIComponent(p.id)}?return=${encodeURIComponent(returnTo)}`}>
                Log in with {p.displayName}
              </a>
            </li>
          ))}
        </ul>
      </section>
      <section aria-labelledby="login-operator">
        <h2 id="login-operator">Operator login (break-glass)</h2>
        <p class="muted">The break-glass credential made by <code>vault-server token create</code>. It stays in this tab's memory only and is gone on reload.</p>
        <form
          data-testid="token-login"
          onSubmit={async (e) => {
            e.preventDefault()
            const el = input.current!
            const t = el.value.trim()
            el.value = ''
            if (!t) return
            setBusy(true)
            setError(undefined)
            bearerToken.value = t
            try {
              const refused = await loadSession()
              if (!refused) return
              bearerToken.value = undefined
              sessionProblem.value = undefined
              setError(refused)
            } catch (err) {
              bearerToken.value = undefined
              setError(err)
            } finally {
              setBusy(false)
            }
          }}
        >
          <div class="field">
            <label for="admin-token">Admin token</label>
            <input id="admin-token" ref={input} type="password" autocomplete="off" spellcheck={false} required data-testid="admin-token" />
          </div>
          <button type="submit" disabled={busy}>
            Log in with the token
          </button>
          <Loading active={busy} label="Checking the token…" />
          <ErrorBox error={error} title="The token was refused" />
        </form>
      </section>
    </main>
  )
}
