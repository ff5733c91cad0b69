import test from 'ava'
import { AgentError } from '../../../device-agent/src/errors.js'
import { runHook } from '../../../device-agent/src/provision/hook.js'

const base = { PATH: process.env.PATH }

test('hook: a shell command runs with the agent env and a minimal base env', async (t) => {
  const r = await runHook({ command: 'echo "$AGENT_SERIAL:$AGENT_SERIAL_FILE:${SECRET:-none}"', timeoutMs: 5000, env: { AGENT_SERIAL: 'S1', AGENT_SERIAL_FILE: '/x' }, baseEnv: base })
  t.is(r.stdout.trim(), 'S1:/x:none')
})

test('hook: a list runs without a shell', async (t) => {
  const r = await runHook({ command: ['/bin/echo', '$AGENT_SERIAL', 'a b'], timeoutMs: 5000, env: { AGENT_SERIAL: 'S1' }, baseEnv: base })
  t.is(r.stdout.trim(), '$AGENT_SERIAL a b')
})

test('hook: a failing command is SV_AGENT_HOOK_FAILED with its status and the end of stderr', async (t) => {
  const err = await t.throwsAsync(runHook({ command: 'echo oops >&2; exit 7', timeoutMs: 5000, env: {}, baseEnv: base }), { instanceOf: AgentError })
  t.is(err?.code, 'SV_AGENT_HOOK_FAILED')
  t.like((err as AgentError).details, { reason: 'exit-status', exitStatus: 7 })
  t.is(String((err as AgentError).details?.stderr).trim(), 'oops')
})

test('hook: a hook over its time is killed with its children, within the bound', async (t) => {
  const started = performance.now()
  const err = await t.throwsAsync(runHook({ command: 'sleep 30 & sleep 30; wait', timeoutMs: 300, env: {}, baseEnv: base }), { instanceOf: AgentError })
  const took = performance.now() - started
  t.like((err as AgentError).details, { reason: 'timeout', timeoutMs: 300 })
  t.true(took >= 280 && took < 3500, `${Math.round(took)} ms`)
})

test('hook: a missing program is spawn-failed', async (t) => {
  const err = await t.throwsAsync(runHook({ command: ['/nonexistent/hook'], timeoutMs: 5000, env: {}, baseEnv: base }), { instanceOf: AgentError })
  t.is((err as AgentError).details?.reason, 'spawn-failed')
})
