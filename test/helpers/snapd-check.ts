/**
 * snapd-check: a CLI on snapd's real Go `asserts` library (../shared/snapd-check).
 * Tests that hold our output to snapd run it; they never skip when it is
 * missing, they fail and say how to build it.
 */
import { execFile } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { REPO_ROOT } from './vectors.js'

export const SNAPD_CHECK_DEFAULT = path.join(REPO_ROOT, '.cache', 'snapd-check', 'snapd-check')

/** How to get it; .ci/snapd-check.mjs prints the same words when it cannot build (test/ci/snapd-check-script.test.ts). */
export const SNAPD_CHECK_MISSING_HINT =
  'build it with "node .ci/snapd-check.mjs" from the repository root (needs ../shared/snapd-check beside the repository, and root with apt-get while Debian packages are missing; npm test and npm start run it), or set SV_SNAPD_CHECK to a snapd-check binary'

/** The binary: $SV_SNAPD_CHECK, else .cache/snapd-check/snapd-check under the repository root. */
export function snapdCheckPath(): string {
  const env = process.env.SV_SNAPD_CHECK
  return env !== undefined && env !== '' ? path.resolve(env) : SNAPD_CHECK_DEFAULT
}

/** The binary's path, or an Error whose message says how to get it. */
export function locateSnapdCheck(): string | Error {
  const p = snapdCheckPath()
  try {
    accessSync(p, constants.X_OK)
    return p
  } catch {
    return new Error(`snapd-check not found or not executable at ${p}: ${SNAPD_CHECK_MISSING_HINT}`)
  }
}

export interface RunResult {
  /** exit code; null when killed */
  code: number | null
  stdout: string
  stderr: string
  timedOut: boolean
}

/** Runs snapd-check with a bounded time (default 30 s); never rejects for a non-zero exit. */
export function runSnapdCheck(args: readonly string[], options: { timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  const bin = locateSnapdCheck()
  if (bin instanceof Error) return Promise.reject(bin)
  const timeout = options.timeoutMs ?? 30_000
  return new Promise((resolve) => {
    execFile(bin, [...args], { timeout, killSignal: 'SIGKILL', maxBuffer: 16 << 20, cwd: options.cwd ?? REPO_ROOT, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean; code?: number | string }) | null
      const code = e === null ? 0 : typeof e.code === 'number' ? e.code : null
      resolve({ code, stdout, stderr, timedOut: e !== null && e.killed === true && code === null })
    })
  })
}

/** A fresh temp directory, removed by the returned cleanup. */
export async function tempDir(prefix = 'sv-snapd-check-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) }
}

export interface VerifyInput {
  /** trust anchors stream (account, account-key) */
  trusted: Uint8Array
  /** prerequisite streams, each written to its own file */
  chain?: Uint8Array[]
  /** the stream under test */
  file: Uint8Array
}

export interface VerifyResult extends RunResult {
  /** one entry per `#N OK|FAIL` line */
  lines: { index: number; ok: boolean; text: string }[]
}

/** Writes the streams to `dir` and runs `snapd-check verify --trusted T --chain C... FILE`. */
export async function snapdVerify(dir: string, input: VerifyInput, name = 'subject'): Promise<VerifyResult> {
  const trusted = path.join(dir, `${name}.trusted.assert`)
  await writeFile(trusted, input.trusted)
  const args = ['verify', '--trusted', trusted]
  const chain = input.chain ?? []
  for (let i = 0; i < chain.length; i++) {
    const f = path.join(dir, `${name}.chain-${i}.assert`)
    await writeFile(f, chain[i]!)
    args.push('--chain', f)
  }
  const file = path.join(dir, `${name}.assert`)
  await writeFile(file, input.file)
  args.push(file)
  const r = await runSnapdCheck(args)
  const lines: VerifyResult['lines'] = []
  for (const line of r.stdout.split('\n')) {
    const m = /^#(\d+) (OK|FAIL)\b(.*)$/.exec(line)
    if (m) lines.push({ index: Number(m[1]), ok: m[2] === 'OK', text: m[3]!.trim() })
  }
  return { ...r, lines }
}
