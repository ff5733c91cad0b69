/**
 * The `@sv/shared` main entry bundled for a browser with esbuild, as a
 * dashboard's bundler would take it (platform 'browser': the `browser`
 * conditions and fields, no Node builtins). esbuild fails on any import it
 * cannot resolve for a browser, so a Node-only import anywhere in the graph,
 * ours or a dependency's, fails the build.
 */
import path from 'node:path'
import { build, type Metafile } from 'esbuild'
import { REPO_ROOT } from './vectors.js'

export const SHARED_ENTRY = path.join(REPO_ROOT, 'shared', 'src', 'index.ts')

export interface SharedBundle {
  code: string
  metafile: Metafile
}

/** `iife` defines a global `sv` holding the entry's exports (for a vm context); `esm` is what Vite would produce. */
export async function bundleShared(format: 'esm' | 'iife'): Promise<SharedBundle> {
  const r = await build({
    entryPoints: [SHARED_ENTRY],
    absWorkingDir: REPO_ROOT,
    bundle: true,
    write: false,
    platform: 'browser',
    format,
    ...(format === 'iife' ? { globalName: 'sv' } : {}),
    target: 'es2022',
    metafile: true,
    logLevel: 'silent',
  })
  return { code: r.outputFiles[0]!.text, metafile: r.metafile }
}
