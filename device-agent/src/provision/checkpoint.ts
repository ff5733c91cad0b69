/**
 * The provisioning checkpoint: one small JSON file in the state directory,
 * replaced atomically (write a temp file, fsync, rename, fsync the directory:
 * fs/atomic-write.ts) at every step, so after a power cut it holds either the
 * previous step or the next one, never a mix.
 *
 * It holds no secret: the device key is a separate 0600 file, and the
 * request-id is a single-use nonce. It is still written 0600: it is nobody
 * else's business which serial the device asked for.
 */
import { unlink } from 'node:fs/promises'
import { z } from 'zod'
import { AgentError } from '../errors.js'
import { readFileBounded, writeFileAtomic } from '../fs/atomic-write.js'
import { STATES, type ProvisionState } from './states.js'

const MAX_CHECKPOINT_BYTES = 1024 * 1024

const count = z.number().int().min(0)

const CheckpointSchema = z.object({
  version: z.literal(1),
  state: z.enum(STATES),
  /** identity the state belongs to; a different configured brand/model is refused */
  brand: z.string().optional(),
  model: z.string().optional(),
  /** proposed serial and where it came from */
  serial: z.string().optional(),
  serialSource: z.string().optional(),
  /** the serial may not change any more: a serial-request carrying it may have been issued */
  serialLocked: z.boolean().default(false),
  keyId: z.string().optional(),
  keyBits: count.optional(),
  /** a serial-request signed with the key may have left the device: never regenerate it */
  keyUsed: z.boolean().default(false),
  requestId: z.string().optional(),
  requestIdAt: z.number().optional(),
  /** the saved serial-request stream (request-signed): sent again as is after a restart or a 202 */
  serialRequest: z.string().optional(),
  /** 202 answers for the saved serial-request */
  polls: count.default(0),
  /** the vault's answer, saved before verification (serial-received) */
  answer: z.string().optional(),
  /** what was written (serial-written, provisioned) */
  outputs: z.object({ serialFile: z.string(), chainFile: z.string(), serialText: z.string(), chainText: z.string() }).optional(),
  issued: z.object({ serial: z.string(), revision: z.number(), signKeyId: z.string(), timestamp: z.number() }).optional(),
  hook: z.enum(['none', 'pending', 'done', 'failed']).default('none'),
  attempts: count.default(0),
  failedAttempts: count.default(0),
  counters: z
    .object({
      requestIdCalls: count.default(0),
      serialCalls: count.default(0),
      retries: count.default(0),
      restarts: count.default(0),
      nonceRenewals: count.default(0),
      polls: count.default(0),
    })
    .prefault({}),
  /** durations in ms (telemetry) */
  timings: z.record(z.string(), z.number()).default({}),
  firstStartedAt: z.number().optional(),
  provisionedAt: z.number().optional(),
  lastError: z
    .object({ code: z.string(), message: z.string(), at: z.number(), details: z.record(z.string(), z.unknown()).optional() })
    .optional(),
  updatedAt: z.number().default(0),
})

export type Checkpoint = z.infer<typeof CheckpointSchema>

export function initialCheckpoint(): Checkpoint {
  return CheckpointSchema.parse({ version: 1, state: 'new' satisfies ProvisionState })
}

/** Reads and replaces the checkpoint file. */
export class CheckpointStore {
  readonly path: string
  readonly #now: () => number

  constructor(path: string, now: () => number = Date.now) {
    this.path = path
    this.#now = now
  }

  /**
   * The saved checkpoint, or undefined when there is none yet.
   * @throws AgentError `SV_AGENT_STATE_CORRUPT` (details.reason: too-large,
   *   not-json, schema) when the file exists but cannot be used; the file is
   *   left alone for inspection (`device-agent reset --yes` starts over).
   */
  async load(): Promise<Checkpoint | undefined> {
    let raw: Buffer
    try {
      raw = await readFileBounded(this.path, MAX_CHECKPOINT_BYTES)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      if (err instanceof AgentError && err.code === 'SV_AGENT_FILE_TOO_LARGE') throw corrupt(this.path, 'too-large', err)
      throw err
    }
    let json: unknown
    try {
      json = JSON.parse(raw.toString('utf8'))
    } catch (err) {
      throw corrupt(this.path, 'not-json', err)
    }
    const r = CheckpointSchema.safeParse(json)
    if (!r.success) throw corrupt(this.path, 'schema', r.error, r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`))
    return r.data
  }

  /** Writes `cp` (stamping updatedAt) atomically with mode 0600. */
  async save(cp: Checkpoint): Promise<void> {
    cp.updatedAt = this.#now()
    await writeFileAtomic(this.path, `${JSON.stringify(cp, null, 2)}\n`, { mode: 0o600 })
  }

  /** Removes the checkpoint; no error when there is none. */
  async remove(): Promise<void> {
    await unlink(this.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err
    })
  }
}

function corrupt(path: string, reason: string, cause: unknown, problems?: string[]): AgentError {
  return new AgentError('SV_AGENT_STATE_CORRUPT', `the provisioning state ${path} cannot be used (${reason}); inspect it, or start over with: device-agent reset --yes`, {
    details: { path, reason, ...(problems ? { problems } : {}) },
    cause,
  })
}
