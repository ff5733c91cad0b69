import type { SerialBinding } from '../../../vault-server/src/store/store.js'
import { T0, binding, drain, issuedLog, race, type Suite } from '../fixtures.js'

export function registrationsGroup(suite: Suite): void {
  requestIds(suite)
  serials(suite)
  pivots(suite)
  sequences(suite)
}

// --- request ids -------------------------------------------------------------------------

function requestIds({ test, title, open }: Suite): void {
  const g = (text: string): string => title('registrations', `request ids: ${text}`)

  test(g('a request-id is consumed once'), async (t) => {
    const store = await open(t)
    await store.registrations.consumeRequestId('req-1', T0 + 60_000)
    await t.throwsAsync(store.registrations.consumeRequestId('req-1', T0 + 60_000), { code: 'SV_REQUEST_ID_USED' })
    await t.throwsAsync(store.registrations.consumeRequestId('req-1', T0 + 120_000), { code: 'SV_REQUEST_ID_USED' })
    await t.notThrowsAsync(store.registrations.consumeRequestId('req-2', T0 + 60_000))
    // a write in between (the use rides in it on LevelDB) changes nothing
    const b = binding('SN-1', 'dk-1', { requestId: 'req-2' })
    await store.registrations.bind(b, issuedLog(b), 0)
    await t.throwsAsync(store.registrations.consumeRequestId('req-2', T0 + 60_000), { code: 'SV_REQUEST_ID_USED' })
  })

  test(g('two concurrent consumes: exactly one wins'), async (t) => {
    const store = await open(t)
    const two = await race([store.registrations.consumeRequestId('req-1', T0), store.registrations.consumeRequestId('req-1', T0)])
    t.is(two.won.length, 1)
    t.deepEqual(two.codes, ['SV_REQUEST_ID_USED'])
    const many = await race(Array.from({ length: 25 }, () => store.registrations.consumeRequestId('req-2', T0)))
    t.is(many.won.length, 1)
    t.is(many.codes.length, 24)
    t.deepEqual(new Set(many.codes), new Set(['SV_REQUEST_ID_USED']))
  })

  test(g('purgeExpired forgets ids that expired before now, and only those'), async (t) => {
    const store = await open(t)
    await store.registrations.consumeRequestId('a', T0 + 1000)
    await store.registrations.consumeRequestId('b', T0 + 2000)
    await store.registrations.consumeRequestId('c', T0 + 3000)
    t.is(await store.registrations.purgeExpired(T0), 0)
    // Strictly before: 'b' expires at now and stays.
    t.is(await store.registrations.purgeExpired(T0 + 2000), 1)
    t.is(await store.registrations.purgeExpired(T0 + 2000), 0)
    await t.notThrowsAsync(store.registrations.consumeRequestId('a', T0 + 5000))
    await t.throwsAsync(store.registrations.consumeRequestId('b', T0 + 5000), { code: 'SV_REQUEST_ID_USED' })
    await t.throwsAsync(store.registrations.consumeRequestId('c', T0 + 5000), { code: 'SV_REQUEST_ID_USED' })
    t.is(await store.registrations.purgeExpired(T0 + 4000), 2)
    await t.throwsAsync(store.registrations.consumeRequestId('a', T0 + 5000), { code: 'SV_REQUEST_ID_USED' })
    t.is(await store.registrations.purgeExpired(T0 + 10_000), 1)
  })

  test(g('purgeExpired handles more ids than one batch'), async (t) => {
    const store = await open(t)
    for (let i = 0; i < 600; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => store.registrations.consumeRequestId(`r-${i + j}`, T0 + i + j)))
    }
    t.is(await store.registrations.purgeExpired(T0 + 550), 550)
    t.is(await store.registrations.purgeExpired(T0 + 10_000), 50)
  })
}

// --- serial bindings ---------------------------------------------------------------------

function serials({ test, title, open }: Suite): void {
  const g = (text: string): string => title('registrations', `serials: ${text}`)

  test(g('a first binding is readable by serial and by device key, with its log entry'), async (t) => {
    const store = await open(t)
    const b = binding('SN-1', 'dk-1')
    const log = issuedLog(b, T0, { storeId: 'acme', transport: 'https', timings: { sign: 3 } })
    t.is(await store.registrations.getBinding('acme', 'widget', 'SN-1'), undefined)
    t.is(await store.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-1'), undefined)
    await store.registrations.bind(b, log, 0)
    t.deepEqual(await store.registrations.getBinding('acme', 'widget', 'SN-1'), b)
    t.deepEqual(await store.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-1'), b)
    t.is(await store.registrations.getBinding('acme', 'other', 'SN-1'), undefined)
    t.is(await store.registrations.getBinding('beta', 'widget', 'SN-1'), undefined)
    t.is(await store.registrations.getBindingByDeviceKey('acme', 'other', 'dk-1'), undefined)
    t.deepEqual((await store.signingLog.query({ serial: 'SN-1' })).entries, [log])
  })

  test(g('expectRevision is a compare-and-set on the current binding'), async (t) => {
    const store = await open(t)
    const b1 = binding('SN-1', 'dk-1')
    // No binding yet: only expectRevision 0 may create one.
    await t.throwsAsync(store.registrations.bind(b1, issuedLog(b1), 1), { code: 'SV_SERIAL_TAKEN' })
    await store.registrations.bind(b1, issuedLog(b1), 0)
    // A binding exists: 0 and any revision but the current one are refused, the same key included.
    await t.throwsAsync(store.registrations.bind(b1, issuedLog(b1), 0), { code: 'SV_SERIAL_TAKEN' })
    await t.throwsAsync(store.registrations.bind(binding('SN-1', 'dk-2'), issuedLog(b1), 0), { code: 'SV_SERIAL_TAKEN' })
    const b2 = binding('SN-1', 'dk-1', { revision: 2, serialAssertion: 'reissued', issuedAt: T0 + 5 })
    await t.throwsAsync(store.registrations.bind(b2, issuedLog(b2), 2), { code: 'SV_SERIAL_TAKEN' })
    t.deepEqual(await store.registrations.getBinding('acme', 'widget', 'SN-1'), b1)
    await store.registrations.bind(b2, issuedLog(b2), 1)
    t.deepEqual(await store.registrations.getBinding('acme', 'widget', 'SN-1'), b2)
    t.deepEqual(await store.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-1'), b2)
    await t.throwsAsync(store.registrations.bind(b2, issuedLog(b2), 1), { code: 'SV_SERIAL_TAKEN' })
    // Refused binds leave no log entry: the binding and its entry are one atomic write.
    t.deepEqual((await store.signingLog.query({ serial: 'SN-1' })).entries.map((e) => e.revision), [1, 2])
  })

  test(g('a device key bound to one serial of a model cannot take another: SV_DEVICE_KEY_TAKEN'), async (t) => {
    const store = await open(t)
    const b1 = binding('SN-1', 'dk-1')
    await store.registrations.bind(b1, issuedLog(b1), 0)
    const b2 = binding('SN-2', 'dk-1')
    await t.throwsAsync(store.registrations.bind(b2, issuedLog(b2), 0), { code: 'SV_DEVICE_KEY_TAKEN' })
    t.is(await store.registrations.getBinding('acme', 'widget', 'SN-2'), undefined)
    t.deepEqual(await store.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-1'), b1)
    // a reissue of another serial may not take the key either
    const b3 = binding('SN-3', 'dk-3')
    await store.registrations.bind(b3, issuedLog(b3), 0)
    await store.registrations.release('acme', 'widget', 'SN-3')
    const stolen = binding('SN-3', 'dk-1', { revision: 2 })
    await t.throwsAsync(store.registrations.bind(stolen, issuedLog(stolen), 1), { code: 'SV_DEVICE_KEY_TAKEN' })
    t.deepEqual(await store.registrations.getBinding('acme', 'widget', 'SN-3'), { ...b3, released: true })
    // Other models and other brands are separate namespaces.
    const other = binding('SN-2', 'dk-1', { model: 'gadget' })
    await store.registrations.bind(other, issuedLog(other), 0)
    const otherBrand = binding('SN-1', 'dk-1', { brandId: 'beta' })
    await store.registrations.bind(otherBrand, issuedLog(otherBrand), 0)
    t.deepEqual(await store.registrations.getBindingByDeviceKey('acme', 'gadget', 'dk-1'), other)
    t.deepEqual(await store.registrations.getBindingByDeviceKey('beta', 'widget', 'dk-1'), otherBrand)
    t.is((await store.signingLog.query({})).entries.length, 4)
  })

  test(g('release resolves with the released binding; a replacement frees the old device key'), async (t) => {
    const store = await open(t)
    const b1 = binding('SN-1', 'dk-1')
    await store.registrations.bind(b1, issuedLog(b1), 0)
    await t.throwsAsync(store.registrations.release('acme', 'widget', 'SN-9'), { code: 'SV_SERIAL_NOT_FOUND' })
    t.deepEqual(await store.registrations.release('acme', 'widget', 'SN-1'), { ...b1, released: true })
    t.deepEqual(await store.registrations.getBinding('acme', 'widget', 'SN-1'), { ...b1, released: true })
    // releasing twice is harmless
    t.deepEqual(await store.registrations.release('acme', 'widget', 'SN-1'), { ...b1, released: true })
    // Released but not yet replaced: the old key is still bound.
    t.is((await store.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-1'))?.serial, 'SN-1')
    const b2 = binding('SN-1', 'dk-2', { revision: 2 })
    await store.registrations.bind(b2, issuedLog(b2), 1)
    t.deepEqual(await store.registrations.getBinding('acme', 'widget', 'SN-1'), b2)
    t.deepEqual(await store.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-2'), b2)
    t.is(await store.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-1'), undefined)
    const b3 = binding('SN-3', 'dk-1')
    await t.notThrowsAsync(store.registrations.bind(b3, issuedLog(b3), 0))
    t.is((await store.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-1'))?.serial, 'SN-3')
  })

  test(g('many concurrent binds of one serial with different keys: exactly one wins'), async (t) => {
    const store = await open(t)
    const contenders = Array.from({ length: 20 }, (_, i) => binding('SN-RACE', `dk-${i}`))
    const { won, codes } = await race(contenders.map((b) => store.registrations.bind(b, issuedLog(b), 0).then(() => b)))
    t.is(won.length, 1)
    t.is(codes.length, 19)
    t.deepEqual(new Set(codes), new Set(['SV_SERIAL_TAKEN']))
    t.deepEqual(await store.registrations.getBinding('acme', 'widget', 'SN-RACE'), won[0])
    const bound = await Promise.all(contenders.map((b) => store.registrations.getBindingByDeviceKey('acme', 'widget', b.deviceKeyId)))
    t.is(bound.filter((b) => b !== undefined).length, 1)
    t.is((await store.signingLog.query({ serial: 'SN-RACE' })).entries.length, 1)
  })

  test(g('many concurrent binds of one device key to different serials: exactly one wins'), async (t) => {
    const store = await open(t)
    const contenders = Array.from({ length: 20 }, (_, i) => binding(`SN-${i}`, 'dk-race'))
    const { won, codes } = await race(contenders.map((b) => store.registrations.bind(b, issuedLog(b), 0).then(() => b)))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_DEVICE_KEY_TAKEN']))
    t.deepEqual(await store.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-race'), won[0])
    t.is((await store.signingLog.query({ brandId: 'acme', model: 'widget' })).entries.length, 1)
  })

  test(g('concurrent reissues of one revision: exactly one wins'), async (t) => {
    const store = await open(t)
    const b1 = binding('SN-1', 'dk-1')
    await store.registrations.bind(b1, issuedLog(b1), 0)
    await store.registrations.release('acme', 'widget', 'SN-1')
    const contenders = Array.from({ length: 10 }, (_, i) => binding('SN-1', `dk-new-${i}`, { revision: 2 }))
    const { won, codes } = await race(contenders.map((b) => store.registrations.bind(b, issuedLog(b), 1).then(() => b)))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_SERIAL_TAKEN']))
    t.deepEqual(await store.registrations.getBinding('acme', 'widget', 'SN-1'), won[0])
    t.is((await store.signingLog.query({ serial: 'SN-1' })).entries.length, 2)
  })
}

// --- pivots (remodels) ----------------------------------------------------------------------

function pivots({ test, title, open }: Suite): void {
  const g = (text: string): string => title('registrations', `pivots: ${text}`)

  /** The binding a device pivots to from `from`: same serial and key, another model. */
  function pivoted(from: SerialBinding, model: string, extra: Partial<SerialBinding> = {}): SerialBinding {
    return { ...from, model, revision: 1, serialAssertion: `type: serial\nmodel: ${model}\n\nSIG\n`, requestId: 'req-pivot', issuedAt: T0 + 100, pivotedFrom: from.model, ...extra }
  }

  test(g('bind with pivotFrom writes the new binding, its log entry and marks the source pivotedTo, in one write'), async (t) => {
    const store = await open(t)
    const source = binding('SN-1', 'dk-1')
    await store.registrations.bind(source, issuedLog(source), 0)
    const target = pivoted(source, 'gizmo')
    const log = issuedLog(target, T0 + 100, { outcome: 'pivoted', fromModel: 'widget', storeId: 'acme' })
    await store.registrations.bind(target, log, 0, { pivotFrom: { model: 'widget' } })
    t.deepEqual(await store.registrations.getBinding('acme', 'gizmo', 'SN-1'), target)
    t.deepEqual(await store.registrations.getBindingByDeviceKey('acme', 'gizmo', 'dk-1'), target)
    const marked = { ...source, pivotedTo: { model: 'gizmo', at: T0 + 100 } }
    t.deepEqual(await store.registrations.getBinding('acme', 'widget', 'SN-1'), marked)
    t.deepEqual(await store.registrations.getBindingByDeviceKey('acme', 'widget', 'dk-1'), marked)
    t.deepEqual((await store.signingLog.query({ outcome: 'pivoted' })).entries, [log])
  })

  test(g('bind with pivotFrom refuses SV_SERIAL_TAKEN when the source binding is missing or bound to another key; nothing written'), async (t) => {
    const store = await open(t)
    const other = binding('SN-1', 'dk-other')
    await store.registrations.bind(other, issuedLog(other), 0)
    const logBefore = await drain(store.signingLog.export({}))
    // bound to another key
    const target = pivoted(binding('SN-1', 'dk-1'), 'gizmo')
    await t.throwsAsync(store.registrations.bind(target, issuedLog(target, T0 + 100, { outcome: 'pivoted' }), 0, { pivotFrom: { model: 'widget' } }), { code: 'SV_SERIAL_TAKEN' })
    // missing: no binding of that serial in the model it names
    const lost = pivoted(binding('SN-2', 'dk-2'), 'gizmo')
    await t.throwsAsync(store.registrations.bind(lost, issuedLog(lost, T0 + 100, { outcome: 'pivoted' }), 0, { pivotFrom: { model: 'widget' } }), { code: 'SV_SERIAL_TAKEN' })
    await t.throwsAsync(store.registrations.bind(target, issuedLog(target, T0 + 100, { outcome: 'pivoted' }), 0, { pivotFrom: { model: 'nope' } }), { code: 'SV_SERIAL_TAKEN' })
    t.is(await store.registrations.getBinding('acme', 'gizmo', 'SN-1'), undefined)
    t.is(await store.registrations.getBinding('acme', 'gizmo', 'SN-2'), undefined)
    t.is(await store.registrations.getBindingByDeviceKey('acme', 'gizmo', 'dk-1'), undefined)
    t.deepEqual(await store.registrations.getBinding('acme', 'widget', 'SN-1'), other)
    t.deepEqual(await drain(store.signingLog.export({})), logBefore)
    // the usual rules still apply to the new binding
    const source = binding('SN-3', 'dk-3')
    await store.registrations.bind(source, issuedLog(source), 0)
    const taken = binding('SN-3', 'dk-x', { model: 'gizmo' })
    await store.registrations.bind(taken, issuedLog(taken), 0)
    const again = pivoted(source, 'gizmo')
    await t.throwsAsync(store.registrations.bind(again, issuedLog(again), 0, { pivotFrom: { model: 'widget' } }), { code: 'SV_SERIAL_TAKEN' })
    t.deepEqual(await store.registrations.getBinding('acme', 'widget', 'SN-3'), source)
  })

  test(g('concurrent pivots of one device: exactly one wins'), async (t) => {
    const store = await open(t)
    const source = binding('SN-1', 'dk-1')
    await store.registrations.bind(source, issuedLog(source), 0)
    const { won, codes } = await race(
      Array.from({ length: 6 }, (_, i) => {
        const target = pivoted(source, 'gizmo', { requestId: `req-${i}` })
        return store.registrations.bind(target, issuedLog(target, T0 + 100, { outcome: 'pivoted', fromModel: 'widget' }), 0, { pivotFrom: { model: 'widget' } }).then(() => target)
      }),
    )
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_SERIAL_TAKEN']))
    t.deepEqual(await store.registrations.getBinding('acme', 'gizmo', 'SN-1'), won[0])
    t.is((await store.signingLog.query({ outcome: 'pivoted' })).entries.length, 1)
  })
}

// --- assigned serial numbers -----------------------------------------------------------------

function sequences({ test, title, open, options }: Suite): void {
  const g = (text: string): string => title('registrations', `sequences: ${text}`)

  test(g('numbers start at start and count up per model'), async (t) => {
    const store = await open(t)
    const next = (brand: string, model: string, start: number): Promise<number> => store.registrations.nextSerialNumber(brand, model, start)
    t.is(await next('acme', 'widget', 100), 100)
    t.is(await next('acme', 'widget', 100), 101)
    t.is(await next('acme', 'gadget', 1), 1)
    t.is(await next('beta', 'widget', 0), 0)
    t.is(await next('acme', 'widget', 100), 102)
    // A raised start moves the sequence forward, never back.
    t.is(await next('acme', 'widget', 500), 500)
    t.is(await next('acme', 'widget', 1), 501)
  })

  test(g('200 concurrent calls never repeat a number'), async (t) => {
    const store = await open(t)
    const numbers = await Promise.all(Array.from({ length: 200 }, () => store.registrations.nextSerialNumber('acme', 'widget', 1)))
    t.is(new Set(numbers).size, 200)
    t.true(numbers.every((n) => Number.isSafeInteger(n) && n >= 1))
  })

  if (options.supports.reopen) {
    test(g('numbers never repeat after close and reopen'), async (t) => {
      const store = await open(t)
      const before = await Promise.all(Array.from({ length: 20 }, () => store.registrations.nextSerialNumber('acme', 'widget', 1)))
      await store.close()
      await store.open()
      const after = await Promise.all(Array.from({ length: 20 }, () => store.registrations.nextSerialNumber('acme', 'widget', 1)))
      t.is(new Set([...before, ...after]).size, 40)
      t.true(Math.min(...after) > Math.max(...before))
    })
  }
}
