/**
 * pino, created once in main.ts and handed down. Lines go to stderr, so
 * stdout stays clean for `status --json` and `serial`. Writes are synchronous:
 * the agent logs a few lines per step, and a line written just before a power
 * cut or a SIGKILL should not sit in a buffer.
 *
 * Redaction is set here, never at call sites: the API key and any private key
 * material never reach a log line.
 */
import { destination as pinoDestination, pino, type Logger, type DestinationStream } from 'pino'
import type { LogEvent } from '@sv/shared'

export type { Logger }

export const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  'config.vault.apiKey',
  'headers["api-key"]',
  '*.headers["api-key"]',
  'privateKey',
  '*.privateKey',
  'pkcs8',
  '*.pkcs8',
  'pem',
  '*.pem',
]

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'device-agent' },
      redact: { paths: REDACT_PATHS, censor: '<redacted>' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pinoDestination({ fd: 2, sync: true }),
  )
}

/** Logs one vocabulary event (shared/src/log-events.ts) with its fields. */
export function logEvent(log: Logger, level: 'error' | 'warn' | 'info' | 'debug', event: LogEvent, fields: Record<string, unknown> = {}): void {
  log[level](fields, event)
}
