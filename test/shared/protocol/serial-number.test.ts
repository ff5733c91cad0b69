import test from 'ava'
import type { ExecutionContext } from 'ava'
import { SERIAL_MAX_LENGTH, SERIAL_PATTERN, normaliseSerial, validateSerial } from '../../../shared/src/protocol/serial-number.js'
import { VaultError } from '../../../shared/src/errors.js'

const accepts = test.macro({
  exec(t: ExecutionContext, serial: string) {
    t.notThrows(() => validateSerial(serial))
    t.true(SERIAL_PATTERN.test(serial))
  },
  title: (given, serial: string) => given ?? `validateSerial: accepts ${JSON.stringify(serial.length > 40 ? `${serial.slice(0, 20)}…(${serial.length})` : serial)}`,
})

const refuses = test.macro({
  exec(t: ExecutionContext, serial: string, reason: string) {
    const err = t.throws(() => validateSerial(serial), { instanceOf: VaultError })
    t.is(err?.code, 'SV_SERIAL_INVALID')
    t.is(err?.details?.reason, reason)
    t.false(SERIAL_PATTERN.test(serial))
  },
  title: (given, serial: string, reason: string) =>
    given ?? `validateSerial: refuses ${JSON.stringify(serial.length > 40 ? `${serial.slice(0, 20)}…(${serial.length})` : serial)} (${reason})`,
})

test(accepts, 'A')
test(accepts, '7')
test(accepts, '10000000abcdef12')
test(accepts, 'PF2XK7QZ')
test(accepts, 'BSN-4411-0093')
test(accepts, 'line3_station.07:unit-42')
test(accepts, 'a.')
test(accepts, 'x'.repeat(SERIAL_MAX_LENGTH))

test(refuses, '', 'empty')
test(refuses, 'x'.repeat(SERIAL_MAX_LENGTH + 1), 'too-long')
test(refuses, '-abc', 'invalid-first-character')
test(refuses, '.hidden', 'invalid-first-character')
test(refuses, ':abc', 'invalid-first-character')
test(refuses, '_abc', 'invalid-first-character')
test(refuses, ' abc', 'invalid-first-character')
test(refuses, 'abc/def', 'invalid-characters')
test(refuses, 'abc def', 'invalid-characters')
test(refuses, 'abc\ndef', 'invalid-characters')
test(refuses, 'abc\0', 'invalid-characters')
test(refuses, 'To Be Filled By O.E.M.', 'invalid-characters')
test(refuses, 'séri4l', 'invalid-characters')
test(refuses, 'abc\tdef', 'invalid-characters')
test(refuses, 'a+b', 'invalid-characters')
test(refuses, 'abc\u00a0', 'invalid-characters')

test('validateSerial: details.serial is cut to 64 characters', (t) => {
  const err = t.throws(() => validateSerial('y'.repeat(500)), { instanceOf: VaultError })
  t.is(err?.details?.serial, `${'y'.repeat(64)}…`)
  t.is(err?.details?.reason, 'too-long')
  const short = t.throws(() => validateSerial('a b'), { instanceOf: VaultError })
  t.is(short?.details?.serial, 'a b')
})

test('validateSerial: SV_SERIAL_INVALID is a client fault (400, exposed)', (t) => {
  const err = t.throws(() => validateSerial(''), { instanceOf: VaultError })
  t.is(err?.status, 400)
  t.true(err?.expose)
})

test('validateSerial: a non-string is a TypeError', (t) => {
  t.throws(() => validateSerial(42 as unknown as string), { instanceOf: TypeError })
  t.throws(() => normaliseSerial(undefined as unknown as string), { instanceOf: TypeError })
})

const normalises = test.macro({
  exec(t: ExecutionContext, raw: string, expected: string) {
    t.is(normaliseSerial(raw), expected)
  },
  title: (given, raw: string, expected: string) => given ?? `normaliseSerial: ${JSON.stringify(raw)} -> ${JSON.stringify(expected)}`,
})

test(normalises, '10000000abcdef12\0', '10000000abcdef12')
test(normalises, 'PF2XK7QZ\n', 'PF2XK7QZ')
test(normalises, '  abc \r\n\0\0', 'abc')
test(normalises, 'abc\0 \0\n', 'abc')
test(normalises, '\tabc', 'abc')
test(normalises, 'a  b', 'a  b')
test(normalises, 'AbC', 'AbC')
test(normalises, '\0abc', '\0abc')
test(normalises, '\0\0', '')
test(normalises, '', '')

test('SERIAL_PATTERN: stateless (no g or y flag)', (t) => {
  t.is(SERIAL_PATTERN.flags, '')
  t.true(SERIAL_PATTERN.test('abc'))
  t.true(SERIAL_PATTERN.test('abc'))
})
