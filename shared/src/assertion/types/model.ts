/**
 * `model` (spec §4.3, snapd asserts/model.go): UC16/UC18 style with
 * `gadget`/`kernel`/`required-snaps`, and the UC20+ "extended" style with a
 * `snaps` list of maps, `grade` and `storage-safety`. `authority-id` must equal
 * `brand-id`. Unknown headers are ignored for forward compatibility.
 */
import { Assertion, type AssertionParts, type AssertionTypeInfo } from '../assertion.js'
import {
  ACCOUNT_ID_RE,
  HeaderCheckError,
  SNAP_ID_RE,
  SNAP_NAME_RE,
  checkModelName,
  checkNotEmptyString,
  checkOptionalBool,
  checkOptionalString,
  checkRfc3339Date,
  checkStringList,
  checkStringListInMap,
  checkStringMatches,
} from '../checks.js'
import { hasOwn, quote, type HeaderMap } from '../grammar.js'

export type ModelGrade = 'unset' | 'secured' | 'signed' | 'dangerous'
export type StorageSafety = 'unset' | 'encrypted' | 'prefer-encrypted' | 'prefer-unencrypted'

export interface ModelSnap {
  name: string
  snapId: string
  type: string
  modes: string[]
  defaultChannel: string
  pinnedTrack: string
  presence: string
}

const VALID_SNAP_TYPES = ['app', 'base', 'gadget', 'kernel', 'core', 'snapd']
const VALID_SNAP_MODE = /^[a-z][-a-z]+$/
const CHANNEL_RISKS = ['stable', 'candidate', 'beta', 'edge']
const ESSENTIAL_MODES = ['run', 'ephemeral']
const DEFAULT_MODES = ['run']
/** snapd 2.57.6 naming.WellKnownSnapID, production store. */
const WELL_KNOWN_SNAP_IDS: Record<string, string> = {
  core: '99T7MUlRhtI3U0QFgl5mXXESAiSwt776',
  snapd: 'PMrrV4ml8uWuEUDBT8dSGnKUYbevVhc4',
  core18: 'CSO04Jhav2yK0uz97cr0ipQRyqg0qQL6',
  core20: 'DLqre5XGLbDqg9jPtiAhRRjDuPVa5X1q',
  core22: 'amcUKQILKXHHTlmSa7NMdnXSx02dNeeT',
}

export function isValidSnapName(name: string): boolean {
  return name.length >= 2 && name.length <= 40 && SNAP_NAME_RE.test(name)
}

/** snapd channel.ParseVerbatim: returns the track ('' when none) or throws. */
function parseChannelTrack(s: string, snap: string): string {
  const fail = (why: string): never => {
    throw new HeaderCheckError(`invalid default channel for snap ${quote(snap)}: ${why}`, 'snaps')
  }
  if (s === '') fail('channel name cannot be empty')
  const p = s.split('/')
  let track: string | undefined
  let risk: string | undefined
  let branch: string | undefined
  if (p.length > 3) fail(`channel name has too many components: ${s}`)
  if (p.length === 3) [track, risk, branch] = p
  else if (p.length === 2) {
    if (CHANNEL_RISKS.includes(p[0]!)) [risk, branch] = p
    else [track, risk] = p
  } else if (CHANNEL_RISKS.includes(p[0]!)) risk = p[0]
  else track = p[0]
  if (risk !== undefined && !CHANNEL_RISKS.includes(risk)) fail(`invalid risk in channel name: ${s}`)
  if (track !== undefined && track === '') fail(`invalid track in channel name: ${s}`)
  if (branch !== undefined && branch === '') fail(`invalid branch in channel name: ${s}`)
  return track ?? ''
}

function checkModelSnap(snap: HeaderMap, grade: ModelGrade): ModelSnap {
  const name = checkNotEmptyString(snap, 'name', 'of snap')
  if (!isValidSnapName(name)) throw new HeaderCheckError(`invalid snap name ${quote(name)}`, 'snaps')
  const what = `of snap ${quote(name)}`
  let snapId = ''
  if (hasOwn(snap, 'id')) snapId = checkStringMatches(snap, 'id', SNAP_ID_RE, what)
  else if (grade !== 'dangerous') throw new HeaderCheckError(`"id" ${what} is mandatory for ${grade} grade model`, 'snaps')
  const type = checkOptionalString(snap, 'type', what) || 'app'
  if (!VALID_SNAP_TYPES.includes(type)) throw new HeaderCheckError(`type of snap ${quote(name)} must be one of ${VALID_SNAP_TYPES.join('|')}`, 'snaps')
  const modes = checkStringListInMap(snap, 'modes', `"modes" ${what}`, VALID_SNAP_MODE)
  const defaultChannel = checkOptionalString(snap, 'default-channel', what) || 'latest/stable'
  if (parseChannelTrack(defaultChannel, name) === '') throw new HeaderCheckError(`default channel for snap ${quote(name)} must specify a track`, 'snaps')
  const presence = checkOptionalString(snap, 'presence', what)
  if (presence !== '' && presence !== 'required' && presence !== 'optional') throw new HeaderCheckError(`presence of snap ${quote(name)} must be one of required|optional`, 'snaps')
  return { name, snapId, type, modes, defaultChannel, pinnedTrack: '', presence }
}

function checkSnapWithTrack(h: HeaderMap, which: 'gadget' | 'kernel'): ModelSnap | undefined {
  if (!hasOwn(h, which)) return undefined
  const value = h[which]
  if (typeof value !== 'string') throw new HeaderCheckError(`${quote(which)} header must be a string`, which)
  const eq = value.indexOf('=')
  const name = eq === -1 ? value : value.slice(0, eq)
  const track = eq === -1 ? '' : value.slice(eq + 1)
  if (!isValidSnapName(name)) throw new HeaderCheckError(`invalid snap name in ${quote(which)} header: ${name}`, which)
  if (eq !== -1) {
    if (track.includes('/')) throw new HeaderCheckError(`${quote(which)} channel selector must be a track name only`, which)
    if (CHANNEL_RISKS.includes(track)) throw new HeaderCheckError(`${quote(which)} channel selector must be a track name`, which)
  }
  return { name, snapId: '', type: which, modes: DEFAULT_MODES, defaultChannel: '', pinnedTrack: track, presence: 'required' }
}

function requiredSnap(name: string, header: string, type: string): ModelSnap {
  if (!isValidSnapName(name)) throw new HeaderCheckError(`invalid snap name in ${quote(header)} header: ${name}`, header)
  return { name, snapId: '', type, modes: DEFAULT_MODES, defaultChannel: '', pinnedTrack: '', presence: 'required' }
}

function checkAccountIdList(h: HeaderMap, name: string, brandId: string, allowStar: boolean): string[] | '*' {
  if (!hasOwn(h, name)) return [brandId]
  const v = h[name]
  if (allowStar && v === '*') return '*'
  if (Array.isArray(v) && v.every((e) => typeof e === 'string' && ACCOUNT_ID_RE.test(e))) {
    const lst = v as string[]
    return lst.includes(brandId) ? lst : [brandId, ...lst]
  }
  throw new HeaderCheckError(allowStar ? `${quote(name)} header must be '*' or a list of account ids` : `${quote(name)} header must be a list of account ids`, name)
}

interface Snaps {
  snapd?: ModelSnap
  base?: ModelSnap
  gadget?: ModelSnap
  kernel?: ModelSnap
  others: ModelSnap[]
}

function checkExtendedSnaps(value: unknown, base: string, grade: ModelGrade): Snaps {
  const wrong = `"snaps" header must be a list of maps`
  if (!Array.isArray(value)) throw new HeaderCheckError(wrong, 'snaps')
  const out: Snaps = { others: [] }
  const seen = new Set<string>()
  const seenIds = new Map<string, string>()
  for (const entry of value) {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new HeaderCheckError(wrong, 'snaps')
    const s = checkModelSnap(entry as HeaderMap, grade)
    if (seen.has(s.name)) throw new HeaderCheckError(`cannot list the same snap ${quote(s.name)} multiple times`, 'snaps')
    seen.add(s.name)
    if (s.snapId) {
      const under = seenIds.get(s.snapId)
      if (under) throw new HeaderCheckError(`cannot specify the same snap id ${quote(s.snapId)} multiple times, specified for snaps ${quote(under)} and ${quote(s.name)}`, 'snaps')
      seenIds.set(s.snapId, s.name)
    }
    let essential = false
    const slot = s.type === 'snapd' || s.type === 'kernel' || s.type === 'gadget' ? s.type : s.name === base ? 'base' : undefined
    if (slot) {
      essential = true
      if (slot === 'base' && s.type !== 'base') throw new HeaderCheckError(`boot base ${quote(base)} must specify type "base", not ${quote(s.type)}`, 'snaps')
      const prev = out[slot]
      if (prev) throw new HeaderCheckError(`cannot specify multiple ${slot} snaps: ${quote(prev.name)} and ${quote(s.name)}`, 'snaps')
      out[slot] = s
      if (s.modes.length !== 0 || s.presence !== '') throw new HeaderCheckError(`essential snaps are always available, cannot specify modes or presence for snap ${quote(s.name)}`, 'snaps')
      s.modes = ESSENTIAL_MODES
    }
    if (s.modes.length === 0) s.modes = DEFAULT_MODES
    if (s.presence === '') s.presence = 'required'
    if (!essential) out.others.push(s)
  }
  return out
}

export class ModelAssertion extends Assertion {
  readonly classic: boolean
  readonly grade: ModelGrade
  readonly storageSafety: StorageSafety
  readonly baseSnap: ModelSnap | undefined
  readonly gadgetSnap: ModelSnap | undefined
  readonly kernelSnap: ModelSnap | undefined
  /** every snap: essential ones first (snapd, kernel, base, gadget), then the others */
  readonly allSnaps: ModelSnap[]
  /** brand first, then the accounts listed in `serial-authority` */
  readonly serialAuthority: string[]
  /** undefined means '*' (anyone) */
  readonly systemUserAuthority: string[] | undefined
  readonly timestamp: number

  constructor(type: AssertionTypeInfo, parts: AssertionParts) {
    super(type, parts)
    const h = parts.headers
    const brandId = this.headerString('brand-id')
    if (brandId !== this.authorityId) {
      throw new HeaderCheckError(`authority-id and brand-id must match, model assertions are expected to be signed by the brand: ${quote(this.authorityId)} != ${quote(brandId)}`, 'authority-id')
    }
    checkModelName(h)
    this.classic = checkOptionalBool(h, 'classic')
    const extended = hasOwn(h, 'snaps')
    if (extended) {
      for (const c of ['gadget', 'kernel', 'required-snaps']) {
        if (hasOwn(h, c)) throw new HeaderCheckError(`cannot specify separate ${quote(c)} header once using the extended snaps header`, c)
      }
    } else {
      if (hasOwn(h, 'grade')) throw new HeaderCheckError('cannot specify a grade for model without the extended snaps header', 'grade')
      if (hasOwn(h, 'storage-safety')) throw new HeaderCheckError('cannot specify storage-safety for model without the extended snaps header', 'storage-safety')
    }
    if (this.classic && !extended) {
      if (hasOwn(h, 'kernel')) throw new HeaderCheckError('cannot specify a kernel with a non-extended classic model', 'kernel')
      if (hasOwn(h, 'base')) throw new HeaderCheckError('cannot specify a base with a non-extended classic model', 'base')
    }
    if (this.classic && extended) {
      try {
        checkStringMatches(h, 'distribution', /^[a-z0-9._-]*$/)
      } catch (e) {
        if (e instanceof HeaderCheckError) throw new HeaderCheckError(`${e.message}, see distribution ID in os-release spec`, 'distribution')
        throw e
      }
    } else if (hasOwn(h, 'distribution')) {
      throw new HeaderCheckError('cannot specify distribution for model unless it is classic and has an extended snaps header', 'distribution')
    }
    const mandatory = extended ? ['architecture', 'base'] : this.classic ? ['architecture', 'gadget'] : ['architecture', 'gadget', 'kernel']
    for (const m of mandatory) {
      if (extended || !this.classic) checkNotEmptyString(h, m)
      else checkOptionalString(h, m)
    }
    const base = checkOptionalString(h, 'base')
    const baseSnap = base !== '' ? requiredSnap(base, 'base', 'base') : undefined
    checkOptionalString(h, 'store')
    checkOptionalString(h, 'display-name')

    let snaps: Snaps
    let grade: ModelGrade = 'unset'
    let storageSafety: StorageSafety = 'unset'
    if (extended) {
      const gradeStr = checkOptionalString(h, 'grade')
      if (gradeStr !== '' && !['secured', 'signed', 'dangerous'].includes(gradeStr)) throw new HeaderCheckError(`grade for model must be secured|signed|dangerous, not ${quote(gradeStr)}`, 'grade')
      grade = (gradeStr || 'signed') as ModelGrade
      const ss = checkOptionalString(h, 'storage-safety')
      if (ss !== '' && !['encrypted', 'prefer-encrypted', 'prefer-unencrypted'].includes(ss)) {
        throw new HeaderCheckError(`storage-safety for model must be encrypted|prefer-encrypted|prefer-unencrypted, not ${quote(ss)}`, 'storage-safety')
      }
      storageSafety = (ss || (grade === 'secured' ? 'encrypted' : 'prefer-encrypted')) as StorageSafety
      if (grade === 'secured' && storageSafety !== 'encrypted') throw new HeaderCheckError(`secured grade model must not have storage-safety overridden, only "encrypted" is valid`, 'storage-safety')
      snaps = checkExtendedSnaps(h.snaps, base, grade)
      if (!snaps.gadget) throw new HeaderCheckError(`one "snaps" header entry must specify the model gadget`, 'snaps')
      if (!snaps.kernel) throw new HeaderCheckError(`one "snaps" header entry must specify the model kernel`, 'snaps')
      if (!snaps.base && baseSnap) {
        const id = WELL_KNOWN_SNAP_IDS[baseSnap.name] ?? ''
        if (id === '' && grade !== 'dangerous') throw new HeaderCheckError(`cannot specify not well-known base ${quote(baseSnap.name)} without a corresponding "snaps" header entry`, 'base')
        snaps.base = { ...baseSnap, snapId: id, modes: ESSENTIAL_MODES, defaultChannel: 'latest/stable' }
      }
    } else {
      snaps = { others: [] }
      if (baseSnap) snaps.base = baseSnap
      const kernel = checkSnapWithTrack(h, 'kernel')
      const gadget = checkSnapWithTrack(h, 'gadget')
      if (kernel) snaps.kernel = kernel
      if (gadget) snaps.gadget = gadget
      for (const name of checkStringList(h, 'required-snaps')) snaps.others.push(requiredSnap(name, 'required-snaps', ''))
    }
    this.grade = grade
    this.storageSafety = storageSafety
    this.baseSnap = snaps.base
    this.gadgetSnap = snaps.gadget
    this.kernelSnap = snaps.kernel
    this.allSnaps = [snaps.snapd, snaps.kernel, snaps.base, snaps.gadget, ...snaps.others].filter((s): s is ModelSnap => s !== undefined)
    this.serialAuthority = checkAccountIdList(h, 'serial-authority', brandId, false) as string[]
    const sua = checkAccountIdList(h, 'system-user-authority', brandId, true)
    this.systemUserAuthority = sua === '*' ? undefined : sua
    this.timestamp = checkRfc3339Date(h, 'timestamp')
  }

  get brandId(): string {
    return this.headerString('brand-id')
  }
  get model(): string {
    return this.headerString('model')
  }
  get series(): string {
    return this.headerString('series')
  }
  get architecture(): string {
    return this.headerString('architecture')
  }
  get base(): string {
    return this.headerString('base')
  }
  get store(): string {
    return this.headerString('store')
  }
  get displayName(): string {
    return this.headerString('display-name') || this.model
  }
  /** UC20+ style (has a `snaps` header) */
  get extended(): boolean {
    return hasOwn(this.headers, 'snaps')
  }
}
