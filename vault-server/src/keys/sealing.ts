/**
 * The envelope that keeps signing keys encrypted at rest: AES-256-GCM under
 * the master key, with a fresh random 96-bit IV per seal (NIST SP 800-38D
 * §8.2.2; at one seal per imported or generated key the random-IV limit of
 * 2^32 messages per key is out of reach).
 *
 * The additional authenticated data is `alg LF kid LF context`, where the
 * caller's context names the record (the key store passes the key id). So the
 * envelope opens only under the master key it names and only for the record it
 * was made for: a blob copied into another record, or a kid or alg edited in
 * place, fails authentication like any tampering does.
 *
 * Every failure to open is VaultError('SV_MASTER_KEY_INVALID') with a
 * `details.reason`: `unsupported` (unknown alg), `kid-mismatch` (sealed by
 * another master key), `malformed` (bad base64 or lengths) or `authentication`
 * (wrong key, tampered iv/tag/data, or another record's context).
 */
import { Buffer } from 'node:buffer'
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { VaultError } from '@sv/shared'
import type { SealedKey } from '../store/store.js'
import type { MasterKey } from './master-key.js'

export const SEAL_ALG = 'sv1:A256GCM'
const IV_BYTES = 12
const TAG_BYTES = 16

function aadFor(kid: string, context: string): Buffer {
  return Buffer.from(`${SEAL_ALG}\n${kid}\n${context}`, 'utf8')
}

function fail(reason: string, message: string, details: Record<string, unknown> = {}): never {
  throw new VaultError('SV_MASTER_KEY_INVALID', message, { details: { reason, ...details } })
}

/** Encrypts `plaintext` for the record named by `context`. The caller keeps (and zeroes) `plaintext`. */
export function seal(masterKey: MasterKey, plaintext: Uint8Array, context: string): SealedKey {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', masterKey.secret, iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(aadFor(masterKey.kid, context))
  const data = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return {
    alg: SEAL_ALG,
    kid: masterKey.kid,
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  }
}

/**
 * Decrypts an envelope made by `seal` with the same master key and context.
 * Returns a fresh Buffer that the caller must zero (`fill(0)`) once done.
 */
export function unseal(masterKey: MasterKey, sealed: SealedKey, context: string): Buffer {
  if (sealed === null || typeof sealed !== 'object') fail('malformed', 'sealed key envelope is missing')
  if (sealed.alg !== SEAL_ALG) fail('unsupported', `sealed key envelope has unsupported format ${JSON.stringify(String(sealed.alg)).slice(0, 40)}`)
  if (sealed.kid !== masterKey.kid) {
    fail('kid-mismatch', 'sealed key was sealed with another master key', { kid: sealed.kid, masterKid: masterKey.kid })
  }
  const iv = strictBase64(sealed.iv)
  const tag = strictBase64(sealed.tag)
  const data = strictBase64(sealed.data)
  if (iv?.length !== IV_BYTES || tag?.length !== TAG_BYTES || data === undefined) fail('malformed', 'sealed key envelope is malformed')
  // authTagLength pins the tag size: without it Node accepts a truncated tag
  // (down to 4 bytes), which would make forgeries far cheaper.
  const decipher = createDecipheriv('aes-256-gcm', masterKey.secret, iv, { authTagLength: TAG_BYTES })
  decipher.setAAD(aadFor(masterKey.kid, context))
  decipher.setAuthTag(tag)
  // update() hands out plaintext before final() has checked the tag: wipe it if the check fails.
  const head = decipher.update(data)
  let tail: Buffer
  try {
    tail = decipher.final()
  } catch {
    head.fill(0)
    fail('authentication', 'cannot unseal signing key: wrong master key, tampered envelope, or envelope of another record')
  }
  if (tail.length === 0) return head
  const out = Buffer.concat([head, tail])
  head.fill(0)
  tail.fill(0)
  return out
}

/** base64 decode that refuses anything Buffer.from would silently skip. */
function strictBase64(text: unknown): Buffer | undefined {
  if (typeof text !== 'string' || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined
  return Buffer.from(text, 'base64')
}
