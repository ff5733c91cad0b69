/**
 * Starts a worker script that sits beside the calling module, from source or
 * from a build alike: `startWorkerBeside(import.meta.url, 'signer-worker')`.
 *
 * After `tsc` the worker is a `.js` file beside the caller and starts as
 * usual. From source (tests and dev runs: `node --import tsx
 * --conditions=source`) it is a `.ts` file, and on Node 20 that needs care:
 * tsx registers its loader hooks in the main thread only (its register code
 * skips worker threads before Node 22.22.3/24.11.1), so `new Worker('x.ts')`
 * fails with ERR_UNKNOWN_FILE_EXTENSION even with `execArgv:
 * process.execArgv`, and the `.js` URL does not resolve to the `.ts` file
 * either (tsx maps `.js` to `.ts` only for imports made from a TypeScript
 * file). So from source the worker runs a one-line bootstrap that loads the
 * `.ts` file through tsx's `tsImport`, which registers its own namespaced
 * hooks and so works whether or not tsx also registered itself in the thread.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads'

export function startWorkerBeside(moduleUrl: string, name: string, options: WorkerOptions = {}): Worker {
  if (!moduleUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, moduleUrl), options)
  const entry = new URL(`./${name}.ts`, moduleUrl).href
  let tsxApi: string
  try {
    tsxApi = import.meta.resolve('tsx/esm/api')
  } catch (err) {
    throw new Error('running from TypeScript source needs the tsx package to start worker threads', { cause: err })
  }
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => tsx.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(moduleUrl)}))`
  return new Worker(bootstrap, { ...options, eval: true })
}
