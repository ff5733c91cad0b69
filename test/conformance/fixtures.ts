/**
 * Records, helpers and the suite context shared by the conformance groups
 * (test/conformance/groups/*.ts). Records are built whole, with every
 * optional field a test needs given explicitly, so that a store which drops
 * or adds a field fails `deepEqual`.
 */
import { createHash } from 'node:crypto'
import type { ExecutionContext, TestFn } from 'ava'
import { createLogId } from '../../vault-server/src/store/log-id.js'
import {
  GENESIS_HASH,
  type AuditEntry,
  type AuditSeal,
  type BrandRecord,
  type GrantRecord,
  type LogEntry,
  type LoginTransactionRecord,
  type ModelRecord,
  type PersonRecord,
  type PivotRequest,
  type PivotRule,
  type SerialBinding,
  type SessionRecord,
  type SigningKeyRecord,
  type StoreRecord,
  type TokenRecord,
  type VaultStore,
  type WorkOrderRecord,
} from '../../vault-server/src/store/store.js'

// --- the suite ------------------------------------------------------------------------------

/** What a store declares about itself. */
export interface StoreSupports {
  /** Data survives close() and open() of the same instance (false only for a store that forgets on close). */
  reopen: boolean
  /** Uniqueness holds across processes; must equal `store.traits.multiProcess`. */
  multiProcess: boolean
}

export interface StoreSuiteOptions {
  name: string
  /** A fresh, empty, unopened store for one test; may register its own cleanup with `t.teardown`. */
  factory: (t: ExecutionContext) => VaultStore | Promise<VaultStore>
  supports: StoreSupports
}

/** What every group gets from storeSuite. */
export interface Suite {
  test: TestFn
  options: StoreSuiteOptions
  /** `${name}: ${group}: ${text}` */
  title(group: string, text: string): string
  /** A fresh store, opened, closed in teardown. */
  open(t: ExecutionContext): Promise<VaultStore>
}

export type Group = (suite: Suite) => void

// --- records ----------------------------------------------------------------------------------

export const T0 = Date.UTC(2026, 0, 1)

export function brandRecord(id: string, extra: Partial<BrandRecord> = {}): BrandRecord {
  return {
    id,
    displayName: `Brand ${id}`,
    origin: 'vault-root',
    accountAssertion: `type: account\naccount-id: ${id}\n\nSIG\n`,
    createdAt: T0,
    ...extra,
  }
}

/** The base store of a brand; its id defaults to the brand id. */
export function baseStoreRecord(brandId: string, id = brandId, extra: Partial<StoreRecord> = {}): StoreRecord {
  return {
    id,
    brandId,
    kind: 'base',
    displayName: `Store ${id}`,
    requirePivotReview: false,
    createdAt: T0,
    updatedAt: T0,
    ...extra,
  }
}

/** A product sub-store of `brandId` under `parentId`. */
export function subStoreRecord(id: string, brandId: string, parentId: string, extra: Partial<StoreRecord> = {}): StoreRecord {
  return {
    id,
    brandId,
    kind: 'product',
    parentId,
    displayName: `Store ${id}`,
    requirePivotReview: false,
    createdAt: T0,
    updatedAt: T0,
    ...extra,
  }
}

/** Creates a brand with its base store (id = brand id unless given). */
export async function withBrand(store: VaultStore, brandId: string, baseId = brandId): Promise<void> {
  await store.brands.createBrand(brandRecord(brandId), baseStoreRecord(brandId, baseId))
}

export function signingKeyRecord(keyId: string, accountId: string, extra: Partial<SigningKeyRecord> = {}): SigningKeyRecord {
  return {
    keyId,
    accountId,
    purpose: 'brand',
    name: 'default',
    bits: 4096,
    accountKeyAssertion: `type: account-key\npublic-key-sha3-384: ${keyId}\n\nSIG\n`,
    enabled: true,
    sealed: { alg: 'sv1:A256GCM', kid: '0123456789abcdef', iv: 'aXY=', tag: 'dGFn', data: 'ZGF0YQ==' },
    createdAt: T0,
    ...extra,
  }
}

/** A model in its brand's base store (store id = brand id) unless `storeId` is given. */
export function modelRecord(brandId: string, name: string, extra: Partial<ModelRecord> = {}): ModelRecord {
  return {
    brandId,
    name,
    storeId: brandId,
    signingKeyId: 'key-' + brandId,
    apiKeyHashes: ['a'.repeat(64)],
    serialPolicy: { kind: 'assign', template: 'SN-{n:6}', start: 1 },
    duplicatePolicy: 'refuse',
    modelHeaders: { architecture: 'arm64', base: 'core22', snaps: [{ name: 'pc', type: 'gadget' }] },
    modelAssertion: `type: model\nbrand-id: ${brandId}\nmodel: ${name}\n\nSIG\n`,
    revision: 1,
    createdAt: T0,
    updatedAt: T0,
    ...extra,
  }
}

export function binding(serial: string, deviceKeyId: string, extra: Partial<SerialBinding> = {}): SerialBinding {
  return {
    brandId: 'acme',
    model: 'widget',
    serial,
    deviceKeyId,
    revision: 1,
    serialAssertion: `type: serial\nserial: ${serial}\ndevice-key-sha3-384: ${deviceKeyId}\n\nSIG\n`,
    requestId: 'req-' + serial + '-' + deviceKeyId,
    issuedAt: T0,
    released: false,
    ...extra,
  }
}

export function logEntry(time: number, extra: Partial<LogEntry> = {}): LogEntry {
  return { id: createLogId(time), time, outcome: 'issued', ...extra }
}

/** The log entry that goes with a binding. */
export function issuedLog(b: SerialBinding, time = T0, extra: Partial<LogEntry> = {}): LogEntry {
  return logEntry(time, {
    outcome: b.revision === 1 ? 'issued' : 'reissued',
    brandId: b.brandId,
    model: b.model,
    serial: b.serial,
    deviceKeyId: b.deviceKeyId,
    revision: b.revision,
    requestId: b.requestId,
    ...extra,
  })
}

export function personRecord(id: string, email: string, extra: Partial<PersonRecord> = {}): PersonRecord {
  return {
    id,
    email,
    displayName: `Person ${id}`,
    disabled: false,
    identities: [{ providerId: 'corp', issuer: 'https://idp.example', subject: `sub-${id}` }],
    createdAt: T0,
    updatedAt: T0,
    ...extra,
  }
}

export function grantRecord(personId: string, storeId: string, extra: Partial<GrantRecord> = {}): GrantRecord {
  return { personId, storeId, role: 'viewer', inheritable: true, grantedBy: 'cli:tester', createdAt: T0, ...extra }
}

/** A 64-hex hash made from a short label (tokens, sessions). */
export function hashOf(label: string): string {
  return createHash('sha256').update(label).digest('hex')
}

export function adminToken(hash: string, extra: Partial<TokenRecord> = {}): TokenRecord {
  return { hash, kind: 'admin', name: 'ops', roles: ['admin'], createdAt: T0, ...extra }
}

export function personalToken(hash: string, personId: string, extra: Partial<TokenRecord> = {}): TokenRecord {
  return {
    hash,
    kind: 'personal',
    name: 'laptop',
    roles: [],
    personId,
    permissions: ['model.read', 'log.read'],
    stores: ['acme'],
    expiresAt: T0 + 86_400_000,
    createdAt: T0,
    ...extra,
  }
}

export function sessionRecord(hash: string, personId: string, extra: Partial<SessionRecord> = {}): SessionRecord {
  return {
    hash,
    personId,
    providerId: 'corp',
    createdAt: T0,
    expiresAt: T0 + 8 * 3_600_000,
    idleExpiresAt: T0 + 1_800_000,
    ip: '192.0.2.1',
    userAgent: 'test-agent',
    ...extra,
  }
}

export function loginTransaction(id: string, extra: Partial<LoginTransactionRecord> = {}): LoginTransactionRecord {
  return {
    id,
    providerId: 'corp',
    state: `state-${id}`,
    nonce: `nonce-${id}`,
    codeVerifier: `verifier-${id}`,
    returnTo: '/ui/',
    createdAt: T0,
    expiresAt: T0 + 600_000,
    ...extra,
  }
}

export function pivotRule(id: string, extra: Partial<PivotRule> = {}): PivotRule {
  return { id, brandId: 'acme', fromModel: 'widget', toModel: 'gizmo', storeId: 'acme', createdBy: 'prs_admin', createdAt: T0, ...extra }
}

/** An open list order of acme/widget for SN-1..SN-3, planned 2, valid through 2026. */
export function workOrderRecord(id: string, extra: Partial<WorkOrderRecord> = {}): WorkOrderRecord {
  return {
    id,
    brandId: 'acme',
    model: 'widget',
    storeId: 'acme',
    plannedQuantity: 2,
    serials: { kind: 'list', serials: ['SN-1', 'SN-2', 'SN-3'] },
    notBefore: T0,
    notAfter: T0 + 365 * 86_400_000,
    status: 'open',
    provisioned: 0,
    createdBy: 'prs_admin',
    createdAt: T0,
    updatedAt: T0,
    ...extra,
  }
}

export function pivotRequest(requestId: string, extra: Partial<PivotRequest> = {}): PivotRequest {
  return {
    requestId,
    brandId: 'acme',
    fromModel: 'widget',
    toModel: 'gizmo',
    storeId: 'acme',
    serial: 'SN-1',
    deviceKeyId: 'dk-1',
    status: 'pending',
    createdAt: T0,
    ...extra,
  }
}

// --- audit seals --------------------------------------------------------------------------------

/** What the caller of an audited write decides; the seal adds seq, prevHash, hash and mac. */
export type AuditDraft = Omit<AuditEntry, 'seq' | 'prevHash' | 'hash' | 'mac'>

export function auditDraft(extra: Partial<AuditDraft> = {}): AuditDraft {
  return { time: T0, actor: { kind: 'cli', id: 'tester' }, action: 'test.done', outcome: 'ok', ...extra }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/**
 * The seal of the audit chain as the vault makes it (services/audit.ts adds
 * a real HMAC): `seq = head.seq + 1`, `prevHash = head.hash`,
 * `hash = sha256(prevHash + JSON of the draft)`. Every entry it makes is
 * pushed to `made`, so a test can compare what the store kept.
 */
export function seal(draft: AuditDraft, made?: AuditEntry[]): AuditSeal {
  return (head) => {
    const hash = sha256(head.hash + JSON.stringify(draft))
    const entry: AuditEntry = { seq: head.seq + 1, ...draft, prevHash: head.hash, hash, mac: 'mac:' + hash.slice(0, 16) }
    made?.push(entry)
    return entry
  }
}

/** A broken seal: an entry that skips a seq, or that does not follow the head's hash. */
export function badSeal(draft: AuditDraft, fault: 'seq' | 'prevHash'): AuditSeal {
  return (head) => {
    const good = seal(draft)(head)
    return fault === 'seq' ? { ...good, seq: head.seq + 2 } : { ...good, prevHash: GENESIS_HASH.replace(/0$/, '1') }
  }
}

/** Checks a whole chain: seqs 1..n without gaps, each prevHash the previous hash, each hash recomputed. Returns the problems found. */
export function chainProblems(entries: readonly AuditEntry[]): string[] {
  const problems: string[] = []
  let prev = GENESIS_HASH
  entries.forEach((e, i) => {
    const { seq, prevHash, hash, mac: _mac, ...draft } = e
    if (seq !== i + 1) problems.push(`entry ${i} has seq ${seq}`)
    if (prevHash !== prev) problems.push(`entry ${seq} does not follow the previous hash`)
    if (hash !== sha256(prevHash + JSON.stringify(draft))) problems.push(`entry ${seq} has a wrong hash`)
    prev = hash
  })
  return problems
}

// --- helpers ----------------------------------------------------------------------------------

export async function drain<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

/** Settles every promise and splits the outcomes, so a race can be judged as a whole. */
export async function race<T>(promises: Array<Promise<T>>): Promise<{ won: T[]; codes: string[] }> {
  const settled = await Promise.allSettled(promises)
  const won: T[] = []
  const codes: string[] = []
  for (const s of settled) {
    if (s.status === 'fulfilled') won.push(s.value)
    else codes.push(String((s.reason as { code?: unknown }).code))
  }
  return { won, codes }
}

/** Compares strings bytewise (the order both stores list in). */
export function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Every audit entry, in seq order. */
export function auditEntries(store: VaultStore): Promise<AuditEntry[]> {
  return drain(store.audit.export({}))
}
