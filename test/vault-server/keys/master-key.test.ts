import test from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { inspect } from 'node:util'
import {
  generateMasterKeyFile,
  loadMasterKey,
  loadMasterKeyFile,
  masterKeyFromBytes,
  parseMasterKey,
} from '../../../vault-server/src/keys/master-key.js'
import { errorText } from './key-fixtures.js'

const BYTES = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex')
const HEX = BYTES.toString('hex')
const B64 = BYTES.toString('base64')
const KID = createHash('sha256').update(BYTES).digest('hex').slice(0, 16)

async function tmpDir(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sv-master-key-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  return dir
}

async function writeKeyFile(dir: string, content: string, mode: number): Promise<string> {
  const file = path.join(dir, 'master.key')
  await fs.writeFile(file, content)
  await fs.chmod(file, mode)
  return file
}

test('masterKeyFromBytes: kid is the first 16 hex chars of sha256 of the key', (t) => {
  t.is(masterKeyFromBytes(BYTES).kid, KID)
  t.regex(KID, /^[0-9a-f]{16}$/)
})

test('parseMasterKey: hex (either case) and base64 of the same bytes give the same key', (t) => {
  for (const text of [HEX, HEX.toUpperCase(), B64, `${HEX}\n`, `${B64}\r\n`, `  ${HEX}\t\n`]) {
    t.is(parseMasterKey(text).kid, KID, JSON.stringify(text))
  }
})

const badValues: [string, string][] = [
  ['empty', ''],
  ['63 hex chars', HEX.slice(1)],
  ['65 hex chars', `${HEX}0`],
  ['non-hex char', `${HEX.slice(0, 63)}g`],
  ['base64 without padding', B64.slice(0, 43)],
  ['base64 with a bad char', `${B64.slice(0, 10)}*${B64.slice(11)}`],
  ['base64 of 31 bytes', Buffer.alloc(31, 7).toString('base64').padEnd(44, 'A')],
  ['non-canonical base64 (unused bits set)', `${B64.slice(0, 42)}B=`],
  ['16 bytes hex', HEX.slice(0, 32)],
  ['hex with inner space', `${HEX.slice(0, 32)} ${HEX.slice(33)}`],
]
for (const [name, value] of badValues) {
  test(`parseMasterKey: refuses ${name}`, (t) => {
    const err = t.throws(() => parseMasterKey(value), { code: 'SV_MASTER_KEY_INVALID' })
    t.is((err as { details?: { reason?: string } }).details?.reason, 'format')
    if (value.length >= 16) t.false(errorText(err).includes(value.trim().slice(0, 16)), 'error text echoes the value')
  })
}

test('loadMasterKeyFile: reads a 0600 file with hex or base64, trailing newline or not', async (t) => {
  const dir = await tmpDir(t)
  for (const content of [`${HEX}\n`, HEX, `${B64}\n`]) {
    const file = await writeKeyFile(dir, content, 0o600)
    t.is((await loadMasterKeyFile(file)).kid, KID)
  }
  const file = await writeKeyFile(dir, HEX, 0o400)
  t.is((await loadMasterKeyFile(file)).kid, KID, 'read-only for the owner is fine')
})

for (const mode of [0o644, 0o640, 0o604, 0o660, 0o602, 0o620, 0o610]) {
  test(`loadMasterKeyFile: refuses mode ${mode.toString(8)} (group/world access)`, async (t) => {
    const dir = await tmpDir(t)
    const file = await writeKeyFile(dir, `${HEX}\n`, mode)
    const err = await t.throwsAsync(loadMasterKeyFile(file), { code: 'SV_MASTER_KEY_INVALID' })
    t.like((err as { details?: unknown }).details, { reason: 'permissions', path: file, mode: `0${mode.toString(8)}` })
    t.regex(err!.message, /chmod 600/)
    t.false(errorText(err).includes(HEX.slice(0, 16)))
  })
}

test('loadMasterKeyFile: a missing file, a directory and a bad content are refused', async (t) => {
  const dir = await tmpDir(t)
  const missing = await t.throwsAsync(loadMasterKeyFile(path.join(dir, 'nope')), { code: 'SV_MASTER_KEY_INVALID' })
  t.like((missing as { details?: unknown }).details, { reason: 'unreadable', errno: 'ENOENT' })
  const sub = path.join(dir, 'sub')
  await fs.mkdir(sub, { mode: 0o700 })
  const notFile = await t.throwsAsync(loadMasterKeyFile(sub), { code: 'SV_MASTER_KEY_INVALID' })
  t.like((notFile as { details?: unknown }).details, { reason: 'not-a-file' })
  const secretish = randomBytes(31).toString('hex')
  const file = await writeKeyFile(dir, secretish, 0o600)
  const bad = await t.throwsAsync(loadMasterKeyFile(file), { code: 'SV_MASTER_KEY_INVALID' })
  t.like((bad as { details?: unknown }).details, { reason: 'format', length: 62 })
  t.false(errorText(bad).includes(secretish.slice(0, 16)))
})

test('loadMasterKeyFile: follows a symbolic link (container secrets) and checks the target', async (t) => {
  const dir = await tmpDir(t)
  const file = await writeKeyFile(dir, HEX, 0o600)
  const link = path.join(dir, 'link.key')
  await fs.symlink(file, link)
  t.is((await loadMasterKeyFile(link)).kid, KID)
  await fs.chmod(file, 0o644)
  await t.throwsAsync(loadMasterKeyFile(link), { code: 'SV_MASTER_KEY_INVALID' })
})

test('loadMasterKey: exactly one of file and value', async (t) => {
  const dir = await tmpDir(t)
  const file = await writeKeyFile(dir, HEX, 0o600)
  t.is((await loadMasterKey({ file })).kid, KID)
  t.is((await loadMasterKey({ value: B64 })).kid, KID)
  const both = await t.throwsAsync(loadMasterKey({ file, value: HEX }), { code: 'SV_MASTER_KEY_INVALID' })
  t.like((both as { details?: unknown }).details, { reason: 'ambiguous' })
  const none = await t.throwsAsync(loadMasterKey({ file: '', value: undefined }), { code: 'SV_MASTER_KEY_INVALID' })
  t.like((none as { details?: unknown }).details, { reason: 'missing' })
})

test('generateMasterKeyFile: writes a new 0600 key that loads back, and leaves no temp file', async (t) => {
  const dir = await tmpDir(t)
  const file = path.join(dir, 'master.key')
  const made = await generateMasterKeyFile(file)
  const st = await fs.stat(file)
  t.is(st.mode & 0o777, 0o600)
  const content = await fs.readFile(file, 'utf8')
  t.regex(content, /^[0-9a-f]{64}\n$/)
  t.is((await loadMasterKeyFile(file)).kid, made.kid)
  t.deepEqual(await fs.readdir(dir), ['master.key'])
  const other = await generateMasterKeyFile(path.join(dir, 'other.key'))
  t.not(other.kid, made.kid, 'keys are random')
})

test('generateMasterKeyFile: never replaces an existing key file', async (t) => {
  const dir = await tmpDir(t)
  const file = await writeKeyFile(dir, `${HEX}\n`, 0o600)
  const err = await t.throwsAsync(generateMasterKeyFile(file), { code: 'SV_MASTER_KEY_INVALID' })
  t.like((err as { details?: unknown }).details, { reason: 'exists', path: file })
  t.is(await fs.readFile(file, 'utf8'), `${HEX}\n`)
  t.deepEqual(await fs.readdir(dir), ['master.key'])
})

test('MasterKey: neither JSON nor inspect shows the key bytes', (t) => {
  const key = parseMasterKey(HEX)
  for (const text of [JSON.stringify(key), inspect(key, { depth: 5, showHidden: true })]) {
    t.false(text.includes(HEX.slice(0, 16)))
    t.false(text.includes(B64.slice(0, 16)))
  }
})
