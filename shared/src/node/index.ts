/**
 * @sv/shared/node: what the codec needs from Node and a browser has not.
 *
 * Importing this entry installs node:crypto as the codec's platform
 * (setCryptoPlatform(nodeCryptoPlatform)): OpenSSL digests and RSA
 * verification on a KeyObject cached per key, the fast path measured in
 * bench/codec.ts. The main entry alone runs on @noble/hashes and WebCrypto,
 * correct but slower; so every Node process of ours (the vault, the agent,
 * their worker threads, the tests and benchmarks) imports this entry, and
 * test/architecture.test.ts checks that the composition roots do.
 *
 * It also holds the Node-only helpers: the signers on node:crypto and on
 * Node's WebCrypto, RSA key generation in a worker thread, and the
 * worker starter that finds a worker beside its caller from source or a build.
 */
import { setCryptoPlatform } from '../crypto/platform.js'
import { nodeCryptoPlatform } from './platform.js'

setCryptoPlatform(nodeCryptoPlatform)

export { nodeCryptoPlatform } from './platform.js'
export { NodeKeySigner, WebCryptoSigner } from './signers.js'
export { getWebCrypto, type CryptoKey } from './webcrypto.js'
export { generateRsaPkcs8, KeyGenerationError, type GenerateRsaPkcs8Options } from './keygen.js'
export { startWorkerBeside } from './start-worker.js'
