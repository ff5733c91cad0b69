/**
 * The master key: 32 random bytes that seal every signing key at rest
 * (sealing.ts). It comes from a file (`VAULT_MASTER_KEY_FILE`, preferred) or
 * from a value (`VAULT_MASTER_KEY`), as 64 hex characters or 44 base64
 * characters; surrounding whitespace (a trailing newline) is ignored.
 *
 * Losing the master key loses every signing key sealed with it, and replacing
 * it makes them unreadable, so nothing here ever overwrites a key file.
 *
 * Every failure is VaultError('SV_MASTER_KEY_INVALID') with a `details.reason`;
 * messages and details name the source (a path or "value") and never contain
 * key material.
 */
import { Buffer } from 'node:buffer'
import { createHash, createSecretKey, randomBytes, type KeyObject } from 'node:crypto'
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { VaultError } from '@sv/shared'

export const MASTER_KEY_BYTES = 32

export interface MasterKey {
  /**
   * First 16 hex chars of sha256(key bytes). Stored in every envelope, so a
   * record shows which master key sealed it (and a rotation tool can find the
   * records still sealed with an old one). Not secret.
   */
  readonly kid: string
  /** The AES-256 key. A KeyObject: JSON.stringify and util.inspect show no key bytes. */
  readonly secret: KeyObject
}

type Reason = 'missing' | 'ambiguous' | 'unreadable' | 'not-a-file' | 'permissions' | 'format' | 'exists'

function fail(reason: Reason, message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  throw new VaultError('SV_MASTER_KEY_INVALID', message, { details: { reason, ...details }, cause })
}

/** Wraps 32 bytes as a MasterKey. The caller keeps (and should zero) `bytes`. */
export function masterKeyFromBytes(bytes: Uint8Array): MasterKey {
  if (bytes.length !== MASTER_KEY_BYTES) fail('format', `master key must be ${MASTER_KEY_BYTES} bytes, got ${bytes.length}`)
  const kid = createHash('sha256').update(bytes).digest('hex').slice(0, 16)
  return Object.freeze({ kid, secret: createSecretKey(bytes) })
}

/**
 * Loads the master key from exactly one of `file` and `value`.
 * Throws SV_MASTER_KEY_INVALID (reason `missing` or `ambiguous` otherwise).
 */
export async function loadMasterKey(source: { file?: string | undefined; value?: string | undefined }): Promise<MasterKey> {
  const hasFile = source.file !== undefined && source.file !== ''
  const hasValue = source.value !== undefined && source.value !== ''
  if (hasFile && hasValue) fail('ambiguous', 'both a master key file and a master key value are set; set only one')
  if (hasFile) return loadMasterKeyFile(source.file!)
  if (hasValue) return parseMasterKey(source.value!)
  fail('missing', 'no master key configured: set a master key file (preferred) or a master key value')
}

/**
 * Parses a master key given as a string (an environment variable). JS strings
 * cannot be wiped, which is one reason to prefer the file.
 */
export function parseMasterKey(value: string, source = 'value'): MasterKey {
  const raw = Buffer.from(value, 'latin1')
  try {
    return decodeKeyText(raw, source)
  } finally {
    raw.fill(0)
  }
}

/**
 * Reads a master key file. Refuses anything but a regular file, and a file
 * that its group or others may read or write (mode & 0o077), like ssh does with
 * private keys: fix it with `chmod 600`. The mode is checked on the open file
 * descriptor, so a file swapped between check and read cannot slip through.
 */
export async function loadMasterKeyFile(file: string): Promise<MasterKey> {
  let handle: fs.FileHandle
  try {
    // Symbolic links are followed (Kubernetes and Docker secrets are links);
    // the checks below apply to the file they lead to.
    handle = await fs.open(file, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    fail('unreadable', `cannot open master key file ${file}: ${code ?? 'error'}`, { path: file, errno: code }, err)
  }
  let content: Buffer | undefined
  try {
    const st = await handle.stat()
    if (!st.isFile()) fail('not-a-file', `master key file ${file} is not a regular file`, { path: file })
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0')
    if ((st.mode & 0o077) !== 0) {
      fail('permissions', `master key file ${file} is accessible by group or others (mode ${mode}); run chmod 600 on it`, { path: file, mode })
    }
    if (st.size > 1024) fail('format', `master key file ${file} is too large to be a master key`, { path: file })
    content = await handle.readFile()
    return decodeKeyText(content, file)
  } finally {
    content?.fill(0)
    await handle.close()
  }
}

/**
 * Creates a new random master key file at `file` with mode 0600, atomically:
 * the key is written to a temporary file in the same directory, fsync'd, then
 * hard-linked into place, which, unlike rename, fails when `file` exists. An
 * existing master key is never replaced (reason `exists`). The directory is
 * fsync'd so the new name survives a crash.
 */
export async function generateMasterKeyFile(file: string): Promise<MasterKey> {
  const dir = path.dirname(file)
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  const bytes = randomBytes(MASTER_KEY_BYTES)
  const text = encodeHexLine(bytes)
  try {
    const handle = await fs.open(tmp, 'wx', 0o600)
    try {
      await handle.chmod(0o600) // the umask may have changed the mode; be exact
      await handle.writeFile(text)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await linkNoClobber(tmp, file)
    await syncDir(dir)
    return masterKeyFromBytes(bytes)
  } finally {
    bytes.fill(0)
    text.fill(0)
    await fs.rm(tmp, { force: true })
  }
}

async function linkNoClobber(from: string, to: string): Promise<void> {
  try {
    await fs.link(from, to)
    return
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') fail('exists', `master key file ${to} already exists; refusing to replace a master key`, { path: to })
    // Filesystems without hard links: check then rename (not atomic against
    // a concurrent writer, which an admin command creating the key does not have).
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err
  }
  const exists = await fs.stat(to).then(() => true, () => false)
  if (exists) fail('exists', `master key file ${to} already exists; refusing to replace a master key`, { path: to })
  await fs.rename(from, to)
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r')
  try {
    await handle.sync()
  } catch (err) {
    // Some filesystems refuse fsync on a directory; the file itself is synced.
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
  } finally {
    await handle.close()
  }
}

/** base64 alphabet value of each byte, -1 for bytes outside it. */
const B64 = new Int8Array(256).fill(-1)
for (const [i, c] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries()) B64[c.charCodeAt(0)] = i

/**
 * Decodes hex or base64 by hand, from bytes to bytes, so that no JS string
 * holding the key is created (strings cannot be zeroed).
 */
function decodeKeyText(raw: Buffer, source: string): MasterKey {
  let start = 0
  let end = raw.length
  while (start < end && isSpace(raw[start]!)) start++
  while (end > start && isSpace(raw[end - 1]!)) end--
  const text = raw.subarray(start, end)
  const out = Buffer.alloc(MASTER_KEY_BYTES)
  try {
    const ok = text.length === 64 ? decodeHex(text, out) : text.length === 44 ? decodeBase64(text, out) : false
    if (!ok) {
      fail('format', `master key in ${source} must be ${MASTER_KEY_BYTES} bytes written as 64 hex or 44 base64 characters (got ${text.length} characters)`, {
        source,
        length: text.length,
      })
    }
    return masterKeyFromBytes(out)
  } finally {
    out.fill(0)
  }
}

/** `hex LF` built byte by byte, so that no JS string holds the key. */
function encodeHexLine(bytes: Buffer): Buffer {
  const out = Buffer.alloc(bytes.length * 2 + 1)
  for (let i = 0; i < bytes.length; i++) {
    out[2 * i] = HEX_DIGITS[bytes[i]! >> 4]!
    out[2 * i + 1] = HEX_DIGITS[bytes[i]! & 0x0f]!
  }
  out[out.length - 1] = 0x0a
  return out
}

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1')

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  return -1
}

function decodeHex(text: Buffer, out: Buffer): boolean {
  for (let i = 0; i < out.length; i++) {
    const hi = hexValue(text[2 * i]!)
    const lo = hexValue(text[2 * i + 1]!)
    if (hi < 0 || lo < 0) return false
    out[i] = (hi << 4) | lo
  }
  return true
}

/** Canonical padded base64 of 32 bytes: 43 characters then '=', unused low bits zero. */
function decodeBase64(text: Buffer, out: Buffer): boolean {
  if (text[43] !== 0x3d) return false
  let acc = 0
  let bits = 0
  let o = 0
  for (let i = 0; i < 43; i++) {
    const v = B64[text[i]!]!
    if (v < 0) return false
    acc = ((acc << 6) | v) & 0xffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[o++] = (acc >> bits) & 0xff
    }
  }
  return o === MASTER_KEY_BYTES && (acc & ((1 << bits) - 1)) === 0
}
