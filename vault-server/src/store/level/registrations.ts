import { VaultError } from '@sv/shared'
import type { AuditSeal, LogEntry, SerialBinding } from '../records.js'
import type { RegistrationRepository } from '../store.js'
import { type LevelContext, type Op, SCAN_BATCH, del, put, requireStrings, requireTime } from './context.js'
import { lastComponent, padNumber, tupleKey } from './layout.js'
import { logOps } from './signing-log.js'
import { countWorkOrder, workOrderLock } from './work-orders.js'

export class LevelRegistrations implements RegistrationRepository {
  readonly #c: LevelContext

  constructor(context: LevelContext) {
    this.#c = context
  }

  consumeRequestId(id: string, expiresAt: number): Promise<void> {
    requireStrings({ id })
    requireTime('expiresAt', expiresAt)
    return this.#c.locked([tupleKey('request-id', id)], async (s) => {
      if (this.#c.pendingUses.has(id) || s.requestId.getSync(id) !== undefined) {
        throw new VaultError('SV_REQUEST_ID_USED', 'the request-id was already used')
      }
      // Not written on its own: the use rides in the next batch, the one that
      // binds a serial for this request or logs its refusal, and is durable
      // with it (until then this process refuses the id from pendingUses).
      // A crash before that forgets the use of an id that obtained nothing.
      // One write and one fsync per registration instead of two.
      await this.#c.holdUse(id, [put(s.requestId, id, expiresAt), put(s.requestIdByExpiry, tupleKey(padNumber(expiresAt), id), '')])
    })
  }

  purgeExpired(now: number): Promise<number> {
    requireTime('now', now)
    return this.#c.run(async (s) => {
      // uses still waiting for a batch are written first, so that they are purged like the others
      if (this.#c.pendingUses.size > 0) await this.#c.writeRiders({})
      // Keys are (16-digit expiry, id): everything below the bare expiry `now` expired before it.
      const it = s.requestIdByExpiry.keys({ lt: tupleKey(padNumber(now)) })
      let purged = 0
      try {
        for (;;) {
          const keys = await it.nextv(SCAN_BATCH)
          if (keys.length === 0) break
          const ops: Op[] = []
          for (const key of keys) ops.push(del(s.requestIdByExpiry, key), del(s.requestId, lastComponent(key)))
          // Not synced: a purge lost in a crash is simply done again.
          await this.#c.db.batch<string, unknown>(ops, {})
          purged += keys.length
        }
      } finally {
        await it.close()
      }
      return purged
    })
  }

  getBinding(brandId: string, model: string, serial: string): Promise<SerialBinding | undefined> {
    return this.#c.run(async (s) => s.serial.getSync(tupleKey(brandId, model, serial)))
  }

  getBindingByDeviceKey(brandId: string, model: string, deviceKeyId: string): Promise<SerialBinding | undefined> {
    return this.#c.run(async (s) => {
      const serial = s.serialByDeviceKey.getSync(tupleKey(brandId, model, deviceKeyId))
      if (serial === undefined) return undefined
      // Two reads, no snapshot: a replacement in between may have moved the key.
      const found = s.serial.getSync(tupleKey(brandId, model, serial)) as SerialBinding | undefined
      return found?.deviceKeyId === deviceKeyId ? found : undefined
    })
  }

  bind(binding: SerialBinding, log: LogEntry, expectRevision: number, options: { pivotFrom?: { model: string }; audit?: AuditSeal; workOrder?: { id: string; count: boolean } } = {}): Promise<void> {
    const { brandId, model, serial, deviceKeyId } = binding
    requireStrings({ brandId, model, serial, deviceKeyId, 'log.id': log.id })
    if (!Number.isSafeInteger(expectRevision) || expectRevision < 0) throw new TypeError('expectRevision must be a non-negative integer')
    const serialKey = tupleKey(brandId, model, serial)
    const deviceKey = tupleKey(brandId, model, deviceKeyId)
    const fromKey = options.pivotFrom ? tupleKey(brandId, options.pivotFrom.model, serial) : undefined
    // Both uniqueness rules are checked under their own lock: two serials racing for
    // one device key contend on the device-key lock.
    // A work order's check and count run under its lock, in this batch: no over-issue.
    const locks = [tupleKey('serial', serialKey), tupleKey('device-key', deviceKey), ...(fromKey ? [tupleKey('serial', fromKey)] : []), ...(options.workOrder ? [workOrderLock(options.workOrder.id)] : [])]
    return this.#c.locked(
      locks,
      async (s) => {
        const current = s.serial.getSync(serialKey) as SerialBinding | undefined
        const owner = s.serialByDeviceKey.getSync(deviceKey) as string | undefined
        if (expectRevision === 0 ? current !== undefined : current?.revision !== expectRevision) {
          throw new VaultError('SV_SERIAL_TAKEN', 'this serial is already bound, or its binding changed', { details: { brandId, model, serial } })
        }
        if (owner !== undefined && owner !== serial) {
          throw new VaultError('SV_DEVICE_KEY_TAKEN', 'this device key is already bound to another serial of the model', { details: { brandId, model, serial: owner } })
        }
        const ops: Op[] = [put(s.serial, serialKey, binding), put(s.serialByDeviceKey, deviceKey, serial)]
        if (current !== undefined && current.deviceKeyId !== deviceKeyId) ops.push(del(s.serialByDeviceKey, tupleKey(brandId, model, current.deviceKeyId)))
        if (fromKey) {
          const from = s.serial.getSync(fromKey) as SerialBinding | undefined
          if (from === undefined || from.deviceKeyId !== deviceKeyId) {
            throw new VaultError('SV_SERIAL_TAKEN', 'the binding the device pivots from changed', { details: { brandId, model: options.pivotFrom!.model, serial } })
          }
          ops.push(put(s.serial, fromKey, { ...from, pivotedTo: { model, at: binding.issuedAt } }))
        }
        if (options.workOrder) ops.push(...countWorkOrder(s, options.workOrder, binding.issuedAt))
        await this.#c.commit(s, [...ops, ...logOps(s, log)], options.audit)
      },
      options.audit !== undefined,
    )
  }

  release(brandId: string, model: string, serial: string, audit?: AuditSeal): Promise<SerialBinding> {
    const serialKey = tupleKey(brandId, model, serial)
    return this.#c.locked(
      [tupleKey('serial', serialKey)],
      async (s) => {
        const current = (await s.serial.get(serialKey)) as SerialBinding | undefined
        if (current === undefined) throw new VaultError('SV_SERIAL_NOT_FOUND', 'no serial binding for this brand, model and serial', { details: { brandId, model, serial } })
        const next = { ...current, released: true }
        await this.#c.commit(s, [put(s.serial, serialKey, next)], audit)
        return next
      },
      audit !== undefined,
    )
  }

  nextSerialNumber(brandId: string, model: string, start: number): Promise<number> {
    requireStrings({ brandId, model })
    if (!Number.isSafeInteger(start) || start < 0) throw new TypeError('start must be a non-negative integer')
    const k = tupleKey(brandId, model)
    return this.#c.locked([tupleKey('sequence', k)], async (s) => {
      // A raised `start` (template changed) moves the sequence forward; it never goes back.
      const n = Math.max(((await s.sequence.get(k)) as number | undefined) ?? start, start)
      await this.#c.write([put(s.sequence, k, n + 1)])
      return n
    })
  }
}
