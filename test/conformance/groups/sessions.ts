import { T0, hashOf, loginTransaction, sessionRecord, type Suite } from '../fixtures.js'

export function sessionsGroup({ test, title, open }: Suite): void {
  const g = (text: string): string => title('sessions', text)
  const [s1, s2, s3] = ['s1', 's2', 's3'].map(hashOf) as [string, string, string]

  test(g('create, get, touch moves the idle expiry, delete resolves true once'), async (t) => {
    const store = await open(t)
    t.is(await store.sessions.get(s1), undefined)
    const a = sessionRecord(s1, 'prs_a')
    const { ip: _ip, userAgent: _ua, ...b } = sessionRecord(s2, 'prs_a')
    await store.sessions.create(a)
    await store.sessions.create(b)
    t.deepEqual(await store.sessions.get(s1), a)
    t.deepEqual(await store.sessions.get(s2), b)
    await store.sessions.touch(s1, T0 + 3_600_000)
    t.deepEqual(await store.sessions.get(s1), { ...a, idleExpiresAt: T0 + 3_600_000 })
    t.true(await store.sessions.delete(s1))
    t.false(await store.sessions.delete(s1))
    t.false(await store.sessions.delete(s3))
    t.is(await store.sessions.get(s1), undefined)
    t.deepEqual(await store.sessions.get(s2), b)
  })

  test(g('touch of a session that is gone rejects SV_SESSION_INVALID'), async (t) => {
    const store = await open(t)
    await t.throwsAsync(store.sessions.touch(s1, T0), { code: 'SV_SESSION_INVALID' })
    await store.sessions.create(sessionRecord(s1, 'prs_a'))
    await store.sessions.delete(s1)
    await t.throwsAsync(store.sessions.touch(s1, T0), { code: 'SV_SESSION_INVALID' })
    t.is(await store.sessions.get(s1), undefined)
    await store.sessions.create(sessionRecord(s2, 'prs_a', { expiresAt: T0 + 10 }))
    await store.sessions.purgeExpired(T0 + 11)
    await t.throwsAsync(store.sessions.touch(s2, T0 + 20), { code: 'SV_SESSION_INVALID' })
  })

  test(g('deleteForPerson ends every session of one person and resolves with how many'), async (t) => {
    const store = await open(t)
    await store.sessions.create(sessionRecord(s1, 'prs_a'))
    await store.sessions.create(sessionRecord(s2, 'prs_a'))
    const other = sessionRecord(s3, 'prs_ab')
    await store.sessions.create(other)
    t.is(await store.sessions.deleteForPerson('prs_a'), 2)
    t.is(await store.sessions.deleteForPerson('prs_a'), 0)
    t.is(await store.sessions.deleteForPerson('prs_x'), 0)
    t.is(await store.sessions.get(s1), undefined)
    t.is(await store.sessions.get(s2), undefined)
    t.deepEqual(await store.sessions.get(s3), other)
    await t.throwsAsync(store.sessions.touch(s1, T0), { code: 'SV_SESSION_INVALID' })
    // a session deleted on its own is not counted again
    t.true(await store.sessions.delete(s3))
    t.is(await store.sessions.deleteForPerson('prs_ab'), 0)
  })

  test(g('a session ended by deleteForPerson, delete or purgeExpired stays ended, even with touches in flight'), async (t) => {
    const store = await open(t)
    for (let round = 0; round < 10; round++) {
      const hashes = Array.from({ length: 4 }, (_, i) => hashOf(`race-${round}-${i}`))
      for (const h of hashes) await store.sessions.create(sessionRecord(h, `prs_${round}`, { expiresAt: T0 + 1000 }))
      const end = [() => store.sessions.deleteForPerson(`prs_${round}`), () => store.sessions.purgeExpired(T0 + 2000), () => Promise.all(hashes.map((h) => store.sessions.delete(h)))][round % 3]!
      const touches = hashes.flatMap((h) => [1, 2, 3].map((k) => store.sessions.touch(h, T0 + 500 + k).then(() => 'touched', (err: { code?: string }) => err.code)))
      await Promise.all([end(), ...touches])
      for (const code of await Promise.all(touches)) t.true(code === 'touched' || code === 'SV_SESSION_INVALID', String(code))
      for (const h of hashes) t.is(await store.sessions.get(h), undefined, `round ${round}`)
      t.is(await store.sessions.deleteForPerson(`prs_${round}`), 0)
    }
  })

  test(g('a login transaction is taken once; concurrent takes: exactly one gets it'), async (t) => {
    const store = await open(t)
    t.is(await store.sessions.takeLoginTransaction('ltx-1'), undefined)
    const tx = loginTransaction('ltx-1')
    const { returnTo: _r, ...bare } = loginTransaction('ltx-2')
    await store.sessions.putLoginTransaction(tx)
    await store.sessions.putLoginTransaction(bare)
    t.deepEqual(await store.sessions.takeLoginTransaction('ltx-1'), tx)
    t.is(await store.sessions.takeLoginTransaction('ltx-1'), undefined)
    const taken = await Promise.all(Array.from({ length: 10 }, () => store.sessions.takeLoginTransaction('ltx-2')))
    t.deepEqual(taken.filter((x) => x !== undefined), [bare])
    for (let round = 0; round < 5; round++) {
      await store.sessions.putLoginTransaction(loginTransaction(`ltx-r${round}`))
      const results = await Promise.all(Array.from({ length: 6 }, () => store.sessions.takeLoginTransaction(`ltx-r${round}`)))
      t.is(results.filter((x) => x !== undefined).length, 1, `round ${round}`)
    }
  })

  test(g('purgeExpired deletes sessions and login transactions whose expiry is before now, and counts them'), async (t) => {
    const store = await open(t)
    await store.sessions.create(sessionRecord(s1, 'prs_a', { expiresAt: T0 + 1000 }))
    await store.sessions.create(sessionRecord(s2, 'prs_a', { expiresAt: T0 + 2000 }))
    const lasting = sessionRecord(s3, 'prs_b', { expiresAt: T0 + 9000 })
    await store.sessions.create(lasting)
    await store.sessions.putLoginTransaction(loginTransaction('ltx-1', { expiresAt: T0 + 1500 }))
    await store.sessions.putLoginTransaction(loginTransaction('ltx-2', { expiresAt: T0 + 2000 }))
    t.is(await store.sessions.purgeExpired(T0), 0)
    // strictly before now: what expires at now stays
    t.is(await store.sessions.purgeExpired(T0 + 2000), 2)
    t.is(await store.sessions.get(s1), undefined)
    t.truthy(await store.sessions.get(s2))
    t.is(await store.sessions.takeLoginTransaction('ltx-1'), undefined)
    t.is(await store.sessions.purgeExpired(T0 + 2000), 0)
    t.is(await store.sessions.purgeExpired(T0 + 5000), 2)
    t.is(await store.sessions.get(s2), undefined)
    t.is(await store.sessions.takeLoginTransaction('ltx-2'), undefined)
    t.deepEqual(await store.sessions.get(s3), lasting)
    // a purged session is gone for deleteForPerson too
    t.is(await store.sessions.deleteForPerson('prs_a'), 0)
    t.is(await store.sessions.deleteForPerson('prs_b'), 1)
  })

  test(g('purgeExpired handles more than one batch'), async (t) => {
    const store = await open(t)
    for (let i = 0; i < 300; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          (i + j) % 2 === 0
            ? store.sessions.create(sessionRecord(hashOf(`bulk-${i + j}`), `prs_${(i + j) % 7}`, { expiresAt: T0 + i + j }))
            : store.sessions.putLoginTransaction(loginTransaction(`bulk-${i + j}`, { expiresAt: T0 + i + j })),
        ),
      )
    }
    t.is(await store.sessions.purgeExpired(T0 + 280), 280)
    t.is(await store.sessions.purgeExpired(T0 + 10_000), 20)
  })
}
