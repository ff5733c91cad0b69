#!/usr/bin/env node
/**
 * Builds snapd-check (a CLI on snapd's real `asserts` library, sources in
 * ../shared/snapd-check) when it is missing or older than its sources. The one
 * place that knows how: `npm test` (pretest), `npm start` (prestart) and
 * .ci/run all run it.
 *
 *   node .ci/snapd-check.mjs [OUTDIR]     builds OUTDIR/snapd-check (default .cache/snapd-check)
 *
 * env  SV_SNAPD_CHECK_SRC  the sources (default: ../shared/snapd-check beside the repository)
 *      SV_SNAPD_CHECK      a binary to use instead (the tests take it too): nothing is built
 *
 * Up to date (the binary is newer than every source file and runs): one line,
 * no work. Otherwise it installs the Debian packages snapd-check needs that
 * ../shared/snapd-check/build.sh does not install itself (the Go packages of
 * snapd's store client), then runs build.sh, which installs the rest, and
 * checks that the binary runs. Both need root and apt-get only when a package
 * is missing. When it cannot build (no sources, not root, no apt-get, a
 * failed build) it prints ONE line saying why and how, and still exits 0: the
 * demo works without snapd-check, and the tests that need it fail loudly with
 * the same hint (test/helpers/snapd-check.ts, SNAPD_CHECK_MISSING_HINT).
 * Exit 2 only for bad usage.
 */
import { spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** Keep equal to SNAPD_CHECK_MISSING_HINT in test/helpers/snapd-check.ts (test/ci/snapd-check-script.test.ts checks it). */
const HINT =
  'build it with "node .ci/snapd-check.mjs" from the repository root (needs ../shared/snapd-check beside the repository, and root with apt-get while Debian packages are missing; npm test and npm start run it), or set SV_SNAPD_CHECK to a snapd-check binary'

/** Needed by snapd's store package (storeclient.go), which build.sh does not install (.ci/run did, before this script). */
const EXTRA_PACKAGES = ['golang-dbus-dev', 'golang-github-juju-ratelimit-dev', 'golang-golang-x-xerrors-dev', 'golang-gopkg-macaroon.v1-dev']
const APT_TIMEOUT_MS = 15 * 60_000
const BUILD_TIMEOUT_MS = 10 * 60_000
/** Bound on the source walk (the folder holds about 15 files). */
const MAX_SOURCE_ENTRIES = 2000

const args = process.argv.slice(2)
if (args.length > 1 || args.some((a) => a.startsWith('-'))) {
  console.error('usage: node .ci/snapd-check.mjs [OUTDIR]')
  process.exit(2)
}
const outDir = resolve(args[0] ?? join(ROOT, '.cache', 'snapd-check'))
const bin = join(outDir, 'snapd-check')
const srcDir = resolve(process.env.SV_SNAPD_CHECK_SRC || join(ROOT, '..', 'shared', 'snapd-check'))
const show = (p) => (p.startsWith(ROOT + '/') ? relative(ROOT, p) : p)

/** The one line when it cannot build; exit 0 (see the header). */
function cannot(reason) {
  console.error(`snapd-check: not built (${reason}): ${HINT}`)
  process.exit(0)
}

function runs(file) {
  const r = spawnSync(file, ['help'], { stdio: 'ignore', timeout: 10_000 })
  return r.status === 0
}

/** Newest modification time of a file under `dir` (bounded walk). */
function newestSource(dir) {
  let newest = 0
  let seen = 0
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (++seen > MAX_SOURCE_ENTRIES) throw new Error(`more than ${MAX_SOURCE_ENTRIES} entries under ${dir}`)
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else newest = Math.max(newest, statSync(p).mtimeMs)
    }
  }
  walk(dir)
  return newest
}

const override = process.env.SV_SNAPD_CHECK
if (override) {
  try {
    accessSync(override, constants.X_OK)
  } catch {
    cannot(`SV_SNAPD_CHECK=${override} is not an executable file`)
  }
  console.log(`snapd-check: using SV_SNAPD_CHECK=${override}`)
  process.exit(0)
}

const buildScript = join(srcDir, 'build.sh')
if (!existsSync(buildScript)) cannot(`${srcDir}/build.sh not found`)

if (existsSync(bin) && statSync(bin).mtimeMs > newestSource(srcDir) && runs(bin)) {
  console.log(`snapd-check: up to date (${show(bin)})`)
  process.exit(0)
}

// Debian packages: build.sh's own list (read from it, so the two never drift) and ours.
const listed = /^pkgs="([^"]*)"/m.exec(readFileSync(buildScript, 'utf8'))
const needed = [...(listed ? listed[1].split(/\s+/).filter(Boolean) : []), ...EXTRA_PACKAGES]
const installed = (p) => spawnSync('dpkg', ['-s', p], { stdio: 'ignore', timeout: 30_000 }).status === 0
const missing = needed.filter((p) => !installed(p))
if (missing.length > 0) {
  const hasApt = spawnSync('apt-get', ['--version'], { stdio: 'ignore', timeout: 30_000 }).status === 0
  if (!hasApt) cannot(`Debian packages missing and no apt-get: ${missing.join(' ')}`)
  if (process.getuid?.() !== 0) cannot(`Debian packages missing and not root: ${missing.join(' ')}`)
}

mkdirSync(outDir, { recursive: true })
const logFile = join(outDir, 'build.log')
console.log(`snapd-check: building ${show(bin)} from ${srcDir}${missing.length ? ` (first installing ${missing.join(' ')}; a minute or two)` : ''}; log ${show(logFile)}`)
const log = openSync(logFile, 'w')
try {
  const opts = { stdio: ['ignore', log, log], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }
  const ours = EXTRA_PACKAGES.filter((p) => missing.includes(p))
  if (ours.length > 0) {
    spawnSync('apt-get', ['update', '-qq'], { ...opts, timeout: APT_TIMEOUT_MS })
    const r = spawnSync('apt-get', ['install', '-y', '-qq', ...ours], { ...opts, timeout: APT_TIMEOUT_MS })
    if (r.status !== 0) cannot(`apt-get install ${ours.join(' ')} failed, see ${show(logFile)}`)
  }
  // build.sh installs its own packages, then compiles; a failed run may leave a partial binary
  const r = spawnSync('sh', [buildScript, outDir], { ...opts, timeout: BUILD_TIMEOUT_MS })
  if (r.status !== 0 || !runs(bin)) {
    rmSync(bin, { force: true })
    cannot(r.error?.code === 'ETIMEDOUT' ? `build.sh did not finish within ${BUILD_TIMEOUT_MS / 60_000} min, see ${show(logFile)}` : `build failed, see ${show(logFile)}`)
  }
} finally {
  closeSync(log)
}
console.log(`snapd-check: built ${show(bin)}`)
