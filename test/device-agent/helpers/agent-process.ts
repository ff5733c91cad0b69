/**
 * The agent as a real process: `node --import tsx --conditions=source
 * device-agent/src/main.ts ARGS`, with a clean environment (no proxy or
 * AGENT_* variables from the outside), output collected, and a bound on its
 * life (SIGKILL after `timeoutMs`). Spawned directly, not through bin/, so
 * that a SIGKILL reaches the agent itself and not a wrapper.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './fakes.js'

export const AGENT_MAIN = join(ROOT, 'device-agent/src/main.ts')

export interface AgentProcess {
  child: ChildProcess
  readonly stdout: string
  readonly stderr: string
  /** parsed JSON log lines (stderr) */
  logs(): Record<string, unknown>[]
  /** resolves with the exit code, or the signal name when killed */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>
  /** resolves when stderr matches `re`; rejects after `timeoutMs` or when the process exits first */
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<void>
}

export function spawnAgent(args: string[], options: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}): AgentProcess {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    ...options.env,
  }
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', AGENT_MAIN, ...args], { env, cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  const waiters = new Set<() => void>()
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString('utf8')
    for (const w of waiters) w()
  })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, options.timeoutMs ?? 45_000)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      for (const w of waiters) w()
      resolve({ code, signal, timedOut })
    })
  })
  let done = false
  void exited.then(() => (done = true))
  return {
    child,
    get stdout() {
      return stdout
    },
    get stderr() {
      return stderr
    },
    logs: () =>
      stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    exited,
    waitForStderr(re, timeoutMs = 30_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (re.test(stderr)) {
            cleanup()
            resolve()
          } else if (done) {
            cleanup()
            reject(new Error(`agent exited before stderr matched ${re}:\n${stderr}`))
          }
        }
        const t = setTimeout(() => {
          cleanup()
          reject(new Error(`stderr did not match ${re} within ${timeoutMs} ms:\n${stderr}`))
        }, timeoutMs)
        const cleanup = () => {
          clearTimeout(t)
          waiters.delete(check)
        }
        waiters.add(check)
        check()
      })
    },
  }
}

/** Runs the agent to its end; returns exit code and output. */
export async function runAgent(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; logs: Record<string, unknown>[] }> {
  const p = spawnAgent(args, options)
  const r = await p.exited
  if (r.timedOut) throw new Error(`agent did not finish in time:\n${p.stderr}`)
  return { code: r.code, signal: r.signal, stdout: p.stdout, stderr: p.stderr, logs: p.logs() }
}
