/**
 * readRequestBody: the serial and the agent's telemetry from a serial-request
 * body. The flat shape is read without the YAML parser; every other shape
 * must give what the YAML parser gives.
 */
import test from 'ava'
import { readRequestBody } from '../../../vault-server/src/services/registration/request-body.js'

const b = (s: string) => Buffer.from(s, 'utf8')

test('request body: the agent flat shape (serial, hardware fields, telemetry numbers)', (t) => {
  const body = 'serial: RPI-0001\nhardware-model: Raspberry Pi 4 Model B Rev 1.4\nmac: 00:11:22:33:44:55\ntelemetry:\n  key-generation-ms: 1234.5\n  request-id-ms: 12\n  attempts: 1\n  skew: -3\n'
  t.deepEqual(readRequestBody(b(body)), { serial: 'RPI-0001', timings: { 'key-generation-ms': 1234.5, 'request-id-ms': 12, attempts: 1, skew: -3 } })
})

const yamlShapes: [string, string, ReturnType<typeof readRequestBody>][] = [
  ['quoted serial', 'serial: "A 1"\n', { serial: 'A 1' }],
  ['numeric serial', 'serial: 42\n', { serial: '42' }],
  ['flow map telemetry', 'serial: X\ntelemetry: {a: 1, b: 2}\n', { serial: 'X', timings: { a: 1, b: 2 } }],
  ['comment line', '# hello\nserial: X\n', { serial: 'X' }],
  ['non-number telemetry dropped', 'telemetry:\n  a: fast\n  b: 3\n', { timings: { b: 3 } }],
  ['nested deeper', 'hw:\n  cpu:\n    cores: 4\nserial: Y\n', { serial: 'Y' }],
  ['not a map', '- a\n- b\n', {}],
  ['garbage', ': : :\n\t\tx', {}],
  ['serial with leading zeros (YAML reads a number)', 'serial: 007\n', { serial: '7' }],
  ['hex-looking serial', 'serial: 0x1F\n', { serial: '31' }],
  ['keyword serial (YAML reads a boolean)', 'serial: true\n', {}],
  ['a value with ": " is not a plain scalar', 'note: a: b\nserial: X\n', {}],
  ['a nested value with ": " is not a plain scalar', 'hardware:\n  cpu: a: b\nserial: X\n', {}],
  ['a nested value that is an anchor', 'hardware:\n  cpu: &a x\nserial: X\n', { serial: 'X' }],
]

for (const [title, body, expected] of yamlShapes) {
  test(`request body: ${title} goes through the YAML parser`, (t) => {
    t.deepEqual(readRequestBody(b(body)), expected)
  })
}

test('request body: the device agent\'s own body (formatRequestBody) is read without the parser, and the same as the parser reads it', async (t) => {
  const { formatRequestBody } = await import('../../../device-agent/src/identity/serial-request.js')
  const { parse } = await import('yaml')
  const text = formatRequestBody({
    serial: 'RPI 0001 "x"',
    hardware: { cpu: 'ARMv7 Processor rev 3 (v7l): x', board: 'Raspberry Pi 4 Model B Rev 1.4', os: 'Ubuntu Core 22' },
    telemetry: { 'key-generation-ms': 2663.25, 'request-id-ms': 41, retries: 0 },
  })
  const viaYaml = parse(text) as { serial: string; telemetry: Record<string, number> }
  t.deepEqual(readRequestBody(b(text)), { serial: viaYaml.serial, timings: viaYaml.telemetry })
})

test('request body: empty and oversized bodies give nothing', (t) => {
  t.deepEqual(readRequestBody(b('')), {})
  t.deepEqual(readRequestBody(b(`serial: X\n${'x: y\n'.repeat(5000)}`)), {})
})

test('request body: at most 32 timings', (t) => {
  const body = `telemetry:\n${Array.from({ length: 50 }, (_, i) => `  t${i}: ${i}`).join('\n')}\n`
  t.is(Object.keys(readRequestBody(b(body)).timings ?? {}).length, 32)
})
