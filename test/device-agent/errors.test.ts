import test from 'ava'
import { ERRORS } from '../../shared/src/errors.js'
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
