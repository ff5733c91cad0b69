/**
 * WebCrypto from @peculiar/webcrypto (a Node library on node:crypto), for
 * the signer that goes through the WebCrypto API (WebCryptoSigner, the path a
 * PKCS#11 token takes) and the key generator's worker.
 */
import type { webcrypto } from 'node:crypto'
import { createRequire } from 'node:module'
import type { Crypto } from '@peculiar/webcrypto'

/** WebCrypto key type (the DOM lib is not loaded; Node's type is the same shape). */
export type CryptoKey = webcrypto.CryptoKey

let instance: Crypto | undefined

/**
 * The process-wide @peculiar/webcrypto instance (created on first use). The
 * package is loaded on that first use, synchronously (its CommonJS build), not
 * at import: it costs about 14 MB of RSS, and a process that only verifies
 * (node:crypto) or signs with NodeKeySigner, like the device agent, never
 * needs it.
 */
export function getWebCrypto(): Crypto {
  if (!instance) {
    const { Crypto: WebCrypto } = createRequire(import.meta.url)('@peculiar/webcrypto') as typeof import('@peculiar/webcrypto')
    instance = new WebCrypto()
  }
  return instance
}
