/**
 * Generates one RSA key pair off the main thread (keygen.ts) with node:crypto's
 * generateKeyPairSync, which blocks for the whole prime search (0.4-3 s for
 * RSA-4096 on a PC, up to a minute on a Pi); in this thread that is harmless,
 * and the main thread keeps its timers and can abort by terminating it.
 *
 * workerData: { bits }. Posts { pkcs8: ArrayBuffer } (transferred) and exits.
 */
import { generateKeyPairSync } from 'node:crypto'
import { parentPort, workerData } from 'node:worker_threads'

const { bits } = workerData as { bits: number }
const { privateKey } = generateKeyPairSync('rsa', {
  modulusLength: bits,
  publicExponent: 0x10001,
  privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  publicKeyEncoding: { type: 'spki', format: 'der' },
})
// a copy in an ArrayBuffer of its own (a Buffer may sit in a shared pool), then the original zeroed
const pkcs8 = new Uint8Array(privateKey).buffer
privateKey.fill(0)
parentPort!.postMessage({ pkcs8 }, [pkcs8])
