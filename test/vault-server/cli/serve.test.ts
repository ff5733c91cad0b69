/**
 * `vault-server serve` as a real process: a port that is taken ends it,
 * instead of hanging, with one line naming the address and the setting that
 * moves it, SV_ADDRESS_UNAVAILABLE, exit 2 (issue 13: another process holds
 * the port, so a retry does not help).
 */
import test from 'ava'
import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import type { AddressInfo } from 'node:net'
import { startTestVault, ROOT } from '../../helpers/vault.js'
import { join } from 'node:path'

function occupy(): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => resolve(s))
  })
}

function serve(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', join(ROOT, 'vault-server/src/main.ts'), 'serve', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stderr })
    })
  })
}

for (const which of ['HTTPS', 'MQTT'] as const) {
  test(`serve: a taken ${which} port ends the process with SV_ADDRESS_UNAVAILABLE, exit 2 (no hang)`, async (t) => {
    const v = await startTestVault(t)
    await v.close()
    const taken = await occupy()
    t.teardown(() => taken.close())
    const port = (taken.address() as AddressInfo).port
    const free = `127.0.0.1:0`
    const r = await serve(['--data', v.dataDir, '--plain-http', '--listen', which === 'HTTPS' ? `127.0.0.1:${port}` : free], {
      VAULT_MASTER_KEY: v.masterKey,
      VAULT_MQTT_MODE: 'embedded',
      VAULT_MQTT_LISTEN: which === 'MQTT' ? `127.0.0.1:${port}` : free,
    })
    t.is(r.code, 2, r.stderr)
    t.regex(r.stderr, new RegExp(`^vault-server: cannot listen on 127\\.0\\.0\\.1:${port} for (the device API|MQTT): EADDRINUSE .*${which === 'HTTPS' ? '--listen' : 'VAULT_MQTT_LISTEN'}.* \\(SV_ADDRESS_UNAVAILABLE\\)\\n$`))
  })
}
