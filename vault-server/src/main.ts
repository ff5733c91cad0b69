/**
 * The `vault-server` command: composition root and CLI. The only module that
 * names concrete implementations (with store/open-store.ts).
 */
import { Command, CommanderError, Option } from 'commander'
import { pathToFileURL } from 'node:url'
import { VaultError, exitCodeFor } from '@sv/shared'
// Installs node:crypto as the codec's crypto platform (the fast path; the
// main entry alone runs on @noble/hashes and WebCrypto).
import '@sv/shared/node'
import { CliError, EXIT, processIo, type CliIo } from './cli/io.js'
import { keyIdCommand, showCommand, signCommand, verifyCommand } from './cli/assertion-commands.js'
import {
  brandCreateCommand,
  brandImportCommand,
  brandListCommand,
  initCommand,
  keyListCommand,
  keySetEnabledCommand,
  modelAddCommand,
  modelListCommand,
  modelShowCommand,
  serveCommand,
  tokenCreateCommand,
  tokenListCommand,
  trustExportCommand,
} from './cli/vault-commands.js'
import { logExportCommand, logQueryCommand } from './cli/log-commands.js'
import { logFollowCommand } from './cli/log-follow.js'
import * as adm from './cli/admin-commands.js'
import * as wo from './cli/work-order-commands.js'
import { demoCommand } from './cli/demo.js'
import { errorsCommand } from './cli/errors-command.js'
import { VERSION } from './version.js'

const collect = (v: string, prev: string[]): string[] => [...prev, v]

/** Builds the command tree. `exit` receives each action's exit code. */
export function buildProgram(io: CliIo, exit: (code: number) => void, argv: readonly string[] = []): Command {
  const program = new Command('vault-server')
    .description('Serial vault for Ubuntu Core devices: signs snapd serial assertions for a brand')
    .version(VERSION)
    // Set before any subcommand is added, which copies it: an unknown option of a
    // subcommand must be a CommanderError (exit 2), not commander's process.exit(1).
    .exitOverride()
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

  // --- data-directory commands (data) and administration commands (target: the admin API
  // of a running vault with --url, or of the data directory opened in the command) -----
  const data = (c: Command): Command =>
    c
      .option('--data <dir>', 'data directory (env VAULT_DATA_DIR)')
      .option('--config <file>', 'config file (default DATA/vault.yaml when present)')
      .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
  const act =
    (fn: (opts: any) => Promise<number>) =>
    async (...args: unknown[]) => {
      const cmd = args.at(-1) as Command
      exit(await fn(cmd.opts()))
    }

  const target = (c: Command): Command =>
    data(c)
      .option('--url <url>', 'a running vault, e.g. https://vault:8443/v1/ (env VAULT_URL); else --data')
      .option('--token <token>', 'admin token or personal token (env VAULT_TOKEN)')
      .option('--ca <file>', 'CA certificate to trust (e.g. the development certificate)')
      .option('--insecure', 'do not check the TLS certificate (development only)')
      .option('--json', 'print JSON')

  data(program.command('init').description('create a data directory: master key, development TLS certificate, first admin token (printed once)'))
    .option('--tls-name <name...>', 'extra DNS names or IPs for the self-signed certificate')
    .option('--plain-http', 'no TLS files (the vault will sit behind a TLS proxy)')
    .option('--json', 'print JSON')
    .action(act((o) => initCommand(io, o)))

  data(program.command('serve').description('serve the device and admin API until SIGINT/SIGTERM'))
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:8443)')
    .option('--metrics-listen <host:port>', 'serve /metrics here (plain HTTP) instead of on --listen (env VAULT_METRICS_LISTEN)')
    .option('--tls-cert <file>', 'TLS certificate (default DATA/tls/cert.pem)')
    .option('--tls-key <file>', 'TLS private key (default DATA/tls/key.pem)')
    .option('--plain-http', 'plain HTTP, only behind a TLS-terminating proxy')
    .option('--dev', 'development mode (logged as a warning)')
    .option('--print-config', 'print the resolved configuration (secrets redacted) and exit')
    .action(act((o) => serveCommand(io, o)))

  data(program.command('demo').description('what `npm start` runs: a development vault with a demo brand and model'))
    .option('--listen <host:port>', 'address to listen on (default 127.0.0.1:8443)')
    .option('--mqtt-listen <host:port>', 'the embedded MQTT broker (default: the --listen host at its port + 440, 127.0.0.1:8883; env VAULT_MQTT_LISTEN)')
    .option('--idp-listen <host:port>', 'the development identity provider (default: the --listen host at its port + 1, 127.0.0.1:8444)')
    .option('--once', 'set up, print the instructions and stop (for scripts)')
    .action(act((o) => demoCommand(io, o)))

  const brand = program.command('brand').description('brand accounts and their keys')
  target(brand.command('create').description('a new brand under the vault-held root (private ecosystems, tests, demos)'))
    .requiredOption('--id <id>', 'brand account id')
    .requiredOption('--display-name <name>', 'display name')
    .option('--root-id <id>', 'account id of the vault root when it is created now (default svroot-XXXXXXXX)')
    .action(act((o) => brandCreateCommand(io, o)))
  target(brand.command('import').description("import a store-registered brand: its key and the account and account-key assertions the store issued (with --url the key goes to the vault over TLS only, never echoed)"))
    .requiredOption('--key <pem>', 'the brand private key (PKCS#1 or PKCS#8 PEM)')
    .requiredOption('--account <file>', 'the account assertion')
    .requiredOption('--account-key <file>', 'the account-key assertion of this key')
    .option('--trusted <file...>', 'extra trust anchors (default: Canonical root only)')
    .option('--chain <file...>', 'intermediate assertions the account-key needs')
    .option('--skip-chain-check', 'do not check the assertions against a trusted root (private setups)')
    .action(act((o) => brandImportCommand(io, o)))
  target(brand.command('list').description('brands and their keys'))
    .action(act((o) => brandListCommand(io, o)))

  const key = program.command('key').description('signing keys (never shown, only their ids)')
  target(key.command('list').description('keys and their state'))
    .option('--account <id>', 'only this account (a brand, or the vault root)')
    .action(act((o) => keyListCommand(io, o)))
  for (const [name, enabled] of [['enable', true], ['disable', false]] as const) {
    target(key.command(name).description(`${name} a signing key (audited${enabled ? '' : '; refused while a model signs with it'})`))
      .requiredOption('--key-id <id>', 'sha3-384 key id')
      .option('--reason <text>', enabled ? 'why (audit log)' : 'why (required; audit log)')
      .action(act((o) => keySetEnabledCommand(io, o, enabled)))
  }

  const model = program.command('model').description('device models')
  target(model.command('add').description('add a model and sign its model assertion'))
    .requiredOption('--brand <id>', 'brand id')
    .requiredOption('--model <name>', 'model name')
    .option('--api-key <key...>', 'API keys devices send (default: one generated and printed once)')
    .option('--serial-policy <policy>', 'device (the device proposes) or assign:TEMPLATE[@START], e.g. assign:ACME-{n:8}', 'device')
    .option('--duplicates <policy>', 'refuse (a serial stays with its first key) or reissue', 'refuse')
    .option('--headers <file>', 'model assertion headers (YAML or JSON): architecture, base, snaps, grade, ... (required, or --default-headers)')
    .option('--default-headers', 'sign a generic amd64 core22 "pc" model instead (for trying things out; says so on stderr)')
    .option('--key <key-id>', "signing key (default: the brand's oldest enabled key)")
    .action(act((o) => modelAddCommand(io, o)))
  target(model.command('list').description('models'))
    .option('--brand <id>', 'only this brand')
    .action(act((o) => modelListCommand(io, o)))
  target(model.command('move').description('move a model to another store of its brand (re-signs its assertion with the new store header)'))
    .requiredOption('--brand <id>', 'brand id')
    .requiredOption('--model <name>', 'model name')
    .requiredOption('--store <id>', 'the store it moves to')
    .action(act((o) => adm.modelMove(io, o)))
  target(model.command('show').description('print the signed model assertion (--json: the model record)'))
    .requiredOption('--brand <id>', 'brand id')
    .requiredOption('--model <name>', 'model name')
    .action(act((o) => modelShowCommand(io, o)))

  target(model.command('require-work-order').description('whether registrations of the model need an open work order (true or false)'))
    .argument('<value>', 'true or false')
    .requiredOption('--brand <id>', 'brand id')
    .requiredOption('--model <name>', 'model name')
    .action(async (value: string, _o: unknown, cmd: Command) => exit(await wo.modelRequireWorkOrder(io, cmd.opts(), value)))

  const workOrder = program.command('work-order').description('work orders: which serials of a model a factory may provision, how many, until when; and their reconciliation')
  target(workOrder.command('open').description('open a work order for a model of a store'))
    .requiredOption('--store <id>', "the model's store")
    .requiredOption('--model <name>', 'model name')
    .requiredOption('--quantity <n>', 'planned quantity')
    .option('--serials <list>', 'the serials allowed, comma-separated')
    .option('--range <spec>', 'PREFIX:START-END:WIDTH, e.g. GW-:1-500:4 for GW-0001..GW-0500')
    .option('--assign', "serials from the model's assign template")
    .option('--stations <ids>', 'station ids allowed, comma-separated (recorded; enforced once stations exist)')
    .option('--not-before <time>', 'ISO 8601 (default now)')
    .requiredOption('--not-after <time>', 'ISO 8601')
    .action(act((o) => wo.workOrderOpen(io, o)))
  target(workOrder.command('list').description("a store's work orders"))
    .requiredOption('--store <id>', 'store id')
    .option('--model <name>', 'only this model')
    .option('--status <status>', 'open, closed or exhausted')
    .action(act((o) => wo.workOrderList(io, o)))
  target(workOrder.command('show').description('one work order'))
    .argument('<id>', 'work order id')
    .requiredOption('--store <id>', 'store id')
    .action(async (id: string, _o: unknown, cmd: Command) => exit(await wo.workOrderShow(io, cmd.opts(), id)))
  target(workOrder.command('close').description('close an open work order (its report stays)'))
    .argument('<id>', 'work order id')
    .requiredOption('--store <id>', 'store id')
    .option('--reason <text>', 'why')
    .action(async (id: string, _o: unknown, cmd: Command) => exit(await wo.workOrderClose(io, cmd.opts(), id)))
  target(workOrder.command('report').description('reconciliation: planned, provisioned, refused, retried, duplicates, outstanding serials'))
    .argument('<id>', 'work order id')
    .requiredOption('--store <id>', 'store id')
    .option('--csv', 'print CSV')
    .action(async (id: string, _o: unknown, cmd: Command) => exit(await wo.workOrderReport(io, cmd.opts(), id)))

  const trust = program.command('trust').description('trust anchors for device images')
  target(trust.command('export').description("print the vault root's account and account-key (with --brand, the brand's chain too)"))
    .option('--brand <id>', "also the brand's account and account-keys")
    .option('--out <file>', 'write to FILE')
    .action(act((o) => trustExportCommand(io, o)))

  // --- store administration: a running vault (--url --token) or the data directory (--data) ---

  const store = program.command('store').description('stores: the base store of each brand and its product and ecosystem sub-stores')
  target(store.command('list').description('stores you can see')).option('--brand <id>', 'only this brand').action(act((o) => adm.storeList(io, o)))
  target(store.command('show').description('one store')).requiredOption('--store <id>', 'store id').action(act((o) => adm.storeShow(io, o)))
  target(store.command('create').description('a product or ecosystem sub-store'))
    .requiredOption('--id <id>', 'store id (the model assertion store header)')
    .requiredOption('--parent <id>', 'parent store')
    .requiredOption('--kind <kind>', 'product or ecosystem')
    .requiredOption('--display-name <name>', 'display name')
    .option('--partner-name <name>', 'ecosystem stores: the partner they are run for')
    .option('--partner-relation <relation>', 'reseller, subsidiary, business-partner or other')
    .option('--require-review [bool]', 'pivots into this store wait for a Reviewer')
    .action(act((o) => adm.storeCreate(io, o)))
  target(store.command('update').description("change a store's name, partner or review setting"))
    .requiredOption('--store <id>', 'store id')
    .option('--display-name <name>', 'display name')
    .option('--partner-name <name>', 'partner')
    .option('--partner-relation <relation>', 'reseller, subsidiary, business-partner or other')
    .option('--no-partner', 'remove the partner')
    .option('--require-review <bool>', 'true or false')
    .action(act((o) => adm.storeUpdate(io, o)))

  const user = program.command('user').description('people (they log in with OpenID Connect, identified by e-mail)')
  target(user.command('list').description('everyone the vault knows, with their roles (operator)')).action(act((o) => adm.userList(io, o)))

  const role = program.command('role').description("people's roles in a store")
  target(role.command('list').description("the store's people and roles")).requiredOption('--store <id>', 'store id').action(act((o) => adm.roleList(io, o)))
  target(role.command('set').description('invite a person or change their role in a store'))
    .requiredOption('--store <id>', 'store id')
    .requiredOption('--email <email>', "the person's e-mail (as their identity provider gives it)")
    .requiredOption('--role <role>', 'admin, publisher, collaborator, reviewer or viewer')
    .option('--inheritable', 'the role also holds in every store below')
    .option('--display-name <name>', "the person's name, when inviting")
    .action(act((o) => adm.roleSet(io, o)))
  target(role.command('remove').description("remove a person's role in a store")).requiredOption('--store <id>', 'store id').requiredOption('--email <email>', 'e-mail').action(act((o) => adm.roleRemove(io, o)))
  program
    .command('roles')
    .description('the permission table: what each role may do in a store')
    .option('--markdown', 'as a Markdown table (docs/roles.md)')
    .option('--json', 'print JSON')
    .action(act((o) => adm.rolesCommand(io, o)))

  const token = program.command('token').description('admin tokens (made only here, on the vault host) and personal tokens')
  data(token.command('create').description("a new admin token, the operator's break-glass credential (printed once); only here, on the vault host (--data), with the vault stopped when it uses LevelDB"))
    .requiredOption('--name <name>', 'who or what uses it')
    .option('--url <url>', 'refused: admin tokens are never made over the admin API')
    .addOption(new Option('--token <token>').hideHelp())
    .addOption(new Option('--ca <file>').hideHelp())
    .addOption(new Option('--insecure').hideHelp())
    .option('--role <role...>', 'roles (default admin)')
    .option('--json', 'print JSON')
    .action(act((o) => tokenCreateCommand(io, o)))
  target(token.command('list').description('admin tokens (--data), or with --url your own tokens (--store: those of a store\'s people)'))
    .option('--store <id>', "with --url: the tokens of this store's people (token.manage)")
    .action(act((o) => (o.url || io.env.VAULT_URL ? adm.remoteTokenList(io, o) : tokenListCommand(io, o))))
  target(token.command('revoke').description('revoke a token by the id token list shows (audited)'))
    .requiredOption('--id <id>', 'token id (12 hex digits; a unique prefix of 4 or more of your own tokens is enough)')
    .action(act((o) => adm.tokenRevoke(io, o)))

  const audit = program.command('audit').description('the audit log: every admin action, in a hash chain')
  const auditFilters = (c: Command): Command =>
    target(c)
      .option('--store <id>', 'the store whose entries to read (required for people)')
      .option('--subtree', 'and the stores below it')
      .option('--brand <id>', 'brand')
      .option('--actor <id>', 'person id, token id, device key id, cli user')
      .option('--action <action>', 'an action, or a prefix ending in "." (grant.)')
      .option('--outcome <outcome>', 'ok or denied')
      .option('--from <time>', 'from this time (ISO 8601 or epoch ms), inclusive')
      .option('--to <time>', 'until this time, exclusive')
  auditFilters(audit.command('query').description('entries, oldest first')).option('--limit <n>', 'page size (1..1000)').option('--order <order>', 'asc or desc').option('--all', 'follow every page').action(act((o) => adm.auditQuery(io, o)))
  auditFilters(audit.command('export').description('entries as JSON lines')).option('--out <file>', 'write to FILE').action(act((o) => adm.auditExport(io, o)))
  target(audit.command('verify').description('check the whole hash chain; exit 1 when an entry was changed, removed or reordered')).action(act((o) => adm.auditVerify(io, o)))

  const pivot = program.command('pivot').description('pivots (remodels): which devices may move to a model of a store')
  target(pivot.command('list').description('pivot rules into and out of a store')).requiredOption('--store <id>', 'store id').action(act((o) => adm.pivotList(io, o)))
  target(pivot.command('allow').description('let devices of a model move to a model of this store'))
    .requiredOption('--store <id>', 'the store of the new model')
    .requiredOption('--from-model <name>', 'the model devices come from')
    .requiredOption('--to-model <name>', 'the model of this store they move to')
    .option('--serial <serial>', 'only this serial (default: every serial of the model)')
    .action(act((o) => adm.pivotAllow(io, o)))
  target(pivot.command('remove').description('remove a pivot rule')).requiredOption('--store <id>', 'store id').requiredOption('--id <id>', 'rule id').action(act((o) => adm.pivotRemove(io, o)))
  target(pivot.command('requests').description('pivots waiting for (or decided by) a reviewer')).requiredOption('--store <id>', 'store id').option('--status <status>', 'pending, accepted or rejected').action(act((o) => adm.pivotRequests(io, o)))
  for (const [name, accept] of [['accept', true], ['reject', false]] as const) {
    target(pivot.command(name).description(`${name} a pivot waiting for review`))
      .requiredOption('--store <id>', 'store id')
      .requiredOption('--request-id <id>', 'the request-id the device sent')
      .option('--reason <text>', 'why')
      .action(act((o) => adm.pivotDecide(io, o, accept)))
  }

  const sysuser = program.command('system-user').description('system-user assertions (accounts snapd creates on devices)')
  target(sysuser.command('sign').description('sign a system-user assertion for models of a store'))
    .requiredOption('--store <id>', 'the store of the models')
    .requiredOption('--email <email>', 'e-mail')
    .requiredOption('--username <name>', 'the login name on the device')
    .option('--name <name>', 'full name')
    .option('--password-file <file>', 'a file holding the password (hashed by the vault; never on the command line)')
    .option('--password-hash <hash>', 'a crypt(3) hash ($6$...)')
    .option('--ssh-key <key...>', 'SSH public keys')
    .option('--model <name...>', 'models it is valid for')
    .option('--serial <serial...>', 'serials it is valid for (needs exactly one --model)')
    .option('--since <time>', 'RFC 3339 (default now)')
    .option('--until <time>', 'RFC 3339')
    .option('--force-password-change', 'the user must change the password at first login')
    .option('--out <file>', 'write the assertion to FILE')
    .action(act((o) => adm.systemUserSign(io, o)))

  // --- against a running vault --------------------------------------------------------
  const remote = (c: Command): Command =>
    c
      .option('--url <url>', 'vault base URL, e.g. https://vault:8443/v1/ (env VAULT_URL)')
      .option('--token <token>', 'admin token (env VAULT_TOKEN)')
      .option('--ca <file>', 'CA certificate to trust (e.g. the development certificate)')
      .option('--insecure', 'do not check the TLS certificate (development only)')
      .option('--brand <id>', 'brand')
      .option('--model <name>', 'model')
      .option('--serial <serial>', 'serial number')
      .option('--outcome <outcome>', 'issued, reissued, retried or refused')
      .option('--from <time>', 'from this time (ISO 8601 or epoch ms), inclusive')
      .option('--to <time>', 'until this time, exclusive')
  const logCmd = program.command('log').description('the signing log of a running vault: query, export, follow')
  remote(logCmd.command('query').description('entries matching the filters, oldest first'))
    .option('--limit <n>', 'page size (1..1000, default 100)')
    .option('--order <order>', 'asc or desc')
    .option('--all', 'follow every page')
    .option('--json', 'print JSON')
    .action(act((o) => logQueryCommand(io, o)))
  remote(logCmd.command('export').description('stream matching entries as JSON lines or CSV'))
    .option('--format <format>', 'jsonl or csv', 'jsonl')
    .option('--out <file>', 'write to FILE')
    .action(act((o) => logExportCommand(io, o)))
  logCmd
    .command('follow')
    .description('print provisioning outcomes as they happen (the Live stream), one line each; bounded by --count/--timeout, ends on SIGINT')
    .option('--url <url>', 'vault base URL, e.g. https://vault:8443/v1/ (env VAULT_URL)')
    .option('--token <token>', 'admin token or personal token (env VAULT_TOKEN)')
    .option('--ca <file>', 'CA certificate to trust (e.g. the development certificate)')
    .option('--insecure', 'do not check the TLS certificate (development only)')
    .option('--store <id>', "only this store's entries (a personal token needs it)")
    .option('--subtree', 'and the stores below it')
    .option('--brand <id>', 'only this brand')
    .option('--model <name>', 'only this model')
    .option('--serial <serial>', 'only this serial number')
    .option('--outcome <outcome>', 'only issued, reissued, retried, pivoted or refused')
    .option('--transport <transport>', 'only https or mqtt')
    .option('--recent', 'first the last entries the vault holds (up to 100), then the new ones')
    .option('--count <n>', 'stop after N entries (exit 0)')
    .option('--timeout <seconds>', 'stop after this long (exit 1 when --count was not reached, else 0)')
    .option('--retries <n>', 'reconnections in a row before giving up with exit 3 (default 10; backoff 1 s doubling to 30 s)')
    .option('--json', 'one JSON object per line (NDJSON)')
    .action(act((o) => logFollowCommand(io, o)))

  program
    .command('openapi')
    .description('docs/openapi.yaml with the admin and login paths generated from the code')
    .option('--file <file>', 'the document to start from', 'docs/openapi.yaml')
    .option('--write', 'write it back instead of printing it')
    .option('--check', 'exit 1 when the file is not what the code generates')
    .action(act(async (o: { file: string; write?: boolean; check?: boolean }) => {
      const { generateOpenApi } = await import('./http/openapi.js')
      const { readFile: rf, writeFile: wf } = await import('node:fs/promises')
      const current = await rf(o.file, 'utf8').catch((e: NodeJS.ErrnoException) => {
        throw new CliError(`cannot read ${o.file}: ${e.code}`)
      })
      const next = generateOpenApi(current)
      if (o.check) {
        if (next === current) return EXIT.OK
        io.err(`vault-server: ${o.file} is not what the code generates: run vault-server openapi --write\n`)
        return EXIT.FAILED
      }
      if (o.write) await wf(o.file, next)
      else io.out(next)
      return EXIT.OK
    }))

  program
    .command('errors')
    .description('print the SV_* error codes with their HTTP status, MQTT reason, exit code and meaning')
    .option('--markdown', 'as a Markdown table (docs/errors.md)')
    .option('--json', 'print JSON: {errors: [{code, status, mqtt, exit, summary}]}')
    .action(act((o) => errorsCommand(io, o)))

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

/** `invalid configuration:\n  a\n  b` as `invalid configuration: a; b`. */
function oneLine(message: string): string {
  const [head = '', ...rest] = message.split('\n').map((l) => l.trim()).filter((l) => l !== '')
  return rest.length ? `${head} ${rest.join('; ')}` : head
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
      // One line (a config error lists its issues on several): scripts grep it.
      io.err(`vault-server: ${oneLine(e.message)} (${e.code})\n`)
      return exitCodeFor(e.code)
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

