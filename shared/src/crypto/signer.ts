/**
 * Signers: whatever holds a private key and can make an RSASSA-PKCS1-v1_5
 * SHA-512 signature. The codec only needs this interface, so the vault's
 * worker pool, an HSM (PKCS#11) and the device's key all fit. The signers
 * on Node's crypto (NodeKeySigner, WebCryptoSigner) are in `@sv/shared/node`.
 */
import { VaultError } from '../errors.js'
import { decodePem } from './pem.js'
import { pkcs1ToPkcs8, pkcs8ToPkcs1, rsaPublicFromPkcs1Private } from './der.js'
import { PublicKey } from './keys.js'

export interface AssertionSigner {
  /** The public half; `publicKey.id` is the `sign-key-sha3-384` of what it signs. */
  readonly publicKey: PublicKey
  /** RSASSA-PKCS1-v1_5 with SHA-512 over `data` (the signer hashes). Returns k bytes. */
  sign(data: Uint8Array): Promise<Uint8Array>
}

export interface LoadedPrivateKey {
  /** PKCS#8 DER of the RSA private key (sensitive: never log, never send). */
  pkcs8: Uint8Array
  publicKey: PublicKey
}

/**
 * Reads an RSA private key PEM: PKCS#1 (`RSA PRIVATE KEY`, what ssh-keygen and
 * snapd write) or PKCS#8 (`PRIVATE KEY`). Throws SV_KEY_INVALID; the error never
 * contains key material.
 */
export function loadPrivateKeyPem(pem: string): LoadedPrivateKey {
  const { label, der } = decodePem(pem)
  if (label === 'RSA PRIVATE KEY') {
    return { pkcs8: pkcs1ToPkcs8(der), publicKey: PublicKey.fromRsa(rsaPublicFromPkcs1Private(der)) }
  }
  if (label === 'PRIVATE KEY') {
    return { pkcs8: der, publicKey: PublicKey.fromRsa(rsaPublicFromPkcs1Private(pkcs8ToPkcs1(der))) }
  }
  throw new VaultError('SV_KEY_INVALID', `expected an RSA private key PEM, got "${label}"`, { details: { reason: 'unsupported PEM label' } })
}
