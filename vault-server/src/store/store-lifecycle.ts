import { VaultError } from '@sv/shared'

type State = 'closed' | 'opening' | 'open' | 'closing'

/**
 * The open/close state machine every VaultStore shares:
 * - operations run only when the store is open and no close() is pending;
 *   otherwise they reject with SV_STORE_NOT_OPEN (before open() resolved,
 *   from the moment close() is called, and after);
 * - close() waits for operations already running, then closes the backend;
 * - open() and close() are idempotent and run one after another in call
 *   order, so a store can be closed while opening and reopened after closing;
 *   the backend's close function must itself be idempotent.
 */
export class StoreLifecycle {
  #state: State = 'closed'
  /** What the last open()/close() call asked for; decides synchronously whether run() may start. */
  #wanted: 'open' | 'closed' = 'closed'
  /** Transitions are chained so that they never overlap. */
  #queue: Promise<void> = Promise.resolve()
  #pending = 0
  #drained: (() => void) | undefined
  readonly #mapError: (err: unknown) => unknown

  /** `mapError` turns backend errors into VaultErrors (VaultErrors must pass through it untouched). */
  constructor(mapError: (err: unknown) => unknown) {
    this.#mapError = mapError
  }

  get state(): State {
    return this.#state
  }

  open(doOpen: () => Promise<void>): Promise<void> {
    this.#wanted = 'open'
    return this.#enqueue(async () => {
      if (this.#state === 'open') return
      this.#state = 'opening'
      try {
        await doOpen()
        this.#state = 'open'
      } catch (err) {
        this.#state = 'closed'
        throw this.#mapError(err)
      }
    })
  }

  close(doClose: () => Promise<void>): Promise<void> {
    this.#wanted = 'closed'
    return this.#enqueue(async () => {
      // doClose runs even when never opened: a backend may hold resources from its
      // construction (classic-level opens itself), and doClose must be idempotent.
      this.#state = 'closing'
      if (this.#pending > 0) await new Promise<void>((resolve) => (this.#drained = resolve))
      try {
        await doClose()
      } finally {
        this.#state = 'closed'
      }
    })
  }

  /** Runs one store operation: refused unless open, counted so that close() waits for it. */
  async run<T>(op: () => Promise<T>): Promise<T> {
    if (this.#state !== 'open' || this.#wanted !== 'open') throw notOpen()
    this.#pending++
    try {
      return await op()
    } catch (err) {
      throw this.#mapError(err)
    } finally {
      this.#pending--
      if (this.#pending === 0 && this.#drained) {
        const drained = this.#drained
        this.#drained = undefined
        drained()
      }
    }
  }

  #enqueue(step: () => Promise<void>): Promise<void> {
    const p = this.#queue.then(step)
    this.#queue = p.catch(() => {})
    return p
  }
}

export function notOpen(): VaultError {
  return new VaultError('SV_STORE_NOT_OPEN', 'the store is not open')
}
