/**
 * A trust database with snapd's checks (asserts/database.go, spec §3.4):
 * trusted anchors (account and account-key assertions, accepted as they are,
 * like snapd's built-in root), then assertions added in any order with
 * `addAll`, or one by one with `add` once their prerequisites are in.
 *
 * `check` runs, in snapd's order: supported format; the signing account-key is
 * found for (authority-id, sign-key-sha3-384); that key is valid now; the
 * signature verifies; the assertion timestamp lies in the key's validity; the
 * type's cross checks (account and account-key signed by a directly trusted
 * authority, account-key has its account, serial authority is the brand or
 * listed in the model's serial-authority). A serial-request (no authority) is
 * verified against its own device-key, as a device service does.
 */
import { VaultError, type ErrorCode } from '../errors.js'
import { bytesEqual } from '../crypto/bytes.js'
import { verifySignature } from '../crypto/signature.js'
import type { PublicKey } from '../crypto/keys.js'
import type { Assertion } from './assertion.js'
import { formatRfc3339 } from './checks.js'
import { AccountAssertion } from './types/account.js'
import { AccountKeyAssertion, AccountKeyRequestAssertion, isValidAt, type Validity } from './types/account-key.js'
import { ModelAssertion } from './types/model.js'
import { DeviceSessionRequestAssertion, SerialAssertion, SerialRequestAssertion } from './types/serial.js'

export interface TrustDbOptions {
  /** Trust anchors: account and account-key assertions (other types are refused). */
  trusted: Iterable<Assertion>
  /** Current time in epoch ms (default Date.now); keys must be valid now. */
  now?: () => number
}

/** Go's time.Time String() form, as in snapd's messages. */
export function goTime(ms: number): string {
  const iso = new Date(ms).toISOString()
  const frac = iso.slice(19, 23).replace(/\.?0+$/, '')
  return `${iso.slice(0, 19).replace('T', ' ')}${frac} +0000 UTC`
}

function fail(code: ErrorCode, a: Assertion, message: string, extra: Record<string, unknown> = {}): never {
  throw new VaultError(code, message, { details: { type: a.typeName, ...extra } })
}

export class TrustDb {
  readonly #now: () => number
  readonly #anchors = new Map<string, Assertion>()
  readonly #trustedAccounts = new Set<string>()
  readonly #byRef = new Map<string, Assertion>()
  readonly #keys = new Map<string, AccountKeyAssertion>()

  constructor(options: TrustDbOptions) {
    this.#now = options.now ?? Date.now
    for (const a of options.trusted) {
      if (a instanceof AccountAssertion) this.#trustedAccounts.add(a.accountId)
      else if (a instanceof AccountKeyAssertion) this.#keys.set(a.publicKeyId, a)
      else throw new VaultError('SV_ASSERTION_UNTRUSTED', `trust anchors must be account or account-key assertions, not ${a.typeName}`, { details: { type: a.typeName } })
      this.#anchors.set(a.ref, a)
    }
  }

  isTrustedAccount(accountId: string): boolean {
    return accountId !== '' && this.#trustedAccounts.has(accountId)
  }

  /** An assertion held (anchor or added) by its ref (`type/pk1/...`). */
  get(ref: string): Assertion | undefined {
    return this.#anchors.get(ref) ?? this.#byRef.get(ref)
  }

  find(type: string, primaryKey: string[]): Assertion | undefined {
    return this.get([type, ...primaryKey].join('/'))
  }

  /** Every assertion added (not the anchors), in insertion order. */
  added(): Assertion[] {
    return [...this.#byRef.values()]
  }

  /** The account-key for (authority, key id). Throws SV_SIGNING_KEY_UNKNOWN. */
  findAccountKey(a: Assertion): AccountKeyAssertion {
    const key = this.#keys.get(a.signKeyId)
    if (!key) fail('SV_SIGNING_KEY_UNKNOWN', a, `no matching public key ${JSON.stringify(a.signKeyId)} for signature by ${JSON.stringify(a.authorityId)}`, { signKeyId: a.signKeyId })
    if (key.accountId !== a.authorityId) {
      fail('SV_SIGNING_KEY_UNKNOWN', a, `found public key ${JSON.stringify(a.signKeyId)} from ${JSON.stringify(key.accountId)} but expected it from: ${a.authorityId}`, { signKeyId: a.signKeyId })
    }
    return key
  }

  /** snapd's Database.Check (see the file comment). Resolves when the assertion is acceptable. */
  async check(a: Assertion): Promise<void> {
    if (a.format > a.type.maxFormat) fail('SV_ASSERTION_INVALID', a, `proposed ${JSON.stringify(a.typeName)} assertion has format ${a.format} but ${a.type.maxFormat} is latest supported`, { header: 'format' })
    if (a.type.noAuthority) {
      await verifyOf(a, this.#selfSignKey(a))
      return
    }
    const key = this.findAccountKey(a)
    const now = this.#now()
    if (!isValidAt(key, now)) {
      fail('SV_SIGNING_KEY_EXPIRED', a, `assertion is signed with expired public key ${JSON.stringify(a.signKeyId)} from ${JSON.stringify(a.authorityId)}: ${validityMismatch(key, now)}`, { signKeyId: a.signKeyId })
    }
    await verifyOf(a, key.publicKey)
    const ts = timestampOf(a)
    if (ts !== undefined && !isValidAt(key, ts)) {
      const until = key.until !== undefined ? ` until ${JSON.stringify(goTime(key.until))}` : ''
      fail('SV_SIGNING_KEY_EXPIRED', a, `${a.typeName} assertion timestamp ${JSON.stringify(goTime(ts))} outside of signing key validity (key valid since ${JSON.stringify(goTime(key.since))}${until})`, {
        header: 'timestamp',
      })
    }
    this.#checkConsistency(a)
  }

  #selfSignKey(a: Assertion): PublicKey {
    if (a instanceof SerialRequestAssertion) return a.deviceKey
    if (a instanceof AccountKeyRequestAssertion) return a.publicKey
    if (a instanceof DeviceSessionRequestAssertion) {
      const serial = this.find('serial', [a.brandId, a.model, a.serial])
      if (!(serial instanceof SerialAssertion)) fail('SV_ASSERTION_UNTRUSTED', a, 'cannot find serial assertion for device-session-request')
      return serial.deviceKey
    }
    return fail('SV_ASSERTION_UNTRUSTED', a, `cannot check no-authority assertion type ${JSON.stringify(a.typeName)}`)
  }

  #checkConsistency(a: Assertion): void {
    if (a instanceof AccountAssertion) {
      if (!this.isTrustedAccount(a.authorityId)) {
        fail('SV_ASSERTION_UNTRUSTED', a, `account assertion for ${JSON.stringify(a.accountId)} is not signed by a directly trusted authority: ${a.authorityId}`, { header: 'authority-id' })
      }
    } else if (a instanceof AccountKeyAssertion) {
      if (!this.isTrustedAccount(a.authorityId)) {
        fail('SV_ASSERTION_UNTRUSTED', a, `account-key assertion for ${JSON.stringify(a.accountId)} is not signed by a directly trusted authority: ${a.authorityId}`, { header: 'authority-id' })
      }
      if (!this.find('account', [a.accountId])) {
        fail('SV_ASSERTION_UNTRUSTED', a, `account-key assertion for ${JSON.stringify(a.accountId)} does not have a matching account assertion`, { header: 'account-id' })
      }
      if (a.name !== '') {
        for (const k of this.#keys.values()) {
          if (k.accountId === a.accountId && k.name === a.name && k.publicKeyId !== a.publicKeyId) {
            fail('SV_ASSERTION_UNTRUSTED', a, `account-key assertion for ${JSON.stringify(a.accountId)} with ID ${JSON.stringify(a.publicKeyId)} has the same name ${JSON.stringify(a.name)} as existing ID ${JSON.stringify(k.publicKeyId)}`, { header: 'name' })
          }
        }
      }
    } else if (a instanceof SerialAssertion) {
      if (a.authorityId !== a.brandId) {
        const model = this.find('model', ['16', a.brandId, a.model])
        if (!(model instanceof ModelAssertion) || !model.serialAuthority.includes(a.authorityId)) {
          fail('SV_ASSERTION_UNTRUSTED', a, `serial with authority ${JSON.stringify(a.authorityId)} different from brand ${JSON.stringify(a.brandId)} without model assertion with serial-authority set to to allow for them`, { header: 'authority-id' })
        }
      }
    }
  }

  /**
   * Checks and adds. Adding the same assertion again is a no-op; a different
   * one with the same primary key needs a higher revision (SV_ASSERTION_REVISION).
   * serial-requests have no primary key and are only checked, never held.
   */
  async add(a: Assertion): Promise<void> {
    const anchor = this.#anchors.get(a.ref)
    if (anchor) {
      if (bytesEqual(anchor.content, a.content) && bytesEqual(anchor.signature, a.signature)) {
        await this.check(a)
        return
      }
      fail('SV_ASSERTION_UNTRUSTED', a, `cannot add ${JSON.stringify(a.typeName)} assertion with primary key clashing with a trusted assertion: ${a.primaryKey().join('/')}`)
    }
    await this.check(a)
    if (a.type.primaryKey.length === 0) return
    const cur = this.#byRef.get(a.ref)
    if (cur) {
      if (bytesEqual(cur.content, a.content)) return
      if (cur.revision >= a.revision) {
        fail('SV_ASSERTION_REVISION', a, `revision ${a.revision} is already the current revision or older (current: ${cur.revision})`, { current: cur.revision, used: a.revision })
      }
    }
    this.#byRef.set(a.ref, a)
    if (a instanceof AccountKeyAssertion) this.#keys.set(a.publicKeyId, a)
  }

  /**
   * Adds assertions given in any order: passes over the pending ones until no
   * more can be added. Resolves with what was added and, for each assertion
   * that could not be, the error of its last attempt.
   */
  async addAll(list: Iterable<Assertion>): Promise<{ added: Assertion[]; failed: { assertion: Assertion; error: VaultError }[] }> {
    let pending = [...list]
    const added: Assertion[] = []
    for (;;) {
      const next: { assertion: Assertion; error: VaultError }[] = []
      for (const a of pending) {
        try {
          await this.add(a)
          added.push(a)
        } catch (e) {
          if (!(e instanceof VaultError)) throw e
          next.push({ assertion: a, error: e })
        }
      }
      if (next.length === 0 || next.length === pending.length) return { added, failed: next }
      pending = next.map((f) => f.assertion)
    }
  }
}

/** verifySignature, its errors naming the assertion type like every other check failure. */
async function verifyOf(a: Assertion, key: PublicKey): Promise<void> {
  try {
    await verifySignature(a.content, a.signature, key)
  } catch (e) {
    if (e instanceof VaultError && e.details !== undefined && e.details.type === undefined) e.details.type = a.typeName
    throw e
  }
}

function timestampOf(a: Assertion): number | undefined {
  if (!a.type.timestamped) return undefined
  const t = (a as Assertion & { timestamp?: unknown }).timestamp
  return typeof t === 'number' ? t : undefined
}

function validityMismatch(v: Validity, now: number): string {
  const from = formatRfc3339(v.since)
  const msg = `current time is ${formatRfc3339(now)}`
  return v.until !== undefined ? `${msg} but key is valid during [${from}, ${formatRfc3339(v.until)})` : `${msg} but key is valid from ${from}`
}
