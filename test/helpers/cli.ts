/**
 * Runs the `vault-server` command from its TypeScript sources as an operator
 * would: a real process (async spawn, so a vault under test in this process
 * keeps answering), its output and exit code, killed when it outlives its
 * timeout. At most three at once per test file: each starts Node with the
 * TypeScript loader, and tests in a file run concurrently.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import type { ExecutionContext } from 'ava'
import { join } from 'node:path'
import { REPO_ROOT } from './vectors.js'

export const VAULT_MAIN = join(REPO_ROOT, 'vault-server/src/main.ts')

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

export interface CliOptions {
  env?: Record<string, string>
  /** default 60 s; the process is killed (SIGKILL) and the promise rejects past it */
  timeoutMs?: number
}

let running = 0
const waiting: (() => void)[] = []
async function slot(): Promise<() => void> {
  while (running >= 3) await new Promise<void>((r) => waiting.push(r))
  running++
  return () => {
    running--
    waiting.shift()?.()
  }
}

/** Runs `vault-server ARGS` to its end (bounded) and collects its output. */
export async function runVaultCli(args: string[], o: CliOptions = {}): Promise<CliRun> {
  const release = await slot()
  const timeoutMs = o.timeoutMs ?? 60_000
  try {
    return await new Promise<CliRun>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', VAULT_MAIN, ...args], {
        cwd: REPO_ROOT,
        env: { ...process.env, ...o.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`vault-server ${args.join(' ')}: no exit within ${timeoutMs} ms\n${stdout}\n${stderr}`))
      }, timeoutMs)
      child.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      child.once('close', (code) => {
        clearTimeout(timer)
        resolve({ code, stdout, stderr })
      })
    })
  } finally {
    release()
  }
}

export interface ServedVault {
  child: ChildProcess
  /** the device API's base URL, e.g. https://127.0.0.1:PORT/v1/ */
  url: string
  exited: Promise<number | null>
}

/**
 * `vault-server serve --data DIR` as a real process on an ephemeral port
 * (HTTPS with the data directory's development certificate, MQTT off, one
 * signing worker); resolves once it says where it serves (45 s at most).
 * Killed (SIGKILL) at the test's end when still running.
 */
export async function serveDataDir(t: ExecutionContext, data: string): Promise<ServedVault> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', VAULT_MAIN, 'serve', '--data', data, '--listen', '127.0.0.1:0'], {
    cwd: REPO_ROOT,
    env: { ...process.env, VAULT_MQTT_MODE: 'off', VAULT_LOG_LEVEL: 'warn', VAULT_SIGNING_WORKERS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out = (out + c.toString('utf8')).slice(-20_000)))
  child.stderr.on('data', (c: Buffer) => (out = (out + c.toString('utf8')).slice(-20_000)))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start within 45 s:\n${out}`)), 45_000)
    child.stderr.on('data', () => {
      const m = /serving (https:\/\/127\.0\.0\.1:\d+\/v1\/)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`serve exited (${code}) before serving:\n${out}`))
    })
  })
  return { child, url, exited }
}
