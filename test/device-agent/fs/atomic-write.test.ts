import test from 'ava'
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile, chmod, symlink } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readFileBounded, writeFileAtomic } from '../../../device-agent/src/fs/atomic-write.js'

interface Context {
  dir: string
}

const it = test as import('ava').TestFn<Context>

it.beforeEach(async (t) => {
  t.context.dir = await mkdtemp(join(tmpdir(), 'sv-atomic-'))
})

it.afterEach.always(async (t) => {
  await rm(t.context.dir, { recursive: true, force: true })
})

it('writeFileAtomic: creates the file with mode 0600 by default', async (t) => {
  const path = join(t.context.dir, 'device.key')
  await writeFileAtomic(path, 'secret')
  t.is(await readFile(path, 'utf8'), 'secret')
  t.is((await stat(path)).mode & 0o777, 0o600)
})

// Serial because the umask is process-wide: AVA runs serial tests before the concurrent ones.
it.serial('writeFileAtomic: the umask neither narrows nor widens the mode (shared resource: process umask)', async (t) => {
  const narrow = join(t.context.dir, 'narrow')
  const wide = join(t.context.dir, 'wide')
  const old = process.umask(0o077)
  try {
    await writeFileAtomic(narrow, 'x', { mode: 0o640 })
    process.umask(0)
    await writeFileAtomic(wide, 'x')
  } finally {
    process.umask(old)
  }
  t.is((await stat(narrow)).mode & 0o777, 0o640)
  t.is((await stat(wide)).mode & 0o777, 0o600)
})

it('writeFileAtomic: replaces content and mode of an existing file, leaving no temp file', async (t) => {
  const path = join(t.context.dir, 'checkpoint.json')
  await writeFile(path, 'old content that is longer than the new one')
  await chmod(path, 0o644)
  await writeFileAtomic(path, Buffer.from('{"step":2}'), { mode: 0o600 })
  t.is(await readFile(path, 'utf8'), '{"step":2}')
  t.is((await stat(path)).mode & 0o777, 0o600)
  t.deepEqual(await readdir(t.context.dir), ['checkpoint.json'])
})

it('writeFileAtomic: honours another mode', async (t) => {
  const path = join(t.context.dir, 'serial.assert')
  await writeFileAtomic(path, 'x', { mode: 0o640 })
  t.is((await stat(path)).mode & 0o777, 0o640)
})

it('writeFileAtomic: a reader sees the old or the new content, never a mix', async (t) => {
  const path = join(t.context.dir, 'state')
  const a = 'A'.repeat(256 * 1024)
  const b = 'B'.repeat(128 * 1024)
  await writeFileAtomic(path, a)
  let writing = true
  const writer = (async () => {
    for (let i = 0; i < 40; i++) await writeFileAtomic(path, i % 2 === 0 ? b : a)
    writing = false
  })()
  let reads = 0
  while (writing && reads < 10_000) {
    const seen = await readFile(path, 'utf8')
    t.true(seen === a || seen === b, `read ${reads} saw a torn file of ${seen.length} bytes`)
    reads++
  }
  await writer
  t.true(reads > 0)
  t.deepEqual(await readdir(t.context.dir), ['state'])
})

it('writeFileAtomic: a missing directory fails with ENOENT and creates nothing', async (t) => {
  const path = join(t.context.dir, 'no-such-dir', 'file')
  await t.throwsAsync(writeFileAtomic(path, 'x'), { code: 'ENOENT' })
  t.deepEqual(await readdir(t.context.dir), [])
})

it('writeFileAtomic: a failed rename removes the temp file and keeps the target', async (t) => {
  // Renaming a file over a non-empty directory fails after the temp file was written.
  const path = join(t.context.dir, 'target')
  await mkdir(path)
  await writeFile(join(path, 'inside'), 'keep me')
  const err = await t.throwsAsync(writeFileAtomic(path, 'x'))
  t.truthy((err as NodeJS.ErrnoException).code)
  t.deepEqual(await readdir(t.context.dir), ['target'])
  t.is(await readFile(join(path, 'inside'), 'utf8'), 'keep me')
})

it('writeFileAtomic: replaces a symlink itself, not its target', async (t) => {
  const target = join(t.context.dir, 'real')
  const link = join(t.context.dir, 'link')
  await writeFile(target, 'original')
  await symlink(target, link)
  await writeFileAtomic(link, 'new')
  t.is(await readFile(target, 'utf8'), 'original')
  t.is(await readFile(link, 'utf8'), 'new')
})

it('readFileBounded: returns files up to the bound, exactly at it included', async (t) => {
  const path = join(t.context.dir, 'f')
  await writeFile(path, 'x'.repeat(4096))
  t.is((await readFileBounded(path, 4096)).length, 4096)
  await writeFile(path, '')
  t.is((await readFileBounded(path, 4096)).length, 0)
})

it('readFileBounded: a larger file is SV_AGENT_FILE_TOO_LARGE', async (t) => {
  const path = join(t.context.dir, 'f')
  await writeFile(path, 'x'.repeat(4097))
  const err = await t.throwsAsync(readFileBounded(path, 4096), { code: 'SV_AGENT_FILE_TOO_LARGE' })
  t.deepEqual((err as { details?: unknown }).details, { path, maxBytes: 4096 })
})

it('readFileBounded: reads procfs files whose stat size is 0', async (t) => {
  t.is((await stat('/proc/self/status')).size, 0)
  const text = (await readFileBounded('/proc/self/status', 64 * 1024)).toString('utf8')
  t.regex(text, /^Name:/m)
})

it('readFileBounded: a FIFO fails at once instead of hanging', async (t) => {
  const fifo = join(t.context.dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  // O_NONBLOCK: open succeeds, read gives EAGAIN or end of file; either way it returns promptly.
  const started = Date.now()
  try {
    const buf = await readFileBounded(fifo, 16)
    t.is(buf.length, 0)
  } catch (err) {
    t.is((err as NodeJS.ErrnoException).code, 'EAGAIN')
  }
  t.true(Date.now() - started < 2000)
})

it('readFileBounded: a missing file is ENOENT', async (t) => {
  await t.throwsAsync(readFileBounded(join(t.context.dir, 'nope'), 10), { code: 'ENOENT' })
})
