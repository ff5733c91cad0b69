import { T0, adminToken, byText, hashOf, personalToken, race, type Suite } from '../fixtures.js'

export function tokensGroup({ test, title, open }: Suite): void {
  const g = (text: string): string => title('tokens', text)
  const [h1, h2, h3, h4] = ['one', 'two', 'three', 'four'].map(hashOf) as [string, string, string, string]

  test(g('put admin and personal tokens; get; list in hash order, by person, by kind, by both'), async (t) => {
    const store = await open(t)
    t.is(await store.tokens.get(h1), undefined)
    t.deepEqual(await store.tokens.list(), [])
    const admin = adminToken(h1, { name: 'ci' })
    const { stores: _all, ...everyStore } = personalToken(h2, 'prs_a', { permissions: ['*'] })
    const narrow = personalToken(h3, 'prs_a', { name: 'narrow', stores: ['acme-line'], lastUsedAt: T0 + 1 })
    const other = personalToken(h4, 'prs_b')
    for (const tok of [narrow, other, admin, everyStore]) await store.tokens.put(tok)
    t.deepEqual(await store.tokens.get(h1), admin)
    t.deepEqual(await store.tokens.get(h2), everyStore)
    t.deepEqual(await store.tokens.get(h3), narrow)
    const sorted = [admin, everyStore, narrow, other].sort((a, b) => byText(a.hash, b.hash))
    t.deepEqual(await store.tokens.list(), sorted)
    t.deepEqual(await store.tokens.list({}), sorted)
    t.deepEqual(await store.tokens.list({ personId: 'prs_a' }), [everyStore, narrow].sort((a, b) => byText(a.hash, b.hash)))
    t.deepEqual(await store.tokens.list({ personId: 'prs_x' }), [])
    t.deepEqual(await store.tokens.list({ kind: 'admin' }), [admin])
    t.deepEqual(await store.tokens.list({ kind: 'personal' }), sorted.filter((x) => x.kind === 'personal'))
    t.deepEqual(await store.tokens.list({ personId: 'prs_b', kind: 'personal' }), [other])
    t.deepEqual(await store.tokens.list({ personId: 'prs_b', kind: 'admin' }), [])
  })

  test(g('a taken hash rejects SV_TOKEN_EXISTS and keeps the first token; concurrent puts: one wins'), async (t) => {
    const store = await open(t)
    const first = adminToken(h1)
    await store.tokens.put(first)
    await t.throwsAsync(store.tokens.put(personalToken(h1, 'prs_a')), { code: 'SV_TOKEN_EXISTS' })
    t.deepEqual(await store.tokens.get(h1), first)
    t.deepEqual(await store.tokens.list({ personId: 'prs_a' }), [])
    const { won, codes } = await race(Array.from({ length: 6 }, (_, i) => store.tokens.put(adminToken(h2, { name: `n${i}` })).then(() => i)))
    t.is(won.length, 1)
    t.deepEqual(new Set(codes), new Set(['SV_TOKEN_EXISTS']))
    t.is((await store.tokens.get(h2))?.name, `n${won[0]}`)
  })

  test(g('revoke keeps the record with revokedAt and revokedBy, resolves with it, is idempotent; SV_TOKEN_NOT_FOUND'), async (t) => {
    const store = await open(t)
    const tok = personalToken(h1, 'prs_a')
    await store.tokens.put(tok)
    const revoked = await store.tokens.revoke(h1, { at: T0 + 10, by: 'prs_admin' })
    t.deepEqual(revoked, { ...tok, revokedAt: T0 + 10, revokedBy: 'prs_admin' })
    t.deepEqual(await store.tokens.get(h1), revoked)
    t.deepEqual(await store.tokens.list({ personId: 'prs_a' }), [revoked])
    // a second revoke changes nothing: the first time and actor stay
    t.deepEqual(await store.tokens.revoke(h1, { at: T0 + 20, by: 'prs_other' }), revoked)
    t.deepEqual(await store.tokens.get(h1), revoked)
    await t.throwsAsync(store.tokens.revoke(h2, { at: T0, by: 'x' }), { code: 'SV_TOKEN_NOT_FOUND' })
    t.is(await store.tokens.get(h2), undefined)
  })

  test(g('touch records the last use; a missing token is ignored'), async (t) => {
    const store = await open(t)
    const tok = adminToken(h1)
    await store.tokens.put(tok)
    await store.tokens.touch(h1, T0 + 100)
    t.deepEqual(await store.tokens.get(h1), { ...tok, lastUsedAt: T0 + 100 })
    await store.tokens.touch(h1, T0 + 200)
    t.is((await store.tokens.get(h1))?.lastUsedAt, T0 + 200)
    await t.notThrowsAsync(store.tokens.touch(h2, T0))
    t.is(await store.tokens.get(h2), undefined)
    // a revoked token keeps its revocation when touched
    await store.tokens.revoke(h1, { at: T0 + 300, by: 'cli' })
    await store.tokens.touch(h1, T0 + 400)
    t.deepEqual(await store.tokens.get(h1), { ...tok, lastUsedAt: T0 + 400, revokedAt: T0 + 300, revokedBy: 'cli' })
  })
}
