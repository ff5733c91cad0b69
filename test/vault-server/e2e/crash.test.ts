/**
 * Crash safety of a real vault process: registrations run concurrently, the
 * process is killed with SIGKILL in the middle, and a new process is started
 * on the same data. Then:
 *  - every serial a client received (200 with a serial) has its binding and
 *    its `issued` log entry, and the same request again gets the same bytes;
 *  - a device whose request was cut off gets its serial by asking again with
 *    a fresh request-id, as snapd does after a transport error (spec §5.9);
 *  - no serial has two issuances, and every binding has its log entry.
 * The data directory is prepared in-process (startTestVault, then closed);
 * the kill comes after a different number of answers in each run.
 */
import test, { type ExecutionContext } from 'ava'
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { decodeStream } from '@sv/shared'
import { startTestVault } from '../../helpers/vault.js'
import { REPO_ROOT } from '../../helpers/vectors.js'
import { fetchRequestId, generateDeviceKeys, postSerial, serialRequestStream, type DeviceKey, type HttpResult } from '../../helpers/device.js'
import { adminJson, logEntries, serialOf, type AdminTarget } from '../http/api.js'

const BRAND = 'acme-brand'
const MODEL = 'acme-pi-gateway'
const MAIN = join(REPO_ROOT, 'vault-server/src/main.ts')

interface VaultProcess {
  child: ChildProcess
  url: string
  /** resolves when the process has exited */
  exited: Promise<number | string | null>
  output(): string
}

/** Starts `vault-server serve` on DIR (plain HTTP, port chosen by the OS) and waits (bounded) until it serves. */
async function spawnVault(t: ExecutionContext, dataDir: string, masterKey: string): Promise<VaultProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', MAIN, 'serve', '--data', dataDir, '--plain-http', '--listen', '127.0.0.1:0'], {
    cwd: REPO_ROOT,
    env: { ...process.env, VAULT_MASTER_KEY: masterKey, VAULT_SIGNING_WORKERS: '2', VAULT_LOG_LEVEL: 'warn', VAULT_MQTT_MODE: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const keep = (c: Buffer) => {
    out = (out + c.toString('utf8')).slice(-20_000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = new Promise<number | string | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the vault did not start within 45 s:\n${out}`)), 45_000)
    const onData = () => {
      const m = /serving (http:\/\/127\.0\.0\.1:\d+\/v1\/)/.exec(out)
      if (m) {
        clearTimeout(timer)
        child.stderr!.off('data', onData)
        resolve(m[1]!)
      }
    }
    child.stderr!.on('data', onData)
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`the vault exited (${code}) before serving:\n${out}`))
    })
  })
  return { child, url, exited, output: () => out }
}

async function stop(p: VaultProcess, signal: NodeJS.Signals): Promise<void> {
  p.child.kill(signal)
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000).unref())
  if ((await Promise.race([p.exited, timeout])) === 'timeout') throw new Error(`the vault did not exit on ${signal}`)
}

interface Attempt {
  key: DeviceKey
  serial: string
  sent?: Buffer
  result?: HttpResult
  error?: string
}

function crashRun(killAfter: number) {
  return async (t: ExecutionContext) => {
    t.timeout(180_000)
    const n = 36
    const concurrency = 6
    const prep = await startTestVault(t, { workers: 1 })
    await prep.close()
    const keys = await generateDeviceKeys(n)
    const attempts: Attempt[] = keys.map((key, i) => ({ key, serial: `CRASH-${killAfter}-${String(i).padStart(3, '0')}` }))

    const first = await spawnVault(t, prep.dataDir, prep.masterKey)
    let ok = 0
    let killed = false
    let next = 0
    const client = async () => {
      while (!killed && next < n) {
        const a = attempts[next++]!
        try {
          const requestId = await fetchRequestId(first.url, prep.apiKey, { timeoutMs: 15_000 })
          a.sent = await serialRequestStream({ key: a.key, brandId: BRAND, model: MODEL, requestId, serial: a.serial })
          a.result = await postSerial(first.url, prep.apiKey, a.sent, { timeoutMs: 15_000 })
          if (a.result.status === 200 && ++ok === killAfter && !killed) {
            killed = true
            process.kill(first.child.pid!, 'SIGKILL')
          }
        } catch (e) {
          a.error = (e as Error).message
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, client))
    t.true(killed, `the vault answered ${ok} serials, fewer than the ${killAfter} to kill at:\n${first.output()}`)
    t.is(await first.exited, 'SIGKILL')

    const received = attempts.filter((a) => a.result?.status === 200)
    const cut = attempts.filter((a) => a.sent !== undefined && a.result === undefined)
    t.true(received.length >= killAfter)
    // any other answer before the kill would be a bug
    t.deepEqual(
      attempts.filter((a) => a.result !== undefined && a.result.status !== 200).map((a) => `${a.result!.status} ${a.result!.body.toString().slice(0, 200)}`),
      [],
    )
    t.log(`kill after ${killAfter}: ${received.length} answered, ${cut.length} cut off in flight, ${attempts.filter((a) => a.sent === undefined).length} not sent`)

    const second = await spawnVault(t, prep.dataDir, prep.masterKey)
    const adminTarget: AdminTarget = { url: second.url, adminToken: prep.adminToken }
    for (const a of received) {
      const { serial } = serialOf(a.result!)
      t.is(serial.serial, a.serial)
      const entries = await logEntries(adminTarget, { serial: a.serial })
      t.like(entries, [{ outcome: 'issued', serial: a.serial, deviceKeyId: a.key.id, revision: 1 }], `log of ${a.serial}`)
      const { binding } = await adminJson<{ binding: { deviceKeyId: string; revision: number; serialAssertion: string } }>(adminTarget, 'GET', `admin/serials/${BRAND}/${MODEL}/${a.serial}`)
      t.is(binding.deviceKeyId, a.key.id)
      t.is(binding.serialAssertion, serial.text())
      const again = await postSerial(second.url, prep.apiKey, a.sent!, { timeoutMs: 15_000 })
      t.is(again.status, 200)
      t.true(again.body.equals(a.result!.body), `identical bytes for ${a.serial}`)
    }

    // the cut-off devices start over with a new request-id and get their serial
    for (const a of cut) {
      const requestId = await fetchRequestId(second.url, prep.apiKey)
      const r = await postSerial(second.url, prep.apiKey, await serialRequestStream({ key: a.key, brandId: BRAND, model: MODEL, requestId, serial: a.serial }))
      t.is(serialOf(r).serial.serial, a.serial)
      t.is(serialOf(r).serial.deviceKeyId, a.key.id)
    }

    // every binding has exactly one issuance; nothing was issued twice
    const issued = await logEntries(adminTarget, { outcome: 'issued' })
    t.is(new Set(issued.map((e) => e.serial)).size, issued.length)
    t.is(issued.length, received.length + cut.length)
    for (const e of issued) {
      const { binding } = await adminJson<{ binding: { deviceKeyId: string; serialAssertion: string } }>(adminTarget, 'GET', `admin/serials/${BRAND}/${MODEL}/${e.serial}`)
      t.is(binding.deviceKeyId, e.deviceKeyId!)
      t.is(decodeStream(binding.serialAssertion)[0]!.headerString('serial'), e.serial!)
    }
    await stop(second, 'SIGTERM')
  }
}

test('crash: SIGKILL after the 1st answer, restart: answered serials are bound, logged and replayed byte for byte', crashRun(1))
test('crash: SIGKILL after the 7th answer, restart: answered serials are bound, logged and replayed byte for byte', crashRun(7))
test('crash: SIGKILL after the 18th answer, restart: answered serials are bound, logged and replayed byte for byte', crashRun(18))
