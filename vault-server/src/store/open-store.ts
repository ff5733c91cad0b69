import { Level } from 'level'
import { MemoryLevel } from 'memory-level'
import { LevelStore } from './level-store.js'
import { PostgresStore } from './postgres-store.js'
import type { VaultStore } from './store.js'

/**
 * Which backend holds the vault's data:
 * - `level`: LevelDB (classic-level) in the directory `path`, created if
 *   missing. One vault process per directory (LevelDB's LOCK file).
 * - `memory`: memory-level, gone when the process exits. Demos and tests only.
 * - `postgres`: PostgreSQL at `url`, tables in `schema` (default `public`),
 *   `poolSize` connections (default 10). Several vault instances may share it.
 */
export type StoreConfig =
  | { driver: 'level'; path: string }
  | { driver: 'memory' }
  | { driver: 'postgres'; url: string; schema?: string; poolSize?: number }

export interface OpenStoreDeps {
  /**
   * Gets one `store.opened` line once the store is open, and `store.migrated`
   * when open() brought older data up to date (a pino logger fits). The URL is
   * never logged.
   */
  log?: { info(fields: Record<string, unknown>, msg: string): void }
}

/**
 * Creates the configured store and opens it (running PostgreSQL migrations).
 * Rejects with SV_STORE_UNAVAILABLE when the backend cannot be opened. This
 * is the only module besides tests that names the concrete stores.
 */
export async function openStore(config: StoreConfig, deps: OpenStoreDeps = {}): Promise<VaultStore> {
  const onMigrated = (from: number, to: number): void => deps.log?.info({ driver: config.driver, from, to }, 'store.migrated')
  const store = createStore(config, onMigrated)
  await store.open()
  deps.log?.info({ driver: config.driver, multiProcess: store.traits.multiProcess }, 'store.opened')
  return store
}

function createStore(config: StoreConfig, onMigrated: (from: number, to: number) => void): VaultStore {
  switch (config.driver) {
    case 'level':
      return new LevelStore(new Level(config.path), { onMigrated })
    case 'memory':
      return new LevelStore(new MemoryLevel())
    case 'postgres': {
      const options = { connectionString: config.url, schema: config.schema, max: config.poolSize, onMigrated }
      return new PostgresStore(options)
    }
    default:
      throw new TypeError(`unknown store driver ${JSON.stringify((config as { driver?: unknown }).driver)}`)
  }
}
