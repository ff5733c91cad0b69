/**
 * One agent per state directory: `provision` and `reset` hold a lock file
 * (created exclusively, holding the owner's pid) for as long as they run.
 * A lock whose pid no longer runs (the agent was killed, the device lost
 * power) is stale and is taken over. Two agents starting in the same
 * millisecond over a stale lock could both take it over; systemd starts one,
 * so that race is accepted rather than solved with flock (not in Node).
 */
import { open, readFile, unlink } from 'node:fs/promises'
import { AgentError } from '../errors.js'

export type ReleaseLock = () => Promise<void>

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Takes the lock at `path`. Rejects with `SV_AGENT_BUSY` (details: pid,
 * lockFile) when a running process holds it.
 */
export async function acquireStateLock(path: string, pid: number = process.pid): Promise<ReleaseLock> {
  for (let i = 0; i < 2; i++) {
    try {
      const fh = await open(path, 'wx', 0o600)
      await fh.writeFile(`${pid}\n`)
      await fh.close()
      return async () => {
        const owner = await readFile(path, 'utf8').catch(() => '')
        if (Number.parseInt(owner, 10) === pid) await unlink(path).catch(() => undefined)
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const owner = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10)
    if (Number.isInteger(owner) && owner > 0 && owner !== pid && isRunning(owner)) {
      throw new AgentError('SV_AGENT_BUSY', `another device-agent (pid ${owner}) is using this state directory`, { details: { pid: owner, lockFile: path } })
    }
    await unlink(path).catch(() => undefined)
  }
  throw new AgentError('SV_AGENT_BUSY', `cannot take the lock ${path}`, { details: { lockFile: path } })
}
