/**
 * KeyStore: where the vault's signing keys live and how services get to sign
 * with them. Services depend on this interface only; `main.ts` picks the
 * implementation.
 *
 * - SealedKeyStore (sealed-key-store.ts): private keys sealed with the master
 *   key (AES-256-GCM) inside the VaultStore's SigningKeyRecord, unsealed on
 *   first use into the SignerPool's worker threads.
 * - An HSM store (not written yet) fits the same interface: a PKCS#11
 *   KeyStore would create or import keys in the token as sensitive,
 *   non-extractable objects (node-webcrypto-p11: `subtle.importKey('pkcs8',
 *   der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512', token: true,
 *   sensitive: true, label }, false, ['sign'])`, or `generateKey` with the
 *   same flags), keep the SigningKeyRecord in the VaultStore with `sealed`
 *   holding a reference to the token object instead of ciphertext (e.g.
 *   `alg: 'pkcs11:v1'`, `kid` = token label, `data` = the object's CKA_ID),
 *   and return from `signer()` an AssertionSigner whose sign() calls the
 *   token. What was checked with SoftHSM2 (/work/shared/notes/machine-checks.md
 *   §1), and shapes that implementation: one session cannot run two signs at
 *   once (CKR_OPERATION_ACTIVE), so signs go through a queue or one Crypto per
 *   worker; `keyStorage.getItem` must get all four arguments or it falls back
 *   to SHA-256; two Crypto instances loading keys concurrently crash the
 *   process, so load one after the other; signatures are 0.7-0.9x the speed
 *   of node:crypto.
 *
 * Codes every implementation uses: SV_KEY_NOT_FOUND (no such key id),
 * SV_SIGNING_KEY_UNAVAILABLE (the key is disabled, or its device is not
 * reachable), SV_KEY_EXISTS (import of a key already held), SV_KEY_INVALID,
 * SV_KEY_TOO_SMALL and SV_KEY_IMPORT_MISMATCH (import input),
 * SV_MASTER_KEY_INVALID (the key material cannot be opened).
 */
import type { AssertionSigner, PublicKey } from '@sv/shared'
import type { AuditSeal, SigningKeyRecord } from '../store/store.js'

/** A signing key as callers see it: the stored record without its key material. */
export type SigningKeyInfo = Omit<SigningKeyRecord, 'sealed'>

export type KeyPurpose = SigningKeyRecord['purpose']

export interface ImportKeyInput {
  /** RSA private key PEM, PKCS#1 (`RSA PRIVATE KEY`, as snapd and ssh-keygen write) or PKCS#8 (`PRIVATE KEY`); not encrypted. */
  pem: string
  accountId: string
  purpose: KeyPurpose
  /** account-key `name`. */
  name: string
  /**
   * The encoded account-key assertion of this key. It must be for `accountId`,
   * carry the key's public half, and have this `name` when it has one. Its
   * signature is not checked here: that is the trust database's job.
   */
  accountKeyAssertion: string
  /** The audit entry of the import, made from the stored key's info and written with it. */
  audit?: (key: SigningKeyInfo) => AuditSeal
}

/** The new key, before it is stored: enough to have its account-key assertion signed. */
export interface NewKey {
  publicKey: PublicKey
  /**
   * Signs with the new key itself: what a self-signed root account-key
   * needs. Valid only until generateKey settles.
   */
  signer: AssertionSigner
}

export interface GenerateKeyInput {
  accountId: string
  purpose: KeyPurpose
  name: string
  /** Default 4096. */
  bits?: number
  /**
   * Produces the encoded account-key assertion for the new key (signed by the
   * root key, or by the key itself for a root key). Checked like an import's.
   */
  accountKeyAssertion: (key: NewKey) => Promise<string>
  signal?: AbortSignal
  /** Ticks while the key is being generated (which can take seconds). */
  onProgress?: (elapsedMs: number) => void
  /** The audit entry of the generation, made from the stored key's info and written with it. */
  audit?: (key: SigningKeyInfo) => AuditSeal
}

export interface KeyStore {
  /**
   * Stores an existing private key, enabled. Checks, in this order: the PEM
   * (SV_KEY_INVALID), the size (SV_KEY_TOO_SMALL below the store's minimum,
   * 4096 bits by default), the account-key assertion against the key and the
   * input (SV_ASSERTION_INVALID when it does not decode,
   * SV_KEY_IMPORT_MISMATCH when it does not match), then stores the record
   * (SV_KEY_EXISTS). Nothing is stored when a check fails.
   */
  importKey(input: ImportKeyInput): Promise<SigningKeyInfo>

  /**
   * Generates a new key, has its account-key assertion made, checks and
   * stores it like importKey. Rejects with `signal.reason` when aborted.
   */
  generateKey(input: GenerateKeyInput): Promise<SigningKeyInfo>

  /**
   * A signer for an enabled key. Loads the key on first use (later calls are
   * cheap). SV_KEY_NOT_FOUND, SV_SIGNING_KEY_UNAVAILABLE (disabled),
   * SV_MASTER_KEY_INVALID. A signer obtained earlier stops working (its sign()
   * rejects with SV_SIGNING_KEY_UNAVAILABLE) once the key is disabled.
   */
  signer(keyId: string): Promise<AssertionSigner>

  /** The public key, enabled or not. SV_KEY_NOT_FOUND. */
  publicKey(keyId: string): Promise<PublicKey>

  /**
   * Enables or disables a key. Disabling takes effect at once in this
   * process: the key is unloaded and its signers stop. Other processes
   * sharing the store stop signing with it within seconds (SealedKeyStore
   * re-reads a loaded key's flag every 2 s). `reason` is kept with the key;
   * `audit` is written with the change. Resolves with the changed key.
   * SV_KEY_NOT_FOUND.
   */
  setEnabled(keyId: string, change: { enabled: boolean; reason?: string }, audit?: AuditSeal): Promise<SigningKeyInfo>

  /** Keys of one account, or all keys. */
  listKeys(accountId?: string): Promise<SigningKeyInfo[]>
}
