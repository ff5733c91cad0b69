/**
 * Random bytes for the ids made on every request (correlation ids, log ids,
 * request-id nonces), taken from a block that the CSPRNG
 * (crypto.randomFillSync, OpenSSL's DRBG) fills 4 KiB at a time: one call
 * into OpenSSL per few hundred ids instead of one per id. Each byte is handed
 * out once. Not for keys: those come from crypto.randomBytes / key generation.
 */
import { randomFillSync } from 'node:crypto'
import { Buffer } from 'node:buffer'

const BLOCK = 4096
/** larger requests go straight to the CSPRNG */
const MAX_POOLED = 256
const block = new Uint8Array(BLOCK)
let used = BLOCK

function take(n: number): number {
  if (used + n > BLOCK) {
    randomFillSync(block)
    used = 0
  }
  const at = used
  used += n
  return at
}

/** Writes `n` random bytes into `target` at `offset`. */
export function fillRandom(target: Buffer, offset: number, n: number): void {
  if (n > MAX_POOLED) {
    randomFillSync(target, offset, n)
    return
  }
  const at = take(n)
  target.set(block.subarray(at, at + n), offset)
}

/** `n` random bytes as hex or base64url text. */
export function randomText(n: number, encoding: 'hex' | 'base64url'): string {
  if (!Number.isInteger(n) || n < 1 || n > MAX_POOLED) throw new RangeError(`randomText: 1..${MAX_POOLED} bytes, got ${n}`)
  const at = take(n)
  return Buffer.from(block.buffer, block.byteOffset + at, n).toString(encoding)
}
