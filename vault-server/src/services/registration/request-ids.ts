/**
 * request-ids (snapd's "nonce", spec §5.6 and §6.3): single use, expiring,
 * unguessable. An id is a MAC-protected token:
 *
 *   id = base64url( version(1) | expiry seconds (4, BE) | 16 random bytes | HMAC-SHA256(secret, first 21 bytes)[0..16] )
 *
 * so issuing one needs no storage (thousands per second, any instance of the
 * vault can check any other's ids as long as they share the master key from
 * which the secret is derived). Consuming one is recorded in the store, whose
 * atomic `consumeRequestId` makes it single use across instances. The
 * outcomes are distinct so devices and ops can tell them apart:
 * SV_REQUEST_ID_UNKNOWN (never issued: bad MAC or shape), SV_REQUEST_ID_EXPIRED,
 * SV_REQUEST_ID_USED.
 */
import { createHmac, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto'
import { fillRandom } from '../../random.js'
import { Buffer } from 'node:buffer'
import { VaultError } from '@sv/shared'
import type { VaultStore } from '../../store/store.js'

const VERSION = 1
const MAC_LEN = 16
const TOKEN_LEN = 1 + 4 + 16 + MAC_LEN

export interface RequestIdServiceOptions {
  /** master key; the MAC secret is derived from it with HKDF */
  masterKey: Buffer | KeyObject
  ttlSeconds: number
  now?: () => number
}

export interface CheckedRequestId {
  id: string
  /** epoch ms */
  expiresAt: number
}

export class RequestIdService {
  readonly #secret: Buffer
  readonly #ttl: number
  readonly #now: () => number
  /** per expiry second: ids issued and consumed (the "nonce pool" gauge); at most ttl entries */
  readonly #pool = new Map<number, { issued: number; consumed: number }>()
  #issued = 0
  #consumed = 0

  constructor(options: RequestIdServiceOptions) {
    this.#secret = Buffer.from(hkdfSync('sha256', options.masterKey, Buffer.alloc(0), 'serial-vault request-id v1', 32))
    this.#ttl = options.ttlSeconds
    this.#now = options.now ?? Date.now
  }

  get ttlSeconds(): number {
    return this.#ttl
  }

  issue(): string {
    const expiry = Math.floor(this.#now() / 1000) + this.#ttl
    const payload = Buffer.alloc(TOKEN_LEN)
    payload[0] = VERSION
    payload.writeUInt32BE(expiry, 1)
    fillRandom(payload, 5, 16)
    this.#mac(payload.subarray(0, 21)).copy(payload, 21)
    this.#issued++
    this.#bucket(expiry).issued++
    return payload.toString('base64url')
  }

  #mac(data: Buffer): Buffer {
    return createHmac('sha256', this.#secret).update(data).digest().subarray(0, MAC_LEN)
  }

  /** Checks shape, MAC and expiry without consuming. */
  check(id: string): CheckedRequestId {
    const unknown = () => new VaultError('SV_REQUEST_ID_UNKNOWN', 'request-id was not issued by this vault; ask for a new one', { details: { header: 'request-id' } })
    if (id.length !== Math.ceil((TOKEN_LEN * 4) / 3) || !/^[A-Za-z0-9_-]+$/.test(id)) throw unknown()
    const raw = Buffer.from(id, 'base64url')
    if (raw.length !== TOKEN_LEN || raw[0] !== VERSION) throw unknown()
    if (!timingSafeEqual(this.#mac(raw.subarray(0, 21)), raw.subarray(21))) throw unknown()
    const expiresAt = raw.readUInt32BE(1) * 1000
    if (this.#now() >= expiresAt) {
      throw new VaultError('SV_REQUEST_ID_EXPIRED', 'request-id has expired; ask for a new one', { details: { header: 'request-id', expiredAt: new Date(expiresAt).toISOString() } })
    }
    return { id, expiresAt }
  }

  /** check + atomic single use through the store (SV_REQUEST_ID_USED on a second use). */
  async consume(store: VaultStore, id: string): Promise<CheckedRequestId> {
    const checked = this.check(id)
    await store.registrations.consumeRequestId(id, checked.expiresAt)
    this.#consumed++
    const b = this.#pool.get(checked.expiresAt / 1000)
    if (b) b.consumed++
    return checked
  }

  #bucket(expiry: number): { issued: number; consumed: number } {
    let b = this.#pool.get(expiry)
    if (!b) {
      this.#prune()
      b = { issued: 0, consumed: 0 }
      this.#pool.set(expiry, b)
    }
    return b
  }

  #prune(): void {
    const nowS = Math.floor(this.#now() / 1000)
    for (const k of this.#pool.keys()) {
      if (k > nowS) break // insertion order is expiry order
      this.#pool.delete(k)
    }
  }

  /** Ids issued by this process that have neither expired nor been consumed here. */
  outstanding(): number {
    this.#prune()
    let n = 0
    for (const b of this.#pool.values()) n += b.issued - b.consumed
    return Math.max(0, n)
  }

  stats(): { issued: number; consumed: number } {
    return { issued: this.#issued, consumed: this.#consumed }
  }
}
