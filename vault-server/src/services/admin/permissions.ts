/**
 * The one permission table: which of the five store roles may do what. It is
 * the only place that decides; AccessService.authorize asks it for every
 * admin operation, and the API docs and `vault-server roles --markdown` are
 * generated from it.
 *
 * A permission is held in a store. Store permissions are checked in the store
 * the operation acts in (a model's store, a key's brand's base store, ...);
 * a grant holds there, and in the stores below when it is inheritable.
 * Vault permissions (creating brands, listing everyone, verifying the whole
 * audit chain) belong to the operator's break-glass admin token only.
 *
 * The roles, as the brand's commissioning guide has them:
 *  - Store Administrator (`admin`): everything in the store.
 *  - Publisher: the publishing side (snap names and collaborators come with
 *    the app store); reads models and metrics.
 *  - Collaborator: per-snap uploads and releases (app store); no vault
 *    administration.
 *  - Reviewer: decides what waits for review (pivot requests; release of a
 *    refused serial for re-provisioning); reads the signing log.
 *  - Viewer: read-only: models, signing log, export, metrics; downloads model
 *    assertions to build images.
 */
import type { Role } from '../../store/store.js'

export const ROLE_NAMES: Record<Role, string> = {
  admin: 'Store Administrator',
  publisher: 'Publisher',
  collaborator: 'Collaborator',
  reviewer: 'Reviewer',
  viewer: 'Viewer',
}

/** Store permissions: held through a role in a store. */
export const STORE_PERMISSIONS = {
  'store.read': 'see the store and its place in the tree',
  'store.manage': 'create sub-stores under the store; change its name, partner and review setting',
  'member.read': "list the store's people and their roles",
  'member.manage': 'invite people, give, change and remove roles in the store',
  'token.manage': "list and revoke the personal tokens of the store's people",
  'key.read': "list the brand's signing keys (base store)",
  'key.manage': "generate and import signing keys, enable and disable them (base store)",
  'model.read': "read the store's models and their model assertions",
  'model.manage': 'create, change and move models of the store',
  'model.download': 'download model assertions with their chain, to build images',
  'apikey.manage': "create and remove models' API keys",
  'serial.read': 'read the binding of a serial',
  'serial.release': 'release a serial for re-provisioning with a new device key',
  'log.read': "query the signing log of the store's models",
  'log.export': 'export the signing log (JSON lines, CSV)',
  'metrics.read': "read the store's registration figures",
  'alert.acknowledge': 'acknowledge clone alerts (a serial offered with another device key) on the Live page',
  'system-user.sign': 'sign system-user assertions for models of the store',
  'pivot.read': 'read pivot (remodel) rules and requests of the store',
  'pivot.manage': 'allow and remove pivots into and out of the store',
  'pivot.review': 'accept or refuse pivot requests waiting for review',
  'audit.read': 'read and export the audit log of the store',
  'workorder.read': "read the store's work orders and their reconciliation reports",
  'workorder.manage': 'open and close work orders for models of the store',
} as const

/** Vault permissions: the operator's admin token only. */
export const VAULT_PERMISSIONS = {
  'brand.create': 'create or import a brand (and its base store)',
  'people.read': 'list every person of the vault',
  'audit.verify': 'verify the whole audit chain',
} as const

export type StorePermission = keyof typeof STORE_PERMISSIONS
export type VaultPermission = keyof typeof VAULT_PERMISSIONS
export type Permission = StorePermission | VaultPermission

export const ALL_STORE_PERMISSIONS = Object.keys(STORE_PERMISSIONS) as StorePermission[]
export const ALL_VAULT_PERMISSIONS = Object.keys(VAULT_PERMISSIONS) as VaultPermission[]

export function isStorePermission(p: string): p is StorePermission {
  return Object.hasOwn(STORE_PERMISSIONS, p)
}

/** permission x role: the table. */
export const ROLE_PERMISSIONS: Record<Role, ReadonlySet<StorePermission>> = {
  admin: new Set(ALL_STORE_PERMISSIONS),
  publisher: new Set<StorePermission>(['store.read', 'model.read', 'model.download', 'metrics.read']),
  collaborator: new Set<StorePermission>(['store.read']),
  reviewer: new Set<StorePermission>(['store.read', 'model.read', 'serial.read', 'serial.release', 'log.read', 'pivot.read', 'pivot.review', 'alert.acknowledge', 'workorder.read']),
  viewer: new Set<StorePermission>(['store.read', 'model.read', 'model.download', 'serial.read', 'log.read', 'log.export', 'metrics.read', 'workorder.read']),
}

export function roleAllows(role: Role, permission: StorePermission): boolean {
  return ROLE_PERMISSIONS[role].has(permission)
}

/** The table as Markdown (docs/roles.md, `vault-server roles --markdown`). */
export function rolesMarkdown(): string {
  const roles = Object.keys(ROLE_NAMES) as Role[]
  const lines = [`| permission | ${roles.map((r) => ROLE_NAMES[r]).join(' | ')} | what it allows |`, `|---|${roles.map(() => ':-:').join('|')}|---|`]
  for (const p of ALL_STORE_PERMISSIONS) lines.push(`| \`${p}\` | ${roles.map((r) => (roleAllows(r, p) ? 'yes' : '')).join(' | ')} | ${STORE_PERMISSIONS[p]} |`)
  lines.push('', 'Vault permissions, held only by the operator\'s admin token (`vault-server token create` on the vault host):', '')
  for (const p of ALL_VAULT_PERMISSIONS) lines.push(`- \`${p}\`: ${VAULT_PERMISSIONS[p]}`)
  return `${lines.join('\n')}\n`
}

/** The table as data (GET /v1/admin/roles). */
export function permissionTable(): { roles: Record<Role, { name: string; permissions: StorePermission[] }>; storePermissions: typeof STORE_PERMISSIONS; vaultPermissions: typeof VAULT_PERMISSIONS } {
  const roles = Object.fromEntries((Object.keys(ROLE_NAMES) as Role[]).map((r) => [r, { name: ROLE_NAMES[r], permissions: ALL_STORE_PERMISSIONS.filter((p) => roleAllows(r, p)) }])) as Record<Role, { name: string; permissions: StorePermission[] }>
  return { roles, storePermissions: STORE_PERMISSIONS, vaultPermissions: VAULT_PERMISSIONS }
}
