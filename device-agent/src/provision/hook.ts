/**
 * The success hook: a command run once the serial is written, e.g.
 * `snap ack chain.assert && snap ack serial.assert`, or a factory line's
 * "label printer" script. Bounded in time: after `timeoutMs` the whole
 * process group gets SIGTERM, and SIGKILL two seconds later, so a hook that
 * forks cannot outlive its deadline. Its output is kept (last 4 KiB of each
 * stream) for the log; it never sees the agent's secrets, only the env below.
 */
import { spawn } from 'node:child_process'
import { AgentError } from '../errors.js'

export interface HookRun {
  /** a string runs under /bin/sh -c; a list runs without a shell */
  command: string | readonly string[]
  timeoutMs: number
  /** added to a minimal environment (PATH, HOME, LANG) */
  env: Record<string, string>
  /** inherited variables; main passes process.env's PATH/HOME/LANG/SNAP* */
  baseEnv?: Record<string, string | undefined>
}

export interface HookResult {
  durationMs: number
  stdout: string
  stderr: string
}

const KEEP = 4096
const KILL_GRACE_MS = 2000

/**
 * Runs the hook; resolves when it exits with status 0. Rejects with
 * `SV_AGENT_HOOK_FAILED`, details.reason: spawn-failed, exit-status
 * (details.exitStatus), signal (details.signal), timeout (details.timeoutMs);
 * details.stderr holds the end of its error output.
 */
export function runHook(run: HookRun): Promise<HookResult> {
  const [file, args] = typeof run.command === 'string' ? ['/bin/sh', ['-c', run.command]] : [run.command[0]!, run.command.slice(1)]
  const base = run.baseEnv ?? {}
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v
  Object.assign(env, run.env)
  const started = performance.now()
  return new Promise<HookResult>((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    let timedOut = false
    let settled = false
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    const keep = (prev: string, chunk: Buffer) => (prev + chunk.toString('utf8')).slice(-KEEP)
    child.stdout!.on('data', (c: Buffer) => (stdout = keep(stdout, c)))
    child.stderr!.on('data', (c: Buffer) => (stderr = keep(stderr, c)))
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal)
      } catch {
        // already gone
      }
    }
    let killTimer: NodeJS.Timeout | undefined
    const timer = setTimeout(() => {
      timedOut = true
      killGroup('SIGTERM')
      killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS)
    }, run.timeoutMs)
    const finish = (err: AgentError | undefined) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearTimeout(killTimer)
      if (err) reject(err)
      else resolve({ durationMs: Math.round(performance.now() - started), stdout, stderr })
    }
    const fail = (reason: string, message: string, extra: Record<string, unknown> = {}, cause?: unknown) =>
      finish(new AgentError('SV_AGENT_HOOK_FAILED', message, { details: { reason, ...extra, stderr: stderr.slice(-512) }, cause }))
    child.once('error', (err) => fail('spawn-failed', `cannot run the hook ${file}: ${err.message}`, {}, err))
    child.once('close', (code, signal) => {
      if (timedOut) fail('timeout', `the hook did not finish within ${run.timeoutMs} ms`, { timeoutMs: run.timeoutMs })
      else if (code === 0) finish(undefined)
      else if (code !== null) fail('exit-status', `the hook exited with status ${code}`, { exitStatus: code })
      else fail('signal', `the hook was killed by ${signal}`, { signal })
    })
  })
}
