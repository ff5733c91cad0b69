/**
 * Generates one RSA key pair off the main thread (keygen.ts). @peculiar/webcrypto
 * calls node's generateKeyPairSync, which blocks for the whole prime search
 * (0.4-3 s for RSA-4096 on a PC, up to a minute on a Pi); in this thread that
 * is harmless, and the main thread keeps its timers and can abort by
 * terminating it.
 *
 * workerData: { bits }. Posts { pkcs8: ArrayBuffer } (transferred) and exits.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Crypto } from '@peculiar/webcrypto'

const { bits } = workerData as { bits: number }
const subtle = new Crypto().subtle
const pair = await subtle.generateKey(
  { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512', modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]) },
  true,
  ['sign', 'verify'],
)
const pkcs8 = await subtle.exportKey('pkcs8', pair.privateKey)
parentPort!.postMessage({ pkcs8 }, [pkcs8])
