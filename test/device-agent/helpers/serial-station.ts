/**
 * A minimal station for tests: the station end of a serial line (a
 * SerialLineLink on a SerialLinePort), relaying each request to the vault's
 * HTTPS device API and sending the vault's answer back as it came. The real
 * station process (issue 10: station credentials, many ports) comes later;
 * this is what it must do on the line.
 */
import { request } from 'node:https'
import { SerialLineLink, decodeSerialLineRequest, encodeSerialLineResponse, type SerialLineRequest } from '@sv/shared'
import { SerialLinePort } from '../../../device-agent/src/serial/serial-line-port.js'

export interface TestStation {
  link: SerialLineLink
  relayed: { op: string; status: number }[]
  close(): Promise<void>
}

const PASS = ['api-key', 'content-type', 'snap-device-capabilities', 'user-agent']

export function startTestStation(o: { path: string; vaultUrl: string; ca: string; ackTimeoutMs?: number }): TestStation {
  const relayed: { op: string; status: number }[] = []
  const link: SerialLineLink = new SerialLineLink({
    role: 'station',
    ...(o.ackTimeoutMs !== undefined ? { ackTimeoutMs: o.ackTimeoutMs } : {}),
    onMessage: (m) => {
      const req = decodeSerialLineRequest(m)
      if (typeof req === 'string') return
      void relay(req).then((res) => {
        relayed.push({ op: req.op, status: res.status })
        return link.send(encodeSerialLineResponse(res)).catch(() => undefined)
      })
    },
  })
  const port = new SerialLinePort({ path: o.path, baudRate: 115200, link, reopenMs: 50 })
  port.start()

  function relay(req: SerialLineRequest): Promise<{ id: number; status: number; headers: Record<string, string>; body: Uint8Array }> {
    const headers: Record<string, string> = {}
    for (const h of PASS) if (req.headers[h] !== undefined) headers[h] = req.headers[h]
    return new Promise((resolve) => {
      const r = request(new URL(req.op, o.vaultUrl), { method: 'POST', headers: { ...headers, 'content-length': String(req.body.length) }, ca: o.ca, timeout: 20_000 }, (res) => {
        const parts: Buffer[] = []
        res.on('data', (c: Buffer) => parts.push(c))
        res.on('end', () => {
          const out: Record<string, string> = {}
          for (const h of ['content-type', 'retry-after']) {
            const v = res.headers[h]
            if (typeof v === 'string') out[h] = v
          }
          resolve({ id: req.id, status: res.statusCode ?? 502, headers: out, body: new Uint8Array(Buffer.concat(parts)) })
        })
      })
      r.on('error', (err) => {
        const body = new TextEncoder().encode(JSON.stringify({ code: 'SV_STATION_VAULT_UNREACHABLE', message: `the station cannot reach the vault: ${err.message}` }))
        resolve({ id: req.id, status: 503, headers: { 'content-type': 'application/json' }, body })
      })
      r.end(Buffer.from(req.body))
    })
  }

  return {
    link,
    relayed,
    async close() {
      link.close()
      await port.close()
    },
  }
}
