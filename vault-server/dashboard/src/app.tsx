/** The shell: header (who, store picker, logout), nav, and the pages under /dashboard/. */
import { LocationProvider, Router, Route, useLocation } from 'preact-iso'
import { useEffect, useState } from 'preact/hooks'
import { useSignal } from '@preact/signals'
import { authState, loadSession, logout, me, selectedStore, selectedStoreId, storeList, rolesIn } from './session.ts'
import { ErrorBox, Loading } from './components.tsx'
import { LoginPage } from './pages/login.tsx'
import { StoresPage } from './pages/stores.tsx'
import { MembersPage } from './pages/members.tsx'
import { KeysPage } from './pages/keys.tsx'
import { ModelsPage, ModelPage } from './pages/models.tsx'
import { DevicesPage, DevicePage } from './pages/devices.tsx'
import { LivePage } from './pages/live.tsx'
import { AuditPage } from './pages/audit.tsx'
import { ROLE_NAMES } from './wire.ts'

import { BASE } from './base.ts'
export { BASE }

const NAV: Array<[string, string]> = [
  ['stores', 'Stores'],
  ['members', 'Members'],
  ['keys', 'Keys'],
  ['models', 'Models'],
  ['devices', 'Devices'],
  ['live', 'Live'],
  ['audit', 'Audit'],
]

function StorePicker() {
  const list = storeList.value
  if (list.length === 0) return null
  return (
    <div class="store-picker">
      <label for="store-picker">Store</label>
      <select
        id="store-picker"
        data-testid="store-picker"
        value={selectedStore.value?.id ?? ''}
        onChange={(e) => {
          selectedStoreId.value = (e.currentTarget as HTMLSelectElement).value
        }}
      >
        {list.map((n) => (
          <option key={n.store.id} value={n.store.id}>
            {`${'\u00a0\u00a0\u00a0'.repeat(n.depth)}${n.depth ? '└ ' : ''}${n.store.displayName} (${n.store.id}, ${n.store.kind})`}
          </option>
        ))}
      </select>
    </div>
  )
}

function Shell() {
  const loc = useLocation()
  const navOpen = useSignal(false)
  const [busy, setBusy] = useState(false)
  const m = me.value!
  const who = m.kind === 'operator' ? `Operator (admin token ${m.token?.name ?? ''})` : (m.person?.displayName ?? m.person?.email ?? '')
  const store = selectedStore.value
  const roles = store ? rolesIn(store.id) : []
  useEffect(() => {
    navOpen.value = false
  }, [loc.path])
  const current = loc.path.replace(/^\/dashboard\/?/, '').split('/')[0] || 'stores'
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <div class="topbar-row">
          <a class="brand" href={`${BASE}/`}>
            Serial vault
          </a>
          <button type="button" class="nav-toggle" aria-expanded={navOpen.value} aria-controls="main-nav" onClick={() => (navOpen.value = !navOpen.value)}>
            Menu
          </button>
          <StorePicker />
          <div class="whoami" data-testid="whoami">
            <span class="who">{who}</span>
            {m.person?.email && m.person.displayName ? <span class="muted email">{m.person.email}</span> : null}
            {roles.length ? <span class="muted roles" data-testid="my-roles">{roles.map((r) => ROLE_NAMES[r] ?? r).join(', ')}</span> : null}
          </div>
          <button
            type="button"
            class="logout"
            data-testid="logout"
            disabled={busy}
            onClick={async () => {
              setBusy(true)
              try {
                await logout()
                loc.route(`${BASE}/`)
              } finally {
                setBusy(false)
              }
            }}
          >
            Log out
          </button>
        </div>
        <nav id="main-nav" aria-label="Main" class={navOpen.value ? 'open' : ''}>
          <ul>
            {NAV.map(([path, label]) => (
              <li key={path}>
                <a href={`${BASE}/${path}`} aria-current={current === path ? 'page' : undefined} data-testid={`nav-${path}`}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        <Router>
          <Route path={`${BASE}/`} component={StoresPage} />
          <Route path={`${BASE}/stores`} component={StoresPage} />
          <Route path={`${BASE}/members`} component={MembersPage} />
          <Route path={`${BASE}/keys`} component={KeysPage} />
          <Route path={`${BASE}/models`} component={ModelsPage} />
          <Route path={`${BASE}/models/:brand/:model`} component={ModelPage} />
          <Route path={`${BASE}/devices`} component={DevicesPage} />
          <Route path={`${BASE}/devices/:brand/:model/:serial`} component={DevicePage} />
          <Route path={`${BASE}/live`} component={LivePage} />
          <Route path={`${BASE}/audit`} component={AuditPage} />
          <Route default component={NotFound} />
        </Router>
      </main>
    </>
  )
}

function NotFound() {
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        <a href={`${BASE}/stores`}>Go to the stores</a>
      </p>
    </section>
  )
}

function Root() {
  const [error, setError] = useState<unknown>(undefined)
  useEffect(() => {
    loadSession().catch(setError)
  }, [])
  const state = authState.value
  if (state === 'unknown')
    return (
      <main id="main" class="boot">
        <h1 class="visually-hidden">Serial vault dashboard</h1>
        <Loading active={error === undefined} />
        <ErrorBox error={error} title="The vault could not be reached" />
      </main>
    )
  if (state === 'anonymous' || !me.value) return <LoginPage />
  return <Shell />
}

export function App() {
  return (
    <LocationProvider scope={BASE}>
      <Root />
    </LocationProvider>
  )
}
