import { race, type Suite } from '../fixtures.js'

export function metaGroup({ test, title, open, options }: Suite): void {
  const g = (text: string): string => title('meta', text)

  test(g('put sets, and with onlyIfAbsent leaves an existing value alone'), async (t) => {
    const store = await open(t)
    t.is(await store.meta.get('root-authority'), undefined)
    t.true(await store.meta.put('root-authority', 'acme-root', true))
    t.false(await store.meta.put('root-authority', 'other', true))
    t.is(await store.meta.get('root-authority'), 'acme-root')
    t.true(await store.meta.put('root-authority', 'other'))
    t.is(await store.meta.get('root-authority'), 'other')
    t.true(await store.meta.put('root-authority', 'other'))
    const multiline = 'type: account\naccount-id: x\n\nSIG\n'
    t.true(await store.meta.put('root-account', multiline))
    t.is(await store.meta.get('root-account'), multiline)
    t.is(await store.meta.get('root-authority'), 'other')
  })

  test(g('concurrent puts with onlyIfAbsent: exactly one sets the value'), async (t) => {
    const store = await open(t)
    const { won } = await race(Array.from({ length: 10 }, (_, i) => store.meta.put('instance-id', `i-${i}`, true).then((set) => (set ? i : -1))))
    const winners = won.filter((i) => i >= 0)
    t.is(winners.length, 1)
    t.is(await store.meta.get('instance-id'), `i-${winners[0]}`)
  })

  if (options.supports.reopen) {
    test(g('values survive close and open'), async (t) => {
      const store = await open(t)
      await store.meta.put('root-authority', 'acme-root')
      await store.close()
      await store.open()
      t.is(await store.meta.get('root-authority'), 'acme-root')
    })
  }
}
