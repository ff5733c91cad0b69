import test from 'ava'
import { Writable } from 'node:stream'
import { createLogger } from '../../vault-server/src/logger.js'

function capture(): { stream: Writable; lines: () => string[] } {
  const chunks: string[] = []
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk))
      cb()
    },
  })
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean) }
}

test('secrets carried by login, sessions and OIDC config never reach a log line', (t) => {
  const { stream, lines } = capture()
  const log = createLogger('info', stream)
  log.info(
    {
      req: { headers: { cookie: 'sv_session=s3cr3t-session', authorization: 'Bearer tok-abc' } },
      headers: { 'x-csrf-token': 'csrf-xyz', cookie: 'sv_session=other' },
      password: 'hunter2-password',
      login: { password: 'nested-password' },
      config: { auth: { oidc: [{ id: 'corp', clientSecret: 'client-secret-1' }] } },
      provider: { clientSecret: 'client-secret-2' },
      keep: 'visible-value',
    },
    'probe',
  )
  const out = lines().join('\n')
  for (const secret of [
    's3cr3t-session',
    'tok-abc',
    'csrf-xyz',
    'sv_session=other',
    'hunter2-password',
    'nested-password',
    'client-secret-1',
    'client-secret-2',
  ]) {
    t.false(out.includes(secret), `${secret} leaked: ${out}`)
  }
  t.true(out.includes('visible-value'))
  t.true(out.includes('<redacted>'))
})
