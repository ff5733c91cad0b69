/**
 * Vault-assigned serial numbers: a per-model template with one placeholder,
 * `{n}` (the number as is) or `{n:W}` (zero-padded to W digits), e.g.
 * `ACME-{n:8}` gives ACME-00000001, ACME-00000002, ... The numbers come from
 * the store's per-model sequence, which never returns a number twice.
 */
import { VaultError, validateSerial } from '@sv/shared'

export interface SerialTemplate {
  prefix: string
  suffix: string
  width: number
}

const PLACEHOLDER = /\{n(?::(\d{1,2}))?\}/g

export function parseSerialTemplate(template: string): SerialTemplate {
  const matches = [...template.matchAll(PLACEHOLDER)]
  if (matches.length !== 1) {
    throw new VaultError('SV_REQUEST_INVALID', 'a serial template needs exactly one {n} or {n:WIDTH} placeholder', { details: { field: 'serialPolicy.template' } })
  }
  const m = matches[0]!
  const width = m[1] ? Number(m[1]) : 0
  if (width > 20) throw new VaultError('SV_REQUEST_INVALID', 'placeholder width is at most 20 digits', { details: { field: 'serialPolicy.template' } })
  const t = { prefix: template.slice(0, m.index), suffix: template.slice(m.index! + m[0].length), width }
  try {
    validateSerial(formatSerial(t, 1))
  } catch (e) {
    if (e instanceof VaultError) throw new VaultError('SV_REQUEST_INVALID', `the template does not produce valid serials: ${e.message}`, { details: { field: 'serialPolicy.template' } })
    throw e
  }
  return t
}

export function formatSerial(t: SerialTemplate, n: number): string {
  return `${t.prefix}${String(n).padStart(t.width, '0')}${t.suffix}`
}

/** Parses `device` or `assign:TEMPLATE[@START]` as given on the command line. */
export function parseSerialPolicyFlag(flag: string): { kind: 'device' } | { kind: 'assign'; template: string; start: number } {
  if (flag === 'device') return { kind: 'device' }
  const m = /^assign:(.+?)(?:@(\d{1,15}))?$/.exec(flag)
  if (!m) throw new VaultError('SV_REQUEST_INVALID', `serial policy must be "device" or "assign:TEMPLATE[@START]", got ${JSON.stringify(flag)}`, { details: { field: 'serialPolicy' } })
  parseSerialTemplate(m[1]!)
  return { kind: 'assign', template: m[1]!, start: m[2] ? Number(m[2]) : 1 }
}
