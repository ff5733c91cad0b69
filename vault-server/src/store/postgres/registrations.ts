import { VaultError } from '@sv/shared'
import type { AuditSeal, LogEntry, SerialBinding } from '../records.js'
import type { LogPage, LogQuery, RegistrationRepository, SigningLogRepository } from '../store.js'
import { normalizeLogQuery, toLogPage, type NormalizedLogQuery } from '../log-query.js'
import type { Db, PgContext } from './context.js'
import { countWorkOrder } from './work-orders.js'
import { BINDING_COLUMNS, LOG_COLUMNS, bindingFromRow, bindingParams, insertSql, logFromRow, logParams } from './rows.js'

/** Rows read per step by export. */
const EXPORT_BATCH = 500

export class PgRegistrations implements RegistrationRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  consumeRequestId(id: string, expiresAt: number): Promise<void> {
    return this.#c.exec('INSERT INTO consumed_request_ids (id, expires_at) VALUES ($1, $2)', [id, expiresAt])
  }

  purgeExpired(now: number): Promise<number> {
    return this.#c.run(async (db) => (await db.query('DELETE FROM consumed_request_ids WHERE expires_at < $1', [now])).rowCount ?? 0)
  }

  getBinding(brandId: string, model: string, serial: string): Promise<SerialBinding | undefined> {
    return this.#c.one('SELECT * FROM serial_bindings WHERE brand_id = $1 AND model = $2 AND serial = $3', [brandId, model, serial], bindingFromRow)
  }

  getBindingByDeviceKey(brandId: string, model: string, deviceKeyId: string): Promise<SerialBinding | undefined> {
    return this.#c.one('SELECT * FROM serial_bindings WHERE brand_id = $1 AND model = $2 AND device_key_id = $3', [brandId, model, deviceKeyId], bindingFromRow)
  }

  bind(binding: SerialBinding, log: LogEntry, expectRevision: number, options: { pivotFrom?: { model: string }; audit?: AuditSeal; workOrder?: { id: string; count: boolean } } = {}): Promise<void> {
    if (!Number.isSafeInteger(expectRevision) || expectRevision < 0) throw new TypeError('expectRevision must be a non-negative integer')
    return this.#c.audited(options.audit, async (c) => {
      // The work order first: its row lock makes concurrent binds under it take turns.
      if (options.workOrder) await countWorkOrder(c, options.workOrder, binding.issuedAt)
      if (expectRevision === 0) {
        // Conflicts surface as 23505 on serial_bindings_pkey or serial_bindings_device_key_key.
        await c.query(insertSql('serial_bindings', BINDING_COLUMNS), bindingParams(binding))
      } else {
        // Replacing the row's device_key_id frees the old key by itself. A concurrent
        // replacement makes this UPDATE wait, re-check the revision and match nothing.
        const sets = BINDING_COLUMNS.slice(3).map((col, i) => `${col} = $${i + 4}`)
        const r = await c.query(`UPDATE serial_bindings SET ${sets.join(', ')} WHERE brand_id = $1 AND model = $2 AND serial = $3 AND revision = $${BINDING_COLUMNS.length + 1}`, [
          ...bindingParams(binding),
          expectRevision,
        ])
        if (r.rowCount === 0) throw new VaultError('SV_SERIAL_TAKEN', 'this serial is not bound, or its binding changed', { details: { brandId: binding.brandId, model: binding.model, serial: binding.serial } })
      }
      if (options.pivotFrom) {
        const r = await c.query('UPDATE serial_bindings SET pivoted_to = $5 WHERE brand_id = $1 AND model = $2 AND serial = $3 AND device_key_id = $4', [
          binding.brandId,
          options.pivotFrom.model,
          binding.serial,
          binding.deviceKeyId,
          JSON.stringify({ model: binding.model, at: binding.issuedAt }),
        ])
        if (r.rowCount === 0) throw new VaultError('SV_SERIAL_TAKEN', 'the binding the device pivots from changed', { details: { brandId: binding.brandId, model: options.pivotFrom.model, serial: binding.serial } })
      }
      await c.query(insertSql('signing_log', LOG_COLUMNS), logParams(log))
    })
  }

  release(brandId: string, model: string, serial: string, audit?: AuditSeal): Promise<SerialBinding> {
    return this.#c.audited(
      audit,
      async (db) => {
        const r = await db.query('UPDATE serial_bindings SET released = true WHERE brand_id = $1 AND model = $2 AND serial = $3 RETURNING *', [brandId, model, serial])
        if (r.rowCount === 0) throw new VaultError('SV_SERIAL_NOT_FOUND', 'no serial binding for this brand, model and serial', { details: { brandId, model, serial } })
        return bindingFromRow(r.rows[0]!)
      },
      true,
    )
  }

  nextSerialNumber(brandId: string, model: string, start: number): Promise<number> {
    if (!Number.isSafeInteger(start) || start < 0) throw new TypeError('start must be a non-negative integer')
    return this.#c.run(async (db) => {
      // One statement: the row lock of ON CONFLICT DO UPDATE serialises concurrent callers,
      // across instances too. A raised start moves the sequence forward, never back.
      const r = await db.query<{ n: string }>(
        `INSERT INTO serial_sequences AS s (brand_id, model, next_number) VALUES ($1, $2, $3::bigint + 1)
         ON CONFLICT (brand_id, model) DO UPDATE SET next_number = GREATEST(s.next_number, $3::bigint) + 1
         RETURNING s.next_number - 1 AS n`,
        [brandId, model, start],
      )
      return Number(r.rows[0]!.n)
    })
  }
}

export class PgSigningLog implements SigningLogRepository {
  readonly #c: PgContext
  constructor(c: PgContext) {
    this.#c = c
  }

  append(entry: LogEntry): Promise<void> {
    return this.#c.exec(insertSql('signing_log', LOG_COLUMNS), logParams(entry))
  }

  query(query: LogQuery): Promise<LogPage> {
    return this.#c.run(async (db) => {
      const q = normalizeLogQuery(query)
      return toLogPage(await selectLog(db, q, q.after, q.limit + 1), q.limit)
    })
  }

  async *export(query: Omit<LogQuery, 'limit' | 'cursor'>): AsyncIterable<LogEntry> {
    const q = normalizeLogQuery({ ...query, limit: undefined, cursor: undefined })
    // Keyset pagination: each batch is its own short query continuing after the last
    // id, so no transaction or cursor stays open while the consumer is slow.
    let after: string | undefined
    for (;;) {
      const batch = await this.#c.run((db) => selectLog(db, q, after, EXPORT_BATCH))
      yield* batch
      if (batch.length < EXPORT_BATCH) return
      after = batch[batch.length - 1]!.id
    }
  }
}

/**
 * One page of the log: the filters as a WHERE clause, ordered by id, with the
 * cursor as a keyset bound. The indexes of migrations 001 and 002 each end
 * with id, so PostgreSQL can serve a filter and the order from one index.
 */
async function selectLog(db: Db, q: NormalizedLogQuery, after: string | undefined, limit: number): Promise<LogEntry[]> {
  const where: string[] = []
  const params: unknown[] = []
  const add = (sql: string, value: unknown): void => {
    params.push(value)
    where.push(sql.replace('?', `$${params.length}`))
  }
  if (q.brandId !== undefined) add('brand_id = ?', q.brandId)
  if (q.model !== undefined) add('model = ?', q.model)
  if (q.storeIds !== undefined) add(q.storeIds.length === 1 ? 'store_id = ?' : 'store_id = ANY(?)', q.storeIds.length === 1 ? q.storeIds[0] : q.storeIds)
  if (q.serial !== undefined) add('serial = ?', q.serial)
  if (q.deviceKeyId !== undefined) add('device_key_id = ?', q.deviceKeyId)
  if (q.outcome !== undefined) add('outcome = ?', q.outcome)
  if (q.idGte !== undefined) add('id >= ?', q.idGte)
  if (q.idLt !== undefined) add('id < ?', q.idLt)
  if (after !== undefined) add(q.order === 'asc' ? 'id > ?' : 'id < ?', after)
  params.push(limit)
  const sql = `SELECT * FROM signing_log ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''}
               ORDER BY id ${q.order === 'asc' ? 'ASC' : 'DESC'} LIMIT $${params.length}`
  return (await db.query(sql, params)).rows.map(logFromRow)
}
