/**
 * Hardware details for the serial-request body: what a support engineer wants
 * to see next to a serial in the vault's log, and nothing that identifies a
 * person (no host name, no MAC address). Every read is bounded and optional:
 * a missing file leaves its entry out.
 */
import { arch, cpus, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { readFileBounded } from '../fs/atomic-write.js'

export interface HardwareInfoOptions {
  /** file-system root (as for serial sources); default "/" */
  root?: string
}

const MAX = 4096

/** Flat string facts: architecture, kernel, cpu, memory-mb, board, os. */
export async function readHardwareInfo(options: HardwareInfoOptions = {}): Promise<Record<string, string>> {
  const root = options.root ?? '/'
  const out: Record<string, string> = {
    architecture: arch(),
    kernel: release(),
    'memory-mb': String(Math.round(totalmem() / (1024 * 1024))),
  }
  const cpu = cpus()[0]?.model
  if (cpu) out.cpu = clean(cpu)
  const board = (await readText(join(root, 'sys/firmware/devicetree/base/model'))) ?? (await readText(join(root, 'sys/class/dmi/id/product_name')))
  if (board) out.board = board
  const osRelease = await readText(join(root, 'etc/os-release'), false)
  const pretty = osRelease && /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1]
  if (pretty) out.os = clean(pretty)
  return out
}

async function readText(path: string, cleaned = true): Promise<string | undefined> {
  try {
    const raw = (await readFileBounded(path, MAX)).toString('utf8')
    const text = cleaned ? clean(raw) : raw.trim()
    return text === '' ? undefined : text
  } catch {
    return undefined
  }
}

/** NULs (devicetree strings) and control characters out, whitespace collapsed, 128 characters at most. */
function clean(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 128)
}
