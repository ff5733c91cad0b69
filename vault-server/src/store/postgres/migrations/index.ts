import type { PoolClient } from 'pg'
import { sql as initial } from './001-initial.js'
import * as stores from './002-stores.js'
import { sql as workOrders } from './003-work-orders.js'

/**
 * The PostgreSQL migrations, in the order they are applied.
 *
 * Why TypeScript modules and not `.sql` files: the SQL has to be found at run
 * time both from `src/` (tests and dev runs under tsx) and from `dist/` after
 * `tsc`, which does not copy `.sql` files. A module holding the SQL as a
 * string compiles along with the code, needs no file lookup and cannot go
 * missing from a build. Each file keeps the `NNN-name` naming of a migration
 * directory; to add one, add `NNN-name.ts` and append it here. A migration is
 * a list of steps, SQL text or a function for data that SQL alone cannot move
 * (run in the same transaction). Released migrations are never edited.
 */
export type MigrationStep = string | ((client: PoolClient, now: number) => Promise<void>)

export interface Migration {
  /** Strictly increasing, recorded in `schema_migrations.version`. */
  version: number
  name: string
  steps: readonly MigrationStep[]
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial', steps: [initial] },
  { version: 2, name: 'stores', steps: [stores.before, stores.data, stores.after] },
  { version: 3, name: 'work-orders', steps: [workOrders] },
]
