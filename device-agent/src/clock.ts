/**
 * Time as the agent sees it, injectable so that retry and backoff tests run in
 * milliseconds: wall time for timestamps and the clock-sanity check,
 * monotonic time for durations, and an abortable sleep.
 */
import { setTimeout as sleepTimer } from 'node:timers/promises'

export interface Clock {
  /** Wall-clock time, epoch ms (may jump when NTP sets the clock). */
  now(): number
  /** Monotonic ms for measuring durations (never jumps). */
  monotonic(): number
  /**
   * Resolves after `ms`; rejects with `signal.reason` when `signal` aborts
   * (at once if it already has). Never keeps a pending timer after an abort.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: async (ms, signal) => {
    try {
      await sleepTimer(Math.max(0, ms), undefined, signal ? { signal } : undefined)
    } catch (err) {
      // timers/promises rejects with its own AbortError; callers expect the reason.
      if (signal?.aborted) throw signal.reason
      throw err
    }
  },
}

/**
 * True when the clock reads before `notBefore` (epoch ms): it has not been set
 * since boot. snapd has the same problem and TLS reports it as "certificate
 * is not yet valid"; checking first gives a clear reason.
 */
export function isClockUnset(clock: Clock, notBefore: number): boolean {
  return clock.now() < notBefore
}
