/** `vault-server errors`: the error table, for people and for docs/errors.md. */
import { ERRORS } from '@sv/shared'
import { EXIT, type CliIo } from './io.js'

export async function errorsCommand(io: CliIo, f: { markdown?: boolean }): Promise<number> {
  const rows = Object.entries(ERRORS)
  if (f.markdown) {
    io.out('| code | HTTP | MQTT reason | meaning |\n|---|---|---|---|\n')
    for (const [code, e] of rows) io.out(`| \`${code}\` | ${e.status} | 0x${e.mqtt.toString(16).padStart(2, '0')} | ${e.summary} |\n`)
  } else {
    for (const [code, e] of rows) io.out(`${code.padEnd(28)} ${e.status}  ${e.summary}\n`)
  }
  return EXIT.OK
}
