/**
 * In-process mutual exclusion per key. LevelStore runs every check-then-write
 * inside `run` because LevelDB has no transactions; this only excludes
 * callers within one process (see level-store.ts).
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>()

  /**
   * Runs `fn` while holding every key. Keys are taken in sorted order, so two
   * callers that need overlapping key sets cannot deadlock.
   */
  async run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort()
    const releases: Array<() => void> = []
    try {
      for (const key of sorted) releases.push(await this.#acquire(key))
      return await fn()
    } finally {
      for (const release of releases.reverse()) release()
    }
  }

  /** Number of keys currently held or waited for (for tests and metrics). */
  get size(): number {
    return this.#tails.size
  }

  #acquire(key: string): Promise<() => void> {
    const previous = this.#tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const tail = previous.then(() => held)
    this.#tails.set(key, tail)
    return previous.then(() => () => {
      release()
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
  }
}
