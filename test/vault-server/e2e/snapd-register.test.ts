/**
 * snapd's real first-boot registration client (`snapd-check register`, on
 * snapd 2.57.6's own code) against the vault over HTTPS. The vault runs in
 * this process, so snapd-check runs asynchronously (execFile with a timeout):
 * a synchronous child would block the event loop the vault answers on.
 *
 * TLS is checked for real: snapd trusts the system CA bundle only (spec
 * §5.5), and Go reads that bundle from SSL_CERT_FILE, so the vault's
 * development certificate is handed over that way instead of --insecure.
 *
 * When snapd-check is missing the tests fail (never skip) and say how to get it.
 */
import test, { type ExecutionContext } from 'ava'
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeStream } from '@sv/shared'
import { startTestVault, type TestVault } from '../../helpers/vault.js'
import { REPO_ROOT } from '../../helpers/vectors.js'
import { keyId } from '../../helpers/keys.js'
import { locateSnapdCheck, tempDir } from '../../helpers/snapd-check.js'
import { logEntries } from '../http/api.js'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function snapdCheck(t: ExecutionContext, args: string[], env: Record<string, string> = {}, timeoutMs = 90_000): Promise<Run> {
  const bin = locateSnapdCheck()
  if (bin instanceof Error) {
    t.fail(bin.message)
    throw bin
  }
  return new Promise((resolve) => {
    execFile(bin, args, { cwd: REPO_ROOT, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : null, stdout, stderr })
    })
  })
}

interface HttpStep {
  step: string
  status?: number
  'response-headers'?: Record<string, string>
  'response-body'?: string
  error?: string
}

interface Report {
  ok: boolean
  error?: string
  'device-key-sha3-384': string
  http: HttpStep[]
}

interface Env {
  v: TestVault
  dir: string
  /** SSL_CERT_FILE holding the vault's development certificate */
  tlsEnv: Record<string, string>
}

async function setup(t: ExecutionContext): Promise<Env> {
  const v = await startTestVault(t, { tls: true, store: 'memory', workers: 1 })
  const { dir, cleanup } = await tempDir('sv-register-')
  t.teardown(cleanup)
  const ca = join(dir, 'vault-ca.pem')
  await writeFile(ca, v.caPem!)
  return { v, dir, tlsEnv: { SSL_CERT_FILE: ca } }
}

/** `snapd-check register` with snapd's bounds shortened (1 s retry interval, 3 attempts). */
async function register(t: ExecutionContext, e: Env, name: string, o: { model?: string; serial: string; keyBits?: number; extra?: string[]; env?: Record<string, string> }): Promise<Run & { report: Report; serialFile: string }> {
  const report = join(e.dir, `${name}.report.json`)
  const serialFile = join(e.dir, `${name}.serial.assert`)
  const args = ['register', '--url', e.v.url, '--brand', 'acme-brand', '--model', o.model ?? 'acme-pi-gateway', '--serial', o.serial, '--api-key', e.v.apiKey]
  args.push('--trusted', e.v.trusted, '--chain', e.v.chainFile, '--save-serial', serialFile, '--json', report)
  args.push('--key-bits', String(o.keyBits ?? 2048), '--retry-interval', '1s', '--max-attempts', '3', '--max-tentatives', '3', ...(o.extra ?? []))
  const r = await snapdCheck(t, args, o.env ?? e.tlsEnv)
  let parsed: Report
  try {
    parsed = JSON.parse(await readFile(report, 'utf8')) as Report
  } catch {
    throw new Error(`snapd-check wrote no report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
  }
  return { ...r, report: parsed, serialFile }
}

function lastLine(s: string): string {
  return s.trimEnd().split('\n').at(-1) ?? ''
}

test("snapd register: snapd's client registers over HTTPS (dev certificate trusted), and snapd-check verify accepts the saved serial", async (t) => {
  t.timeout(120_000)
  const e = await setup(t)
  // a real 4096-bit device key, as snapd makes
  const r = await register(t, e, 'first', { serial: 'REG-0001', keyBits: 4096 })
  t.is(r.code, 0, r.stdout + r.stderr)
  t.is(lastLine(r.stdout), `register: OK serial=REG-0001 sign-key=${keyId('brand')}`)
  t.true(r.report.ok)
  t.deepEqual(
    r.report.http.map((h) => [h.step, h.status, h['response-headers']?.['Content-Type']]),
    [
      ['request-id', 200, 'application/json'],
      ['serial', 200, 'application/x.ubuntu.assertion'],
    ],
  )
  const saved = await readFile(r.serialFile)
  t.deepEqual(
    decodeStream(saved).map((a) => a.typeName),
    ['serial', 'account-key', 'account'],
  )
  const verify = await snapdCheck(t, ['verify', '--trusted', e.v.trusted, '--chain', e.v.chainFile, r.serialFile])
  t.is(verify.code, 0, verify.stdout + verify.stderr)
  const lines = verify.stdout.split('\n').filter((l) => /^#\d+ /.test(l))
  t.is(lines.length, 3)
  t.true(
    lines.every((l) => / OK\b/.test(l)),
    verify.stdout,
  )
  const log = await logEntries(e.v)
  t.like(log, [{ outcome: 'issued', serial: 'REG-0001', deviceKeyId: r.report['device-key-sha3-384'], revision: 1 }])
})

test('snapd register: a second device registers another serial', async (t) => {
  t.timeout(120_000)
  const e = await setup(t)
  const a = await register(t, e, 'a', { serial: 'REG-A' })
  const b = await register(t, e, 'b', { serial: 'REG-B' })
  t.is(a.code, 0, a.stdout + a.stderr)
  t.is(b.code, 0, b.stdout + b.stderr)
  t.regex(lastLine(b.stdout), /^register: OK serial=REG-B /)
  t.not(a.report['device-key-sha3-384'], b.report['device-key-sha3-384'])
  for (const f of [a.serialFile, b.serialFile]) {
    const verify = await snapdCheck(t, ['verify', '--trusted', e.v.trusted, '--chain', e.v.chainFile, f])
    t.is(verify.code, 0, verify.stdout + verify.stderr)
  }
  t.deepEqual(
    (await logEntries(e.v)).map((x) => [x.outcome, x.serial]),
    [
      ['issued', 'REG-A'],
      ['issued', 'REG-B'],
    ],
  )
})

test("snapd register: an unknown model fails, and snapd shows the vault's own message (JSON with Content-Type exactly application/json)", async (t) => {
  t.timeout(120_000)
  const e = await setup(t)
  const r = await register(t, e, 'unknown', { model: 'no-such-model', serial: 'REG-X', extra: ['--no-model'] })
  t.is(r.code, 1, r.stdout + r.stderr)
  const serialStep = r.report.http.find((h) => h.step === 'serial')
  t.is(serialStep?.status, 404)
  t.is(serialStep?.['response-headers']?.['Content-Type'], 'application/json')
  t.is(JSON.parse(serialStep?.['response-body'] ?? '{}').code, 'SV_MODEL_UNKNOWN')
  // the text snapd reports is the message the vault logged for this refusal
  const [refusal] = await logEntries(e.v, { outcome: 'refused' })
  t.is(refusal?.code, 'SV_MODEL_UNKNOWN')
  t.truthy(refusal?.message)
  const fail = lastLine(r.stdout)
  t.true(fail.startsWith('register: FAIL '), fail)
  t.true(fail.endsWith(refusal!.message!), `snapd's text ${JSON.stringify(fail)} ends with the vault's message ${JSON.stringify(refusal!.message)}`)
  t.false(fail.includes('unexpected status'))
  t.true(r.report.error?.endsWith(refusal!.message!))
})

test("snapd register: without the vault's certificate snapd refuses the TLS connection (it is checked, not skipped)", async (t) => {
  t.timeout(120_000)
  const e = await setup(t)
  const r = await register(t, e, 'untrusted', { serial: 'REG-TLS', env: { SSL_CERT_FILE: e.v.trusted } })
  t.is(r.code, 1, r.stdout + r.stderr)
  t.false(r.report.ok)
  t.regex(r.report.error ?? '', /x509|certificate/)
  t.deepEqual(await logEntries(e.v), [])
  // and --insecure gets through
  const insecure = await register(t, e, 'insecure', { serial: 'REG-TLS', extra: ['--insecure'], env: { SSL_CERT_FILE: e.v.trusted } })
  t.is(insecure.code, 0, insecure.stdout + insecure.stderr)
})
