import test from 'ava'
import { PAUSE_POINTS, STATES, STATE_DESCRIPTIONS, TRANSITIONS, assertTransition, canTransition, isPausePoint, isProvisionState } from '../../../device-agent/src/provision/states.js'

test('states: every state is reachable from new and provisioned is final', (t) => {
  const seen = new Set<string>(['new'])
  const queue = ['new'] as (typeof STATES)[number][]
  while (queue.length > 0) {
    for (const next of TRANSITIONS[queue.shift()!]) {
      if (!seen.has(next)) {
        seen.add(next)
        queue.push(next)
      }
    }
  }
  t.deepEqual([...seen].sort(), [...STATES].sort())
  t.deepEqual(TRANSITIONS.provisioned, [])
  for (const s of STATES) t.true(STATE_DESCRIPTIONS[s].length > 0)
})

test('states: a new key is made only from new; nothing goes back to new', (t) => {
  for (const s of STATES) t.false(TRANSITIONS[s].includes('new'), s)
  t.true(canTransition('request-signed', 'request-signed'), '202: poll the same request')
  t.true(canTransition('request-signed', 'key-ready'), 'new request-id')
  t.false(canTransition('key-ready', 'request-signed'), 'no serial-request without a request-id')
  t.throws(() => assertTransition('new', 'provisioned'), { instanceOf: TypeError })
})

test('states: guards', (t) => {
  t.true(isProvisionState('serial-written'))
  t.false(isProvisionState('done'))
  for (const p of PAUSE_POINTS) t.true(isPausePoint(p))
  t.false(isPausePoint('key'))
})
