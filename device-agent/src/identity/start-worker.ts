/**
 * Starts a worker script next to this file, from source or from a build
 * alike. A copy of vault-server/src/keys/start-worker.ts (the agent must not
 * import the vault; the pattern is ten lines):
 *
 * After `tsc` the worker is a `.js` file beside this one and starts as usual.
 * From source (tests and dev runs: `node --import tsx --conditions=source`)
 * it is a `.ts` file, and on Node 20 tsx registers its loader hooks in the
 * main thread only, so `new Worker('x.ts')` fails with
 * ERR_UNKNOWN_FILE_EXTENSION. From source the worker therefore runs a one-line
 * bootstrap that loads the `.ts` file through tsx's `tsImport`.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads'

export type WorkerName = 'keygen-worker'

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
