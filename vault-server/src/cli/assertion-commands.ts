/**
 * `vault-server assertion ...`: verify, sign, show and key-id. Factory and ops
 * scripts call these, so their flags, output lines and exit codes are a
 * stable interface (README "CLI"): exit 0 success, 1 an assertion failed
 * verification, 2 bad usage or unreadable input.
 */
import { Buffer } from 'node:buffer'
import { parse as parseYaml } from 'yaml'
import {
  AccountKeyAssertion,
  PublicKey,
  SerialAssertion,
  SerialRequestAssertion,
  TrustDb,
  VaultError,
  decodeStreamPartial,
  formatRfc3339,
  parseRfc3339,
  parseSignature,
  signAssertion,
  type Assertion,
  type HeaderValue,
  type HeadersInput,
  utf8Decode,
} from '@sv/shared'
import { WebCryptoSigner } from '@sv/shared/node'
import { CliError, EXIT, type CliIo } from './io.js'

const MAX_INPUT = 16 * 1024 * 1024

async function readInput(io: CliIo, path: string, what: string): Promise<Buffer> {
  let data: Buffer
  try {
    data = await io.readFile(path)
  } catch (e) {
    throw new CliError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  if (data.length > MAX_INPUT) throw new CliError(`${what} ${path} is larger than ${MAX_INPUT} bytes`)
  return data
}

async function readAssertions(io: CliIo, path: string, what: string): Promise<Assertion[]> {
  const { assertions, error } = decodeStreamPartial(await readInput(io, path, what))
  if (error) throw new CliError(`${path}: cannot decode assertion #${assertions.length + 1}: ${error.message} (${error.code})`)
  if (assertions.length === 0) throw new CliError(`${path}: no assertions found`)
  return assertions
}

function errorText(e: unknown): { code: string; message: string } {
  if (e instanceof VaultError) return { code: e.code, message: e.message }
  return { code: 'SV_INTERNAL', message: (e as Error).message }
}

export interface VerifyOptions {
  trusted: string[]
  chain: string[]
  json?: boolean
  /** evaluate key validity at this RFC 3339 time instead of now */
  at?: string
}

interface VerifyResult {
  index: number
  type: string
  description: string
  signKey?: string
  check: string
  ok: boolean
  code?: string
  error?: string
}

/** Checks every assertion of `file` as snapd's database would. Returns the exit code. */
export async function verifyCommand(io: CliIo, file: string, opts: VerifyOptions): Promise<number> {
  if (opts.trusted.length === 0) throw new CliError('verify: at least one --trusted file is required')
  let now: (() => number) | undefined
  if (opts.at !== undefined) {
    const t = parseRfc3339(opts.at)
    if (t === undefined) throw new CliError(`--at: not an RFC 3339 time: ${opts.at}`)
    now = () => t
  }
  const anchors: Assertion[] = []
  const extra: Assertion[] = []
  for (const f of opts.trusted) {
    for (const a of await readAssertions(io, f, 'trusted file')) {
      if (a.typeName === 'account' || a.typeName === 'account-key') anchors.push(a)
      else extra.push(a)
    }
  }
  const db = new TrustDb(now ? { trusted: anchors, now } : { trusted: anchors })
  for (const f of opts.chain) extra.push(...(await readAssertions(io, f, 'chain file')))
  const chain = await db.addAll(extra)
  if (chain.failed.length > 0) {
    const lines = chain.failed.map((f) => `  ${f.assertion.describe()}: ${f.error.message} (${f.error.code})`)
    throw new CliError(`verify: cannot add chain assertions:\n${lines.join('\n')}`)
  }

  const data = await readInput(io, file, 'assertion file')
  const { assertions, error } = decodeStreamPartial(data)
  const results: VerifyResult[] = []
  for (const [i, a] of assertions.entries()) {
    const check = a.type.noAuthority ? 'signature check with its own key' : 'trust database add'
    try {
      await db.add(a)
      results.push({ index: i + 1, type: a.typeName, description: a.describe(), signKey: a.signKeyId, check, ok: true })
    } catch (e) {
      const { code, message } = errorText(e)
      results.push({ index: i + 1, type: a.typeName, description: a.describe(), signKey: a.signKeyId, check, ok: false, code, error: message })
    }
  }
  if (error) {
    results.push({ index: assertions.length + 1, type: '?', description: 'undecodable assertion', check: 'decode', ok: false, code: error.code, error: error.message })
  }
  if (results.length === 0) results.push({ index: 1, type: '?', description: 'empty stream', check: 'decode', ok: false, code: 'SV_ASSERTION_INVALID', error: 'no assertions in stream' })
  const failed = results.filter((r) => !r.ok).length

  if (opts.json) {
    io.out(`${JSON.stringify({ file, ok: failed === 0, results }, null, 2)}\n`)
  } else {
    for (const r of results) {
      if (r.ok) io.out(`#${r.index} OK   ${r.description} sign-key=${r.signKey}\n`)
      else io.out(`#${r.index} FAIL ${r.description}: ${r.error} (${r.code})\n`)
    }
    io.out(`verify: ${results.length - failed} OK, ${failed} FAILED\n`)
  }
  return failed > 0 ? EXIT.FAILED : EXIT.OK
}

export interface SignOptions {
  key: string
  type: string
  authority?: string
  headers?: string
  bodyFile?: string
  /** set the account-key body and public-key-sha3-384 from this PEM */
  publicKeyBody?: string
  /** set device-key (and for serials device-key-sha3-384) from this PEM */
  deviceKeyOf?: string
  /** set `timestamp` to now when not given */
  now?: boolean
  /** signature creation time (RFC 3339), for reproducible output */
  sigTime?: string
}

/** YAML/JSON scalars become strings: the assertion grammar has only strings. */
function toHeaderValue(name: string, v: unknown, depth = 0): HeaderValue {
  if (depth > 32) throw new CliError(`header ${name}: nested too deeply`)
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return v.map((e) => toHeaderValue(name, e, depth + 1))
  if (v !== null && typeof v === 'object') {
    const m: Record<string, HeaderValue> = {}
    for (const [k, e] of Object.entries(v)) m[k] = toHeaderValue(name, e, depth + 1)
    return m
  }
  throw new CliError(`header ${name}: unsupported value ${JSON.stringify(v)}`)
}

async function readPem(io: CliIo, path: string, what: string): Promise<string> {
  return (await readInput(io, path, what)).toString('utf8')
}

/** Signs one assertion and prints it (with snapd's trailing LF). */
export async function signCommand(io: CliIo, assignments: string[], opts: SignOptions): Promise<number> {
  const headers: HeadersInput = {}
  if (opts.headers) {
    const text = (await readInput(io, opts.headers, 'headers file')).toString('utf8')
    let parsed: unknown
    try {
      parsed = opts.headers.endsWith('.json') ? JSON.parse(text) : parseYaml(text)
    } catch (e) {
      throw new CliError(`${opts.headers}: ${(e as Error).message}`)
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CliError(`${opts.headers}: expected a mapping of headers`)
    for (const [k, v] of Object.entries(parsed)) headers[k] = toHeaderValue(k, v)
  }
  for (const a of assignments) {
    const eq = a.indexOf('=')
    if (eq <= 0) throw new CliError(`expected name=value, got ${JSON.stringify(a)}`)
    headers[a.slice(0, eq)] = a.slice(eq + 1)
  }
  if (opts.authority !== undefined) headers['authority-id'] = opts.authority
  let body: Buffer | undefined
  if (opts.bodyFile) body = await readInput(io, opts.bodyFile, 'body file')
  if (opts.publicKeyBody) {
    const pk = PublicKey.fromPem(await readPem(io, opts.publicKeyBody, 'public key'))
    body = Buffer.from(pk.encode())
    headers['public-key-sha3-384'] = pk.id
  }
  if (opts.deviceKeyOf) {
    const dk = PublicKey.fromPem(await readPem(io, opts.deviceKeyOf, 'device key'))
    headers['device-key'] = dk.encode()
    if (opts.type === 'serial') headers['device-key-sha3-384'] = dk.id
  }
  if (opts.now && headers.timestamp === undefined) headers.timestamp = formatRfc3339(Date.now())
  let creationTime: number | undefined
  if (opts.sigTime !== undefined) {
    const t = parseRfc3339(opts.sigTime)
    if (t === undefined) throw new CliError(`--sig-time: not an RFC 3339 time: ${opts.sigTime}`)
    creationTime = Math.floor(t / 1000)
  }
  const signer = await WebCryptoSigner.fromPem(await readPem(io, opts.key, 'key'))
  const a = await signAssertion(opts.type, headers, body, signer, creationTime === undefined ? {} : { creationTime })
  io.out(a.text())
  return EXIT.OK
}

const HASHES: Record<number, string> = { 1: 'MD5', 2: 'SHA-1', 3: 'RIPEMD-160', 8: 'SHA-256', 9: 'SHA-384', 10: 'SHA-512', 11: 'SHA-224' }

function describeForShow(a: Assertion): Record<string, unknown> {
  const info: Record<string, unknown> = { type: a.typeName, description: a.describe(), revision: a.revision, format: a.format }
  if (a.authorityId) info.authority = a.authorityId
  info.signKey = a.signKeyId
  try {
    const sig = parseSignature(a.signature)
    info.signature = { created: formatRfc3339(sig.creationTime * 1000), digest: HASHES[sig.hashId] ?? `hash ${sig.hashId}`, bits: sig.value.length * 8 }
  } catch (e) {
    info.signature = { error: errorText(e).message }
  }
  if (a instanceof SerialAssertion || a instanceof SerialRequestAssertion) info.deviceKey = { id: a.deviceKey.id, bits: a.deviceKey.bits }
  if (a instanceof AccountKeyAssertion) {
    info.publicKey = { id: a.publicKey.id, bits: a.publicKey.bits, since: formatRfc3339(a.since), until: a.until === undefined ? null : formatRfc3339(a.until) }
  }
  info.bodyBytes = a.body.length
  return info
}

/** Prints headers, key ids and signer of every assertion of a file, for people. */
export async function showCommand(io: CliIo, file: string, opts: { json?: boolean }): Promise<number> {
  const { assertions, error } = decodeStreamPartial(await readInput(io, file, 'assertion file'))
  if (opts.json) {
    const out = assertions.map((a) => ({ ...describeForShow(a), headers: a.headers, body: utf8Decode(a.body) }))
    io.out(`${JSON.stringify({ file, assertions: out, error: error ? { code: error.code, message: error.message } : undefined }, null, 2)}\n`)
  } else {
    for (const [i, a] of assertions.entries()) {
      const d = describeForShow(a)
      io.out(`#${i + 1} ${d.description}\n`)
      if (d.authority) io.out(`  authority:  ${d.authority}\n`)
      io.out(`  signed by:  ${d.signKey}\n`)
      const sig = d.signature as { created?: string; digest?: string; bits?: number; error?: string }
      io.out(sig.error ? `  signature:  unreadable (${sig.error})\n` : `  signature:  RSA ${sig.bits}-bit, ${sig.digest}, created ${sig.created}\n`)
      if (a.revision || a.format) io.out(`  revision:   ${a.revision}${a.format ? `, format ${a.format}` : ''}\n`)
      if (d.deviceKey) io.out(`  device key: ${(d.deviceKey as { id: string }).id} (RSA ${(d.deviceKey as { bits: number }).bits})\n`)
      if (d.publicKey) {
        const pk = d.publicKey as { id: string; bits: number; since: string; until: string | null }
        io.out(`  public key: ${pk.id} (RSA ${pk.bits}), valid from ${pk.since}${pk.until ? ` until ${pk.until}` : ''}\n`)
      }
      io.out('  headers:\n')
      const head = utf8Decode(a.content.subarray(0, a.body.length > 0 ? a.content.length - a.body.length - 2 : a.content.length))
      for (const line of head.split('\n')) io.out(`    ${line}\n`)
      if (a.body.length > 0) io.out(`  body: ${a.body.length} bytes\n`)
    }
    if (error) io.out(`#${assertions.length + 1} undecodable: ${error.message} (${error.code})\n`)
  }
  return error ? EXIT.FAILED : EXIT.OK
}

/** Prints the snapd key id (sha3-384) of a PEM key, and with --public-key its snapd encoding. */
export async function keyIdCommand(io: CliIo, opts: { key: string; publicKey?: boolean }): Promise<number> {
  const pk = PublicKey.fromPem(await readPem(io, opts.key, 'key'))
  io.out(`${pk.id}\n`)
  if (opts.publicKey) io.out(`${pk.encode()}\n`)
  return EXIT.OK
}
