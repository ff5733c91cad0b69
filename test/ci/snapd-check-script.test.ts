/**
 * .ci/snapd-check.mjs, the one script that builds snapd-check for `npm test`
 * (pretest), `npm start` (prestart) and .ci/run, run as a real process:
 * it builds a binary that answers `snapd-check verify` on the snapd vectors,
 * is a fast no-op when the binary is newer than its sources, rebuilds when a
 * source changes, and when it cannot build it says why and how in one line,
 * with the hint the snapd tests fail with, and exits 0 (the demo runs
 * without snapd-check).
 */
import { execFile } from 'node:child_process'
import { chmod, cp, mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import test from 'ava'
import { REPO_ROOT } from '../helpers/vectors.js'
import { SNAPD_CHECK_DEFAULT, SNAPD_CHECK_MISSING_HINT, locateSnapdCheck } from '../helpers/snapd-check.js'

const SCRIPT = path.join(REPO_ROOT, '.ci', 'snapd-check.mjs')
const REFERENCE = path.join(REPO_ROOT, '..', 'shared', 'snapd-check')
const VECTORS = path.join(REPO_ROOT, 'fixtures', 'snapd-vectors')

interface Run {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs `cmd args` to its end, bounded; never rejects for a non-zero exit. */
function run(cmd: string, args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 180_000): Promise<Run> {
  const started = performance.now()
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env }
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k]
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: REPO_ROOT, env: merged, timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string }) | null
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : null, stdout, stderr, ms: performance.now() - started })
    })
  })
}

/** The script with SV_SNAPD_CHECK unset (it would make the script do nothing). */
const script = (args: string[], env: Record<string, string | undefined> = {}) => run(process.execPath, [SCRIPT, ...args], { SV_SNAPD_CHECK: undefined, ...env })

async function tmp(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sv-snapd-check-script-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '')

test('snapd-check script: builds a working binary from the sources, is a fast no-op after, rebuilds when a source changes', async (t) => {
  t.timeout(300_000)
  const dir = await tmp(t)
  // a copy of the reference sources, so that one can be touched; build.sh compiles from its own folder
  const src = path.join(dir, 'src')
  await cp(REFERENCE, src, { recursive: true })
  await chmod(src, 0o755)
  const out = path.join(dir, 'out')
  // Go's build cache of the repository's own build, when there is one, keeps this within the
  // test's time on a busy machine; the script and build.sh still compile and link from `src`.
  const cache = path.join(path.dirname(SNAPD_CHECK_DEFAULT), 'gocache')
  if (existsSync(cache)) await cp(cache, path.join(out, 'gocache'), { recursive: true })
  const bin = path.join(out, 'snapd-check')

  const first = await script([out], { SV_SNAPD_CHECK_SRC: src })
  t.is(first.code, 0, first.stderr)
  t.is(first.stderr, '')
  t.regex(lines(first.stdout)[0]!, /^snapd-check: building .*out\/snapd-check from .*src; log .*build\.log$/)
  t.is(lines(first.stdout).at(-1), `snapd-check: built ${bin}`)

  // snapd's verdicts: a good stream passes, a tampered serial fails
  const good = await run(bin, ['verify', '--trusted', path.join(VECTORS, 'trusted.assert'), path.join(VECTORS, 'stream.assert')])
  t.is(good.code, 0, good.stdout + good.stderr)
  t.deepEqual(lines(good.stdout).filter((l) => l.startsWith('#')).map((l) => l.split(/\s+/).slice(0, 3).join(' ')), ['#1 OK account', '#2 OK account-key', '#3 OK model', '#4 OK serial'])
  t.is(lines(good.stdout).at(-1), 'verify: 4 OK, 0 FAILED')
  const chain = ['account.assert', 'account-key.assert', 'model.assert'].flatMap((f) => ['--chain', path.join(VECTORS, f)])
  const bad = await run(bin, ['verify', '--trusted', path.join(VECTORS, 'trusted.assert'), ...chain, path.join(VECTORS, 'neg-serial-tampered.assert')])
  t.is(bad.code, 1, bad.stdout + bad.stderr)
  t.regex(bad.stdout, /^#1 FAIL serial .*: failed signature verification/m)
  t.is(lines(bad.stdout).at(-1), 'verify: 0 OK, 1 FAILED')

  const builtAt = (await stat(bin)).mtimeMs
  const again = await script([out], { SV_SNAPD_CHECK_SRC: src })
  t.is(again.code, 0)
  t.deepEqual(lines(again.stdout), [`snapd-check: up to date (${bin})`])
  t.is(again.stderr, '')
  t.true(again.ms < 5000, `no-op took ${Math.round(again.ms)} ms`)
  t.is((await stat(bin)).mtimeMs, builtAt, 'the binary was not rebuilt')

  // a source newer than the binary: built again
  const later = new Date(builtAt + 10_000)
  await utimes(path.join(src, 'main.go'), later, later)
  const rebuilt = await script([out], { SV_SNAPD_CHECK_SRC: src })
  t.is(rebuilt.code, 0, rebuilt.stderr)
  t.is(lines(rebuilt.stdout).at(-1), `snapd-check: built ${bin}`)
  t.true((await stat(bin)).mtimeMs > builtAt)
  t.is((await run(bin, ['help'])).code, 0)
})

test('snapd-check script: the binary npm test uses is up to date, and running again is a fast no-op', async (t) => {
  t.timeout(300_000)
  // pretest has run the script; run alone, this file builds it here first
  const first = await script([])
  t.is(first.code, 0, first.stderr)
  t.true(['snapd-check: built .cache/snapd-check/snapd-check', 'snapd-check: up to date (.cache/snapd-check/snapd-check)'].includes(lines(first.stdout).at(-1)!), first.stdout)
  const before = (await stat(SNAPD_CHECK_DEFAULT)).mtimeMs
  const second = await script([])
  t.is(second.code, 0)
  t.deepEqual(lines(second.stdout), ['snapd-check: up to date (.cache/snapd-check/snapd-check)'])
  t.true(second.ms < 5000, `no-op took ${Math.round(second.ms)} ms`)
  t.is((await stat(SNAPD_CHECK_DEFAULT)).mtimeMs, before)
  t.is(locateSnapdCheck(), SNAPD_CHECK_DEFAULT)
})

test('snapd-check script: without the sources, one line saying why and how, exit 0, nothing built', async (t) => {
  const dir = await tmp(t)
  const out = path.join(dir, 'out')
  const r = await script([out], { SV_SNAPD_CHECK_SRC: path.join(dir, 'absent') })
  t.is(r.code, 0)
  t.is(r.stdout, '')
  t.deepEqual(lines(r.stderr), [`snapd-check: not built (${path.join(dir, 'absent')}/build.sh not found): ${SNAPD_CHECK_MISSING_HINT}`])
  t.false(existsSync(out))
})

test('snapd-check script: not root while a Debian package is missing: one line naming it, exit 0, no apt-get', async (t) => {
  const dir = await tmp(t)
  await chmod(dir, 0o755)
  const src = path.join(dir, 'src')
  await mkdir(src, { mode: 0o755 })
  // build.sh's package list is what the script checks; this one names a package no archive has
  await writeFile(path.join(src, 'build.sh'), '#!/bin/sh\npkgs="sv-test-no-such-package"\nexit 1\n', { mode: 0o755 })
  const out = path.join(dir, 'out')
  const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, SCRIPT, out], { SV_SNAPD_CHECK: undefined, SV_SNAPD_CHECK_SRC: src })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(lines(r.stderr), [`snapd-check: not built (Debian packages missing and not root: sv-test-no-such-package): ${SNAPD_CHECK_MISSING_HINT}`])
  t.false(existsSync(out))
})

test('snapd-check script: SV_SNAPD_CHECK names the binary to use: nothing built; not executable: the one line', async (t) => {
  const dir = await tmp(t)
  const out = path.join(dir, 'out')
  const other = path.join(dir, 'my-snapd-check')
  await writeFile(other, '#!/bin/sh\nexit 0\n', { mode: 0o755 })
  const ok = await script([out], { SV_SNAPD_CHECK: other })
  t.is(ok.code, 0)
  t.deepEqual(lines(ok.stdout), [`snapd-check: using SV_SNAPD_CHECK=${other}`])
  const plain = path.join(dir, 'not-a-binary')
  await writeFile(plain, 'text', { mode: 0o644 })
  const no = await script([out], { SV_SNAPD_CHECK: plain })
  t.is(no.code, 0)
  t.deepEqual(lines(no.stderr), [`snapd-check: not built (SV_SNAPD_CHECK=${plain} is not an executable file): ${SNAPD_CHECK_MISSING_HINT}`])
  t.false(existsSync(out))
})

test('snapd-check script: bad usage exits 2', async (t) => {
  const r = await script(['--force'])
  t.is(r.code, 2)
  t.regex(r.stderr, /^usage: node \.ci\/snapd-check\.mjs \[OUTDIR\]/)
})

test('snapd-check script: a test that needs a missing snapd-check fails with the same hint', (t) => {
  // synchronous, so no other test of this file sees the variable
  const saved = process.env.SV_SNAPD_CHECK
  process.env.SV_SNAPD_CHECK = path.join(os.tmpdir(), 'sv-no-such-snapd-check')
  try {
    const r = locateSnapdCheck()
    t.true(r instanceof Error)
    t.is((r as Error).message, `snapd-check not found or not executable at ${process.env.SV_SNAPD_CHECK}: ${SNAPD_CHECK_MISSING_HINT}`)
  } finally {
    if (saved === undefined) delete process.env.SV_SNAPD_CHECK
    else process.env.SV_SNAPD_CHECK = saved
  }
})
