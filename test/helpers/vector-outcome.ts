/**
 * What the codec says about one snapd vector, as plain data, so that two runs
 * can be compared with deepEqual: two crypto platforms in this process, or
 * this process and the browser bundle in a realm without Node
 * (test/shared/browser-bundle.test.ts). The codec is passed in (`api`) for
 * that reason: the bundle's classes are not this realm's.
 *
 * Checked as test/helpers/vectors.ts checkLikeSnapd does (the file's
 * `trusted` anchors, `addAll` of its `chain`, then each assertion added, or a
 * serial-request checked against its own device-key), with one fixed clock.
 */
import type { TrustDb, TrustDbOptions, decodeStream, encodeStream } from '@sv/shared'
import { readVector, type Vector } from './vectors.js'

export interface CodecApi {
  TrustDb: new (options: TrustDbOptions) => TrustDb
  decodeStream: typeof decodeStream
  encodeStream: typeof encodeStream
}

export interface ErrorData {
  name: string
  code: unknown
  message: string
  details: unknown
}

export interface VectorOutcome {
  decodeError?: ErrorData
  results?: { type: string; description: string; error?: ErrorData }[]
  /** encodeStream(decodeStream(file)) is the file, byte for byte */
  reencodes?: boolean
}

function errorData(e: unknown): ErrorData {
  if (e === null || typeof e !== 'object' || typeof (e as { code?: unknown }).code !== 'string') throw e // not the codec's error: a bug, fail loudly
  const err = e as { name: string; code: string; message: string; details?: unknown }
  return { name: err.name, code: err.code, message: err.message, details: JSON.parse(JSON.stringify(err.details ?? null)) as unknown }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

export async function vectorOutcome(api: CodecApi, v: Vector, now: number): Promise<VectorOutcome> {
  const load = (file: string) => api.decodeStream(readVector(file))
  const db = new api.TrustDb({ trusted: v.trusted.flatMap(load), now: () => now })
  const { failed } = await db.addAll(v.chain.flatMap(load))
  if (failed.length > 0) throw new Error(`${v.file}: chain refused: ${failed.map((f) => `${f.error.code} ${f.error.message}`).join('; ')}`)
  const raw = readVector(v.file)
  let assertions
  try {
    assertions = api.decodeStream(raw)
  } catch (e) {
    return { decodeError: errorData(e) }
  }
  const results: NonNullable<VectorOutcome['results']> = []
  for (const a of assertions) {
    try {
      if (a.typeName === 'serial-request') await db.check(a)
      else await db.add(a)
      results.push({ type: a.typeName, description: a.describe() })
    } catch (e) {
      results.push({ type: a.typeName, description: a.describe(), error: errorData(e) })
    }
  }
  return { results, reencodes: sameBytes(api.encodeStream(assertions), raw) }
}
