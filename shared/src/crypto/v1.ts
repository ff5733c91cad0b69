/**
 * snapd's "v1" envelope for keys and signatures (spec §2.1):
 * base64std( 0x01 || one OpenPGP packet ), wrapped at 76 columns with LF.
 */
import { VaultError } from '../errors.js'
import { base64Decode, base64Encode, concatBytes, latin1Decode, uninitialisedBytes, utf8Encode } from './bytes.js'

const LINE = 76
const VERSION_1 = new Uint8Array([1])

/** base64 of 0x01 || data, wrapped at 76 characters, no trailing LF. */
export function encodeV1(data: Uint8Array): string {
  const flat = base64Encode(concatBytes([VERSION_1, data]))
  if (flat.length <= LINE) return flat
  const lines: string[] = []
  for (let off = 0; off < flat.length; off += LINE) lines.push(flat.slice(off, off + LINE))
  return lines.join('\n')
}

/**
 * Decodes the envelope and returns the bytes after the version byte. Like Go's
 * base64.StdEncoding it skips CR and LF anywhere and requires correct padding;
 * any other character is an error.
 */
export function decodeV1(text: string | Uint8Array, kind: string): Uint8Array {
  const s = withoutLineBreaks(text)
  const fail = (reason: string): never => {
    throw new VaultError(kind === 'signature' ? 'SV_SIGNATURE_INVALID' : 'SV_KEY_INVALID', `cannot decode ${kind}: ${reason}`, { details: { reason } })
  }
  if (s.length === 0) fail('no data')
  const raw = base64Decode(s)
  if (raw === undefined) return fail('illegal base64 data')
  if (raw.length === 0) fail('base64 without data')
  if (raw[0] !== 1) {
    throw new VaultError(kind === 'signature' ? 'SV_SIGNATURE_INVALID' : 'SV_KEY_INVALID', `unsupported ${kind} format version: ${raw[0]}`, {
      details: { reason: 'unsupported format version' },
    })
  }
  return raw.subarray(1)
}

/**
 * The text with every CR and LF removed, as a latin1 string, in one pass over
 * the bytes. (A regex replace costs about 80 ns per line break: 80 ms for a
 * 2 MiB text of them, found by bench/fuzz-decoder.ts.) Non-ASCII characters
 * become bytes >= 0x80, which the alphabet check refuses, as before.
 */
function withoutLineBreaks(text: string | Uint8Array): string {
  const src = typeof text === 'string' ? utf8Encode(text) : text
  const out = uninitialisedBytes(src.length)
  let n = 0
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!
    if (c !== 10 && c !== 13) out[n++] = c
  }
  return latin1Decode(out.subarray(0, n))
}
