import test from 'ava'
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { AgentError } from '../../device-agent/src/errors.js'
import { agentPaths, loadAgentConfig, normalisePin, printableConfig, setYamlParser, type LoadAgentConfigInput } from '../../device-agent/src/config.js'

setYamlParser((t) => parseYaml(t))

const NEEDED = { brand: 'acme-brand', model: 'acme-pi-gateway', vault: { url: 'https://vault.example/v1/' }, trust: { anchors: ['/etc/root.assert'] } }

function load(input: Partial<LoadAgentConfigInput> = {}) {
  return loadAgentConfig({ flags: {}, env: {}, readFile: () => undefined, purpose: 'status', ...input })
}

function problems(fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    if (err instanceof AgentError && err.code === 'SV_AGENT_CONFIG_INVALID') return err.details?.problems as string[]
    throw err
  }
  throw new Error('expected SV_AGENT_CONFIG_INVALID')
}

test('config: defaults are snapd-like', (t) => {
  const { config } = load()
  t.is(config.key.bits, 4096)
  t.is(config.stateDir, '/var/lib/device-agent')
  t.like(config.vault, { connectTimeoutMs: 10_000, headersTimeoutMs: 15_000, totalTimeoutMs: 30_000 })
  t.like(config.retry, { pollIntervalMs: 60_000, requestIdMaxTentatives: 15, attemptInitialMs: 300_000, attemptCeilingMs: 86_400_000 })
  t.deepEqual(
    config.serial.sources.map((s) => s.kind),
    ['devicetree', 'cpuinfo', 'dmi'],
  )
  t.true(Object.isFrozen(config) && Object.isFrozen(config.vault))
  t.deepEqual(agentPaths(config), {
    stateDir: '/var/lib/device-agent',
    checkpoint: '/var/lib/device-agent/state.json',
    deviceKey: '/var/lib/device-agent/device-key.pem',
    lock: '/var/lib/device-agent/agent.lock',
    serialOutput: '/var/lib/device-agent/serial.assert',
    chainOutput: '/var/lib/device-agent/chain.assert',
  })
})

test('config: provision needs brand, model, the vault URL and a trust anchor, all reported at once (exit 2)', (t) => {
  const p = problems(() => load({ purpose: 'provision' }))
  for (const path of ['brand', 'model', 'vault.url', 'trust.anchors']) t.true(p.some((x) => x.startsWith(path)), path)
  t.is(new AgentError('SV_AGENT_CONFIG_INVALID', 'x').exitCode, 2)
  t.notThrows(() => load({ purpose: 'provision', flags: NEEDED }))
})

test('config: layers: file < environment < flags; lists replace', (t) => {
  const file = `
brand: file-brand
model: file-model
vault:
  url: https://file.example/v1/
  headers: { X-Site: plant-7 }
retry: { pollIntervalMs: 1000 }
serial:
  sources:
    - { kind: dmi }
    - { kind: file, path: /etc/serial, pattern: "SN=(\\\\w+)" }
`
  const { config, file: from } = load({
    configFile: '/etc/agent.yaml',
    readFile: (p) => (p === '/etc/agent.yaml' ? file : undefined),
    env: { AGENT_MODEL: 'env-model', AGENT_POLL_INTERVAL_MS: '2000', AGENT_SERIAL_VALUE: 'ENV-SN' },
    flags: { model: 'flag-model' },
  })
  t.is(from, '/etc/agent.yaml')
  t.is(config.brand, 'file-brand')
  t.is(config.model, 'flag-model')
  t.is(config.retry.pollIntervalMs, 2000)
  t.deepEqual(config.vault.headers, { 'X-Site': 'plant-7' })
  t.deepEqual(config.serial.sources, [{ kind: 'value', value: 'ENV-SN' }])
})

test('config: a JSON file; a missing file; a file that is not a mapping', (t) => {
  t.is(load({ configFile: '/a.json', readFile: () => '{"brand":"json-brand"}' }).config.brand, 'json-brand')
  t.true(problems(() => load({ configFile: '/missing.yaml' }))[0]!.includes('not found'))
  t.true(problems(() => load({ configFile: '/list.yaml', readFile: () => '- a\n- b\n' }))[0]!.includes('mapping'))
  t.is(problems(() => load({ configFile: '/bad.json', readFile: () => '{' })).length, 1)
})

test('config: serial sources are checked, the serialport kind included', (t) => {
  const ok = load({ flags: { serial: { sources: [{ kind: 'serialport', path: '/dev/ttyUSB0', baudRate: 115200, query: 'SN?\\r\\n', responsePattern: '^SN: (\\S+)$', timeoutMs: 2000 }] } } })
  t.is(ok.config.serial.sources[0]!.kind, 'serialport')
  const p = problems(() => load({ flags: { serial: { sources: [{ kind: 'serialport', path: '/dev/ttyUSB0', baudRate: 0, query: 'x', responsePattern: '(a)(b)', timeoutMs: 1 }, { kind: 'nope' }] } } }))
  t.true(p.some((x) => x.startsWith('serial.sources.0') && x.includes('baudRate')))
  t.true(p.some((x) => x.startsWith('serial.sources.0') && x.includes('capture group')))
  t.true(p.some((x) => x.startsWith('serial.sources.1')))
})

test('config: environment variables: types, unknown AGENT_* warned, AGENT_TEST_* not', (t) => {
  const { config } = load({ env: { AGENT_KEY_BITS: '2048', AGENT_BODY_HARDWARE: 'false' } })
  const { warnings } = load({ env: { AGENT_TYPO: '1', AGENT_TEST_PAUSE_AFTER: 'key-written', AGENT_SERIAL_VALUE: 'X' } })
  t.is(config.key.bits, 2048)
  t.false(config.registration.hardware)
  t.deepEqual(warnings, ['unknown environment variable AGENT_TYPO (ignored)'])
  t.true(problems(() => load({ env: { AGENT_KEY_BITS: 'many' } })).some((x) => x.startsWith('AGENT_KEY_BITS')))
  t.true(problems(() => load({ env: { AGENT_KEY_BITS: '1024' } })).some((x) => x.startsWith('key.bits')))
})

test('config: proxies from the standard variables, lower case first', (t) => {
  const { config } = load({ env: { HTTPS_PROXY: 'http://upper:3128', https_proxy: 'http://lower:3128', NO_PROXY: 'localhost,.lan', HTTP_PROXY: 'http://plain:3128' } })
  t.deepEqual(config.vault.proxy, { https: 'http://lower:3128', http: 'http://plain:3128', noProxy: 'localhost,.lan' })
})

test('config: the API key from a file, redacted when printed', (t) => {
  const { config } = load({ apiKeyFile: '/run/secrets/key', readFile: (p) => (p === '/run/secrets/key' ? 'sekrit-123\n' : undefined), flags: NEEDED, purpose: 'provision' })
  t.is(config.vault.apiKey, 'sekrit-123')
  const printed = printableConfig(config)
  t.false(printed.includes('sekrit-123'))
  t.true(printed.includes('<redacted>'))
  t.true(problems(() => load({ apiKeyFile: '/nope' })).some((x) => x.includes('/nope')))
})

test('config: values are validated (URL scheme, model case, pins, timeouts)', (t) => {
  const p = problems(() => load({ flags: { vault: { url: 'ftp://x/', pins: ['nope'], headersTimeoutMs: 0 }, model: 'Pi-Model', brand: 'x' } }))
  for (const path of ['vault.url', 'vault.pins.0', 'vault.headersTimeoutMs', 'model', 'brand']) t.true(p.some((x) => x.startsWith(path)), path)
})

test('config: pins in every usual spelling normalise to the same base64', (t) => {
  const b64 = 'n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg='
  const hex = Buffer.from(b64, 'base64').toString('hex')
  t.is(normalisePin(`sha256/${b64}`), b64)
  t.is(normalisePin(b64), b64)
  t.is(normalisePin(b64.replace(/\+/g, '-').replace(/\//g, '_')), b64)
  t.is(normalisePin(hex), b64)
  t.is(normalisePin(hex.replace(/(..)(?!$)/g, '$1:').toUpperCase()), b64)
  t.is(normalisePin('sha256/short'), undefined)
})

test('config: the packaged example (device-agent/packaging/agent.yaml.example) is valid for provision', (t) => {
  const path = new URL('../../device-agent/packaging/agent.yaml.example', import.meta.url).pathname
  const { config } = loadAgentConfig({ flags: {}, env: {}, readFile: (p) => readFileSync(p, 'utf8'), configFile: path, purpose: 'provision' })
  t.is(config.brand, 'acme-brand')
  t.deepEqual(
    config.serial.sources.map((s) => s.kind),
    ['devicetree', 'dmi', 'serialport'],
  )
})

test('config: serial.policy is device by default, assign from AGENT_SERIAL_POLICY or the file; assign with a given serial, or another word, is refused', (t) => {
  t.is(load().config.serial.policy, 'device')
  t.is(load({ env: { AGENT_SERIAL_POLICY: 'assign' } }).config.serial.policy, 'assign')
  t.is(load({ configFile: 'a.json', readFile: () => JSON.stringify({ serial: { policy: 'assign' } }) }).config.serial.policy, 'assign')
  const both = problems(() => load({ purpose: 'provision', flags: { ...NEEDED, serial: { policy: 'assign' } }, env: { AGENT_SERIAL_VALUE: 'SN-1' } }))
  t.deepEqual(both, ['serial.policy: assign (the vault assigns the serial) and a given serial (--serial-value, AGENT_SERIAL_VALUE, a value source) exclude each other'])
  t.true(problems(() => load({ env: { AGENT_SERIAL_POLICY: 'vault' } })).some((p) => p.startsWith('serial.policy')))
})
