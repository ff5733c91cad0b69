import test from 'ava'
import { initialCheckpoint } from '../../device-agent/src/provision/checkpoint.js'
import { formatStatus, statusReport } from '../../device-agent/src/status.js'

test('status: a failed attempt shows the vault code, the HTTP status and the counters', (t) => {
  const cp = initialCheckpoint()
  cp.state = 'key-ready'
  cp.brand = 'acme-brand'
  cp.model = 'acme-pi-gateway'
  cp.serial = 'S-9'
  cp.serialSource = 'dmi'
  cp.keyId = 'KEYID'
  cp.keyBits = 4096
  cp.keyUsed = true
  cp.attempts = 2
  cp.failedAttempts = 1
  cp.lastError = { code: 'SV_AGENT_VAULT_REFUSED', message: 'serial: refused', at: Date.parse('2026-11-26T10:00:00Z'), details: { status: 409, serverCode: 'SV_SERIAL_TAKEN' } }
  const r = statusReport(cp, { stateDir: '/var/lib/device-agent', deviceKey: '/var/lib/device-agent/device-key.pem' })
  t.like(r, { state: 'key-ready', provisioned: false, serial: 'S-9', deviceKey: { id: 'KEYID', bits: 4096, used: true } })
  const text = formatStatus(r)
  t.regex(text, /^state:\s+key-ready: /m)
  t.regex(text, /^last error:\s+SV_AGENT_VAULT_REFUSED \(HTTP 409, SV_SERIAL_TAKEN\) at 2026-11-26T10:00:00.000Z/m)
  t.regex(text, /^attempts:\s+2 \(1 failed\)/m)
  t.regex(text, /^device key:\s+KEYID \(RSA-4096, \/var\/lib\/device-agent\/device-key.pem, in use\)/m)
})
