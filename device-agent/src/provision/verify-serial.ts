/**
 * Accepting the vault's answer, as snapd does before it adds a serial to its
 * database (spec §5.10):
 * 1. the answer is a stream with exactly one serial (others: its chain);
 * 2. identity: the serial's brand-id, model and device key are this device's
 *    (snapd: "obtained serial assertion does not match provided device
 *    identity information");
 * 3. trust: the serial, and any account/account-key it needs, pass the trust
 *    database checks (TrustDb, snapd's Database.Check) from the configured
 *    anchors: the signing account-key must be signed by a trusted authority,
 *    valid now and at the serial's timestamp; the signature must verify; the
 *    authority must be the brand (or listed in the model's serial-authority).
 *    The chain may come from the image (configured files) or from the answer
 *    stream; either way it is checked against the anchors, never trusted as is.
 */
import { AccountAssertion, AccountKeyAssertion, ModelAssertion, SerialAssertion, TrustDb, decodeStream, isVaultError, type Assertion } from '@sv/shared'
import { AgentError } from '../errors.js'

export interface ExpectedIdentity {
  brandId: string
  model: string
  deviceKeyId: string
}

export interface TrustInput {
  /** root account and account-key: accepted as they are */
  anchors: readonly Assertion[]
  /** shipped prerequisites (brand account, account-key, model): checked */
  chain: readonly Assertion[]
  now?: () => number
}

export interface VerifiedSerial {
  serial: SerialAssertion
  /** what a verifier needs besides the anchors, prerequisites first: account, account-key, and the model when known */
  chain: Assertion[]
}

/** Splits an answer stream; decode errors are the codec's VaultError (SV_ASSERTION_INVALID...). */
export function decodeAnswer(answer: Uint8Array): Assertion[] {
  return decodeStream(answer, { maxAssertions: 16 })
}

function unverified(reason: string, message: string, details: Record<string, unknown> = {}, cause?: unknown): AgentError {
  return new AgentError('SV_AGENT_SERIAL_UNVERIFIED', message, { details: { reason, ...details }, cause })
}

/**
 * Checks the answer (see the file comment). Throws `SV_AGENT_SERIAL_UNVERIFIED`
 * with `details.reason`: no-serial, several-serials, identity-mismatch
 * (`details.field`), untrusted (`details.code`: the TrustDb code).
 */
export async function verifySerialAnswer(answer: readonly Assertion[], expected: ExpectedIdentity, trust: TrustInput): Promise<VerifiedSerial> {
  const serials = answer.filter((a): a is SerialAssertion => a instanceof SerialAssertion)
  if (serials.length === 0) throw unverified('no-serial', 'the answer holds no serial assertion')
  if (serials.length > 1) throw unverified('several-serials', `the answer holds ${serials.length} serial assertions; exactly one is accepted`, { count: serials.length })
  const serial = serials[0]!
  const mismatch = (field: string, got: string, want: string) =>
    unverified('identity-mismatch', `the serial's ${field} is ${JSON.stringify(got)}, this device's is ${JSON.stringify(want)}`, { field, got, want })
  if (serial.brandId !== expected.brandId) throw mismatch('brand-id', serial.brandId, expected.brandId)
  if (serial.model !== expected.model) throw mismatch('model', serial.model, expected.model)
  if (serial.deviceKeyId !== expected.deviceKeyId) throw mismatch('device-key', serial.deviceKeyId, expected.deviceKeyId)

  let db: TrustDb
  try {
    db = new TrustDb({ trusted: trust.anchors, ...(trust.now ? { now: trust.now } : {}) })
  } catch (err) {
    throw new AgentError('SV_AGENT_CONFIG_INVALID', `the trust anchors cannot be used: ${(err as Error).message}`, { details: { problems: [(err as Error).message] }, cause: err })
  }
  // Anything the answer or the image offers goes through the full checks;
  // what fails to add is simply not available to vouch for the serial.
  await db.addAll([...trust.chain, ...answer.filter((a) => a !== serial && !(a instanceof SerialAssertion))])
  try {
    await db.add(serial)
  } catch (err) {
    if (!isVaultError(err)) throw err
    throw unverified('untrusted', `the serial does not verify: ${err.message}`, { code: err.code, ...(err.details ? { check: err.details } : {}) }, err)
  }

  const chain: Assertion[] = []
  const key = db.findAccountKey(serial)
  const account = db.find('account', [key.accountId])
  const isAnchor = (a: Assertion) => trust.anchors.some((t) => t.ref === a.ref)
  if (account instanceof AccountAssertion && !isAnchor(account)) chain.push(account)
  if (key instanceof AccountKeyAssertion && !isAnchor(key)) chain.push(key)
  const model = db.find('model', ['16', serial.brandId, serial.model])
  if (model instanceof ModelAssertion) chain.push(model)
  return { serial, chain }
}
