/**
 * Admission control for registrations: at most `max` in flight; beyond that
 * the vault answers 503 SV_OVERLOADED with Retry-After at once instead of
 * queueing without bound (snapd retries codes above 500 every minute, our
 * agent honours Retry-After). Each admitted call also gets a deadline: past
 * it the caller gets 503 SV_TIMEOUT (the work itself is not aborted; its
 * result, if any, is durable and an identical retry will get it).
 */
import { VaultError } from '@sv/shared'

export class Admission {
  readonly #max: number
  readonly #timeoutMs: number
  readonly #retryAfter: number
  #inflight = 0

  constructor(options: { max: number; timeoutMs: number; retryAfterSeconds: number }) {
    this.#max = options.max
    this.#timeoutMs = options.timeoutMs
    this.#retryAfter = options.retryAfterSeconds
  }

  get inflight(): number {
    return this.#inflight
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#inflight >= this.#max) {
      throw new VaultError('SV_OVERLOADED', 'the vault is at capacity; retry later', { retryAfter: this.#retryAfter, details: { inflight: this.#inflight } })
    }
    this.#inflight++
    let timer: NodeJS.Timeout | undefined
    const work = fn()
    try {
      return await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new VaultError('SV_TIMEOUT', 'the request did not complete in time; retry', { retryAfter: this.#retryAfter })), this.#timeoutMs)
        }),
      ])
    } finally {
      clearTimeout(timer)
      // the slot is held until the work really ends, even after a timeout answer
      work.then(
        () => this.#inflight--,
        () => this.#inflight--,
      )
    }
  }
}
