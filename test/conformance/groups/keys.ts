import { T0, race, signingKeyRecord, type Suite } from '../fixtures.js'

export function keysGroup({ test, title, open }: Suite): void {
  const g = (text: string): string => title('keys', text)

  test(g('put, get, list all in key id order and by account; missing reads as undefined'), async (t) => {
    const store = await open(t)
    t.is(await store.keys.get('k1'), undefined)
    t.deepEqual(await store.keys.list(), [])
    const k1 = signingKeyRecord('k1', 'acme')
    const k2 = signingKeyRecord('k2', 'other')
    const k3 = signingKeyRecord('k3', 'acme', { purpose: 'root', name: 'root', bits: 3072 })
    for (const k of [k3, k1, k2]) await store.keys.put(k)
    t.deepEqual(await store.keys.get('k1'), k1)
    t.deepEqual(await store.keys.get('k3'), k3)
    t.deepEqual(await store.keys.list(), [k1, k2, k3])
    t.deepEqual(await store.keys.list('acme'), [k1, k3])
    t.deepEqual(await store.keys.list('other'), [k2])
    t.deepEqual(await store.keys.list('nobody'), [])
    // an account id that is a prefix of another is its own account
    await store.keys.put(signingKeyRecord('k4', 'acme-2'))
    t.deepEqual((await store.keys.list('acme')).map((k) => k.keyId), ['k1', 'k3'])
  })

  test(g('setEnabled sets enabled, reason and changedAt and resolves with the new record'), async (t) => {
    const store = await open(t)
    const k1 = signingKeyRecord('k1', 'acme')
    await store.keys.put(k1)
    const disabled = await store.keys.setEnabled('k1', { enabled: false, reason: 'compromised', at: T0 + 5 })
    t.deepEqual(disabled, { ...k1, enabled: false, reason: 'compromised', changedAt: T0 + 5 })
    t.deepEqual(await store.keys.get('k1'), disabled)
    // without a reason, the old one goes
    const enabled = await store.keys.setEnabled('k1', { enabled: true, at: T0 + 9 })
    t.deepEqual(enabled, { ...k1, enabled: true, changedAt: T0 + 9 })
    t.deepEqual(await store.keys.get('k1'), enabled)
    t.deepEqual(await store.keys.list('acme'), [enabled])
  })

  test(g('a taken key id rejects SV_KEY_EXISTS; an unknown key rejects SV_KEY_NOT_FOUND'), async (t) => {
    const store = await open(t)
    const k1 = signingKeyRecord('k1', 'acme')
    await store.keys.put(k1)
    await t.throwsAsync(store.keys.put(signingKeyRecord('k1', 'other')), { code: 'SV_KEY_EXISTS' })
    t.deepEqual(await store.keys.get('k1'), k1)
    t.deepEqual(await store.keys.list('other'), [])
    await t.throwsAsync(store.keys.setEnabled('nope', { enabled: false, at: T0 }), { code: 'SV_KEY_NOT_FOUND' })
    t.is(await store.keys.get('nope'), undefined)
  })

  test(g('concurrent puts of one key id: exactly one wins'), async (t) => {
    const store = await open(t)
    const { won, codes } = await race(Array.from({ length: 8 }, (_, i) => store.keys.put(signingKeyRecord('k2', `account-${i}`)).then(() => i)))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_KEY_EXISTS']))
    t.is((await store.keys.get('k2'))?.accountId, `account-${won[0]}`)
    t.is((await store.keys.list()).length, 1)
  })
}
