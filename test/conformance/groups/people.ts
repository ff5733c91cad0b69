import type { VaultStore } from '../../../vault-server/src/store/store.js'
import { T0, grantRecord, personRecord, race, subStoreRecord, withBrand, type Suite } from '../fixtures.js'

export function peopleGroup(suite: Suite): void {
  people(suite)
  grants(suite)
}

function people({ test, title, open }: Suite): void {
  const g = (text: string): string => title('people', text)

  test(g('create, get, getByEmail in any case, list in e-mail order; missing reads as undefined'), async (t) => {
    const store = await open(t)
    t.is(await store.people.get('prs_a'), undefined)
    t.is(await store.people.getByEmail('ann@example.com'), undefined)
    t.deepEqual(await store.people.list(), [])
    const ann = personRecord('prs_z', 'ann@example.com', { lastLoginAt: T0 + 3 })
    const bob = personRecord('prs_a', 'bob@example.com', { disabled: true, identities: [] })
    const { displayName: _d, ...carl } = personRecord('prs_m', 'carl@example.org')
    for (const p of [bob, carl, ann]) await store.people.create(p)
    t.deepEqual(await store.people.get('prs_z'), ann)
    t.deepEqual(await store.people.get('prs_m'), carl)
    t.deepEqual(await store.people.getByEmail('ann@example.com'), ann)
    t.deepEqual(await store.people.getByEmail('Ann@Example.COM'), ann)
    t.deepEqual(await store.people.getByEmail('BOB@EXAMPLE.COM'), bob)
    t.is(await store.people.getByEmail('ann@example'), undefined)
    t.deepEqual(await store.people.list(), [ann, bob, carl])
  })

  test(g('a taken id or e-mail rejects SV_PERSON_EXISTS and writes nothing'), async (t) => {
    const store = await open(t)
    const ann = personRecord('prs_a', 'ann@example.com')
    await store.people.create(ann)
    await t.throwsAsync(store.people.create(personRecord('prs_b', 'ann@example.com')), { code: 'SV_PERSON_EXISTS' })
    await t.throwsAsync(store.people.create(personRecord('prs_a', 'other@example.com')), { code: 'SV_PERSON_EXISTS' })
    t.is(await store.people.get('prs_b'), undefined)
    t.is(await store.people.getByEmail('other@example.com'), undefined)
    t.deepEqual(await store.people.list(), [ann])
  })

  test(g('e-mails are lowercase: create refuses another case (TypeError)'), async (t) => {
    const store = await open(t)
    await t.throwsAsync(async () => store.people.create(personRecord('prs_a', 'Ann@example.com')), { instanceOf: TypeError })
    t.deepEqual(await store.people.list(), [])
  })

  test(g('concurrent creates of one e-mail: exactly one wins'), async (t) => {
    const store = await open(t)
    const { won, codes } = await race(Array.from({ length: 10 }, (_, i) => store.people.create(personRecord(`prs_${i}`, 'ann@example.com')).then(() => i)))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_PERSON_EXISTS']))
    t.deepEqual((await store.people.list()).map((p) => p.id), [`prs_${won[0]}`])
    t.is((await store.people.getByEmail('ann@example.com'))?.id, `prs_${won[0]}`)
  })

  test(g('update replaces a person; SV_PERSON_NOT_FOUND; the e-mail is kept (a change is a TypeError)'), async (t) => {
    const store = await open(t)
    const ann = personRecord('prs_a', 'ann@example.com')
    await store.people.create(ann)
    const { displayName: _d, ...rest } = ann
    const changed = { ...rest, disabled: true, identities: [...ann.identities, { providerId: 'other', issuer: 'https://other.example', subject: 's2' }], updatedAt: T0 + 9, lastLoginAt: T0 + 8 }
    await store.people.update(changed)
    t.deepEqual(await store.people.get('prs_a'), changed)
    t.deepEqual(await store.people.getByEmail('ann@example.com'), changed)
    await t.throwsAsync(store.people.update(personRecord('prs_x', 'x@example.com')), { code: 'SV_PERSON_NOT_FOUND' })
    t.is(await store.people.get('prs_x'), undefined)
    await t.throwsAsync(async () => store.people.update({ ...changed, email: 'new@example.com' }), { instanceOf: TypeError })
    t.deepEqual(await store.people.get('prs_a'), changed)
    t.is(await store.people.getByEmail('new@example.com'), undefined)
  })
}

/** acme with stores acme, acme-line, acme-z; people prs_a, prs_b, prs_c. */
async function world(store: VaultStore): Promise<void> {
  await withBrand(store, 'acme')
  await store.stores.create(subStoreRecord('acme-line', 'acme', 'acme'))
  await store.stores.create(subStoreRecord('acme-z', 'acme', 'acme'))
  for (const [id, email] of [
    ['prs_c', 'a@example.com'],
    ['prs_a', 'c@example.com'],
    ['prs_b', 'b@example.com'],
  ] as const) {
    await store.people.create(personRecord(id, email))
  }
}

function grants({ test, title, open }: Suite): void {
  const g = (text: string): string => title('grants', text)

  test(g('put, listForPerson in store id order, listForStore in person id order'), async (t) => {
    const store = await open(t)
    await world(store)
    t.deepEqual(await store.grants.listForPerson('prs_a'), [])
    t.deepEqual(await store.grants.listForStore('acme'), [])
    const a1 = grantRecord('prs_a', 'acme-z', { role: 'admin' })
    const a2 = grantRecord('prs_a', 'acme', { role: 'publisher', inheritable: false })
    const a3 = grantRecord('prs_a', 'acme-line', { role: 'reviewer' })
    const b1 = grantRecord('prs_b', 'acme', { role: 'collaborator' })
    const c1 = grantRecord('prs_c', 'acme')
    for (const gr of [a1, c1, a2, b1, a3]) await store.grants.put(gr)
    t.deepEqual(await store.grants.listForPerson('prs_a'), [a2, a3, a1])
    t.deepEqual(await store.grants.listForPerson('prs_b'), [b1])
    t.deepEqual(await store.grants.listForPerson('prs_x'), [])
    t.deepEqual(await store.grants.listForStore('acme'), [a2, b1, c1])
    t.deepEqual(await store.grants.listForStore('acme-line'), [a3])
    t.deepEqual(await store.grants.listForStore('nope'), [])
  })

  test(g('one grant per person and store: put replaces it'), async (t) => {
    const store = await open(t)
    await world(store)
    await store.grants.put(grantRecord('prs_a', 'acme', { role: 'viewer' }))
    const replaced = grantRecord('prs_a', 'acme', { role: 'admin', inheritable: false, grantedBy: 'prs_b', createdAt: T0 + 5 })
    await store.grants.put(replaced)
    t.deepEqual(await store.grants.listForPerson('prs_a'), [replaced])
    t.deepEqual(await store.grants.listForStore('acme'), [replaced])
    // concurrent puts: one grant remains
    await Promise.all(['viewer', 'publisher', 'reviewer', 'collaborator'].map((role) => store.grants.put(grantRecord('prs_b', 'acme', { role: role as 'viewer' }))))
    t.is((await store.grants.listForPerson('prs_b')).length, 1)
    t.is((await store.grants.listForStore('acme')).length, 2)
  })

  test(g('put needs an existing person and store: SV_PERSON_NOT_FOUND, SV_STORE_NOT_FOUND; nothing written'), async (t) => {
    const store = await open(t)
    await world(store)
    await t.throwsAsync(store.grants.put(grantRecord('prs_x', 'acme')), { code: 'SV_PERSON_NOT_FOUND' })
    await t.throwsAsync(store.grants.put(grantRecord('prs_a', 'nope')), { code: 'SV_STORE_NOT_FOUND' })
    t.deepEqual(await store.grants.listForPerson('prs_x'), [])
    t.deepEqual(await store.grants.listForPerson('prs_a'), [])
    t.deepEqual(await store.grants.listForStore('acme'), [])
    t.deepEqual(await store.grants.listForStore('nope'), [])
  })

  test(g('delete resolves with the removed grant, then with undefined'), async (t) => {
    const store = await open(t)
    await world(store)
    const a = grantRecord('prs_a', 'acme', { role: 'admin' })
    const b = grantRecord('prs_a', 'acme-line')
    const c = grantRecord('prs_b', 'acme')
    for (const gr of [a, b, c]) await store.grants.put(gr)
    t.deepEqual(await store.grants.delete('prs_a', 'acme'), a)
    t.is(await store.grants.delete('prs_a', 'acme'), undefined)
    t.is(await store.grants.delete('prs_x', 'acme'), undefined)
    t.is(await store.grants.delete('prs_a', 'nope'), undefined)
    t.deepEqual(await store.grants.listForPerson('prs_a'), [b])
    t.deepEqual(await store.grants.listForStore('acme'), [c])
    // concurrent deletes of one grant: one gets it
    const results = await Promise.all([store.grants.delete('prs_b', 'acme'), store.grants.delete('prs_b', 'acme'), store.grants.delete('prs_b', 'acme')])
    t.deepEqual(results.filter((r) => r !== undefined), [c])
    t.deepEqual(await store.grants.listForStore('acme'), [])
  })
}
