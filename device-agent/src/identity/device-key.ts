/**
 * The device key: an RSA key generated once on the device, kept in the state
 * directory with mode 0600, used only to sign the serial-request (and later
 * device-session-requests). The private half never leaves the device: it is
 * never logged, never sent, and never put in an error.
 *
 * "Never regenerated once used" is the provisioner's rule (a serial-request
 * signed with it may have reached the vault, which then binds the serial to
 * it); this module only refuses to overwrite an existing key file.
 */
import { Buffer } from 'node:buffer'
import { chmod, stat } from 'node:fs/promises'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { PublicKey, encodePem, isVaultError, loadPrivateKeyPem, type AssertionSigner } from '@sv/shared'
import { KeyGenerationError, NodeKeySigner, generateRsaPkcs8 } from '@sv/shared/node'
import { AgentError } from '../errors.js'
import { readFileBounded, writeFileAtomic } from '../fs/atomic-write.js'

/** A usable device key: the public half and a signer over the private half. */
export interface DeviceKey {
  readonly publicKey: PublicKey
  readonly bits: number
  readonly signer: AssertionSigner
}

export interface GenerateKeyOptions {
  /** Called on the main thread every `progressIntervalMs` while the worker searches for primes. */
  onProgress?: (elapsedMs: number) => void
  /** Default 5000. */
  progressIntervalMs?: number
  /** Aborting terminates the worker at once; the promise rejects with `signal.reason`. */
  signal?: AbortSignal
}

const MAX_KEY_FILE_BYTES = 16 * 1024

/** The codec's PEM-level reasons, as the agent's stable `details.reason`; anything else is `malformed`. */
const PEM_REASONS: Record<string, string> = {
  'no PEM block': 'no-pem',
  'unsupported PEM label': 'not-private-key',
  'encrypted PEM': 'encrypted',
  'bad base64': 'malformed',
}

/**
 * Generates an RSA key (e = 65537) of `bits` bits in a worker thread with
 * node:crypto and returns its PKCS#8 DER (sensitive: the caller
 * writes it and zeroes it). Rejects with `SV_AGENT_KEYGEN_FAILED` when the
 * worker fails, or with `signal.reason` when aborted.
 */
export function generateKeyPkcs8(bits: number, options: GenerateKeyOptions = {}): Promise<Uint8Array> {
  const { progressIntervalMs = 5000, ...rest } = options
  return generateRsaPkcs8(bits, { ...rest, progressIntervalMs }).catch((err: unknown) => {
    if (!(err instanceof KeyGenerationError)) throw err // the abort reason
    throw err.exitCode === undefined
      ? new AgentError('SV_AGENT_KEYGEN_FAILED', `device ${err.message}`, { cause: err.cause })
      : new AgentError('SV_AGENT_KEYGEN_FAILED', err.message, { details: { exitCode: err.exitCode } })
  })
}

/** The DeviceKey of a PKCS#8 DER (not retained: the caller may zero it). */
export function deviceKeyFromPkcs8(pkcs8: Uint8Array): DeviceKey {
  const priv = createPrivateKey({ key: Buffer.from(pkcs8.buffer, pkcs8.byteOffset, pkcs8.byteLength), format: 'der', type: 'pkcs8' })
  if (priv.asymmetricKeyType !== 'rsa') throw new AgentError('SV_AGENT_KEY_INVALID', 'the device key is not an RSA key', { details: { reason: 'not-rsa' } })
  const jwk = createPublicKey(priv).export({ format: 'jwk' })
  const publicKey = PublicKey.fromRsa({ n: Buffer.from(jwk.n!, 'base64url'), e: Buffer.from(jwk.e!, 'base64url') })
  return { publicKey, bits: publicKey.bits, signer: new NodeKeySigner(priv, publicKey) }
}

/**
 * Generates a key and writes it to `path` (PKCS#8 PEM, mode 0600, atomic).
 * Refuses with `SV_AGENT_STATE_CORRUPT` (reason key-exists) when a key file
 * is already there: an existing key is loaded, never replaced.
 */
export async function createDeviceKey(path: string, bits: number, options: GenerateKeyOptions = {}): Promise<DeviceKey> {
  if (await exists(path)) {
    throw new AgentError('SV_AGENT_STATE_CORRUPT', `a device key already exists at ${path}; it is never replaced`, { details: { reason: 'key-exists', path } })
  }
  const pkcs8 = await generateKeyPkcs8(bits, options)
  try {
    const key = deviceKeyFromPkcs8(pkcs8)
    await writeFileAtomic(path, encodePem('PRIVATE KEY', pkcs8), { mode: 0o600 })
    return key
  } catch (err) {
    if (err instanceof AgentError) throw err
    if ((err as NodeJS.ErrnoException).code !== undefined) throw err
    throw new AgentError('SV_AGENT_KEYGEN_FAILED', 'key generation produced an unreadable key', { cause: err })
  } finally {
    pkcs8.fill(0)
  }
}

/**
 * Loads the device key from `path`: undefined when there is no file;
 * `SV_AGENT_KEY_INVALID` when it is not an RSA private key PEM, with
 * details.reason one of no-pem, not-private-key, encrypted, malformed,
 * not-rsa, too-large. A file readable by others is put back to 0600.
 */
export async function loadDeviceKey(path: string): Promise<DeviceKey | undefined> {
  let text: Buffer
  try {
    text = await readFileBounded(path, MAX_KEY_FILE_BYTES)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    if (err instanceof AgentError && err.code === 'SV_AGENT_FILE_TOO_LARGE') {
      throw new AgentError('SV_AGENT_KEY_INVALID', `${path} is too large to be a device key`, { details: { reason: 'too-large', path } })
    }
    throw err
  }
  const st = await stat(path)
  if ((st.mode & 0o077) !== 0) await chmod(path, 0o600)
  let pkcs8: Uint8Array | undefined
  try {
    pkcs8 = loadPrivateKeyPem(text.toString('utf8')).pkcs8
    return deviceKeyFromPkcs8(pkcs8)
  } catch (err) {
    if (err instanceof AgentError) throw err
    const reason = (isVaultError(err) && PEM_REASONS[String(err.details?.reason)]) || 'malformed'
    // The codec's message never holds key material; Node's parse errors neither.
    throw new AgentError('SV_AGENT_KEY_INVALID', `${path} is not a usable RSA private key`, { details: { reason, path } })
  } finally {
    pkcs8?.fill(0)
    text.fill(0)
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}
