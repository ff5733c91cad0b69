/**
 * Fixture keys for the key-handling tests (the snapd vectors' TEST-ONLY keys)
 * and a check that text carries none of their secret material.
 */
import { readFileSync } from 'node:fs'
import { createPrivateKey } from 'node:crypto'
import type { ExecutionContext } from 'ava'

const VECTORS = new URL('../../../fixtures/snapd-vectors/', import.meta.url)

export function readVector(rel: string): string {
  return readFileSync(new URL(rel, VECTORS), 'utf8')
}

interface ManifestKey {
  name: string
  bits: number
  'sha3-384': string
}

const manifest = JSON.parse(readVector('manifest.json')) as { keys: ManifestKey[] }

/** sha3-384 key id of a vector key by manifest name (`brand`, `small/brand`, ...). */
export function vectorKeyId(name: string): string {
  const k = manifest.keys.find((k) => k.name === name)
  if (!k) throw new Error(`no key ${name} in the vectors manifest`)
  return k['sha3-384']
}

/** PKCS#1 PEM of a vector key: `brand` -> keys/brand.key.pem, `small/brand` -> small/keys/brand.key.pem. */
export function vectorKeyPem(name: string, form: 'key' | 'pkcs8' = 'key'): string {
  const [dir, base] = name.includes('/') ? [`${name.split('/')[0]}/keys/`, name.split('/')[1]] : ['keys/', name]
  return readVector(`${dir}${base}.${form}.pem`)
}

/**
 * Strings that must never appear in a message, a log line or a stored
 * record: every base64 line of the PEM and of its PKCS#8 form, and the private
 * exponent d in hex and base64url, plus the primes.
 */
export function secretNeedles(pem: string): string[] {
  const key = createPrivateKey(pem)
  const jwk = key.export({ format: 'jwk' })
  const pkcs8 = (key.export({ format: 'der', type: 'pkcs8' }) as Buffer).toString('base64')
  const lines = pem.split('\n').filter((l) => l.length >= 32 && !l.startsWith('-----'))
  const needles = [...lines, pkcs8.slice(0, 64), pkcs8.slice(-64)]
  for (const part of [jwk.d, jwk.p, jwk.q]) {
    const bytes = Buffer.from(part!, 'base64url')
    needles.push(part!.slice(0, 40), bytes.toString('hex').slice(0, 40), bytes.toString('base64').slice(0, 40))
  }
  return needles
}

export function assertNoSecrets(t: ExecutionContext, text: string, needles: string[], what = 'text'): void {
  const found = needles.filter((n) => text.includes(n))
  t.deepEqual(found, [], `${what} contains key material`)
}

/** Every string an error carries: message, stack, details and causes, recursively. */
export function errorText(err: unknown): string {
  const parts: string[] = []
  let e: unknown = err
  for (let depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof Error) {
      parts.push(e.message, e.stack ?? '', JSON.stringify((e as { details?: unknown }).details ?? null))
      e = e.cause
    } else {
      parts.push(String(e))
      break
    }
  }
  return parts.join('\n')
}
