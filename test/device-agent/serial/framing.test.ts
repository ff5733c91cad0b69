import test from 'ava'
import { BoundedLineParser, encodeQuery } from '../../../device-agent/src/serial/framing.js'

/** Feeds chunks through a parser and collects lines and oversized events. */
async function frame(chunks: string[], options: ConstructorParameters<typeof BoundedLineParser>[0] = {}) {
  const parser = new BoundedLineParser(options)
  const lines: string[] = []
  let oversized = 0
  parser.on('data', (line: string) => lines.push(line))
  parser.on('oversized', () => oversized++)
  for (const chunk of chunks) parser.write(Buffer.from(chunk, 'latin1'))
  await new Promise((resolve) => setImmediate(resolve))
  return { lines, oversized }
}

test('BoundedLineParser: splits on \\r\\n by default, across chunk boundaries', async (t) => {
  const { lines } = await frame(['one\r', '\ntwo\r\nthr', 'ee\r\n', 'partial'])
  t.deepEqual(lines, ['one', 'two', 'three'])
})

test('BoundedLineParser: a custom delimiter', async (t) => {
  const { lines } = await frame(['a;b;', 'c;'], { delimiter: ';' })
  t.deepEqual(lines, ['a', 'b', 'c'])
})

test('BoundedLineParser: a line at the bound is kept', async (t) => {
  const { lines, oversized } = await frame([`${'x'.repeat(8)}\r\n`], { maxLineLength: 8 })
  t.deepEqual(lines, ['x'.repeat(8)])
  t.is(oversized, 0)
})

test('BoundedLineParser: a complete over-long line inside one chunk is dropped', async (t) => {
  const { lines, oversized } = await frame([`${'x'.repeat(9)}\r\nok\r\n`], { maxLineLength: 8 })
  t.deepEqual(lines, ['ok'])
  t.is(oversized, 1)
})

test('BoundedLineParser: an over-long line spread over chunks is skipped up to its delimiter', async (t) => {
  const { lines, oversized } = await frame(['12345', '67890', 'abc', 'def\r\nnext\r\n'], { maxLineLength: 8 })
  t.deepEqual(lines, ['next'])
  t.is(oversized, 1)
})

test('BoundedLineParser: a delimiter split across chunks ends the discarded line', async (t) => {
  const { lines } = await frame(['x'.repeat(20), 'yy\r', '\nafter\r\n'], { maxLineLength: 8 })
  t.deepEqual(lines, ['after'])
})

test('BoundedLineParser: memory stays bounded on an endless stream without delimiter', async (t) => {
  const parser = new BoundedLineParser({ maxLineLength: 64 })
  parser.resume()
  for (let i = 0; i < 1000; i++) parser.write(Buffer.alloc(1000, 0x41))
  await new Promise((resolve) => setImmediate(resolve))
  t.true(parser.buffer.length <= 64)
})

test('BoundedLineParser: bad options are TypeErrors', (t) => {
  t.throws(() => new BoundedLineParser({ delimiter: '' }), { instanceOf: TypeError })
  t.throws(() => new BoundedLineParser({ maxLineLength: 0 }), { instanceOf: TypeError })
})

test('encodeQuery: decodes \\r \\n \\t \\\\ and \\xHH; real control characters pass through', (t) => {
  t.deepEqual(encodeQuery('SN?\\r\\n'), Buffer.from('SN?\r\n'))
  t.deepEqual(encodeQuery('SN?\r\n'), Buffer.from('SN?\r\n'))
  t.deepEqual(encodeQuery('a\\tb\\\\c'), Buffer.from('a\tb\\c'))
  t.deepEqual(encodeQuery('\\x02ID\\x03\\xff'), Buffer.from([0x02, 0x49, 0x44, 0x03, 0xff]))
  t.deepEqual(encodeQuery(''), Buffer.alloc(0))
  t.deepEqual(encodeQuery('é'), Buffer.from('é', 'utf8'))
})

test('encodeQuery: an unknown or dangling escape is a TypeError', (t) => {
  t.throws(() => encodeQuery('\\q'), { instanceOf: TypeError })
  t.throws(() => encodeQuery('abc\\'), { instanceOf: TypeError })
  t.throws(() => encodeQuery('\\x4'), { instanceOf: TypeError })
})
