/**
 * Crash-safe file replacement and bounded reads for the agent's small state
 * files (device key, checkpoint, assertions) and for hardware identity files.
 */

import { constants, type FileHandle, open, rename, unlink } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import { AgentError } from '../errors.js'

export interface WriteFileAtomicOptions {
  /** Permission bits of the new file, applied with chmod so the umask cannot widen or narrow them. Default 0o600. */
  mode?: number
}

/**
 * Replaces `path` with `data` so that a reader, or the file system after a
 * power cut, sees either the old content or the new content, never a mix:
 * 1. create a uniquely named temp file in the same directory (same file
 *    system, so the rename is atomic), exclusive create, then chmod `mode`;
 * 2. write everything and fsync the file, so its data is on disk before the
 *    rename makes it visible;
 * 3. rename over `path` (atomic on POSIX);
 * 4. fsync the directory, so the rename itself survives a power cut (ext4 on
 *    an SD card loses renames that were not followed by a directory fsync).
 * On any failure the temp file is removed and the original error rethrown
 * (Node's errno errors: ENOENT when the directory is missing, EACCES, ENOSPC,
 * EISDIR when `path` is a directory, ...). `path` is never left half written.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const mode = options.mode ?? 0o600
  const dir = dirname(path)
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  let fh: FileHandle | undefined
  let created = false
  try {
    fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode)
    created = true
    await fh.chmod(mode)
    await fh.writeFile(data)
    await fh.sync()
    await fh.close()
    fh = undefined
    await rename(tmp, path)
    created = false
  } catch (err) {
    if (fh !== undefined) await fh.close().catch(() => undefined)
    if (created) await unlink(tmp).catch(() => undefined)
    throw err
  }
  await fsyncDirectory(dir)
}

async function fsyncDirectory(dir: string): Promise<void> {
  const dh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  try {
    await dh.sync()
  } catch (err) {
    // Some file systems (vfat boot partitions, some FUSE mounts) cannot fsync a
    // directory and say EINVAL; the rename has still happened.
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
  } finally {
    await dh.close()
  }
}

/**
 * Reads at most `maxBytes` from `path` and returns them.
 *
 * Reads until end of file instead of trusting the size from stat, because
 * sysfs and procfs files report a size of 0 or 4096 whatever they hold. Opens
 * with O_NONBLOCK so that a FIFO or a character device configured by mistake
 * fails (EAGAIN) instead of hanging the agent; regular files are unaffected.
 *
 * @throws AgentError `SV_AGENT_FILE_TOO_LARGE` with `details: { path,
 *   maxBytes }` when the file holds more than `maxBytes` bytes.
 * @throws Node's errno errors as they are (ENOENT, EACCES, EISDIR, EAGAIN...).
 */
export async function readFileBounded(path: string, maxBytes: number): Promise<Buffer> {
  if (!Number.isInteger(maxBytes) || maxBytes < 0) throw new TypeError('maxBytes must be a non-negative integer')
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  try {
    // One byte more than allowed tells "exactly maxBytes" from "too large".
    const buf = Buffer.alloc(maxBytes + 1)
    let filled = 0
    while (filled < buf.length) {
      const { bytesRead } = await fh.read(buf, filled, buf.length - filled, null)
      if (bytesRead === 0) break
      filled += bytesRead
    }
    if (filled > maxBytes) {
      throw new AgentError('SV_AGENT_FILE_TOO_LARGE', `${path} is larger than ${maxBytes} bytes`, {
        details: { path, maxBytes },
      })
    }
    return buf.subarray(0, filled)
  } finally {
    await fh.close()
  }
}
