/**
 * WebCrypto for the signer that goes through the WebCrypto API
 * (WebCryptoSigner, the shape a PKCS#11 token's WebCrypto takes) and the
 * development TLS certificate (@peculiar/x509 takes a WebCrypto provider):
 * Node's own (node:crypto `webcrypto`), which runs its work in libuv's pool
 * and never blocks the event loop. It replaced @peculiar/webcrypto, a
 * library on node:crypto that adds nothing on Node 20 (docs/design.md,
 * "Dependencies").
 */
import { webcrypto } from 'node:crypto'

/** WebCrypto key type (the DOM lib is not loaded; Node's type is the same shape). */
export type CryptoKey = webcrypto.CryptoKey

/** Node's WebCrypto (process-wide, built in). */
export function getWebCrypto(): webcrypto.Crypto {
  return webcrypto
}
