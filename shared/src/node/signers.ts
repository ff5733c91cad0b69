/**
 * Signers on Node's crypto (the AssertionSigner contract is in
 * crypto/signer.ts of the main entry).
 */
import { Buffer } from 'node:buffer'
import { createPrivateKey, sign as nodeSign, type KeyObject } from 'node:crypto'
import { VaultError } from '../errors.js'
import type { PublicKey } from '../crypto/keys.js'
import { loadPrivateKeyPem, type AssertionSigner } from '../crypto/signer.js'
import { getWebCrypto, type CryptoKey } from './webcrypto.js'

/** A signer on a WebCrypto CryptoKey (Node's WebCrypto; signs in libuv's pool, off the event loop). */
export class WebCryptoSigner implements AssertionSigner {
  readonly publicKey: PublicKey
  readonly #key: CryptoKey

  constructor(key: CryptoKey, publicKey: PublicKey) {
    this.#key = key
    this.publicKey = publicKey
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await getWebCrypto().subtle.sign({ name: 'RSASSA-PKCS1-v1_5' }, this.#key, data))
  }

  /** Imports a PKCS#8 key as non-extractable. */
  static async fromPkcs8(pkcs8: Uint8Array, publicKey: PublicKey): Promise<WebCryptoSigner> {
    const key = await getWebCrypto().subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512' }, false, ['sign'])
    return new WebCryptoSigner(key, publicKey)
  }

  static async fromPem(pem: string): Promise<WebCryptoSigner> {
    const { pkcs8, publicKey } = loadPrivateKeyPem(pem)
    return WebCryptoSigner.fromPkcs8(pkcs8, publicKey)
  }
}

/**
 * A signer on a node:crypto KeyObject: the key is parsed once, so each
 * signature costs exactly one RSA operation (the raw ceiling measured in
 * bench/codec.ts). Signing is synchronous and blocks for one RSA operation
 * (about 5 ms for RSA-4096 here); the vault signs in worker threads instead.
 */
export class NodeKeySigner implements AssertionSigner {
  readonly publicKey: PublicKey
  readonly #key: KeyObject

  constructor(key: KeyObject, publicKey: PublicKey) {
    if (key.type !== 'private' || key.asymmetricKeyType !== 'rsa') throw new VaultError('SV_KEY_INVALID', 'expected an RSA private key', { details: { reason: 'not an RSA private key' } })
    this.#key = key
    this.publicKey = publicKey
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    const sig = nodeSign('sha512', data, this.#key)
    return new Uint8Array(sig.buffer, sig.byteOffset, sig.length)
  }

  static fromPkcs8(pkcs8: Uint8Array, publicKey: PublicKey): NodeKeySigner {
    return new NodeKeySigner(createPrivateKey({ key: Buffer.from(pkcs8.buffer, pkcs8.byteOffset, pkcs8.byteLength), format: 'der', type: 'pkcs8' }), publicKey)
  }

  static fromPem(pem: string): NodeKeySigner {
    const { pkcs8, publicKey } = loadPrivateKeyPem(pem)
    return NodeKeySigner.fromPkcs8(pkcs8, publicKey)
  }
}
