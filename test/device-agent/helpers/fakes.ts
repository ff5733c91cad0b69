/**
 * In-process fakes for the provisioner's ports: a clock whose sleeps return at
 * once and advance time, a scripted VaultClient that signs real serials with
 * the small (1024-bit) snapd vectors, and the small device key. Everything
 * else (checkpoint files, TrustDb, the codec) is real.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { WebCryptoSigner } from '@sv/shared/node'
import { SerialRequestAssertion, decodeStream, encodeStream, formatRfc3339, loadPrivateKeyPem, signAssertion, type Assertion } from '@sv/shared'
import type { Clock } from '../../../device-agent/src/clock.js'
import { deviceKeyFromPkcs8, type DeviceKey } from '../../../device-agent/src/identity/device-key.js'
import type { SerialAnswer, VaultClient } from '../../../device-agent/src/vault/vault-client.js'
import type { Logger } from '../../../device-agent/src/logger.js'

export const ROOT = new URL('../../../', import.meta.url).pathname
export const VECTORS = join(ROOT, 'fixtures/snapd-vectors')
export const SMALL = join(VECTORS, 'small')

/** The small vectors' trust: anchors (small root) and the brand chain (account, account-key, model). */
export function smallTrust(): { anchors: Assertion[]; chain: Assertion[] } {
  return {
    anchors: decodeStream(readFileSync(join(SMALL, 'trusted.assert'))),
    chain: [...decodeStream(readFileSync(join(SMALL, 'account.assert'))), ...decodeStream(readFileSync(join(SMALL, 'account-key.assert')))],
  }
}

export function smallModel(): Assertion {
  return decodeStream(readFileSync(join(SMALL, 'model.assert')))[0]!
}

export function smallDeviceKey(): DeviceKey {
  return deviceKeyFromPkcs8(loadPrivateKeyPem(readFileSync(join(SMALL, 'keys/device.key.pem'), 'utf8')).pkcs8)
}

let brandSigner: Promise<WebCryptoSigner> | undefined
export function smallBrandSigner(): Promise<WebCryptoSigner> {
  brandSigner ??= WebCryptoSigner.fromPem(readFileSync(join(SMALL, 'keys/brand.key.pem'), 'utf8'))
  return brandSigner
}

/** A Clock for tests: `sleep` resolves on the next tick and moves `now` (and monotonic) forward. */
export class FakeClock implements Clock {
  wall: number
  mono = 0
  readonly sleeps: number[] = []
  constructor(start = Date.now()) {
    this.wall = start
  }
  now(): number {
    return this.wall
  }
  monotonic(): number {
    return this.mono
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    this.sleeps.push(ms)
    this.wall += ms
    this.mono += ms
    await new Promise((r) => setImmediate(r))
    signal?.throwIfAborted()
  }
}

/** One scripted answer: an error to throw, 'pending' (202), 'issue' (sign a real serial), or a function. */
export type ScriptStep = Error | 'pending' | 'issue' | ((stream: Buffer) => Promise<SerialAnswer>)

/**
 * A VaultClient that follows a script: each call takes the next step of its
 * list (request-ids default to fresh ids, serials to 'issue'). Issued serials
 * are signed with the small brand key for the requesting device key, as the
 * vault would, and remembered, so an identical request gets the same bytes.
 */
export class ScriptedVault implements VaultClient {
  readonly endpoint = 'scripted:'
  readonly requestIdScript: (Error | string)[]
  readonly serialScript: ScriptStep[]
  readonly serialBodies: Buffer[] = []
  requestIdCalls = 0
  issued = 0
  readonly #byRequest = new Map<string, Buffer>()

  constructor(script: { requestId?: (Error | string)[]; serial?: ScriptStep[] } = {}) {
    this.requestIdScript = [...(script.requestId ?? [])]
    this.serialScript = [...(script.serial ?? [])]
  }

  async requestId(): Promise<string> {
    this.requestIdCalls++
    const step = this.requestIdScript.shift()
    if (step instanceof Error) throw step
    return step ?? `rid-${this.requestIdCalls}`
  }

  async serial(stream: Buffer): Promise<SerialAnswer> {
    this.serialBodies.push(stream)
    const step = this.serialScript.shift() ?? 'issue'
    if (step instanceof Error) throw step
    if (step === 'pending') return { kind: 'pending' }
    if (typeof step === 'function') return step(stream)
    return { kind: 'issued', stream: await this.sign(stream) }
  }

  /** The serial for a serial-request stream, signed by the small brand key (same bytes for the same request). */
  async sign(stream: Buffer, overrides: Record<string, string> = {}): Promise<Buffer> {
    const req = decodeStream(stream)[0] as SerialRequestAssertion
    const key = `${req.deviceKey.id}/${req.serial}`
    const hit = this.#byRequest.get(key)
    if (hit && Object.keys(overrides).length === 0) return hit
    const serial = await signAssertion(
      'serial',
      {
        'authority-id': 'acme-brand',
        'brand-id': req.brandId,
        model: req.model,
        serial: req.serial,
        'device-key': req.headerString('device-key'),
        'device-key-sha3-384': req.deviceKey.id,
        timestamp: formatRfc3339(Date.now()),
        ...overrides,
      },
      req.body.length > 0 ? req.body : undefined,
      await smallBrandSigner(),
    )
    this.issued++
    const out = Buffer.from(encodeStream([serial]))
    if (Object.keys(overrides).length === 0) this.#byRequest.set(key, out)
    return out
  }

  async close(): Promise<void> {}
}

/** A logger that keeps parsed lines (pino's sink), as test/helpers/capture-log.ts would. */
export function captureLog(): { log: Logger; lines: Record<string, unknown>[]; events: () => string[] } {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) })
  return { log, lines, events: () => lines.map((l) => String(l.msg)) }
}
