/**
 * The agent over MQTT, end to end: a real vault (in this process) and the
 * real agent process, through the vault's embedded broker (MQTT 3.1.1) and
 * through the machine's Mosquitto (SV_TEST_MQTT_URL, default
 * mqtt://127.0.0.1:1883; .ci/run starts it), with MQTT 3.1.1 and 5. The serial
 * is checked by snapd's own code (snapd-check verify).
 */
import test from 'ava'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { PI_MODEL_HEADERS, startTestVault, type TestVault } from '../../helpers/vault.js'
import { runSnapdCheck } from '../../helpers/snapd-check.js'
import { runAgent } from '../helpers/agent-process.js'

const MOSQUITTO = process.env.SV_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883'
// this file's own topics on the shared Mosquitto: vaults of other test files
// (other shared-subscription groups) must not see, or answer, its requests
const PREFIX = `sv-test-${randomBytes(4).toString('hex')}/serial-vault/v1`

let embedded: TestVault
let external: TestVault
let work: string

test.before(async () => {
  embedded = await startTestVault(undefined, { config: { mqtt: { mode: 'embedded', listen: '127.0.0.1:0' } } })
  try {
    external = await startTestVault(undefined, { config: { mqtt: { mode: 'external', url: MOSQUITTO, group: `agent-test-${randomBytes(4).toString('hex')}`, topicPrefix: PREFIX } } })
  } catch (e) {
    throw new Error(`cannot reach Mosquitto at ${MOSQUITTO} (.ci/run starts it; or: mosquitto -d -c /etc/mosquitto/mosquitto.conf): ${(e as Error).message}`)
  }
  work = await mkdtemp(join(tmpdir(), 'sv-agent-mqtt-'))
})
test.after.always(async () => {
  for (const v of [embedded, external]) {
    await v?.close()
    if (v) await rm(v.dataDir, { recursive: true, force: true })
  }
  if (work) await rm(work, { recursive: true, force: true })
})

function args(v: TestVault, broker: string, serial: string, stateDir: string, extra: string[] = []): string[] {
  const prefix = v === external ? ['--mqtt-topic-prefix', PREFIX] : []
  return ['provision', '--once', '--transport', 'mqtt', '--broker', broker, ...prefix, '--api-key', v.apiKey, '--brand', 'acme-brand', '--model', 'acme-pi-gateway', '--serial-value', serial, '--trusted', v.trusted, '--state-dir', stateDir, '--key-bits', '2048', ...extra]
}

async function provisionAndVerify(t: import('ava').ExecutionContext, v: TestVault, broker: string, serial: string, extra: string[] = []): Promise<void> {
  const stateDir = join(work, serial)
  const r = await runAgent(args(v, broker, serial, stateDir, extra), { timeoutMs: 90_000 })
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, new RegExp(`^provisioned: acme-brand/acme-pi-gateway serial ${serial}`))
  const check = await runSnapdCheck(['verify', '--trusted', v.trusted, '--chain', join(stateDir, 'chain.assert'), join(stateDir, 'serial.assert')])
  t.is(check.code, 0, check.stdout + check.stderr)
  const log = (await v.vault.store.signingLog.query({ serial, limit: 10 })).entries
  t.deepEqual(log.map((e) => [e.outcome, e.transport]), [['issued', 'mqtt']])
  t.is(typeof log[0]!.timings?.['request-id-ms'], 'number', 'the agent telemetry reached the log over MQTT too')
}

test('mqtt: the agent provisions through the embedded broker (MQTT 3.1.1), snapd verifies the serial', async (t) => {
  await provisionAndVerify(t, embedded, embedded.vault.mqttUrl!, 'MQ-EMB-1')
})

test('mqtt: the agent provisions through Mosquitto (MQTT 3.1.1), snapd verifies the serial', async (t) => {
  await provisionAndVerify(t, external, MOSQUITTO, 'MQ-EXT-1')
})

test('mqtt: the agent provisions through Mosquitto with MQTT 5 (response topic, correlation data)', async (t) => {
  await provisionAndVerify(t, external, MOSQUITTO, 'MQ-EXT-5', ['--mqtt-version', '5'])
})

test('mqtt: a model whose serials the vault assigns: --serial-policy assign with no serial source, the assigned serial comes back over MQTT', async (t) => {
  await embedded.vault.services.models.create({ brandId: 'acme-brand', name: 'acme-mq-assigned', apiKeys: [embedded.apiKey], headers: PI_MODEL_HEADERS, serialPolicy: { kind: 'assign', template: 'MQA-{n:4}', start: 1 } })
  const root = join(work, 'assign-root')
  await mkdir(root, { recursive: true })
  const stateDir = join(work, 'assign')
  const r = await runAgent(['provision', '--once', '--transport', 'mqtt', '--broker', embedded.vault.mqttUrl!, '--api-key', embedded.apiKey, '--brand', 'acme-brand', '--model', 'acme-mq-assigned', '--serial-policy', 'assign', '--trusted', embedded.trusted, '--state-dir', stateDir, '--key-bits', '2048'], { timeoutMs: 90_000, env: { AGENT_SERIAL_ROOT: root } })
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /^provisioned: acme-brand\/acme-mq-assigned serial MQA-0001\n/)
  const check = await runSnapdCheck(['verify', '--trusted', embedded.trusted, '--chain', join(stateDir, 'chain.assert'), join(stateDir, 'serial.assert')])
  t.is(check.code, 0, check.stdout + check.stderr)
  const log = (await embedded.vault.store.signingLog.query({ serial: 'MQA-0001', limit: 10 })).entries
  t.deepEqual(log.map((e) => [e.outcome, e.transport, e.model]), [['issued', 'mqtt', 'acme-mq-assigned']])
})

test('mqtt: a wrong API key is refused by the embedded broker: exit 1 with the refusal recorded', async (t) => {
  const stateDir = join(work, 'bad-key')
  const r = await runAgent(['provision', '--once', '--transport', 'mqtt', '--broker', embedded.vault.mqttUrl!, '--api-key', 'not-the-api-key-0000', '--brand', 'acme-brand', '--model', 'acme-pi-gateway', '--serial-value', 'MQ-BAD', '--trusted', embedded.trusted, '--state-dir', stateDir, '--key-bits', '2048'], { timeoutMs: 90_000 })
  t.is(r.code, 1, r.stderr)
  const status = await runAgent(['status', '--json', '--state-dir', stateDir])
  t.regex(status.stdout, /SV_AGENT_VAULT_REFUSED/)
})

test('mqtt: a clone attempt over MQTT (same serial, another key) exits 1 with SV_SERIAL_TAKEN', async (t) => {
  const first = await runAgent(args(embedded, embedded.vault.mqttUrl!, 'MQ-CLONE', join(work, 'clone-a')), { timeoutMs: 90_000 })
  t.is(first.code, 0, first.stderr)
  const second = await runAgent(args(embedded, embedded.vault.mqttUrl!, 'MQ-CLONE', join(work, 'clone-b')), { timeoutMs: 90_000 })
  t.is(second.code, 1, second.stderr)
  const status = await runAgent(['status', '--json', '--state-dir', join(work, 'clone-b')])
  t.regex(status.stdout, /SV_SERIAL_TAKEN/)
})

test('mqtt: the transport needs a broker URL (exit 2)', async (t) => {
  const r = await runAgent(['provision', '--once', '--transport', 'mqtt', '--api-key', 'k', '--brand', 'acme-brand', '--model', 'acme-pi-gateway', '--trusted', embedded.trusted, '--state-dir', join(work, 'nobroker')])
  t.is(r.code, 2)
  t.regex(r.stderr, /vault\.broker: required to provision over MQTT/)
})

test('mqtt: deployments on one broker are isolated by their topic prefix: a device asking another prefix gets no answer', async (t) => {
  const stateDir = join(work, 'other-prefix')
  const r = await runAgent([...args(embedded, MOSQUITTO, 'MQ-NOBODY', stateDir), '--mqtt-topic-prefix', `nobody-${randomBytes(4).toString('hex')}/v1`], {
    env: { AGENT_TOTAL_TIMEOUT_MS: '1500' },
    timeoutMs: 60_000,
  })
  t.is(r.code, 3, 'no vault listens there: retry later')
  const status = await runAgent(['status', '--json', '--state-dir', stateDir])
  t.regex(status.stdout, /SV_AGENT_VAULT_UNAVAILABLE/)
  t.deepEqual((await external.vault.store.signingLog.query({ serial: 'MQ-NOBODY', limit: 10 })).entries, [])
})

test('mqtt: an embedded broker with its own topic prefix (three levels) serves an agent using it; its ACL follows the prefix', async (t) => {
  const prefix = 'acme/serial-vault/v1'
  const v = await startTestVault(t, { config: { mqtt: { mode: 'embedded', listen: '127.0.0.1:0', topicPrefix: prefix } } })
  const stateDir = join(work, 'embedded-prefix')
  const r = await runAgent(['provision', '--once', '--transport', 'mqtt', '--broker', v.vault.mqttUrl!, '--mqtt-topic-prefix', prefix, '--api-key', v.apiKey, '--brand', 'acme-brand', '--model', 'acme-pi-gateway', '--serial-value', 'MQ-PFX-1', '--trusted', v.trusted, '--state-dir', stateDir, '--key-bits', '2048'], { timeoutMs: 90_000 })
  t.is(r.code, 0, r.stderr)
  const wrong = await runAgent(['provision', '--once', '--transport', 'mqtt', '--broker', v.vault.mqttUrl!, '--api-key', v.apiKey, '--brand', 'acme-brand', '--model', 'acme-pi-gateway', '--serial-value', 'MQ-PFX-2', '--trusted', v.trusted, '--state-dir', join(work, 'embedded-prefix-2'), '--key-bits', '2048'], { timeoutMs: 90_000 })
  t.is(wrong.code, 1, 'the default prefix is outside this broker\'s ACL: the subscription is refused')
})
