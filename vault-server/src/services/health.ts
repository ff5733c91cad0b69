/**
 * Readiness: the store answers and at least one brand key is enabled (a vault
 * without one cannot sign any serial). For /v1/ready and load balancers.
 */
import { VaultError } from '@sv/shared'
import type { VaultStore } from '../store/store.js'

export class HealthService {
  readonly #store: VaultStore

  constructor(store: VaultStore) {
    this.#store = store
  }

  async readiness(): Promise<{ ok: boolean; checks: Record<string, string> }> {
    const checks: Record<string, string> = {}
    let ok = true
    try {
      await this.#store.ping()
      checks.store = 'ok'
    } catch (e) {
      ok = false
      checks.store = e instanceof VaultError ? e.code : 'SV_STORE_UNAVAILABLE'
    }
    const enabled = (await this.#store.keys.list().catch(() => [])).filter((k) => k.enabled && k.purpose === 'brand')
    checks.signingKeys = enabled.length > 0 ? `${enabled.length} enabled` : 'none enabled'
    if (enabled.length === 0) ok = false
    return { ok, checks }
  }
}
