/**
 * Configuration layering shared by the vault and the agent (pure, no I/O).
 *
 * Layers, lowest first: schema defaults < config file < environment
 * (through an explicit table, so every variable can be grepped) < flags.
 * The merged object is validated once with a zod schema; every problem is
 * reported at once as SV_CONFIG_INVALID with `details.issues`, and the result
 * is deep-frozen. Secrets are named by path and redacted when printed.
 */
import { z } from 'zod'
import { VaultError } from './errors.js'

export type ConfigTree = { [k: string]: unknown }

export interface EnvVar {
  /** dotted path into the config, e.g. `store.driver` */
  path: string
  /** how the string becomes a value */
  type: 'string' | 'number' | 'boolean' | 'list'
  /** redacted when printed */
  secret?: boolean
}

export type EnvTable = Readonly<Record<string, EnvVar>>

function isPlainObject(v: unknown): v is ConfigTree {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** Deep merge: objects merge key by key, anything else replaces; undefined is ignored. */
export function mergeConfig(...layers: (ConfigTree | undefined)[]): ConfigTree {
  const out: ConfigTree = {}
  for (const layer of layers) {
    if (!layer) continue
    for (const [k, v] of Object.entries(layer)) {
      if (v === undefined) continue
      if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue
      const cur = out[k]
      out[k] = isPlainObject(v) && isPlainObject(cur) ? mergeConfig(cur, v) : isPlainObject(v) ? mergeConfig(v) : v
    }
  }
  return out
}

/** Sets `path` (dotted) in a tree, creating objects on the way. */
export function setPath(tree: ConfigTree, path: string, value: unknown): void {
  const parts = path.split('.')
  let cur = tree
  for (const p of parts.slice(0, -1)) {
    if (!isPlainObject(cur[p])) cur[p] = {}
    cur = cur[p] as ConfigTree
  }
  cur[parts.at(-1)!] = value
}

export function getPath(tree: unknown, path: string): unknown {
  let cur = tree
  for (const p of path.split('.')) {
    if (!isPlainObject(cur)) return undefined
    cur = cur[p]
  }
  return cur
}

/**
 * Reads the variables of `table` from `env`. Unknown variables with one of
 * `prefixes` are returned as warnings (a typo should not pass silently).
 */
export function configFromEnv(env: Readonly<Record<string, string | undefined>>, table: EnvTable, prefixes: string[]): { tree: ConfigTree; warnings: string[]; problems: string[] } {
  const tree: ConfigTree = {}
  const problems: string[] = []
  for (const [name, spec] of Object.entries(table)) {
    const raw = env[name]
    if (raw === undefined || raw === '') continue
    let value: unknown = raw
    if (spec.type === 'number') {
      value = Number(raw)
      if (!Number.isFinite(value)) problems.push(`${name}: not a number: ${spec.secret ? '<redacted>' : JSON.stringify(raw)}`)
    } else if (spec.type === 'boolean') {
      if (!/^(1|0|true|false|yes|no)$/i.test(raw)) problems.push(`${name}: expected true or false`)
      value = /^(1|true|yes)$/i.test(raw)
    } else if (spec.type === 'list') {
      value = raw.split(',').map((s) => s.trim()).filter(Boolean)
    }
    setPath(tree, spec.path, value)
  }
  const warnings = Object.keys(env)
    .filter((k) => prefixes.some((p) => k.startsWith(p)) && !(k in table))
    .map((k) => `unknown environment variable ${k} (ignored)`)
  return { tree, warnings, problems }
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v)
    for (const e of Object.values(v)) deepFreeze(e)
  }
  return v
}

/**
 * Validates a merged tree. Throws SV_CONFIG_INVALID listing every issue as
 * `path: message` (secrets never echoed: zod messages do not contain values).
 */
export function validateConfig<S extends z.ZodType>(schema: S, tree: ConfigTree, extraProblems: string[] = []): z.infer<S> {
  const r = schema.safeParse(tree)
  const issues = [...extraProblems]
  if (!r.success) for (const i of r.error.issues) issues.push(`${i.path.join('.') || '(root)'}: ${i.message}`)
  if (issues.length > 0) {
    throw new VaultError('SV_CONFIG_INVALID', `invalid configuration:\n  ${issues.join('\n  ')}`, { details: { issues } })
  }
  return deepFreeze(r.data as z.infer<S>)
}

/** A copy with every secret path replaced by "<redacted>" (when set). */
export function redactConfig(config: unknown, secretPaths: string[]): unknown {
  const copy = JSON.parse(JSON.stringify(config)) as ConfigTree
  for (const p of secretPaths) if (getPath(copy, p) !== undefined) setPath(copy, p, '<redacted>')
  return copy
}
