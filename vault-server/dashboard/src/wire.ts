/**
 * The wire types the dashboard reads. The admin API's own types come from
 * shared/src/protocol/admin.ts (type-only imports: erased from the bundle, so
 * zod is not shipped to the browser); the live stream's types are declared
 * here.
 */
export type {
  LogEntryWire,
  LogPageWire,
  AuditEntryWire,
  AuditReportWire,
  StoreWire,
  ModelWire,
  KeyWire,
  MemberWire,
  TokenWire,
  MeWire,
  RoleId,
  HeaderValueWire,
} from '../../../shared/src/protocol/admin.ts'

import type { AlertWire, AuditEntryWire, LogEntryWire } from '../../../shared/src/protocol/admin.ts'

export type Outcome = LogEntryWire['outcome']
export const OUTCOMES: Outcome[] = ['issued', 'reissued', 'retried', 'pivoted', 'refused']
export const ROLES = ['admin', 'publisher', 'collaborator', 'reviewer', 'viewer'] as const
export const ROLE_NAMES: Record<string, string> = {
  admin: 'Store Administrator',
  publisher: 'Publisher',
  collaborator: 'Collaborator',
  reviewer: 'Reviewer',
  viewer: 'Viewer',
}

export interface AuditPage {
  entries: AuditEntryWire[]
  nextCursor?: string
}

/** GET /v1/admin/roles */
export interface RolesTable {
  roles: Record<string, { name: string; permissions: string[] }>
  storePermissions: Record<string, string>
  vaultPermissions: Record<string, string>
  routes: Array<{ method: string; path: string; permission: string; summary: string }>
}

/** A clone attempt: the same serial offered with another device key. */
export type Alert = AlertWire

export interface LiveBucket {
  /** epoch ms of the minute's start */
  minute: number
  brandId?: string
  model?: string
  transport?: string
  outcome: Outcome
  count: number
}

export interface LiveHello {
  now: number | string
  windowMinutes: number
  buckets: LiveBucket[]
  recent: LogEntryWire[]
  alerts: Alert[]
}

export interface SerialBindingWire {
  brandId: string
  model: string
  serial: string
  deviceKeyId: string
  revision: number
  issuedAt: string
  [k: string]: unknown
}
