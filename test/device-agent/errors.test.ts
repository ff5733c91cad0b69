import test from 'ava'
import { ERRORS, type ErrorCode } from '../../shared/src/errors.js'
import { ERROR_EXIT_CODES } from '../../shared/src/exit-codes.js'
import { serialAnswerOf, statusError } from '../../device-agent/src/vault/status-errors.js'
import { AGENT_ERRORS, AgentError, isAgentError, isAgentErrorCode } from '../../device-agent/src/errors.js'

test('AGENT_ERRORS: every code is SV_AGENT_*, has an exit code and a summary, and is not a wire code', (t) => {
  for (const [code, spec] of Object.entries(AGENT_ERRORS)) {
    t.regex(code, /^SV_AGENT_[A-Z][A-Z0-9_]*$/, code)
    t.true(Number.isInteger(spec.exitCode) && spec.exitCode > 0, code)
    t.true(spec.summary.length > 0, code)
    t.false(Object.hasOwn(ERRORS, code), `${code} must not be in the shared wire table`)
  }
})

test('AGENT_ERRORS: the codes the agent relies on exist; config problems exit with 2', (t) => {
  for (const code of [
    'SV_AGENT_SERIAL_NOT_FOUND',
    'SV_AGENT_SERIAL_SOURCE_FAILED',
    'SV_AGENT_SERIAL_PORT',
    'SV_AGENT_CONFIG_INVALID',
    'SV_AGENT_STATE_CORRUPT',
    'SV_AGENT_KEY_INVALID',
  ]) {
    t.true(isAgentErrorCode(code), code)
  }
  t.is(AGENT_ERRORS.SV_AGENT_CONFIG_INVALID.exitCode, 2)
  t.is(AGENT_ERRORS.SV_AGENT_SERIAL_NOT_FOUND.exitCode, 1)
})

test('AgentError: carries code, exit code, details and cause', (t) => {
  const cause = new Error('EIO')
  const err = new AgentError('SV_AGENT_SERIAL_PORT', 'port went away', { details: { path: '/dev/ttyUSB0', reason: 'disconnected' }, cause })
  t.true(err instanceof Error)
  t.true(isAgentError(err))
  t.is(err.name, 'AgentError')
  t.is(err.code, 'SV_AGENT_SERIAL_PORT')
  t.is(err.exitCode, 1)
  t.deepEqual(err.details, { path: '/dev/ttyUSB0', reason: 'disconnected' })
  t.is(err.cause, cause)
  t.false(isAgentError(new Error('x')))
  t.false(isAgentErrorCode('SV_SERIAL_TAKEN'))
})

// Issue 13: the agent's exit codes agree with the shared table. Each vault
// code, as the vault sends it (its status and body), ends the agent with 3
// when the table says "retry later", and with 1 ("failed") for every other
// 4xx or 500 refusal: a request the vault finds bad is the device's fault.
test('agent exit codes: every vault code answered over HTTP agrees with the shared exit table', (t) => {
  for (const [code, spec] of Object.entries(ERRORS) as [ErrorCode, (typeof ERRORS)[ErrorCode]][]) {
    const res = { status: spec.status, headers: { 'content-type': 'application/json', 'retry-after': '5' }, body: Buffer.from(JSON.stringify({ code, message: 'm' })) }
    if (spec.status === 202) {
      t.is(serialAnswerOf(res, 0).kind, 'pending', code)
      t.is(AGENT_ERRORS.SV_AGENT_SERIAL_PENDING.exitCode as number, ERROR_EXIT_CODES[code], code)
      continue
    }
    const err = statusError('serial', res, 0)
    t.is(err.details?.code, code)
    if (ERROR_EXIT_CODES[code] === 3) t.is(err.exitCode, 3, `${code}: retry later in both`)
    else if (spec.status <= 500) t.is(err.exitCode, 1, `${code}: a refusal fails the agent`)
  }
})
