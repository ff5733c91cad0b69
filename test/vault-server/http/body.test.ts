/**
 * readBody on real sockets: whole bodies in any number of chunks, the limit
 * on chunked bodies, and no hang when the client goes away or the body was
 * already read.
 */
import test from 'ava'
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isVaultError } from '@sv/shared'
import { readBody } from '../../../vault-server/src/http/body.js'

type Outcome = { ok: true; body: Buffer } | { ok: false; code: string }

/** A server whose handler reads the body with `readBody` and reports the outcome. */
async function server(t: import('ava').ExecutionContext, limit: number, before?: (req: IncomingMessage) => Promise<void>) {
  const outcomes: Promise<Outcome>[] = []
  const s = createServer((req: IncomingMessage, res: ServerResponse) => {
    const outcome = (async (): Promise<Outcome> => {
      if (before) await before(req)
      try {
        return { ok: true, body: await readBody(req, limit) }
      } catch (e) {
        return { ok: false, code: isVaultError(e) ? e.code : String((e as NodeJS.ErrnoException).code) }
      }
    })()
    outcomes.push(outcome)
    void outcome.then(() => {
      if (!res.destroyed) res.end('done')
    })
  })
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  t.teardown(
    () =>
      new Promise<void>((r) => {
        s.close(() => r())
        s.closeAllConnections()
      }),
  )
  const port = (s.address() as AddressInfo).port
  const next = async (): Promise<Outcome> => {
    const deadline = Date.now() + 5000
    while (outcomes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
    return outcomes.shift()!
  }
  return { port, next }
}

function post(port: number, chunks: Buffer[], o: { abortAfter?: number } = {}): Promise<void> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume()
      res.on('end', resolve)
    })
    req.on('error', () => resolve())
    let sent = 0
    const write = () => {
      if (o.abortAfter !== undefined && sent === o.abortAfter) {
        req.destroy()
        resolve()
        return
      }
      if (sent === chunks.length) return void req.end()
      req.write(chunks[sent++]!)
      setTimeout(write, 5)
    }
    write()
  })
}

test('readBody: a chunked body in many pieces comes back whole', async (t) => {
  const s = await server(t, 1 << 20)
  const chunks = Array.from({ length: 20 }, (_, i) => Buffer.alloc(1000, 65 + i))
  await post(s.port, chunks)
  const o = await s.next()
  t.true(o.ok && o.body.equals(Buffer.concat(chunks)))
})

test('readBody: a chunked body past the limit is SV_BODY_TOO_LARGE as soon as it passes', async (t) => {
  const s = await server(t, 5000)
  await post(s.port, Array.from({ length: 10 }, () => Buffer.alloc(1000, 66)))
  t.deepEqual(await s.next(), { ok: false, code: 'SV_BODY_TOO_LARGE' })
})

test('readBody: a client that goes away mid-body rejects instead of hanging', async (t) => {
  const s = await server(t, 1 << 20)
  await post(s.port, [Buffer.alloc(1000, 67), Buffer.alloc(1000, 67), Buffer.alloc(1000, 67)], { abortAfter: 2 })
  const o = await Promise.race([s.next(), new Promise<'hang'>((r) => setTimeout(() => r('hang'), 5000))])
  t.not(o, 'hang')
  t.false((o as Outcome).ok)
})

test('readBody: a body someone already read resolves empty instead of hanging', async (t) => {
  const s = await server(t, 1 << 20, async (req) => {
    req.resume()
    await new Promise((r) => req.once('end', r))
  })
  await post(s.port, [Buffer.from('already read')])
  const o = await Promise.race([s.next(), new Promise<'hang'>((r) => setTimeout(() => r('hang'), 5000))])
  t.deepEqual(o, { ok: true, body: Buffer.alloc(0) })
})
