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
 * record: the base64 lines of the key's PKCS#1 and PKCS#8 forms (as in a PEM,
 * 64 characters each) except those that only carry the public modulus and
 * exponent (an account-key assertion carries those too), and the private
 * exponent d and the primes, in hex, base64 and base64url.
 */
export function secretNeedles(pem: string): string[] {
  const key = createPrivateKey(pem)
  const jwk = key.export({ format: 'jwk' })
  const n = Buffer.from(jwk.n!, 'base64url')
  const needles: string[] = []
  for (const type of ['pkcs1', 'pkcs8'] as const) {
    const der = key.export({ format: 'der', type }) as Buffer
    const nAt = der.indexOf(n)
    const publicEnd = der.indexOf(Buffer.from([0x02, 0x03, 0x01, 0x00, 0x01]), nAt + n.length) + 5 // INTEGER 65537
    if (nAt < 0 || publicEnd < 5) throw new Error('cannot locate the public part of the fixture key')
    const lines = der.toString('base64').match(/.{1,64}/g)!
    // line i holds bytes [48 i, 48 i + 48)
    needles.push(...lines.filter((line, i) => 48 * (i + 1) > publicEnd && line.length >= 32))
  }
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
