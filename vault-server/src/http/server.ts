/**
 * Listening: HTTPS (or plain HTTP when asked, behind a TLS proxy) with bounded
 * timeouts, and a graceful stop that lets requests in flight finish.
 */
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'

export interface ListenOptions {
  host: string
  port: number
  tls?: { cert: Buffer; key: Buffer }
  /** whole-request limit; snapd gives up after 30 s */
  requestTimeoutMs?: number
  headersTimeoutMs?: number
  keepAliveTimeoutMs?: number
}

export interface RunningServer {
  server: Server
  url: string
  port: number
  close(graceMs?: number): Promise<void>
}

export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':')
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) }
}

export async function listen(app: RequestListener, o: ListenOptions): Promise<RunningServer> {
  const server: Server = o.tls ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key, minVersion: 'TLSv1.2' }, app) : createHttpServer(app)
  server.requestTimeout = o.requestTimeoutMs ?? 30_000
  server.headersTimeout = o.headersTimeoutMs ?? 15_000
  server.keepAliveTimeout = o.keepAliveTimeoutMs ?? 65_000
  server.maxHeadersCount = 100
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(o.port, o.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const host = o.host.includes(':') ? `[${o.host}]` : o.host === '0.0.0.0' ? '127.0.0.1' : o.host
  return {
    server,
    port,
    url: `${o.tls ? 'https' : 'http'}://${host}:${port}/v1/`,
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(() => server.closeAllConnections(), graceMs)
        server.close(() => {
          clearTimeout(t)
          resolve()
        })
        server.closeIdleConnections()
      }),
  }
}
