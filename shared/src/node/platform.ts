/**
 * The codec's platform on node:crypto: OpenSSL digests, and RSA verification
 * with a KeyObject made once per key. Measured in bench/codec.ts, this is the
 * fast path: WebCrypto imports and verifies asynchronously through libuv's
 * pool, and @peculiar/webcrypto (used before Node's own) re-parsed the key on
 * every call (a quarter of the raw rate).
 */
import { constants, createHash, createPublicKey, verify, type KeyObject } from 'node:crypto'
import type { PublicKey } from '../crypto/keys.js'
import type { CryptoPlatform, DigestName, RsaDigestName } from '../crypto/platform.js'

const verifyKeys = new WeakMap<PublicKey, KeyObject>()

function verifyKey(key: PublicKey): KeyObject {
  let k = verifyKeys.get(key)
  if (!k) {
    k = createPublicKey({ key: key.toJwk(), format: 'jwk' })
    verifyKeys.set(key, k)
  }
  return k
}

/** node:crypto as the codec's CryptoPlatform; `@sv/shared/node` installs it when imported. */
export const nodeCryptoPlatform: CryptoPlatform = Object.freeze({
  name: 'node',
  digest(name: DigestName, ...parts: Uint8Array[]): Uint8Array {
    const h = createHash(name)
    for (const p of parts) h.update(p)
    const d = h.digest()
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
  },
  async verifyRsaPkcs1(hash: RsaDigestName, key: PublicKey, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return verify(hash, data, { key: verifyKey(key), padding: constants.RSA_PKCS1_PADDING }, signature)
  },
})
