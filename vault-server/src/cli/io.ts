/**
 * What a CLI command may touch, passed in so commands can run in-process in
 * tests and as the real process alike.
 */
import { readFile } from 'node:fs/promises'

export interface CliIo {
  out(text: string): void
  err(text: string): void
  readFile(path: string): Promise<Buffer>
  env: NodeJS.ProcessEnv
  /** stderr is a terminal: progress may redraw its line with \r (default false: plain lines) */
  errIsTTY?: boolean
}

export const processIo: CliIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  readFile: (p) => readFile(p),
  env: process.env,
  errIsTTY: process.stderr.isTTY === true,
}

/** Exit codes shared by every command (documented in the README). */
export const EXIT = {
  OK: 0,
  /** the command ran and the answer is "no" (verification failed, server refused) */
  FAILED: 1,
  /** bad usage, bad input file or invalid configuration */
  USAGE: 2,
  /** the server or a dependency could not be reached */
  UNAVAILABLE: 3,
} as const

/** An error that ends a command with a given exit code and a one-line message. */
export class CliError extends Error {
  readonly exitCode: number
  constructor(message: string, exitCode: number = EXIT.USAGE) {
    super(message)
    this.name = 'CliError'
    this.exitCode = exitCode
  }
}
