/**
 * The VaultStore conformance suite, after abstract-level's test suite: every
 * store implementation runs it, so that both backends mean the same thing.
 *
 *   storeSuite(test, { name: 'memory-level', factory: () => new LevelStore(new MemoryLevel()), supports })
 *
 * `factory(t)` returns a fresh, empty, unopened store for one test and may
 * register its own cleanup with `t.teardown` (it runs after the suite's
 * `close()`). One group per repository (groups/*.ts) plus the lifecycle of
 * every method. Tests assert codes and values only, never message text.
 */
import type { ExecutionContext, TestFn } from 'ava'
import type { VaultStore } from '../../vault-server/src/store/store.js'
import type { Group, StoreSuiteOptions, Suite } from './fixtures.js'
import { lifecycleGroup } from './groups/lifecycle.js'
import { keysGroup } from './groups/keys.js'
import { brandsGroup } from './groups/brands.js'
import { storesGroup } from './groups/stores.js'
import { registrationsGroup } from './groups/registrations.js'
import { signingLogGroup } from './groups/signing-log.js'
import { peopleGroup } from './groups/people.js'
import { tokensGroup } from './groups/tokens.js'
import { sessionsGroup } from './groups/sessions.js'
import { auditGroup } from './groups/audit.js'
import { pivotsGroup } from './groups/pivots.js'
import { metaGroup } from './groups/meta.js'
import { workOrdersGroup } from './groups/work-orders.js'

export * from './fixtures.js'
export { everyOperation } from './groups/lifecycle.js'

export const GROUPS: readonly Group[] = [
  lifecycleGroup,
  keysGroup,
  brandsGroup,
  storesGroup,
  registrationsGroup,
  signingLogGroup,
  peopleGroup,
  tokensGroup,
  sessionsGroup,
  auditGroup,
  pivotsGroup,
  workOrdersGroup,
  metaGroup,
]

export function storeSuite(test: TestFn, options: StoreSuiteOptions): void {
  const suite: Suite = {
    test,
    options,
    title: (group, text) => `${options.name}: ${group}: ${text}`,
    async open(t: ExecutionContext): Promise<VaultStore> {
      const store = await options.factory(t)
      t.teardown(() => store.close())
      await store.open()
      return store
    },
  }
  for (const group of GROUPS) group(suite)
}
