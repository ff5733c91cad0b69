/**
 * Starts one of the worker scripts beside this file (@sv/shared/node
 * startWorkerBeside explains how, from source and from a build).
 */
import type { Worker, WorkerOptions } from 'node:worker_threads'
import { startWorkerBeside } from '@sv/shared/node'

export type WorkerName = 'signer-worker'

export function startWorker(name: WorkerName, options: WorkerOptions = {}): Worker {
  return startWorkerBeside(import.meta.url, name, options)
}
