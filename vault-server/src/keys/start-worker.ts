/**
 * Starts one of the worker scripts next to this file, from source or from a
 * build alike.
 *
 * After `tsc` the workers are `.js` files beside this one and start as usual.
 * From source (tests and dev runs: `node --import tsx --conditions=source`)
 * they are `.ts` files, and on Node 20 that needs care: tsx registers its
 * loader hooks in the main thread only (its register code skips worker
 * threads before Node 22.22.3/24.11.1), so `new Worker('x.ts')` fails with
 * ERR_UNKNOWN_FILE_EXTENSION even with `execArgv: process.execArgv`, and the
 * `.js` URL does not resolve to the `.ts` file either (tsx maps `.js` to `.ts`
 * only for imports made from a TypeScript file). So from source the worker
 * runs a one-line bootstrap that loads the `.ts` file through tsx's
 * `tsImport`, which registers its own namespaced hooks and so works whether
 * or not tsx also registered itself in the thread.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads'

export type WorkerName = 'signer-worker' | 'keygen-worker'

const FROM_SOURCE = import.meta.url.endsWith('.ts')

export function startWorker(name: WorkerName, options: WorkerOptions = {}): Worker {
  if (!FROM_SOURCE) return new Worker(new URL(`./${name}.js`, import.meta.url), options)
  const entry = new URL(`./${name}.ts`, import.meta.url).href
  let tsxApi: string
  try {
    tsxApi = import.meta.resolve('tsx/esm/api')
  } catch (err) {
    throw new Error('running from TypeScript source needs the tsx package to start worker threads', { cause: err })
  }
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(import.meta.url)}))`
  return new Worker(bootstrap, { ...options, eval: true })
}
