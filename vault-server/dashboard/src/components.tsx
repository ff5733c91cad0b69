/** Small shared pieces: loading indicator, errors, empty states, dialogs, fields, tables. */
import type { ComponentChildren, JSX } from 'preact'
import { useEffect, useRef, useState, useCallback } from 'preact/hooks'
import { ApiError, errorText } from './api.ts'

/** A spinner shown only once `active` has lasted 200 ms. */
export function Loading({ active, label = 'Loading…' }: { active: boolean; label?: string }) {
  const [shown, setShown] = useState(false)
  useEffect(() => {
    if (!active) {
      setShown(false)
      return
    }
    const t = setTimeout(() => setShown(true), 200)
    return () => clearTimeout(t)
  }, [active])
  if (!active || !shown) return null
  return (
    <div class="loading" role="status" data-testid="loading">
      <span class="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  )
}

export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (error === undefined || error === null) return null
  const code = error instanceof ApiError ? error.code : undefined
  const details = error instanceof ApiError ? error.details : undefined
  const issues = Array.isArray(details?.issues) ? (details!.issues as string[]) : []
  return (
    <div class="error" role="alert" data-testid="error" data-code={code}>
      <strong>{title ?? 'Something went wrong'}</strong>{' '}
      <span class="error-message">{error instanceof ApiError ? error.message : errorText(error)}</span>
      {code ? <code class="error-code">{code}</code> : null}
      {issues.length > 1 ? (
        <ul>
          {issues.map((i) => (
            <li key={i}>{i}</li>
          ))}
        </ul>
      ) : null}
      {details?.permission ? (
        <div class="muted">
          missing permission <code>{String(details.permission)}</code>
          {details.store ? (
            <>
              {' '}
              in store <code>{String(details.store)}</code>
            </>
          ) : null}
        </div>
      ) : null}
    </div>
  )
}

export function Empty({ children }: { children: ComponentChildren }) {
  return (
    <p class="empty" data-testid="empty">
      {children}
    </p>
  )
}

export interface Loaded<T> {
  data: T | undefined
  error: unknown
  loading: boolean
  reload: () => void
}

/** Loads with `fn` whenever `deps` change (the last answer wins; earlier ones are aborted). */
export function useLoad<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
  const [loading, setLoading] = useState(true)
  const [n, setN] = useState(0)
  useEffect(() => {
    const ac = new AbortController()
    setLoading(true)
    setError(undefined)
    fn(ac.signal).then(
      (d) => {
        if (ac.signal.aborted) return
        setData(d)
        setLoading(false)
      },
      (e) => {
        if (ac.signal.aborted) return
        setError(e)
        setLoading(false)
      },
    )
    return () => ac.abort()
  }, [...deps, n])
  const reload = useCallback(() => setN((x) => x + 1), [])
  return { data, error, loading, reload }
}

/** Runs an action, with its busy state and error. */
export function useAction<A extends unknown[], R>(fn: (...a: A) => Promise<R>): { run: (...a: A) => Promise<R | undefined>; busy: boolean; error: unknown; clear: () => void } {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(undefined)
  const run = async (...a: A) => {
    setBusy(true)
    setError(undefined)
    try {
      return await fn(...a)
    } catch (e) {
      setError(e)
      return undefined
    } finally {
      setBusy(false)
    }
  }
  return { run, busy, error, clear: () => setError(undefined) }
}

/**
 * A modal dialog (the native <dialog>: focus stays inside, Escape closes it);
 * focus goes back to what had it when the dialog opened.
 */
export function Dialog({ title, open, onClose, children, testid }: { title: string; open: boolean; onClose: () => void; children: ComponentChildren; testid?: string }) {
  const ref = useRef<HTMLDialogElement>(null)
  const opener = useRef<Element | null>(null)
  useEffect(() => {
    const d = ref.current
    if (!d) return
    if (open && !d.open) {
      opener.current = document.activeElement
      d.showModal()
      const first = d.querySelector<HTMLElement>('[autofocus], input, select, textarea, button:not(.dialog-close)')
      first?.focus()
    } else if (!open && d.open) {
      d.close()
    }
  }, [open])
  useEffect(() => {
    const d = ref.current
    return () => {
      if (d?.open) d.close()
      if (opener.current instanceof HTMLElement) opener.current.focus()
    }
  }, [])
  const id = `dlg-${title.replace(/\W+/g, '-').toLowerCase()}`
  return (
    <dialog
      ref={ref}
      class="dialog"
      aria-labelledby={id}
      data-testid={testid}
      onCancel={(e) => {
        e.preventDefault()
        onClose()
      }}
      onClose={() => {
        if (opener.current instanceof HTMLElement) opener.current.focus()
        if (open) onClose()
      }}
    >
      <div class="dialog-head">
        <h2 id={id}>{title}</h2>
        <button type="button" class="dialog-close" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </div>
      {open ? children : null}
    </dialog>
  )
}

let fieldSeq = 0
export function useId(prefix = 'f'): string {
  const r = useRef<string | undefined>(undefined)
  if (!r.current) r.current = `${prefix}-${++fieldSeq}`
  return r.current
}

/** A labelled control: the label is tied to the first child by id. */
export function Field({ label, hint, error, children, id }: { label: string; hint?: ComponentChildren; error?: ComponentChildren; children: (id: string, describedBy?: string) => JSX.Element; id?: string }) {
  const gen = useId()
  const fid = id ?? gen
  const described = [hint ? `${fid}-hint` : '', error ? `${fid}-err` : ''].filter(Boolean).join(' ') || undefined
  return (
    <div class="field">
      <label for={fid}>{label}</label>
      {children(fid, described)}
      {hint ? (
        <div class="hint" id={`${fid}-hint`}>
          {hint}
        </div>
      ) : null}
      {error ? (
        <div class="field-error" id={`${fid}-err`} role="alert">
          {error}
        </div>
      ) : null}
    </div>
  )
}

export function TableWrap({ children, label }: { children: ComponentChildren; label: string }) {
  return (
    <div class="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  )
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [done, setDone] = useState(false)
  return (
    <button
      type="button"
      data-testid="copy"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text)
          setDone(true)
        } catch {
          setDone(false)
        }
      }}
    >
      {done ? 'Copied' : label}
    </button>
  )
}

/** A secret, shown once: in its creation dialog only, with a copy button. */
export function SecretOnce({ title, secret, onClose, note }: { title: string; secret: string | undefined; onClose: () => void; note?: string }) {
  // not in the page at all unless there is a secret to show
  if (secret === undefined) return null
  return (
    <Dialog title={title} open onClose={onClose} testid="secret-dialog">
      <p>{note ?? 'Copy it now: the vault will not show it again.'}</p>
      <div class="secret-row">
        <input readOnly aria-label={title} class="secret" data-testid="secret-value" value={secret ?? ''} onFocus={(e) => (e.currentTarget as HTMLInputElement).select()} />
        <CopyButton text={secret ?? ''} />
      </div>
      <div class="actions">
        <button type="button" class="primary" onClick={onClose}>
          Done
        </button>
      </div>
    </Dialog>
  )
}

export function fmtTime(t: string | number | undefined): string {
  if (t === undefined) return ''
  const d = new Date(t)
  if (Number.isNaN(d.getTime())) return String(t)
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}

export function short(s: string | undefined, n = 12): string {
  if (!s) return ''
  return s.length > n ? `${s.slice(0, n)}…` : s
}

export function PageTitle({ children, store }: { children: ComponentChildren; store?: string }) {
  useEffect(() => {
    document.title = `${typeof children === 'string' ? children : 'Dashboard'} · Serial vault`
  })
  return (
    <div class="page-title">
      <h1>{children}</h1>
      {store ? (
        <span class="muted">
          store <code>{store}</code>
        </span>
      ) : null}
    </div>
  )
}
