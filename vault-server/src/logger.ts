/**
 * pino, created once in main.ts and handed down. Redaction is set here, at
 * creation, never at call sites: API keys, bearer tokens, private keys,
 * master keys, database URLs, session cookies, passwords and OIDC client
 * secrets never reach a log line.
 */
import { pino, type Logger, type DestinationStream } from 'pino'
import type { LogEvent } from '@sv/shared'

export type { Logger }

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["api-key"]',
  'headers.authorization',
  'headers["api-key"]',
  'apiKey',
  '*.apiKey',
  'token',
  '*.token',
  'privateKey',
  '*.privateKey',
  'pem',
  '*.pem',
  'pkcs8',
  '*.pkcs8',
  'masterKey',
  '*.masterKey',
  'config.store.url',
  'config.masterKey.value',
  'config.metrics.token',
  'req.headers.cookie',
  'headers.cookie',
  'headers["x-csrf-token"]',
  'password',
  '*.password',
  'clientSecret',
  '*.clientSecret',
  'config.auth.oidc[*].clientSecret',
]

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'vault-server' },
      redact: { paths: REDACT_PATHS, censor: '<redacted>' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
}

/** Logs one vocabulary event (shared/src/log-events.ts) with its fields. */
export function logEvent(log: Logger, level: 'error' | 'warn' | 'info' | 'debug', event: LogEvent, fields: Record<string, unknown> = {}): void {
  log[level](fields, event)
}
