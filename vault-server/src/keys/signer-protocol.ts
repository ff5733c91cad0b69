/**
 * Messages between the signer pool and its workers. Types only: the worker
 * imports this file with `import type`, so it loads nothing but node:crypto.
 *
 * Private keys travel as KeyObjects: Node clones a KeyObject into the worker
 * (OpenSSL-side, never as JS bytes), once per key and worker.
 */
import type { KeyObject } from 'node:crypto'

export type ToWorker =
  | { type: 'add'; keyId: string; key: KeyObject }
  | { type: 'remove'; keyId: string }
  | { type: 'sign'; id: number; keyId: string; data: Uint8Array }

export type FromWorker =
  | { type: 'ready' }
  | { type: 'signed'; id: number; signature: Uint8Array }
  /** `unknown-key`: the key was removed; `error`: the sign itself threw. */
  | { type: 'failed'; id: number; reason: 'unknown-key' | 'error'; message: string }
