/**
 * The VaultStore conformance suite, after abstract-level's test suite: every
 * store implementation runs it, so that both backends mean the same thing.
 *
 *   storeSuite(test, { name: 'memory-level', factory: () => new LevelStore(new MemoryLevel()), supports })
 *
 * `factory(t)` returns a fresh, empty, unopened store for one test and may
 * register its own cleanup with `t.teardown` (it runs after the suite's
 * `close()`). Tests assert codes and values only, never message text.
 */
import type { ExecutionContext, TestFn } from 'ava'
import { createLogId } from '../../vault-server/src/store/log-id.js'
import type {
  BrandRecord,
  LogEntry,
  LogOutcome,
  LogQuery,
  ModelRecord,
  SerialBinding,
  SigningKeyRecord,
  TokenRecord,
  VaultStore,
} from '../../vault-server/src/store/store.js'

/** What a store declares about itself. */
export interface StoreSupports {
  /** Data survives close() and open() of the same instance (false only for a store that forgets on close). */
  reopen: boolean
  /** Uniqueness holds across processes; must equal `store.traits.multiProcess`. */
  multiProcess: boolean
}

export interface StoreSuiteOptions {
  name: string
  factory: (t: ExecutionContext) => VaultStore | Promise<VaultStore>
  supports: StoreSupports
}

export function storeSuite(test: TestFn, options: StoreSuiteOptions): void {
  const { name, supports } = options
  const title = (group: string, text: string): string => `${name}: ${group}: ${text}`

  /** A fresh store, opened, closed in teardown. */
  async function openStore(t: ExecutionContext): Promise<VaultStore> {
    const store = await options.factory(t)
    t.teardown(() => store.close())
    await store.open()
    return store
  }

  lifecycleGroup(test, title, options, openStore)
  brandsAndKeysGroup(test, title, openStore)
  modelsGroup(test, title, openStore)
  requestIdGroup(test, title, openStore)
  serialGroup(test, title, openStore)
  sequenceGroup(test, title, supports, openStore)
  logGroup(test, title, openStore)
  tokenAndMetaGroup(test, title, openStore)
}

type Title = (group: string, text: string) => string
type OpenStore = (t: ExecutionContext) => Promise<VaultStore>

// --- fixtures -------------------------------------------------------------------------

const T0 = Date.UTC(2026, 0, 1)

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

export function modelRecord(brandId: string, name: string, extra: Partial<ModelRecord> = {}): ModelRecord {
  return {
    brandId,
    name,
    signingKeyId: 'key-' + brandId,
    apiKeyHashes: ['a'.repeat(64)],
    serialPolicy: { kind: 'assign', template: 'SN-{n:6}', start: 1 },
    duplicatePolicy: 'refuse',
    modelHeaders: { architecture: 'arm64', base: 'core22', 'snaps': [{ name: 'pc', type: 'gadget' }] },
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

function issuedLog(b: SerialBinding, time = T0): LogEntry {
  return logEntry(time, {
    outcome: b.revision === 1 ? 'issued' : 'reissued',
    brandId: b.brandId,
    model: b.model,
    serial: b.serial,
    deviceKeyId: b.deviceKeyId,
    revision: b.revision,
    requestId: b.requestId,
  })
}

async function drain<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

/** Settles every promise and splits the outcomes, so a race can be judged as a whole. */
async function race<T>(promises: Array<Promise<T>>): Promise<{ won: T[]; codes: string[] }> {
  const settled = await Promise.allSettled(promises)
  const won: T[] = []
  const codes: string[] = []
  for (const s of settled) {
    if (s.status === 'fulfilled') won.push(s.value)
    else codes.push(String((s.reason as { code?: unknown }).code))
  }
  return { won, codes }
}

// --- lifecycle ---------------------------------------------------------------------------

type Operation = Exclude<keyof VaultStore, 'traits' | 'open' | 'close'>

/**
 * One well-formed call of every store method. The Record type makes this
 * list fail to compile when VaultStore gains a method that is not here.
 */
export function everyOperation(store: VaultStore): Record<Operation, () => Promise<unknown>> {
  const b = binding('SN-LIFE', 'dk-life')
  return {
    ping: () => store.ping(),
    createBrand: () => store.createBrand(brandRecord('acme')),
    getBrand: () => store.getBrand('acme'),
    listBrands: () => store.listBrands(),
    putSigningKey: () => store.putSigningKey(signingKeyRecord('k1', 'acme')),
    getSigningKey: () => store.getSigningKey('k1'),
    listSigningKeys: () => store.listSigningKeys(),
    setSigningKeyEnabled: () => store.setSigningKeyEnabled('k1', false),
    createModel: () => store.createModel(modelRecord('acme', 'widget')),
    updateModel: () => store.updateModel(modelRecord('acme', 'widget')),
    getModel: () => store.getModel('acme', 'widget'),
    listModels: () => store.listModels(),
    findModelsByApiKeyHash: () => store.findModelsByApiKeyHash('a'.repeat(64)),
    consumeRequestId: () => store.consumeRequestId('req-1', T0),
    purgeExpired: () => store.purgeExpired(T0),
    getSerialBinding: () => store.getSerialBinding('acme', 'widget', 'SN-LIFE'),
    getSerialBindingByDeviceKey: () => store.getSerialBindingByDeviceKey('acme', 'widget', 'dk-life'),
    bindSerial: () => store.bindSerial(b, issuedLog(b), 0),
    releaseSerial: () => store.releaseSerial('acme', 'widget', 'SN-LIFE'),
    nextSerialNumber: () => store.nextSerialNumber('acme', 'widget', 1),
    appendLog: () => store.appendLog(logEntry(T0)),
    queryLog: () => store.queryLog({}),
    exportLog: () => drain(store.exportLog({})),
    putToken: () => store.putToken({ hash: 'h'.repeat(64), name: 'admin', roles: ['admin'], createdAt: T0 }),
    getToken: () => store.getToken('h'.repeat(64)),
    listTokens: () => store.listTokens(),
    deleteToken: () => store.deleteToken('h'.repeat(64)),
    getMeta: () => store.getMeta('root-authority'),
    putMeta: () => store.putMeta('root-authority', 'acme'),
  }
}

/** Calls every method at once (so all calls see the same store state), then checks each rejected with `code`. */
async function assertEveryOperationRejects(t: ExecutionContext, store: VaultStore, code: string): Promise<void> {
  const calls = Object.entries(everyOperation(store)).map(([op, call]) => [op, call()] as const)
  for (const [op, p] of calls) {
    await t.throwsAsync(p, { code }, `${op} must reject with ${code}`)
  }
}

function lifecycleGroup(test: TestFn, title: Title, options: StoreSuiteOptions, openStore: OpenStore): void {
  test(title('lifecycle', 'every method rejects SV_STORE_NOT_OPEN before open'), async (t) => {
    const store = await options.factory(t)
    t.teardown(() => store.close())
    await assertEveryOperationRejects(t, store, 'SV_STORE_NOT_OPEN')
  })

  test(title('lifecycle', 'every method rejects SV_STORE_NOT_OPEN while opening'), async (t) => {
    const store = await options.factory(t)
    t.teardown(() => store.close())
    const opening = store.open()
    await assertEveryOperationRejects(t, store, 'SV_STORE_NOT_OPEN')
    await opening
  })

  test(title('lifecycle', 'every method rejects SV_STORE_NOT_OPEN while closing and after close'), async (t) => {
    const store = await openStore(t)
    const closing = store.close()
    await assertEveryOperationRejects(t, store, 'SV_STORE_NOT_OPEN')
    await closing
    await assertEveryOperationRejects(t, store, 'SV_STORE_NOT_OPEN')
  })

  test(title('lifecycle', 'every method works once open'), async (t) => {
    const store = await openStore(t)
    // The sequence matters (createBrand before getBrand, bindSerial before releaseSerial...), so one at a time.
    for (const [op, call] of Object.entries(everyOperation(store))) {
      await t.notThrowsAsync(call(), op)
    }
  })

  test(title('lifecycle', 'open and close are idempotent and a closed store opens again'), async (t) => {
    const store = await options.factory(t)
    t.teardown(() => store.close())
    await Promise.all([store.open(), store.open()])
    await store.open()
    await store.createBrand(brandRecord('acme'))
    await Promise.all([store.close(), store.close()])
    await store.close()
    await store.open()
    await store.ping()
    if (options.supports.reopen) t.is((await store.getBrand('acme'))?.id, 'acme')
  })

  test(title('lifecycle', 'close waits for operations already running'), async (t) => {
    const store = await openStore(t)
    const writes = Array.from({ length: 10 }, (_, i) => store.appendLog(logEntry(T0 + i)))
    const number = store.nextSerialNumber('acme', 'widget', 1)
    await store.close()
    await Promise.all(writes)
    t.is(await number, 1)
    if (options.supports.reopen) {
      await store.open()
      t.is((await store.queryLog({})).entries.length, 10)
    }
  })

  test(title('lifecycle', 'traits match the declared manifest and ping answers'), async (t) => {
    const store = await openStore(t)
    t.is(store.traits.multiProcess, options.supports.multiProcess)
    await t.notThrowsAsync(store.ping())
  })
}

// --- brands, keys, models --------------------------------------------------------------

function brandsAndKeysGroup(test: TestFn, title: Title, openStore: OpenStore): void {
  test(title('brands', 'create, get, list in id order; missing reads as undefined'), async (t) => {
    const store = await openStore(t)
    t.is(await store.getBrand('acme'), undefined)
    t.deepEqual(await store.listBrands(), [])
    const acme = brandRecord('acme', { origin: 'imported' })
    await store.createBrand(brandRecord('zeta'))
    await store.createBrand(acme)
    await store.createBrand(brandRecord('acme-2'))
    t.deepEqual(await store.getBrand('acme'), acme)
    t.deepEqual((await store.listBrands()).map((b) => b.id), ['acme', 'acme-2', 'zeta'])
  })

  test(title('brands', 'a taken id rejects SV_BRAND_EXISTS and keeps the first record'), async (t) => {
    const store = await openStore(t)
    const first = brandRecord('acme')
    await store.createBrand(first)
    await t.throwsAsync(store.createBrand(brandRecord('acme', { displayName: 'Other' })), { code: 'SV_BRAND_EXISTS' })
    t.deepEqual(await store.getBrand('acme'), first)
  })

  test(title('brands', 'concurrent creates of one id: exactly one wins'), async (t) => {
    const store = await openStore(t)
    const { won, codes } = await race(
      Array.from({ length: 10 }, (_, i) => store.createBrand(brandRecord('acme', { displayName: `n${i}` }))),
    )
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_BRAND_EXISTS']))
  })

  test(title('keys', 'put, get, list all and by account, enable and disable'), async (t) => {
    const store = await openStore(t)
    const k1 = signingKeyRecord('k1', 'acme')
    const k2 = signingKeyRecord('k2', 'other')
    const k3 = signingKeyRecord('k3', 'acme', { purpose: 'root', name: 'root' })
    for (const k of [k3, k1, k2]) await store.putSigningKey(k)
    t.deepEqual(await store.getSigningKey('k1'), k1)
    t.is(await store.getSigningKey('nope'), undefined)
    t.deepEqual((await store.listSigningKeys()).map((k) => k.keyId), ['k1', 'k2', 'k3'])
    t.deepEqual(await store.listSigningKeys('acme'), [k1, k3])
    t.deepEqual(await store.listSigningKeys('nobody'), [])
    await store.setSigningKeyEnabled('k1', false)
    t.deepEqual(await store.getSigningKey('k1'), { ...k1, enabled: false })
    await store.setSigningKeyEnabled('k1', true)
    t.is((await store.getSigningKey('k1'))?.enabled, true)
  })

  test(title('keys', 'a taken key id rejects SV_KEY_EXISTS; an unknown key rejects SV_KEY_NOT_FOUND'), async (t) => {
    const store = await openStore(t)
    const k1 = signingKeyRecord('k1', 'acme')
    await store.putSigningKey(k1)
    await t.throwsAsync(store.putSigningKey(signingKeyRecord('k1', 'other')), { code: 'SV_KEY_EXISTS' })
    t.deepEqual(await store.getSigningKey('k1'), k1)
    await t.throwsAsync(store.setSigningKeyEnabled('nope', false), { code: 'SV_KEY_NOT_FOUND' })
    const { won, codes } = await race([store.putSigningKey(signingKeyRecord('k2', 'a')), store.putSigningKey(signingKeyRecord('k2', 'b'))])
    t.is(won.length, 1)
    t.deepEqual(codes, ['SV_KEY_EXISTS'])
  })
}

function modelsGroup(test: TestFn, title: Title, openStore: OpenStore): void {
  test(title('models', 'create, get, update, list in (brand, name) order'), async (t) => {
    const store = await openStore(t)
    const widget = modelRecord('acme', 'widget', { serialPolicy: { kind: 'device' }, duplicatePolicy: 'reissue' })
    await store.createModel(widget)
    await store.createModel(modelRecord('acme', 'gadget'))
    await store.createModel(modelRecord('acme-2', 'widget'))
    await store.createModel(modelRecord('beta', 'widget'))
    t.deepEqual(await store.getModel('acme', 'widget'), widget)
    t.is(await store.getModel('acme', 'nope'), undefined)
    t.is(await store.getModel('nope', 'widget'), undefined)
    const key = (m: ModelRecord): string => `${m.brandId}/${m.name}`
    t.deepEqual((await store.listModels()).map(key), ['acme/gadget', 'acme/widget', 'acme-2/widget', 'beta/widget'])
    t.deepEqual((await store.listModels('acme')).map(key), ['acme/gadget', 'acme/widget'])
    t.deepEqual(await store.listModels('nobody'), [])
    const updated = { ...widget, revision: 2, modelHeaders: { architecture: 'amd64' }, updatedAt: T0 + 1 }
    await store.updateModel(updated)
    t.deepEqual(await store.getModel('acme', 'widget'), updated)
  })

  test(title('models', 'SV_MODEL_EXISTS on create, SV_MODEL_UNKNOWN on update of a missing model'), async (t) => {
    const store = await openStore(t)
    await store.createModel(modelRecord('acme', 'widget'))
    await t.throwsAsync(store.createModel(modelRecord('acme', 'widget', { revision: 9 })), { code: 'SV_MODEL_EXISTS' })
    t.is((await store.getModel('acme', 'widget'))?.revision, 1)
    await t.throwsAsync(store.updateModel(modelRecord('acme', 'gadget')), { code: 'SV_MODEL_UNKNOWN' })
    t.is(await store.getModel('acme', 'gadget'), undefined)
    const { won, codes } = await race(Array.from({ length: 5 }, () => store.createModel(modelRecord('acme', 'racer'))))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_MODEL_EXISTS']))
  })

  test(title('models', 'api-key hash lookup follows creates and updates'), async (t) => {
    const store = await openStore(t)
    const [h1, h2, h3] = ['1', '2', '3'].map((c) => c.repeat(64)) as [string, string, string]
    await store.createModel(modelRecord('acme', 'widget', { apiKeyHashes: [h1, h2] }))
    await store.createModel(modelRecord('beta', 'gadget', { apiKeyHashes: [h2] }))
    const found = async (h: string): Promise<string[]> =>
      (await store.findModelsByApiKeyHash(h)).map((m) => `${m.brandId}/${m.name}`).sort()
    t.deepEqual(await found(h1), ['acme/widget'])
    t.deepEqual(await found(h2), ['acme/widget', 'beta/gadget'])
    t.deepEqual(await found(h3), [])
    await store.updateModel(modelRecord('acme', 'widget', { apiKeyHashes: [h3, h2], revision: 2 }))
    t.deepEqual(await found(h1), [])
    t.deepEqual(await found(h2), ['acme/widget', 'beta/gadget'])
    t.deepEqual(await found(h3), ['acme/widget'])
    t.is((await store.findModelsByApiKeyHash(h3))[0]?.revision, 2)
    await store.updateModel(modelRecord('beta', 'gadget', { apiKeyHashes: [] }))
    t.deepEqual(await found(h2), ['acme/widget'])
  })
}

// --- request ids -------------------------------------------------------------------------

function requestIdGroup(test: TestFn, title: Title, openStore: OpenStore): void {
  test(title('request ids', 'a request-id is consumed once'), async (t) => {
    const store = await openStore(t)
    await store.consumeRequestId('req-1', T0 + 60_000)
    await t.throwsAsync(store.consumeRequestId('req-1', T0 + 60_000), { code: 'SV_REQUEST_ID_USED' })
    await t.throwsAsync(store.consumeRequestId('req-1', T0 + 120_000), { code: 'SV_REQUEST_ID_USED' })
    await t.notThrowsAsync(store.consumeRequestId('req-2', T0 + 60_000))
  })

  test(title('request ids', 'two concurrent consumes: exactly one wins'), async (t) => {
    const store = await openStore(t)
    const two = await race([store.consumeRequestId('req-1', T0), store.consumeRequestId('req-1', T0)])
    t.is(two.won.length, 1)
    t.deepEqual(two.codes, ['SV_REQUEST_ID_USED'])
    const many = await race(Array.from({ length: 25 }, () => store.consumeRequestId('req-2', T0)))
    t.is(many.won.length, 1)
    t.is(many.codes.length, 24)
    t.deepEqual(new Set(many.codes), new Set(['SV_REQUEST_ID_USED']))
  })

  test(title('request ids', 'purgeExpired forgets ids that expired before now, and only those'), async (t) => {
    const store = await openStore(t)
    await store.consumeRequestId('a', T0 + 1000)
    await store.consumeRequestId('b', T0 + 2000)
    await store.consumeRequestId('c', T0 + 3000)
    t.is(await store.purgeExpired(T0), 0)
    // Strictly before: 'b' expires at now and stays.
    t.is(await store.purgeExpired(T0 + 2000), 1)
    t.is(await store.purgeExpired(T0 + 2000), 0)
    await t.notThrowsAsync(store.consumeRequestId('a', T0 + 5000))
    await t.throwsAsync(store.consumeRequestId('b', T0 + 5000), { code: 'SV_REQUEST_ID_USED' })
    await t.throwsAsync(store.consumeRequestId('c', T0 + 5000), { code: 'SV_REQUEST_ID_USED' })
    t.is(await store.purgeExpired(T0 + 4000), 2)
    await t.throwsAsync(store.consumeRequestId('a', T0 + 5000), { code: 'SV_REQUEST_ID_USED' })
    t.is(await store.purgeExpired(T0 + 10_000), 1)
  })

  test(title('request ids', 'purgeExpired handles more ids than one batch'), async (t) => {
    const store = await openStore(t)
    for (let i = 0; i < 600; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => store.consumeRequestId(`r-${i + j}`, T0 + i + j)))
    }
    t.is(await store.purgeExpired(T0 + 550), 550)
    t.is(await store.purgeExpired(T0 + 10_000), 50)
  })
}

// --- serial bindings ---------------------------------------------------------------------

function serialGroup(test: TestFn, title: Title, openStore: OpenStore): void {
  test(title('serials', 'a first binding is readable by serial and by device key, with its log entry'), async (t) => {
    const store = await openStore(t)
    const b = binding('SN-1', 'dk-1')
    const log = issuedLog(b)
    t.is(await store.getSerialBinding('acme', 'widget', 'SN-1'), undefined)
    t.is(await store.getSerialBindingByDeviceKey('acme', 'widget', 'dk-1'), undefined)
    await store.bindSerial(b, log, 0)
    t.deepEqual(await store.getSerialBinding('acme', 'widget', 'SN-1'), b)
    t.deepEqual(await store.getSerialBindingByDeviceKey('acme', 'widget', 'dk-1'), b)
    t.is(await store.getSerialBinding('acme', 'other', 'SN-1'), undefined)
    t.deepEqual((await store.queryLog({ serial: 'SN-1' })).entries, [log])
  })

  test(title('serials', 'expectRevision is a compare-and-set on the current binding'), async (t) => {
    const store = await openStore(t)
    const b1 = binding('SN-1', 'dk-1')
    // No binding yet: only expectRevision 0 may create one.
    await t.throwsAsync(store.bindSerial(b1, issuedLog(b1), 1), { code: 'SV_SERIAL_TAKEN' })
    await store.bindSerial(b1, issuedLog(b1), 0)
    // A binding exists: 0 and any revision but the current one are refused, the same key included.
    await t.throwsAsync(store.bindSerial(b1, issuedLog(b1), 0), { code: 'SV_SERIAL_TAKEN' })
    await t.throwsAsync(store.bindSerial(binding('SN-1', 'dk-2'), issuedLog(b1), 0), { code: 'SV_SERIAL_TAKEN' })
    const b2 = binding('SN-1', 'dk-1', { revision: 2, serialAssertion: 'reissued', issuedAt: T0 + 5 })
    await t.throwsAsync(store.bindSerial(b2, issuedLog(b2), 2), { code: 'SV_SERIAL_TAKEN' })
    t.deepEqual(await store.getSerialBinding('acme', 'widget', 'SN-1'), b1)
    await store.bindSerial(b2, issuedLog(b2), 1)
    t.deepEqual(await store.getSerialBinding('acme', 'widget', 'SN-1'), b2)
    await t.throwsAsync(store.bindSerial(b2, issuedLog(b2), 1), { code: 'SV_SERIAL_TAKEN' })
    // Refused binds leave no log entry: the binding and its entry are one atomic write.
    t.deepEqual((await store.queryLog({ serial: 'SN-1' })).entries.map((e) => e.revision), [1, 2])
  })

  test(title('serials', 'a device key bound to one serial of a model cannot take another: SV_DEVICE_KEY_TAKEN'), async (t) => {
    const store = await openStore(t)
    const b1 = binding('SN-1', 'dk-1')
    await store.bindSerial(b1, issuedLog(b1), 0)
    const b2 = binding('SN-2', 'dk-1')
    await t.throwsAsync(store.bindSerial(b2, issuedLog(b2), 0), { code: 'SV_DEVICE_KEY_TAKEN' })
    t.is(await store.getSerialBinding('acme', 'widget', 'SN-2'), undefined)
    t.deepEqual(await store.getSerialBindingByDeviceKey('acme', 'widget', 'dk-1'), b1)
    // Other models and other brands are separate namespaces.
    const other = binding('SN-2', 'dk-1', { model: 'gadget' })
    await store.bindSerial(other, issuedLog(other), 0)
    const otherBrand = binding('SN-1', 'dk-1', { brandId: 'beta' })
    await store.bindSerial(otherBrand, issuedLog(otherBrand), 0)
    t.deepEqual(await store.getSerialBindingByDeviceKey('acme', 'gadget', 'dk-1'), other)
    t.deepEqual(await store.getSerialBindingByDeviceKey('beta', 'widget', 'dk-1'), otherBrand)
    t.is((await store.queryLog({})).entries.length, 3)
  })

  test(title('serials', 'release, then a replacement binding frees the old device key'), async (t) => {
    const store = await openStore(t)
    const b1 = binding('SN-1', 'dk-1')
    await store.bindSerial(b1, issuedLog(b1), 0)
    await t.throwsAsync(store.releaseSerial('acme', 'widget', 'SN-9'), { code: 'SV_SERIAL_NOT_FOUND' })
    await store.releaseSerial('acme', 'widget', 'SN-1')
    t.deepEqual(await store.getSerialBinding('acme', 'widget', 'SN-1'), { ...b1, released: true })
    // Released but not yet replaced: the old key is still bound.
    t.is((await store.getSerialBindingByDeviceKey('acme', 'widget', 'dk-1'))?.serial, 'SN-1')
    const b2 = binding('SN-1', 'dk-2', { revision: 2 })
    await store.bindSerial(b2, issuedLog(b2), 1)
    t.deepEqual(await store.getSerialBinding('acme', 'widget', 'SN-1'), b2)
    t.deepEqual(await store.getSerialBindingByDeviceKey('acme', 'widget', 'dk-2'), b2)
    t.is(await store.getSerialBindingByDeviceKey('acme', 'widget', 'dk-1'), undefined)
    const b3 = binding('SN-3', 'dk-1')
    await t.notThrowsAsync(store.bindSerial(b3, issuedLog(b3), 0))
    t.is((await store.getSerialBindingByDeviceKey('acme', 'widget', 'dk-1'))?.serial, 'SN-3')
  })

  test(title('serials', 'many concurrent binds of one serial with different keys: exactly one wins'), async (t) => {
    const store = await openStore(t)
    const contenders = Array.from({ length: 20 }, (_, i) => binding('SN-RACE', `dk-${i}`))
    const { won, codes } = await race(contenders.map((b) => store.bindSerial(b, issuedLog(b), 0).then(() => b)))
    t.is(won.length, 1)
    t.is(codes.length, 19)
    t.deepEqual(new Set(codes), new Set(['SV_SERIAL_TAKEN']))
    t.deepEqual(await store.getSerialBinding('acme', 'widget', 'SN-RACE'), won[0])
    const bound = await Promise.all(contenders.map((b) => store.getSerialBindingByDeviceKey('acme', 'widget', b.deviceKeyId)))
    t.is(bound.filter((b) => b !== undefined).length, 1)
    t.is((await store.queryLog({ serial: 'SN-RACE' })).entries.length, 1)
  })

  test(title('serials', 'many concurrent binds of one device key to different serials: exactly one wins'), async (t) => {
    const store = await openStore(t)
    const contenders = Array.from({ length: 20 }, (_, i) => binding(`SN-${i}`, 'dk-race'))
    const { won, codes } = await race(contenders.map((b) => store.bindSerial(b, issuedLog(b), 0).then(() => b)))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_DEVICE_KEY_TAKEN']))
    t.deepEqual(await store.getSerialBindingByDeviceKey('acme', 'widget', 'dk-race'), won[0])
    t.is((await store.queryLog({ brandId: 'acme', model: 'widget' })).entries.length, 1)
  })

  test(title('serials', 'concurrent reissues of one revision: exactly one wins'), async (t) => {
    const store = await openStore(t)
    const b1 = binding('SN-1', 'dk-1')
    await store.bindSerial(b1, issuedLog(b1), 0)
    await store.releaseSerial('acme', 'widget', 'SN-1')
    const contenders = Array.from({ length: 10 }, (_, i) => binding('SN-1', `dk-new-${i}`, { revision: 2 }))
    const { won, codes } = await race(contenders.map((b) => store.bindSerial(b, issuedLog(b), 1).then(() => b)))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_SERIAL_TAKEN']))
    t.deepEqual(await store.getSerialBinding('acme', 'widget', 'SN-1'), won[0])
  })
}

// --- assigned serial numbers -----------------------------------------------------------------

function sequenceGroup(test: TestFn, title: Title, supports: StoreSupports, openStore: OpenStore): void {
  test(title('sequences', 'numbers start at start and count up per model'), async (t) => {
    const store = await openStore(t)
    t.is(await store.nextSerialNumber('acme', 'widget', 100), 100)
    t.is(await store.nextSerialNumber('acme', 'widget', 100), 101)
    t.is(await store.nextSerialNumber('acme', 'gadget', 1), 1)
    t.is(await store.nextSerialNumber('beta', 'widget', 0), 0)
    t.is(await store.nextSerialNumber('acme', 'widget', 100), 102)
    // A raised start moves the sequence forward, never back.
    t.is(await store.nextSerialNumber('acme', 'widget', 500), 500)
    t.is(await store.nextSerialNumber('acme', 'widget', 1), 501)
  })

  test(title('sequences', '200 concurrent calls never repeat a number'), async (t) => {
    const store = await openStore(t)
    const numbers = await Promise.all(Array.from({ length: 200 }, () => store.nextSerialNumber('acme', 'widget', 1)))
    t.is(new Set(numbers).size, 200)
    t.true(numbers.every((n) => Number.isSafeInteger(n) && n >= 1))
  })

  if (supports.reopen) {
    test(title('sequences', 'numbers never repeat after close and reopen'), async (t) => {
      const store = await openStore(t)
      const before = await Promise.all(Array.from({ length: 20 }, () => store.nextSerialNumber('acme', 'widget', 1)))
      await store.close()
      await store.open()
      const after = await Promise.all(Array.from({ length: 20 }, () => store.nextSerialNumber('acme', 'widget', 1)))
      t.is(new Set([...before, ...after]).size, 40)
      t.true(Math.min(...after) > Math.max(...before))
    })
  }
}

// --- signing log -------------------------------------------------------------------------------

const OUTCOMES: LogOutcome[] = ['issued', 'reissued', 'retried', 'refused']

/** 150 entries over two brands, three models, 20 serials and every outcome; some share a millisecond. */
function seedLog(): LogEntry[] {
  const entries: LogEntry[] = []
  for (let i = 0; i < 150; i++) {
    const brandId = i % 5 === 0 ? 'beta' : 'acme'
    const model = ['widget', 'gadget', 'sprocket'][i % 3]!
    const outcome = OUTCOMES[i % 7 === 0 ? 3 : i % 4]!
    const time = T0 + Math.floor(i / 3) * 1000
    const e = logEntry(time, { outcome, brandId, model, serial: `SN-${i % 20}`, transport: i % 2 ? 'https' : 'mqtt' })
    if (outcome === 'refused') {
      e.code = 'SV_SERIAL_TAKEN'
      e.message = 'refused'
    } else {
      e.deviceKeyId = `dk-${i}`
      e.revision = 1 + (i % 3)
      e.timings = { sign: i, total: i * 2 }
    }
    if (i % 11 === 0) delete e.serial
    entries.push(e)
  }
  return entries
}

async function seededStore(t: ExecutionContext, openStore: OpenStore): Promise<{ store: VaultStore; seed: LogEntry[] }> {
  const store = await openStore(t)
  const seed = seedLog()
  // Appended out of order in small concurrent groups: the store orders by id, not by arrival.
  const shuffled = [...seed].reverse()
  for (let i = 0; i < shuffled.length; i += 25) await Promise.all(shuffled.slice(i, i + 25).map((e) => store.appendLog(e)))
  return { store, seed }
}

function expected(seed: LogEntry[], q: Omit<LogQuery, 'limit' | 'cursor'>): string[] {
  const ids = seed
    .filter(
      (e) =>
        (q.brandId === undefined || e.brandId === q.brandId) &&
        (q.model === undefined || e.model === q.model) &&
        (q.serial === undefined || e.serial === q.serial) &&
        (q.outcome === undefined || e.outcome === q.outcome) &&
        (q.from === undefined || e.time >= q.from) &&
        (q.to === undefined || e.time < q.to),
    )
    .map((e) => e.id)
    .sort()
  return q.order === 'desc' ? ids.reverse() : ids
}

async function allPages(store: VaultStore, q: LogQuery): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = []
  let cursor: string | undefined
  for (let pages = 1; pages <= 1000; pages++) {
    const page = await store.queryLog(cursor === undefined ? q : { ...q, cursor })
    if (page.entries.length > (q.limit ?? 100)) throw new Error('page larger than limit')
    ids.push(...page.entries.map((e) => e.id))
    if (page.nextCursor === undefined) return { ids, pages }
    cursor = page.nextCursor
  }
  throw new Error('paging did not end')
}

const LOG_QUERIES: Array<Omit<LogQuery, 'limit' | 'cursor'>> = [
  {},
  { serial: 'SN-3' },
  { serial: 'SN-3', brandId: 'acme', model: 'widget' },
  { brandId: 'acme', model: 'gadget' },
  { brandId: 'beta' },
  { model: 'sprocket' },
  { outcome: 'refused' },
  { outcome: 'issued', brandId: 'acme', model: 'widget' },
  { from: T0 + 10_000, to: T0 + 20_000 },
  { brandId: 'acme', outcome: 'reissued', from: T0 + 5_000 },
  { serial: 'SN-4', to: T0 + 30_000 },
  { serial: 'nope' },
  { from: T0 + 1_000_000 },
]

function logGroup(test: TestFn, title: Title, openStore: OpenStore): void {
  test(title('log', 'entries come back whole, in id order, default page 100'), async (t) => {
    const { store, seed } = await seededStore(t, openStore)
    const sorted = [...seed].sort((a, b) => (a.id < b.id ? -1 : 1))
    const page = await store.queryLog({})
    t.deepEqual(page.entries, sorted.slice(0, 100))
    t.is(typeof page.nextCursor, 'string')
    const desc = await store.queryLog({ order: 'desc', limit: 1000 })
    t.deepEqual(desc.entries, [...sorted].reverse())
    t.is(desc.nextCursor, undefined)
  })

  test(title('log', 'queries by serial, model, brand, outcome and time range select exactly the matches'), async (t) => {
    const { store, seed } = await seededStore(t, openStore)
    for (const q of LOG_QUERIES) {
      for (const order of ['asc', 'desc'] as const) {
        const page = await store.queryLog({ ...q, order, limit: 1000 })
        t.deepEqual(page.entries.map((e) => e.id), expected(seed, { ...q, order }), JSON.stringify({ ...q, order }))
        t.is(page.nextCursor, undefined)
      }
    }
  })

  test(title('log', 'paging with cursors covers every entry exactly once in both orders'), async (t) => {
    const { store, seed } = await seededStore(t, openStore)
    for (const q of [{}, { brandId: 'acme', model: 'widget' }, { outcome: 'issued' as const }, { from: T0 + 3_000, to: T0 + 40_000 }]) {
      for (const order of ['asc', 'desc'] as const) {
        for (const limit of [1, 7, 50]) {
          const want = expected(seed, { ...q, order })
          const { ids, pages } = await allPages(store, { ...q, order, limit })
          t.deepEqual(ids, want, JSON.stringify({ ...q, order, limit }))
          t.is(pages, Math.max(1, Math.ceil(want.length / limit)))
        }
      }
    }
  })

  test(title('log', 'export streams every matching entry in order'), async (t) => {
    const { store, seed } = await seededStore(t, openStore)
    for (const q of LOG_QUERIES) {
      t.deepEqual((await drain(store.exportLog(q))).map((e) => e.id), expected(seed, q), JSON.stringify(q))
    }
    t.deepEqual((await drain(store.exportLog({ order: 'desc' }))).map((e) => e.id), expected(seed, { order: 'desc' }))
    // Leaving an export early releases it: the store still closes.
    for await (const e of store.exportLog({})) {
      t.deepEqual([e.id], expected(seed, {}).slice(0, 1))
      break
    }
  })

  test(title('log', 'an export larger than one read batch comes out whole'), async (t) => {
    const store = await openStore(t)
    const entries = Array.from({ length: 700 }, (_, i) => logEntry(T0 + i, { outcome: 'refused', code: 'SV_RATE_LIMITED' }))
    for (let i = 0; i < entries.length; i += 100) await Promise.all(entries.slice(i, i + 100).map((e) => store.appendLog(e)))
    const ids = entries.map((e) => e.id)
    t.deepEqual((await drain(store.exportLog({}))).map((e) => e.id), ids)
    t.deepEqual((await drain(store.exportLog({ outcome: 'refused', order: 'desc' }))).map((e) => e.id), [...ids].reverse())
  })

  test(title('log', 'invalid limits and foreign cursors reject SV_REQUEST_INVALID'), async (t) => {
    const store = await openStore(t)
    await store.appendLog(logEntry(T0))
    for (const limit of [0, 1001, 1.5, -1]) {
      await t.throwsAsync(store.queryLog({ limit }), { code: 'SV_REQUEST_INVALID' }, `limit ${limit}`)
    }
    t.is((await store.queryLog({ limit: 1000 })).entries.length, 1)
    await t.throwsAsync(store.queryLog({ cursor: 'not-a-cursor' }), { code: 'SV_REQUEST_INVALID' })
    await t.throwsAsync(store.queryLog({ cursor: '' }), { code: 'SV_REQUEST_INVALID' })
  })
}

// --- tokens and meta -------------------------------------------------------------------------------

function tokenAndMetaGroup(test: TestFn, title: Title, openStore: OpenStore): void {
  test(title('tokens', 'put, get, list in hash order, replace, delete'), async (t) => {
    const store = await openStore(t)
    const a: TokenRecord = { hash: 'a'.repeat(64), name: 'ci', roles: ['admin'], createdAt: T0 }
    const b: TokenRecord = { hash: 'b'.repeat(64), name: 'ops', roles: ['store-admin', 'publisher'], createdAt: T0 }
    t.is(await store.getToken(a.hash), undefined)
    await store.putToken(b)
    await store.putToken(a)
    t.deepEqual(await store.getToken(b.hash), b)
    t.deepEqual(await store.listTokens(), [a, b])
    const renamed = { ...a, name: 'ci-2' }
    await store.putToken(renamed)
    t.deepEqual(await store.getToken(a.hash), renamed)
    t.true(await store.deleteToken(a.hash))
    t.false(await store.deleteToken(a.hash))
    t.deepEqual(await store.listTokens(), [b])
  })

  test(title('meta', 'putMeta sets, and with onlyIfAbsent leaves an existing value alone'), async (t) => {
    const store = await openStore(t)
    t.is(await store.getMeta('root-authority'), undefined)
    t.true(await store.putMeta('root-authority', 'acme-root', true))
    t.false(await store.putMeta('root-authority', 'other', true))
    t.is(await store.getMeta('root-authority'), 'acme-root')
    t.true(await store.putMeta('root-authority', 'other'))
    t.is(await store.getMeta('root-authority'), 'other')
    const { won } = await race(Array.from({ length: 10 }, (_, i) => store.putMeta('instance-id', `i-${i}`, true)))
    t.is(won.filter(Boolean).length, 1)
  })
}
