/**
 * The snapd vectors (fixtures/snapd-vectors, made with snapd's own asserts
 * package): the manifest, the files, and a trust database built exactly as
 * `snapd-check verify --trusted ... --chain ... FILE` builds its own.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { TrustDb, decodeStream, type Assertion, type TrustDbOptions } from '@sv/shared'
import '@sv/shared/node' // the codec on node:crypto, as in the vault and the agent

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const VECTORS_DIR = path.join(REPO_ROOT, 'fixtures', 'snapd-vectors')

/** snapd's verdict for one assertion of a vector file (`snapd-results`). */
export interface SnapdResult {
  index: number
  /** '?' when the file did not decode */
  type: string
  description: string
  'sign-key-sha3-384'?: string
  /** 'db.Add', 'db.Check (is a trust anchor)', 'asserts.SignatureCheck(...)' or 'asserts.Decoder.Decode' */
  check: string
  ok: boolean
  error?: string
}

export interface Vector {
  file: string
  set: string
  kind: string
  valid: boolean
  trusted: string[]
  chain: string[]
  reason: string
  'expected-error-prefix'?: string
  /** the error text contains the current time: compare the prefix only */
  'error-mentions-current-time'?: boolean
  /** what asserts.Decode (single assertion) says, when it differs from the stream decoder */
  'asserts-Decode-error'?: string
  'snapd-results': SnapdResult[]
}

export interface ManifestKey {
  name: string
  role: string
  bits: number
  'sha3-384': string
  'pkcs1-pem': string
  'pkcs8-pem': string
  'spki-pem': string
}

export interface Manifest {
  keys: ManifestKey[]
  vectors: Vector[]
}

let cached: Manifest | undefined

export function loadManifest(): Manifest {
  cached ??= JSON.parse(readFileSync(path.join(VECTORS_DIR, 'manifest.json'), 'utf8')) as Manifest
  return cached
}

export function vectorPath(file: string): string {
  return path.join(VECTORS_DIR, file)
}

/** The raw bytes of a vector file (relative to fixtures/snapd-vectors). */
export function readVector(file: string): Buffer {
  return readFileSync(vectorPath(file))
}

export function decodeVectorFile(file: string): Assertion[] {
  return decodeStream(readVector(file))
}

export function findVector(file: string): Vector {
  const v = loadManifest().vectors.find((x) => x.file === file)
  if (!v) throw new Error(`no vector ${file} in the manifest`)
  return v
}

/** The first assertion of a vector file, decoded. */
export function vectorAssertion(file: string, index = 0): Assertion {
  const a = decodeVectorFile(file)[index]
  if (!a) throw new Error(`${file} has no assertion #${index + 1}`)
  return a
}

/**
 * A TrustDb with the vector's `trusted` files as anchors and its `chain` added
 * with `addAll`. Throws when a chain assertion is refused (the manifest says
 * every chain is good, so that would be our bug, reported with the reasons).
 */
export async function trustDbFor(vector: Pick<Vector, 'trusted' | 'chain'>, options: Omit<TrustDbOptions, 'trusted'> = {}): Promise<TrustDb> {
  const db = new TrustDb({ ...options, trusted: vector.trusted.flatMap(decodeVectorFile) })
  const { failed } = await db.addAll(vector.chain.flatMap(decodeVectorFile))
  if (failed.length > 0) {
    throw new Error(`chain refused: ${failed.map((f) => `${f.assertion.describe()}: ${f.error.code} ${f.error.message}`).join('; ')}`)
  }
  return db
}

/**
 * What snapd-check does with each assertion of the file under test: a
 * serial-request is checked against its own device-key (asserts.SignatureCheck),
 * everything else is added to the database (db.Add; a trust anchor given again
 * is only checked).
 */
export async function checkLikeSnapd(db: TrustDb, a: Assertion): Promise<void> {
  if (a.typeName === 'serial-request') await db.check(a)
  else await db.add(a)
}
