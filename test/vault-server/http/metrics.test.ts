/**
 * /metrics as a scraper sees it: counters by name and labels after real
 * registrations over HTTPS and MQTT (one vault in this process), and where
 * it is served: `serve --metrics-listen` as a real process moves it off the
 * device port; `VAULT_METRICS_TOKEN` asks for a bearer token.
 */
import test, { type ExecutionContext } from 'ava'
import { spawn } from 'node:child_process'
import { startTestVault, ROOT } from '../../helpers/vault.js'
import { join } from 'node:path'
import { endpoint, fetchRequestId, fixtureDeviceKey, generateDeviceKey, httpRequest, jsonOf, postSerial, serialRequestStream } from '../../helpers/device.js'
import { connectMqtt, mqttRequest, mqttRequestId, subscribeReplies } from '../mqtt/mqtt-helpers.js'
import { metricValue } from './api.js'
import { runVaultCli } from '../../helpers/cli.js'

const BRAND = 'acme-brand'
const MODEL = 'acme-pi-gateway'

test('metrics: outcomes by transport, brand and model, request-ids by transport, after HTTPS and MQTT registrations; process metrics are sv_process_*', async (t) => {
  const v = await startTestVault(t, { tls: true, store: 'level', workers: 1, config: { mqtt: { mode: 'embedded', listen: '127.0.0.1:0' } } })
  const ca = v.caPem!
  const https = async (key: Parameters<typeof serialRequestStream>[0]['key'], serial: string, model = MODEL): Promise<number> => {
    const requestId = await fetchRequestId(v.url, v.apiKey, { ca })
    return (await postSerial(v.url, v.apiKey, await serialRequestStream({ key, brandId: BRAND, model, requestId, serial }), { ca })).status
  }
  t.is(await https(fixtureDeviceKey('device'), 'MET-1'), 200)
  t.is(await https(fixtureDeviceKey('evil'), 'MET-1'), 409)
  // a model the vault does not have: counted, but not under a label value the device chose
  t.is(await https(await generateDeviceKey(), 'MET-2', 'model-made-up-by-a-device'), 404)

  const c = await connectMqtt(t, v.vault.mqttUrl!, { clientId: 'met-1', username: 'met-1', password: v.apiKey, rejectUnauthorized: false })
  await subscribeReplies(c)
  for (const [key, serial] of [[fixtureDeviceKey('impostor'), 'MET-3'], [fixtureDeviceKey('impostor'), 'MET-3']] as const) {
    const requestId = await mqttRequestId(c, v.apiKey)
    const body = await serialRequestStream({ key, brandId: BRAND, model: MODEL, requestId, serial })
    t.is((await mqttRequest(c, 'serial', { 'api-key': v.apiKey, body: body.toString('utf8') })).kind, 'accepted')
  }
  // a request-id over MQTT that is never used
  await mqttRequestId(c, v.apiKey)

  const m = await httpRequest(endpoint(v.url, '../metrics'), { ca })
  t.is(m.status, 200)
  const text = m.body.toString('utf8')
  const outcomes = (labels: Record<string, string>) => metricValue(text, 'sv_serial_outcomes_total', labels)
  const known = { brand: BRAND, model: MODEL }
  t.is(outcomes({ outcome: 'issued', code: 'none', transport: 'https', ...known }), 1)
  t.is(outcomes({ outcome: 'refused', code: 'SV_SERIAL_TAKEN', transport: 'https', ...known }), 1)
  t.is(outcomes({ outcome: 'refused', code: 'SV_MODEL_UNKNOWN', transport: 'https', brand: '', model: '' }), 1)
  t.is(outcomes({ outcome: 'issued', code: 'none', transport: 'mqtt', ...known }), 1)
  t.is(outcomes({ outcome: 'retried', code: 'none', transport: 'mqtt', ...known }), 1)
  t.is(outcomes({}), 5)
  t.false(text.includes('model-made-up-by-a-device'))
  // never labelled by serial or key
  t.false(/sv_serial_outcomes_total\{[^}]*(serial|key)=/.test(text))
  t.is(metricValue(text, 'sv_request_ids_issued_total', { transport: 'https' }), 3)
  t.is(metricValue(text, 'sv_request_ids_issued_total', { transport: 'mqtt' }), 3)
  t.is(metricValue(text, 'sv_registration_duration_seconds_count', { transport: 'mqtt' }), 2)
  t.is(metricValue(text, 'sv_registration_duration_seconds_count', { transport: 'https' }), 3)
  t.is(metricValue(text, 'sv_signing_duration_seconds_count'), 2)
  // process metrics: sv_process_* and sv_nodejs_* (docs/deployment.md), not sv_process_process_* nor unprefixed
  t.true(metricValue(text, 'sv_process_cpu_seconds_total') > 0)
  t.true(metricValue(text, 'sv_process_resident_memory_bytes') > 0)
  t.true(/^sv_nodejs_heap_size_used_bytes \d/m.test(text))
  t.false(/^sv_process_process_/m.test(text))
  t.false(/^(process|nodejs)_/m.test(text))
})

interface Served {
  url: string
  metricsUrl: string | undefined
  stderr: () => string
}

/** `vault-server serve` as a real process until the test ends (SIGINT, then SIGKILL after 10 s); resolves once it says where it serves. */
function serve(t: ExecutionContext, args: string[], env: Record<string, string>): Promise<Served> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', join(ROOT, 'vault-server/src/main.ts'), 'serve', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode !== null) return
    child.kill('SIGINT')
    const hard = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(hard)
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start within 60 s:\n${stderr}`)), 60_000)
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8')
      const m = /serving (\S+) .*?(?:metrics on (\S+))?$/m.exec(stderr)
      if (m) {
        clearTimeout(timer)
        resolve({ url: m[1]!, metricsUrl: m[2], stderr: () => stderr })
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`serve exited before serving:\n${stderr}`))
    })
  })
}

test('metrics: serve --metrics-listen serves /metrics there only (404 on the device port); VAULT_METRICS_TOKEN asks for the bearer token', async (t) => {
  const v = await startTestVault(t)
  await v.close()
  const token = 'metrics-token-0123456789abcdef'
  const s = await serve(t, ['--data', v.dataDir, '--plain-http', '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0'], { VAULT_MASTER_KEY: v.masterKey, VAULT_MQTT_MODE: 'off', VAULT_METRICS_TOKEN: token, VAULT_LOG_LEVEL: 'warn' })
  t.truthy(s.metricsUrl, s.stderr())
  t.regex(s.metricsUrl!, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
  t.not(new URL(s.metricsUrl!).port, new URL(s.url).port)

  // the device port: not there (404 like any unknown path), whatever the credentials
  const onDevicePort = await httpRequest(endpoint(s.url, '../metrics'), { headers: { authorization: `Bearer ${token}` } })
  t.is(onDevicePort.status, 404)
  t.is(jsonOf(onDevicePort).code, 'SV_NOT_FOUND')
  // the device API still answers there
  t.is((await httpRequest(endpoint(s.url, 'health'))).status, 200)

  // the metrics listener: the token or 401
  const none = await httpRequest(s.metricsUrl!)
  t.is(none.status, 401)
  t.is(jsonOf(none).code, 'SV_UNAUTHENTICATED')
  t.is(none.headers['www-authenticate'], 'Bearer realm="serial-vault metrics"')
  t.is((await httpRequest(s.metricsUrl!, { headers: { authorization: 'Bearer wrong-token-0123456789abcdef' } })).status, 401)
  const ok = await httpRequest(s.metricsUrl!, { headers: { authorization: `Bearer ${token}` } })
  t.is(ok.status, 200)
  t.regex(String(ok.headers['content-type']), /^text\/plain/)
  t.regex(ok.body.toString('utf8'), /^sv_process_cpu_seconds_total /m)
  // and nothing else
  const post = await httpRequest(s.metricsUrl!, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  t.is(post.status, 405)
  t.is(post.headers.allow, 'GET')
  const other = await httpRequest(new URL('/v1/health', s.metricsUrl!))
  t.is(other.status, 404)
  t.is(jsonOf(other).code, 'SV_NOT_FOUND')
  t.false(s.stderr().includes(token), 'the token is in no log line')
})

test('metrics: by default /metrics is on the device port, open unless a token is set', async (t) => {
  const open = await startTestVault(t, { store: 'memory', workers: 1 })
  t.is((await httpRequest(endpoint(open.url, '../metrics'))).status, 200)
  t.is(open.vault.metricsUrl, undefined)
  const guarded = await startTestVault(t, { store: 'memory', workers: 1, config: { metrics: { token: 'a-token-of-sixteen-or-more' } } })
  const refused = await httpRequest(endpoint(guarded.url, '../metrics'))
  t.is(refused.status, 401)
  t.is(jsonOf(refused).code, 'SV_UNAUTHENTICATED')
  t.is((await httpRequest(endpoint(guarded.url, '../metrics'), { headers: { authorization: 'Bearer a-token-of-sixteen-or-more' } })).status, 200)
})

test('metrics: serve --print-config shows metrics.listen and redacts metrics.token', async (t) => {
  const token = 'metrics-token-never-printed-0123'
  const r = await runVaultCli(['serve', '--data', '/nonexistent-sv-data', '--plain-http', '--metrics-listen', '127.0.0.1:9464', '--print-config'], { env: { VAULT_METRICS_TOKEN: token, VAULT_MASTER_KEY: '' } })
  t.is(r.code, 0, r.stderr)
  t.deepEqual((JSON.parse(r.stdout) as { metrics: unknown }).metrics, { listen: '127.0.0.1:9464', token: '<redacted>' })
  t.false(r.stdout.includes(token))
  const bad = await runVaultCli(['serve', '--data', '/nonexistent-sv-data', '--plain-http', '--metrics-listen', 'nowhere', '--print-config'])
  // invalid configuration: exit 2 (not retryable), one line
  t.is(bad.code, 2, bad.stderr)
  t.is(bad.stderr.trimEnd().split('\n').length, 1, bad.stderr)
  t.regex(bad.stderr, /metrics\.listen: expected HOST:PORT/)
  t.regex(bad.stderr, /SV_CONFIG_INVALID/)
})
