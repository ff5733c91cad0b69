/**
 * Runs the `vault-server` command from its TypeScript sources as an operator
 * would: a real process (async spawn, so a vault under test in this process
 * keeps answering), its output and exit code, killed when it outlives its
 * timeout. At most three at once per test file: each starts Node with the
 * TypeScript loader, and tests in a file run concurrently.
 */
import { spawn } from 'node:child_process'
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
