/**
 * The fixture keys of fixtures/snapd-vectors (TEST-ONLY keys, published on
 * purpose): PEM texts, public keys and WebCrypto signers. `small/*` keys are
 * 1024-bit for fast property tests; the others are 4096-bit like snapd's.
 */
import { readFileSync } from 'node:fs'
import { PublicKey } from '@sv/shared'
import { WebCryptoSigner } from '@sv/shared/node'
import { loadManifest, vectorPath, type ManifestKey } from './vectors.js'

export type FixtureKeyName = 'root' | 'brand' | 'device' | 'impostor' | 'brand-2023' | 'evil' | 'small/root' | 'small/brand' | 'small/device'
export type PemKind = 'pkcs1' | 'pkcs8' | 'spki'

export const FIXTURE_KEYS: readonly FixtureKeyName[] = ['root', 'brand', 'device', 'impostor', 'brand-2023', 'evil', 'small/root', 'small/brand', 'small/device']

export function manifestKey(name: FixtureKeyName): ManifestKey {
  const k = loadManifest().keys.find((x) => x.name === name)
  if (!k) throw new Error(`no key ${name} in the manifest`)
  return k
}

/** Absolute path of the key file: PKCS#1 `RSA PRIVATE KEY`, PKCS#8 `PRIVATE KEY` or SPKI `PUBLIC KEY`. */
export function keyPath(name: FixtureKeyName, kind: PemKind = 'pkcs1'): string {
  const k = manifestKey(name)
  return vectorPath(kind === 'pkcs1' ? k['pkcs1-pem'] : kind === 'pkcs8' ? k['pkcs8-pem'] : k['spki-pem'])
}

export function keyPem(name: FixtureKeyName, kind: PemKind = 'pkcs1'): string {
  return readFileSync(keyPath(name, kind), 'utf8')
}

/** snapd's key id of the fixture key, as the manifest (snapd) computed it. */
export function keyId(name: FixtureKeyName): string {
  return manifestKey(name)['sha3-384']
}

export function publicKeyOf(name: FixtureKeyName): PublicKey {
  return PublicKey.fromPem(keyPem(name, 'spki'))
}

const signers = new Map<FixtureKeyName, Promise<WebCryptoSigner>>()

/** A WebCryptoSigner for the fixture key (imported once per process; signers are stateless). */
export function signerFor(name: FixtureKeyName): Promise<WebCryptoSigner> {
  let s = signers.get(name)
  if (!s) {
    s = WebCryptoSigner.fromPem(keyPem(name, 'pkcs1'))
    signers.set(name, s)
  }
  return s
}
