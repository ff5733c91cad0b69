import test from 'ava'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readHardwareInfo } from '../../../device-agent/src/identity/hardware-info.js'

test('hardware info: architecture, kernel, memory always; board and OS when the files are there, cleaned', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'sv-hw-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const bare = await readHardwareInfo({ root })
  t.deepEqual(Object.keys(bare).filter((k) => k !== 'cpu').sort(), ['architecture', 'kernel', 'memory-mb'])
  await mkdir(join(root, 'sys/firmware/devicetree/base'), { recursive: true })
  await writeFile(join(root, 'sys/firmware/devicetree/base/model'), 'Raspberry Pi 4 Model B Rev 1.4\0')
  await mkdir(join(root, 'etc'))
  await writeFile(join(root, 'etc/os-release'), 'NAME="Ubuntu Core"\nPRETTY_NAME="Ubuntu Core 22"\n')
  const info = await readHardwareInfo({ root })
  t.is(info.board, 'Raspberry Pi 4 Model B Rev 1.4')
  t.is(info.os, 'Ubuntu Core 22')
  t.false('hostname' in info)
})
