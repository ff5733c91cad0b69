import { sql as initial } from './001-initial.js'

/**
 * The PostgreSQL migrations, in the order they are applied.
 *
 * Why TypeScript modules and not `.sql` files: the SQL has to be found at run
 * time both from `src/` (tests and dev runs under tsx) and from `dist/` after
 * `tsc`, which does not copy `.sql` files. A module holding the SQL as a
 * string compiles along with the code, needs no file lookup and cannot go
 * missing from a build. Each file keeps the `NNN-name` naming of a migration
 * directory; to add one, add `NNN-name.ts` exporting `sql` and append it here.
 * Released migrations are never edited.
 */
export interface Migration {
  /** Strictly increasing, recorded in `schema_migrations.version`. */
  version: number
  name: string
  sql: string
}

export const MIGRATIONS: readonly Migration[] = [{ version: 1, name: 'initial', sql: initial }]
