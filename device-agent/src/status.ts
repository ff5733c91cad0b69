/**
 * `device-agent status`: the saved provisioning state, for people (aligned
 * lines) and for scripts (`--json`, a stable object). Reads the checkpoint
 * without taking the lock, so it works while `provision` runs.
 */
import type { Checkpoint } from './provision/checkpoint.js'
import { STATE_DESCRIPTIONS, type ProvisionState } from './provision/states.js'

export interface StatusReport {
  state: ProvisionState
  description: string
  provisioned: boolean
  stateDir: string
  brand?: string
  model?: string
  serial?: string
  serialSource?: string
  deviceKey?: { id: string; bits?: number; path: string; used: boolean }
  requestId?: string
  polls: number
  attempts: number
  failedAttempts: number
  counters: Checkpoint['counters']
  timings: Record<string, number>
  issued?: Checkpoint['issued']
  files?: { serial: string; chain: string }
  hook: Checkpoint['hook']
  lastError?: Checkpoint['lastError']
  provisionedAt?: string
  updatedAt?: string
}

export function statusReport(cp: Checkpoint, paths: { stateDir: string; deviceKey: string }): StatusReport {
  const r: StatusReport = {
    state: cp.state,
    description: STATE_DESCRIPTIONS[cp.state],
    provisioned: cp.state === 'provisioned',
    stateDir: paths.stateDir,
    polls: cp.polls,
    attempts: cp.attempts,
    failedAttempts: cp.failedAttempts,
    counters: cp.counters,
    timings: cp.timings,
    hook: cp.hook,
  }
  if (cp.brand !== undefined) r.brand = cp.brand
  if (cp.model !== undefined) r.model = cp.model
  // under the assign policy there is no proposed serial, only the one the vault issued
  const serial = cp.issued?.serial ?? cp.serial
  if (serial !== undefined) r.serial = serial
  if (cp.serialSource !== undefined) r.serialSource = cp.serialSource
  if (cp.keyId !== undefined) r.deviceKey = { id: cp.keyId, ...(cp.keyBits !== undefined ? { bits: cp.keyBits } : {}), path: paths.deviceKey, used: cp.keyUsed }
  if (cp.requestId !== undefined) r.requestId = cp.requestId
  if (cp.issued) r.issued = cp.issued
  if (cp.outputs) r.files = { serial: cp.outputs.serialFile, chain: cp.outputs.chainFile }
  if (cp.lastError) r.lastError = cp.lastError
  if (cp.provisionedAt !== undefined) r.provisionedAt = new Date(cp.provisionedAt).toISOString()
  if (cp.updatedAt) r.updatedAt = new Date(cp.updatedAt).toISOString()
  return r
}

export function formatStatus(r: StatusReport): string {
  const lines: [string, string][] = [['state', `${r.state}: ${r.description}`]]
  if (r.brand || r.model) lines.push(['brand/model', `${r.brand ?? '?'} / ${r.model ?? '?'}`])
  if (r.serial) lines.push(['serial', `${r.serial}${r.serialSource ? ` (source: ${r.serialSource})` : ''}`])
  if (r.issued) lines.push(['issued', `revision ${r.issued.revision}, signed by ${r.issued.signKeyId}, ${new Date(r.issued.timestamp).toISOString()}`])
  if (r.deviceKey) lines.push(['device key', `${r.deviceKey.id} (RSA-${r.deviceKey.bits ?? '?'}, ${r.deviceKey.path}${r.deviceKey.used ? ', in use' : ''})`])
  if (r.requestId) lines.push(['request-id', `${r.requestId}${r.polls > 0 ? ` (polled ${r.polls} times)` : ''}`])
  const c = r.counters
  lines.push(['attempts', `${r.attempts} (${r.failedAttempts} failed); calls: request-id ${c.requestIdCalls}, serial ${c.serialCalls}; retries ${c.retries}, polls ${c.polls}, restarts ${c.restarts}`])
  const t = Object.entries(r.timings)
  if (t.length > 0) lines.push(['timings', t.map(([k, v]) => `${k} ${v}`).join(', ')])
  if (r.files) lines.push(['files', `serial ${r.files.serial}, chain ${r.files.chain}`])
  if (r.hook !== 'none') lines.push(['hook', r.hook])
  if (r.lastError) {
    const d = r.lastError.details ?? {}
    const extra = [d.status !== undefined ? `HTTP ${String(d.status)}` : '', typeof d.serverCode === 'string' ? d.serverCode : ''].filter(Boolean).join(', ')
    lines.push(['last error', `${r.lastError.code}${extra ? ` (${extra})` : ''} at ${new Date(r.lastError.at).toISOString()}: ${r.lastError.message}`])
  }
  if (r.provisionedAt) lines.push(['provisioned', r.provisionedAt])
  lines.push(['state dir', r.stateDir])
  const width = Math.max(...lines.map(([k]) => k.length)) + 2
  return `${lines.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`).join('\n')}\n`
}
