/** PEM armour: one labelled base64 block. */
import { VaultError } from '../errors.js'
import { base64Decode, base64Encode } from './bytes.js'

export interface PemBlock {
  label: string
  der: Uint8Array
}

const PEM_RE = /-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n([\s\S]*?)-----END \1-----/

/** The first PEM block of the text. Throws SV_KEY_INVALID when there is none. */
export function decodePem(text: string): PemBlock {
  if (text.length > 1 << 20) throw new VaultError('SV_KEY_INVALID', 'PEM text is larger than 1 MiB')
  const m = PEM_RE.exec(text)
  if (!m) throw new VaultError('SV_KEY_INVALID', 'no PEM block found', { details: { reason: 'no PEM block' } })
  const label = m[1]!
  const body = m[2]!
  if (/^Proc-Type:/m.test(body)) {
    throw new VaultError('SV_KEY_INVALID', 'encrypted PEM keys are not supported; decrypt the key first', { details: { reason: 'encrypted PEM' } })
  }
  const der = base64Decode(body.replace(/\s+/g, ''))
  if (der === undefined) throw new VaultError('SV_KEY_INVALID', 'PEM block is not valid base64', { details: { reason: 'bad base64' } })
  return { label, der }
}

export function encodePem(label: string, der: Uint8Array): string {
  const b64 = base64Encode(der)
  const lines = b64.match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}
