/**
 * The admin service: the one place that decides who may do what, where.
 * Routes (http/routes/admin.ts) and the CLI parse, call one operation here
 * and answer. Every operation authenticates through `access`, finds its
 * target and the store it acts in, asks `authorize(principal, permission,
 * scope)` (services/admin/permissions.ts holds the only table), writes the
 * change with its audit entry atomically, and invalidates the caches the
 * change affects (models, brand chains, the store tree).
 */
import { AdminCore, type AdminDeps } from './core.js'
import { CatalogOps } from './catalog-ops.js'
import { PeopleOps } from './people-ops.js'
import { LiveOps } from './live-ops.js'
import { LogOps } from './log-ops.js'
import { WorkOrderOps } from './work-order-ops.js'
import type { Credentials, Principal } from './access.js'

export type { RequestContext, AdminDeps } from './core.js'

export class AdminService {
  readonly core: AdminCore
  readonly catalog: CatalogOps
  readonly people: PeopleOps
  readonly logs: LogOps
  readonly live: LiveOps
  readonly workOrders: WorkOrderOps

  constructor(deps: AdminDeps) {
    this.core = new AdminCore(deps)
    this.catalog = new CatalogOps(this.core)
    this.people = new PeopleOps(this.core)
    this.logs = new LogOps(this.core)
    this.live = new LiveOps(this.core, deps.live)
    this.workOrders = new WorkOrderOps(this.core)
  }

  authenticate(c: Credentials): Promise<Principal> {
    return this.core.d.access.authenticate(c)
  }

  /** A session caller's CSRF token (what /me hands the dashboard); undefined for token callers. */
  csrfToken(p: Principal): string | undefined {
    return p.kind === 'person' && p.via.kind === 'session' ? this.core.d.access.csrfToken(p.via.session.hash) : undefined
  }
}
