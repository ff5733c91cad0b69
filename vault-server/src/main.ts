/**
 * The `vault-server` command: composition root and CLI. The only module that
 * names concrete implementations (with store/open-store.ts).
 */
import { Command, CommanderError } from 'commander'
import { pathToFileURL } from 'node:url'
import { VaultError } from '@sv/shared'
import { CliError, EXIT, processIo, type CliIo } from './cli/io.js'
import { keyIdCommand, showCommand, signCommand, verifyCommand } from './cli/assertion-commands.js'
import { VERSION } from './version.js'

const collect = (v: string, prev: string[]): string[] => [...prev, v]

/** Builds the command tree. `exit` receives each action's exit code. */
export function buildProgram(io: CliIo, exit: (code: number) => void, argv: readonly string[] = []): Command {
  const program = new Command('vault-server')
    .description('Serial vault for Ubuntu Core devices: signs snapd serial assertions for a brand')
    .version(VERSION)
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })

  const assertion = program.command('assertion').description('decode, verify and sign snapd assertions')

  assertion
    .command('verify')
    .description('check every assertion in FILE as snapd would; exit 0 only when all pass')
    .argument('[file]', 'assertion file (a stream of one or more assertions)')
    .option('--trusted <files...>', 'trust anchors (account / account-key assertions; other types in them are added like --chain); repeatable', collectVariadic, [])
    .option('--chain <files...>', 'prerequisite assertions (brand account, account-key, model), added in any order with full checks; repeatable', collectVariadic, [])
    .option('--at <time>', 'check key validity at this RFC 3339 time instead of now')
    .option('--json', 'print a JSON report')
    .action(async (file: string | undefined, opts: { trusted: string[]; chain: string[]; json?: boolean; at?: string }) => {
      // `--trusted A B FILE` reads naturally; a variadic option swallows FILE, so take it back.
      if (file === undefined) {
        const last = lastVariadic(argv)
        const list = last === 'chain' ? opts.chain : opts.trusted
        if (list.length > 1) file = list.pop()
      }
      if (file === undefined) throw new CliError('verify: missing FILE')
      exit(await verifyCommand(io, file, { trusted: opts.trusted, chain: opts.chain, ...(opts.json ? { json: true } : {}), ...(opts.at ? { at: opts.at } : {}) }))
    })

  assertion
    .command('sign')
    .description('sign an assertion and print it')
    .argument('[headers...]', 'extra headers as name=value')
    .requiredOption('--key <pem>', 'private key PEM (PKCS#1 or PKCS#8)')
    .requiredOption('--type <type>', 'assertion type, e.g. model, serial, serial-request, account-key')
    .option('--authority <id>', 'authority-id header')
    .option('--headers <file>', 'JSON (.json) or YAML file with a mapping of headers (lists and maps allowed)')
    .option('--body-file <file>', 'read the body from FILE')
    .option('--public-key-body <pem>', 'for account-key: body and public-key-sha3-384 from this key')
    .option('--device-key-of <pem>', 'set device-key (and, for serial, device-key-sha3-384) from this key')
    .option('--now', 'set timestamp to the current time when not given')
    .option('--sig-time <time>', 'signature creation time (RFC 3339), for reproducible output')
    .action(async (assignments: string[], opts) => {
      exit(await signCommand(io, assignments, opts))
    })

  assertion
    .command('show')
    .description('print headers, key ids and signer of each assertion in FILE')
    .argument('<file>')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: { json?: boolean }) => exit(await showCommand(io, file, opts)))

  assertion
    .command('key-id')
    .description("print the snapd key id (sha3-384) of a key")
    .requiredOption('--key <pem>', 'private or public key PEM')
    .option('--public-key', "also print snapd's encoding of the public key")
    .action(async (opts: { key: string; publicKey?: boolean }) => exit(await keyIdCommand(io, opts)))

  return program
}

function collectVariadic(value: string, prev: string[]): string[] {
  return collect(value, prev)
}

/** Which of --trusted / --chain appeared last on the command line. */
function lastVariadic(argv: readonly string[]): 'trusted' | 'chain' | undefined {
  for (let i = argv.length - 1; i >= 0; i--) {
    if (argv[i] === '--trusted' || argv[i]!.startsWith('--trusted=')) return 'trusted'
    if (argv[i] === '--chain' || argv[i]!.startsWith('--chain=')) return 'chain'
  }
  return undefined
}

/** Runs the CLI and resolves with the exit code (never calls process.exit itself). */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  let code: number = EXIT.OK
  const program = buildProgram(io, (c) => (code = c), argv)
  program.exitOverride()
  try {
    await program.parseAsync(argv, { from: 'user' })
    return code
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE
    if (e instanceof CliError) {
      io.err(`vault-server: ${e.message}\n`)
      return e.exitCode
    }
    if (e instanceof VaultError) {
      io.err(`vault-server: ${e.message} (${e.code})\n`)
      return e.status >= 500 ? EXIT.UNAVAILABLE : EXIT.USAGE
    }
    io.err(`vault-server: unexpected error: ${(e as Error).stack ?? String(e)}\n`)
    return EXIT.FAILED
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // `vault-server assertion show FILE | head` must end quietly, not with EPIPE.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0)
    throw e
  })
  process.exitCode = await run(process.argv.slice(2))
}

