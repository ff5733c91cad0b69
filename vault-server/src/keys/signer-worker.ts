/**
 * One signer thread of the pool (signer-pool.ts). Holds the pool's private
 * keys as KeyObjects and signs one request at a time, synchronously: the
 * thread has nothing else to do, and the main thread's event loop stays free.
 */
import { parentPort } from 'node:worker_threads'
import { constants, sign, type KeyObject } from 'node:crypto'
import { constants as osConstants, setPriority } from 'node:os'
import type { FromWorker, ToWorker } from './signer-protocol.js'

const port = parentPort
if (!port) throw new Error('signer-worker must run in a worker thread')

const keys = new Map<string, KeyObject>()

// Signing is throughput work; the main thread's is latency work (parse,
// verify, the durable write, the answer). On Linux, setpriority() without a
// pid applies to the calling thread only: this worker yields the cores to
// the main thread whenever it has something to do, so a registration does not
// wait behind a whole time slice of RSA on a busy machine.
try {
  setPriority(osConstants.priority.PRIORITY_BELOW_NORMAL)
} catch {
  // not permitted (some containers): run at normal priority
}

function reply(msg: FromWorker): void {
  port!.postMessage(msg)
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'add':
      keys.set(msg.keyId, msg.key)
      break
    case 'remove':
      keys.delete(msg.keyId)
      break
    case 'sign': {
      const key = keys.get(msg.keyId)
      if (!key) {
        reply({ type: 'failed', id: msg.id, reason: 'unknown-key', message: 'signing key is not loaded' })
        break
      }
      let signature: Buffer
      try {
        // RSASSA-PKCS1-v1_5 over SHA-512 of the data; the result is k bytes.
        signature = sign('sha512', msg.data, { key, padding: constants.RSA_PKCS1_PADDING })
      } catch (err) {
        reply({ type: 'failed', id: msg.id, reason: 'error', message: err instanceof Error ? err.message : String(err) })
        break
      }
      const out = new Uint8Array(signature)
      port!.postMessage({ type: 'signed', id: msg.id, signature: out } satisfies FromWorker, [out.buffer])
      break
    }
  }
})

reply({ type: 'ready' })
