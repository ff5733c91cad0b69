/**
 * MqttRouter without a broker: the real services of a test vault (MQTT off)
 * behind a router with an injected clock, so rate limits and duplicate
 * handling are checked to the millisecond. What the broker adds (ACL,
 * authentication, packet sizes) is in embedded.test.ts and external.test.ts.
 */
import test, { type ExecutionContext } from 'ava'
import { Buffer } from 'node:buffer'
import { pino } from 'pino'
import { replyTopic, requestTopic } from '@sv/shared'
import { startTestVault, type TestVault } from '../../helpers/vault.js'
import { MqttRouter, type MqttIncoming, type MqttOutgoing } from '../../../vault-server/src/mqtt/router.js'

interface Ctx {
  v: TestVault
  router: MqttRouter
  clock: { now: number }
  logLines: Record<string, unknown>[]
}

async function setup(t: ExecutionContext, o: { ratePerSecond?: number; rateBurst?: number; maxPayloadBytes?: number } = {}): Promise<Ctx> {
  const v = await startTestVault(t, { store: 'memory', workers: 1 })
  const logLines: Record<string, unknown>[] = []
  const log = pino({ level: 'debug' }, { write: (s: string) => void logLines.push(JSON.parse(s) as Record<string, unknown>) })
  const clock = { now: 1_800_000_000_000 }
  const { services, admission } = v.vault
  const router = new MqttRouter({
    registration: services.registration,
    admission,
    log,
    maxPayloadBytes: o.maxPayloadBytes ?? 256 * 1024,
    ratePerSecond: o.ratePerSecond ?? 20,
    rateBurst: o.rateBurst ?? 40,
    now: () => clock.now,
  })
  return { v, router, clock, logLines }
}

function ridRequest(c: Ctx, client: string, token: string, extra: Partial<MqttIncoming> = {}): MqttIncoming {
  return { topic: requestTopic('request-id'), payload: Buffer.from(JSON.stringify({ token, 'api-key': c.v.apiKey })), clientId: client, ...extra }
}

function parse(out: MqttOutgoing | undefined): Record<string, unknown> {
  if (!out) throw new Error('the message was dropped')
  return JSON.parse(out.payload.toString('utf8')) as Record<string, unknown>
}

test('router: past the burst a client is answered SV_RATE_LIMITED, past twice the burst dropped with one log line; others are unaffected', async (t) => {
  const c = await setup(t, { ratePerSecond: 10, rateBurst: 5 })
  const results: (MqttOutgoing | undefined)[] = []
  for (let i = 0; i < 1000; i++) results.push(await c.router.handle(ridRequest(c, 'flooder', `f${i}`)))
  const accepted = results.filter((r) => r?.topic === replyTopic('request-id', 'flooder', 'accepted'))
  const limited = results.filter((r) => r?.topic === replyTopic('request-id', 'flooder', 'rejected'))
  t.is(accepted.length, 5)
  t.is(limited.length, 5)
  t.like(parse(limited[0]), { code: 'SV_RATE_LIMITED', status: 429, 'retry-after': 1 })
  t.is(results.filter((r) => r === undefined).length, 990)
  t.is(c.logLines.filter((l) => l.msg === 'mqtt.message_dropped' && l.reason === 'rate limit (flood)').length, 1)
  // another client at the same instant
  t.is((await c.router.handle(ridRequest(c, 'bystander', 'b1')))?.topic, replyTopic('request-id', 'bystander', 'accepted'))
})

test('router: a client that stops flooding is answered again after 2/rate s and served after (burst + 2)/rate s, however long the flood', async (t) => {
  const c = await setup(t, { ratePerSecond: 10, rateBurst: 5 })
  for (let i = 0; i < 10_000; i++) await c.router.handle(ridRequest(c, 'flooder', `f${i}`))
  c.clock.now += 150
  t.is(await c.router.handle(ridRequest(c, 'flooder', 'a1')), undefined, 'still dropped 150 ms later')
  c.clock.now += 250
  t.like(parse(await c.router.handle(ridRequest(c, 'flooder', 'a2'))), { code: 'SV_RATE_LIMITED' })
  c.clock.now += 800
  const out = await c.router.handle(ridRequest(c, 'flooder', 'a3'))
  t.is(out?.topic, replyTopic('request-id', 'flooder', 'accepted'), `got ${out?.payload.toString()}`)
})

test('router: duplicates get the first reply; a transient refusal is not replayed to a retry of the same token', async (t) => {
  const c = await setup(t, { ratePerSecond: 1, rateBurst: 1 })
  const first = await c.router.handle(ridRequest(c, 'dev', 'tok-1'))
  const dup = await c.router.handle(ridRequest(c, 'dev', 'tok-1'))
  t.truthy(first)
  t.true(first!.payload.equals(dup!.payload), 'the duplicate gets the same request-id')
  // rate limited now (burst 1, and the duplicate counted)
  c.clock.now += 1000
  t.like(parse(await c.router.handle(ridRequest(c, 'dev', 'tok-2'))), { code: 'SV_RATE_LIMITED', token: 'tok-2' })
  c.clock.now += 2100
  const retried = await c.router.handle(ridRequest(c, 'dev', 'tok-2'))
  t.is(retried?.topic, replyTopic('request-id', 'dev', 'accepted'))
  // a final refusal is remembered: the duplicate gets it without a second look-up
  c.clock.now += 2000
  const bad = { topic: requestTopic('request-id'), payload: Buffer.from(JSON.stringify({ token: 'tok-3', 'api-key': 'wrong' })), clientId: 'dev' }
  const r1 = await c.router.handle(bad)
  c.clock.now += 2000
  const r2 = await c.router.handle(bad)
  t.like(parse(r1), { code: 'SV_API_KEY_INVALID', token: 'tok-3' })
  t.true(r1!.payload.equals(r2!.payload))
})

test('router: MQTT 5 response topic and correlation data are honoured; a response topic outside serial-vault/v1/ is dropped', async (t) => {
  const c = await setup(t)
  const correlationData = Buffer.from([1, 2, 3, 0xff])
  const ok = await c.router.handle({ topic: requestTopic('request-id'), payload: Buffer.from(JSON.stringify({ 'api-key': c.v.apiKey })), responseTopic: 'serial-vault/v1/replies/dev5', correlationData })
  t.is(ok?.topic, 'serial-vault/v1/replies/dev5')
  t.deepEqual(ok?.correlationData, correlationData)
  t.like(parse(ok), { result: 'accepted' })
  const again = await c.router.handle({ topic: requestTopic('request-id'), payload: Buffer.from(JSON.stringify({ 'api-key': c.v.apiKey })), responseTopic: 'serial-vault/v1/replies/dev5', correlationData })
  t.true(again!.payload.equals(ok!.payload), 'the same correlation data on the same response topic is a duplicate')
  const refused = await c.router.handle({ topic: requestTopic('request-id'), payload: Buffer.from(JSON.stringify({ 'api-key': 'wrong' })), responseTopic: 'serial-vault/v1/replies/dev5', correlationData: Buffer.from('other') })
  t.like(parse(refused), { result: 'rejected', code: 'SV_API_KEY_INVALID' })
  t.deepEqual(refused?.correlationData, Buffer.from('other'))
  for (const responseTopic of ['elsewhere/replies', 'serial-vault/v1/serial', 'serial-vault/v1/+/x', 'serial-vault/v1/#', `serial-vault/v1/${'x'.repeat(600)}`]) {
    t.is(await c.router.handle({ topic: requestTopic('request-id'), payload: Buffer.from('{}'), responseTopic, correlationData }), undefined, responseTopic)
  }
  t.is(c.logLines.filter((l) => l.msg === 'mqtt.message_dropped' && l.reason === 'response topic outside serial-vault/v1/').length, 5)
})

test('router: with no reply address (no client id, no response topic) bad input is dropped with a log line', async (t) => {
  const c = await setup(t, { maxPayloadBytes: 1024 })
  const cases: [Buffer, string][] = [
    [Buffer.from('garbage'), 'unparsable payload, no reply address'],
    [Buffer.alloc(2000, 0x7b), 'payload too large, no reply address'],
    [Buffer.from(JSON.stringify({ token: 't', 'api-key': 'k' })), 'no client and no response topic'],
  ]
  for (const [payload, reason] of cases) {
    t.is(await c.router.handle({ topic: requestTopic('serial'), payload }), undefined, reason)
    t.is(c.logLines.filter((l) => l.msg === 'mqtt.message_dropped' && l.reason === reason).length, 1, reason)
  }
  t.is(await c.router.handle({ topic: 'serial-vault/v1/other', payload: Buffer.from('{}'), clientId: 'dev' }), undefined)
  t.is(await c.router.handle({ topic: requestTopic('serial'), payload: Buffer.from('{}'), clientId: 'bad/id' }), undefined)
  t.deepEqual(
    c.logLines.filter((l) => l.msg === 'mqtt.message_dropped').map((l) => l.reason).slice(3),
    ['not a request topic', 'client id unusable in a topic'],
  )
})

test('router: over an external broker (no publisher id) each client named in the payload has its own bucket', async (t) => {
  const c = await setup(t, { ratePerSecond: 1, rateBurst: 1 })
  const external = (client: string, token: string): MqttIncoming => ({ topic: requestTopic('request-id'), payload: Buffer.from(JSON.stringify({ client, token, 'api-key': c.v.apiKey })) })
  // 100 devices at one instant: every one is served (they shared one 'anonymous' bucket before)
  const outs = await Promise.all(Array.from({ length: 100 }, (_, i) => c.router.handle(external(`dev-${i}`, 't1'))))
  t.deepEqual(
    outs.map((o) => o?.topic),
    outs.map((_, i) => replyTopic('request-id', `dev-${i}`, 'accepted')),
  )
  // and one of them asking again at once is limited, alone
  t.like(parse(await c.router.handle(external('dev-0', 't2'))), { code: 'SV_RATE_LIMITED' })
  t.is((await c.router.handle(external('dev-1', 't1')))?.topic, replyTopic('request-id', 'dev-1', 'accepted'), 'a duplicate of dev-1 still gets its first reply')
})

test('router: over an external broker an invalid request that names a usable client is rejected to that client', async (t) => {
  const c = await setup(t)
  const out = await c.router.handle({ topic: requestTopic('serial'), payload: Buffer.from(JSON.stringify({ client: 'dev-x', token: 'bad/token', 'api-key': 'k' })) })
  t.is(out?.topic, replyTopic('serial', 'dev-x', 'rejected'))
  t.like(parse(out), { code: 'SV_REQUEST_INVALID', status: 400 })
  // a client id that cannot be a topic level is no reply address
  t.is(await c.router.handle({ topic: requestTopic('serial'), payload: Buffer.from(JSON.stringify({ client: 'a/+', token: 5 })) }), undefined)
})

test('router: retry-after is the time until the next message is served, and honouring it is enough', async (t) => {
  for (const [rate, burst, expected] of [[0.5, 1, 4], [20, 40, 1], [1, 3, 2]] as const) {
    const c = await setup(t, { ratePerSecond: rate, rateBurst: burst })
    for (let i = 0; i < burst; i++) await c.router.handle(ridRequest(c, 'dev', `ok${i}`))
    const limited = parse(await c.router.handle(ridRequest(c, 'dev', 'limited')))
    t.like(limited, { code: 'SV_RATE_LIMITED', 'retry-after': expected }, `rate ${rate} burst ${burst}`)
    c.clock.now += (limited['retry-after'] as number) * 1000
    t.is((await c.router.handle(ridRequest(c, 'dev', 'after')))?.topic, replyTopic('request-id', 'dev', 'accepted'), `rate ${rate} burst ${burst}`)
  }
})
