/**
 * Records as the admin API shows them (shared/src/protocol/admin.ts): times
 * as ISO 8601, never a secret (sealed keys, token hashes, API keys).
 */
import { ModelAssertion, decodeAssertion, type AdminWire } from '@sv/shared'
import type { AuditEntry, GrantRecord, LogEntry, ModelRecord, PersonRecord, PivotRequest, PivotRule, Role, StoreRecord, TokenRecord } from '../../store/store.js'
import { tokenId } from '../../store/store.js'
import type { SigningKeyInfo } from '../../keys/keystore.js'

const iso = (t: number): string => new Date(t).toISOString()
function opt<K extends string>(key: K, t: number | undefined): Partial<Record<K, string>> {
  return t === undefined ? {} : ({ [key]: iso(t) } as Partial<Record<K, string>>)
}

export function storeView(s: StoreRecord, roles?: Role[]): AdminWire.StoreWire {
  return {
    id: s.id,
    brandId: s.brandId,
    kind: s.kind,
    ...(s.parentId !== undefined ? { parentId: s.parentId } : {}),
    displayName: s.displayName,
    ...(s.partner ? { partner: s.partner } : {}),
    requirePivotReview: s.requirePivotReview,
    createdAt: iso(s.createdAt),
    updatedAt: iso(s.updatedAt),
    ...(roles ? { roles } : {}),
  }
}

export function modelView(m: ModelRecord): AdminWire.ModelWire {
  let named = false
  try {
    named = (decodeAssertion(m.modelAssertion) as ModelAssertion).headerString('store') === m.storeId
  } catch {
    named = false
  }
  return {
    brandId: m.brandId,
    name: m.name,
    storeId: m.storeId,
    signingKeyId: m.signingKeyId,
    apiKeyHashes: m.apiKeyHashes,
    serialPolicy: m.serialPolicy,
    duplicatePolicy: m.duplicatePolicy,
    requireWorkOrder: m.requireWorkOrder === true,
    revision: m.revision,
    modelAssertion: m.modelAssertion,
    assertionNamesStore: named,
    createdAt: iso(m.createdAt),
    updatedAt: iso(m.updatedAt),
  }
}

export function keyView(k: SigningKeyInfo, models?: string[], withAssertion = false): AdminWire.KeyWire {
  return {
    keyId: k.keyId,
    accountId: k.accountId,
    purpose: k.purpose,
    name: k.name,
    bits: k.bits,
    enabled: k.enabled,
    ...(k.reason !== undefined ? { reason: k.reason } : {}),
    ...opt('changedAt', k.changedAt),
    createdAt: iso(k.createdAt),
    ...(models ? { models } : {}),
    ...(withAssertion ? { accountKeyAssertion: k.accountKeyAssertion } : {}),
  }
}

export function memberView(g: GrantRecord, p: PersonRecord): AdminWire.MemberWire {
  return {
    personId: p.id,
    email: p.email,
    ...(p.displayName !== undefined ? { displayName: p.displayName } : {}),
    role: g.role,
    inheritable: g.inheritable,
    grantedBy: g.grantedBy,
    createdAt: iso(g.createdAt),
    ...opt('lastLoginAt', p.lastLoginAt),
  }
}

export function tokenView(t: TokenRecord, email?: string): AdminWire.TokenWire {
  return {
    id: tokenId(t.hash),
    kind: t.kind,
    name: t.name,
    ...(t.personId !== undefined ? { personId: t.personId } : {}),
    ...(email !== undefined ? { email } : {}),
    ...(t.permissions ? { permissions: t.permissions } : {}),
    ...(t.stores ? { stores: t.stores } : {}),
    ...(t.kind === 'admin' ? { roles: t.roles } : {}),
    createdAt: iso(t.createdAt),
    ...opt('expiresAt', t.expiresAt),
    ...opt('revokedAt', t.revokedAt),
    ...opt('lastUsedAt', t.lastUsedAt),
  }
}

export function logEntryView(e: LogEntry): AdminWire.LogEntryWire {
  return { ...e, time: iso(e.time) } as AdminWire.LogEntryWire
}

export function auditEntryView(e: AuditEntry): AdminWire.AuditEntryWire {
  return { ...e, time: iso(e.time) } as AdminWire.AuditEntryWire
}

export function pivotRuleView(r: PivotRule): AdminWire.PivotRuleWire {
  return { ...r, createdAt: iso(r.createdAt) }
}

export function pivotRequestView(r: PivotRequest): AdminWire.PivotRequestWire {
  const { decidedAt, ...rest } = r
  return { ...rest, createdAt: iso(r.createdAt), ...opt('decidedAt', decidedAt) }
}
