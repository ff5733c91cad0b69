/** `vault-server errors`: the error table, for people, for scripts (--json) and for docs/errors.md (--markdown). */
import { ERRORS, ERROR_EXIT_CODES, type ErrorCode } from '@sv/shared'
import { CliError, EXIT, type CliIo } from './io.js'

export async function errorsCommand(io: CliIo, f: { markdown?: boolean; json?: boolean }): Promise<number> {
  if (f.markdown && f.json) throw new CliError('errors: --markdown and --json exclude each other')
  const rows = (Object.entries(ERRORS) as [ErrorCode, (typeof ERRORS)[ErrorCode]][]).map(([code, e]) => ({ code, status: e.status, mqtt: e.mqtt, exit: ERROR_EXIT_CODES[code], summary: e.summary }))
  if (f.json) {
    io.out(`${JSON.stringify({ errors: rows }, null, 2)}\n`)
  } else if (f.markdown) {
    io.out('| code | HTTP | MQTT reason | exit | meaning |\n|---|---|---|---|---|\n')
    for (const r of rows) io.out(`| \`${r.code}\` | ${r.status} | 0x${r.mqtt.toString(16).padStart(2, '0')} | ${r.exit} | ${r.summary} |\n`)
  } else {
    for (const r of rows) io.out(`${r.code.padEnd(30)} ${r.status}  exit ${r.exit}  ${r.summary}\n`)
  }
  return EXIT.OK
}
