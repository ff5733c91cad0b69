/**
 * The CLI in-process (run() with captured output): status, serial (with a
 * serialport source on a real pty), reset, --print-config, usage errors, and
 * provision with a serialport serial source against a real vault.
 */
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { ReadlineParser, SerialPort } from 'serialport'
import { run, type CliIo } from '../../device-agent/src/main.js'
import { startTestVault } from '../helpers/vault.js'
import { startPtyPair } from './serial/jig.js'
import { ROOT } from './helpers/fakes.js'

function io(env: Record<string, string> = {}): CliIo & { stdout: () => string; stderr: () => string } {
  let out = ''
  let err = ''
  return { out: (s) => void (out += s), err: (s) => void (err += s), env, isTty: false, stdout: () => out, stderr: () => err }
}

async function tmp(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sv-agent-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A "device" on the pty's far end: answers `SN?` with `SN: <serial>`. */
async function serialJig(t: ExecutionContext, serial: string): Promise<string> {
  const pty = await startPtyPair((c) => t.teardown(c))
  const port = new SerialPort({ path: pty.b, baudRate: 115200 })
  await new Promise<void>((resolve, reject) => port.once('open', () => resolve()).once('error', reject))
  t.teardown(() => new Promise<void>((r) => (port.isOpen ? port.close(() => r()) : r())))
  const lines = port.pipe(new ReadlineParser({ delimiter: '\r\n' }))
  lines.on('data', (line: string) => {
    if (line.trim() === 'SN?') port.write(`boot banner\r\nSN: ${serial}\r\n`)
  })
  return pty.a
}

test('cli: status of a fresh state directory is "new" (human and JSON)', async (t) => {
  const dir = await tmp(t)
  const a = io()
  t.is(await run(['status', '--json', '--state-dir', dir], a), 0)
  const s = JSON.parse(a.stdout()) as { state: string; provisioned: boolean }
  t.is(s.state, 'new')
  t.false(s.provisioned)
  const b = io()
  t.is(await run(['status', '--state-dir', join(dir, 'missing')], b), 0)
  t.regex(b.stdout(), /^state:\s+new/m)
})

test('cli: a corrupt state is reported with its code and exit 1', async (t) => {
  const dir = await tmp(t)
  await writeFile(join(dir, 'state.json'), '{')
  const a = io()
  t.is(await run(['status', '--state-dir', dir], a), 1)
  t.regex(a.stderr(), /SV_AGENT_STATE_CORRUPT/)
})

test('cli: serial prints the value and its source; from a devicetree root; JSON lists what was tried', async (t) => {
  const a = io()
  t.is(await run(['serial', '--serial-value', 'CLI-0001'], a), 0)
  t.is(a.stdout(), 'CLI-0001\nsource: value (configured value)\n')
  const dir = await tmp(t)
  const cfg = join(dir, 'agent.json')
  await writeFile(cfg, JSON.stringify({ serial: { root: join(ROOT, 'fixtures/hardware/rpi4'), sources: [{ kind: 'dmi' }, { kind: 'devicetree' }] } }))
  const b = io()
  t.is(await run(['serial', '--json', '--config', cfg], b), 0)
  const s = JSON.parse(b.stdout()) as { serial: string; source: string; tried: { source: string; ok: boolean }[] }
  t.is(s.source, 'devicetree')
  t.true(s.serial.length > 0)
  t.deepEqual(
    s.tried.map((x) => [x.source, x.ok]),
    [
      ['dmi', false],
      ['dmi', false],
      ['devicetree', true],
    ],
  )
  const c = io()
  await writeFile(cfg, JSON.stringify({ serial: { root: join(ROOT, 'fixtures/hardware/empty'), sources: [{ kind: 'dmi' }] } }))
  t.is(await run(['serial', '--config', cfg], c), 1)
  t.regex(c.stderr(), /SV_AGENT_SERIAL_NOT_FOUND/)
})

// Issue 13: `serial --json` printed nothing on stdout when no source gave a
// serial. A real process: the failure as JSON on stdout, the usual line on
// stderr, exit 1; and an invalid configuration the same way, exit 2.
test('cli: serial --json prints the failure as {code, message, details} on stdout (real process)', async (t) => {
  const dir = await tmp(t)
  const cfg = join(dir, 'agent.json')
  await writeFile(cfg, JSON.stringify({ serial: { root: join(ROOT, 'fixtures/hardware/empty'), sources: [{ kind: 'dmi' }] } }))
  // async, so the other tests of this file (a vault in this process) keep running
  const agent = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ['--import', 'tsx', '--conditions=source', join(ROOT, 'device-agent/src/main.ts'), ...args], { cwd: ROOT, timeout: 60_000, env: { ...process.env, AGENT_STATE_DIR: dir } }, (_e, stdout, stderr) =>
        resolve({ code: child.exitCode, stdout, stderr }),
      )
    })
  const r = await agent(['serial', '--json', '--config', cfg])
  t.is(r.code, 1, r.stderr)
  const out = JSON.parse(r.stdout) as { code: string; message: string; details: { tried: Array<{ source: string }> } }
  t.is(out.code, 'SV_AGENT_SERIAL_NOT_FOUND')
  t.true(out.message.length > 0)
  t.deepEqual(out.details.tried.map((x) => x.source), ['dmi', 'dmi'])
  t.regex(r.stderr, /^device-agent: .+ \(SV_AGENT_SERIAL_NOT_FOUND\)\n$/)

  await writeFile(cfg, JSON.stringify({ serial: { sources: [{ kind: 'no-such-kind' }] } }))
  const bad = await agent(['serial', '--json', '--config', cfg])
  t.is(bad.code, 2, bad.stderr)
  t.is((JSON.parse(bad.stdout) as { code: string }).code, 'SV_AGENT_CONFIG_INVALID')
})

test('cli: serial from a serialport source (real pty, socat) configured in a YAML file', async (t) => {
  const path = await serialJig(t, 'JIG-4242')
  const dir = await tmp(t)
  const cfg = join(dir, 'agent.yaml')
  await writeFile(cfg, `serial:\n  sources:\n    - kind: serialport\n      path: ${path}\n      baudRate: 115200\n      query: 'SN?\\r\\n'\n      responsePattern: '^SN: (\\S+)$'\n      timeoutMs: 3000\n`)
  const a = io()
  t.is(await run(['serial', '--config', cfg], a), 0, a.stderr())
  t.is(a.stdout(), `JIG-4242\nsource: serialport (${path})\n`)
})

test('cli: provision takes its serial from the serialport source; the vault logs it in the body', async (t) => {
  const path = await serialJig(t, 'JIG-PROV-7')
  const vault = await startTestVault(t, { tls: true })
  const dir = await tmp(t)
  const ca = join(dir, 'ca.pem')
  await writeFile(ca, vault.caPem!)
  const cfg = join(dir, 'agent.yaml')
  await writeFile(
    cfg,
    [
      'brand: acme-brand',
      'model: acme-pi-gateway',
      `stateDir: ${join(dir, 'state')}`,
      'vault:',
      `  url: ${vault.url}`,
      `  ca: ${ca}`,
      'trust:',
      `  anchors: [${vault.trusted}]`,
      'key: { bits: 2048 }',
      'log: { level: silent }',
      'serial:',
      '  sources:',
      `    - { kind: serialport, path: ${path}, baudRate: 115200, query: "SN?\\r\\n", responsePattern: "^SN: (\\\\S+)$", timeoutMs: 3000 }`,
      '',
    ].join('\n'),
  )
  const a = { ...io({ AGENT_API_KEY: vault.apiKey }), isTty: true }
  t.is(await run(['provision', '--once', '--config', cfg], a), 0, a.stderr())
  t.regex(a.stderr(), /generating the device key \(RSA-2048\): \d+\.\d s/, 'progress on a terminal')
  t.regex(a.stdout(), /serial JIG-PROV-7/)
  const binding = await vault.vault.store.registrations.getBinding('acme-brand', 'acme-pi-gateway', 'JIG-PROV-7')
  t.truthy(binding)
  t.true(binding!.serialAssertion.includes('serial-source: "serialport"'))
})

test('cli: --print-config shows the resolved config with the API key redacted', async (t) => {
  const a = io({ AGENT_API_KEY: 'top-secret', AGENT_BRAND: 'acme-brand' })
  t.is(await run(['provision', '--print-config', '--model', 'm1', '--url', 'https://v/v1/', '--trusted', '/r.assert'], a), 0)
  const c = JSON.parse(a.stdout()) as { brand: string; model: string; vault: { apiKey: string } }
  t.is(c.brand, 'acme-brand')
  t.is(c.model, 'm1')
  t.is(c.vault.apiKey, '<redacted>')
  t.false(a.stdout().includes('top-secret'))
})

test('cli: usage errors exit 2', async (t) => {
  for (const argv of [['frobnicate'], ['reset'], ['provision', '--key-bits', 'x', '--brand', 'b']]) {
    const a = io()
    t.is(await run(argv, a), 2, argv.join(' '))
  }
})

test('cli: provision with a bad trust anchor file is a configuration error before any network', async (t) => {
  const dir = await tmp(t)
  await writeFile(join(dir, 'root.assert'), 'not an assertion')
  const a = io()
  const code = await run(['provision', '--once', '--brand', 'acme-brand', '--model', 'm', '--url', 'http://127.0.0.1:9/v1/', '--trusted', join(dir, 'root.assert'), '--state-dir', join(dir, 's')], a)
  t.is(code, 2)
  t.regex(a.stderr(), /SV_AGENT_CONFIG_INVALID/)
})

test('cli: reset --yes removes the key, the state and the written serial', async (t) => {
  const dir = await tmp(t)
  for (const f of ['device-key.pem', 'state.json', 'serial.assert', 'chain.assert', 'keep.txt']) await writeFile(join(dir, f), '{"version":1,"state":"new"}')
  const a = io()
  t.is(await run(['reset', '--yes', '--state-dir', dir, '--log-level', 'silent'], a), 0)
  t.deepEqual(await readdir(dir), ['keep.txt'])
  t.regex(a.stdout(), /^reset: removed /)
  const b = io()
  t.is(await run(['reset', '--yes', '--state-dir', join(dir, 'none'), '--log-level', 'silent'], b), 0)
  t.is(b.stdout(), 'reset: nothing to remove\n')
  t.is(await readFile(join(dir, 'keep.txt'), 'utf8'), '{"version":1,"state":"new"}')
})
