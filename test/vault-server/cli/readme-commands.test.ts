/**
 * The README and the docs show `vault-server` command lines a new user copies
 * (issue 13: the README said `key list --key-id`, the command takes
 * `--account`). Every such line is checked against the real command tree
 * (buildProgram, the one main.ts runs): each subcommand exists, and each
 * `--flag` written for it is one of its options. Checked: the command table
 * of README.md (every row; `a|b` alternatives must each take every flag of
 * the row), and command lines in fenced code blocks and inline code spans of
 * README.md and docs/*.md that start with a known command.
 */
import test from 'ava'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Command } from 'commander'
import { buildProgram } from '../../../vault-server/src/main.js'
import { REPO_ROOT } from '../../helpers/vectors.js'

const program = buildProgram({ out: () => {}, err: () => {}, readFile: async () => Buffer.alloc(0), env: {} }, () => {})

/** Options every command takes. */
const GLOBAL = new Set(['--help', '--version'])

/** The commands `words` names (`key list|enable` gives two), or a reason it names none. */
function resolve(words: string[]): { commands: Command[]; rest: string[] } | string {
  let current: Command[] = [program]
  let i = 0
  for (; i < words.length; i++) {
    const alternatives = words[i]!.split('|')
    const next = current.flatMap((c) => alternatives.map((a) => c.commands.find((s) => s.name() === a)))
    if (next.some((c) => c === undefined)) {
      if (i === 0) return `no command ${words[i]}`
      if (current.some((c) => c.commands.length > 0) && next.every((c) => c === undefined) && /^[a-z][a-z-]*(\|[a-z-]+)*$/.test(words[i]!) && current.every((c) => c.commands.length > 0)) {
        return `${current.map((c) => c.name()).join('|')} has no subcommand ${words[i]}`
      }
      break
    }
    current = next as Command[]
  }
  if (current.some((c) => c.commands.length > 0 && c !== program)) return `${words.slice(0, i).join(' ')} needs a subcommand`
  return { commands: current, rest: words.slice(i) }
}

/** Problems of one command line (the words after `vault-server`). */
function check(line: string): string[] {
  const words = line.trim().split(/\s+/)
  const r = resolve(words)
  if (typeof r === 'string') return [r]
  const flags = [...r.rest.join(' ').matchAll(/(?:^|[\s[(|])(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!)
  const problems: string[] = []
  for (const c of r.commands) {
    const known = new Set([...c.options.map((o) => o.long!), ...GLOBAL])
    for (const f of flags) if (!known.has(f)) problems.push(`${c.parent?.name() === 'vault-server' ? '' : `${c.parent?.name()} `}${c.name()} has no option ${f}`)
  }
  return problems
}

/** The README's command table: `| \`cmd\` | what |` rows under "The `vault-server` command". */
function tableRows(readme: string): string[] {
  const section = readme.slice(readme.indexOf('## The `vault-server` command'))
  const end = section.indexOf('\n## ', 5)
  return [...section.slice(0, end).matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!.replace(/\\\|/g, '|'))
}

/** `vault-server ...` command lines in fenced code (continuations joined, comments cut) and inline code. */
function commandLines(md: string): string[] {
  const out: string[] = []
  const fences = [...md.matchAll(/^```[a-z]*\n([\s\S]*?)^```/gm)].map((m) => m[1]!)
  for (const block of fences) {
    for (const line of block.replace(/\\\n\s*/g, ' ').split('\n')) {
      const m = /(?:^|\s)vault-server\s+(.*)$/.exec(line.replace(/\s#\s.*$/, ''))
      if (m) out.push(m[1]!)
    }
  }
  const prose = md.replace(/^```[a-z]*\n[\s\S]*?^```/gm, '')
  for (const m of prose.matchAll(/`(?:npx |npm exec --no -- )?vault-server ([^`]+)`/g)) out.push(m[1]!)
  return out
}

const topLevel = new Set(program.commands.map((c) => c.name()))

test('README: every row of the command table names a real command and only its options', async (t) => {
  const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8')
  const rows = tableRows(readme)
  t.true(rows.length > 20, `found ${rows.length} rows`)
  const problems = rows.flatMap((row) => check(row).map((p) => `${row}: ${p}`))
  t.deepEqual(problems, [])
})

test('README and docs: command lines in code name real commands and only their options', async (t) => {
  const files = ['README.md', ...(await readdir(join(REPO_ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
  const problems: string[] = []
  let checked = 0
  for (const file of files) {
    for (const line of commandLines(await readFile(join(REPO_ROOT, file), 'utf8'))) {
      if (!topLevel.has(line.trim().split(/\s+/)[0]!.split('|')[0]!)) continue
      checked++
      for (const p of check(line)) problems.push(`${file}: vault-server ${line.trim()}: ${p}`)
    }
  }
  t.true(checked > 15, `checked ${checked} lines`)
  t.deepEqual(problems, [])
})

test('check: finds the README mistake of issue 13 and an unknown subcommand', (t) => {
  t.deepEqual(check('key list --data DIR --key-id ID'), ['key list has no option --key-id'])
  t.deepEqual(check('key list --data DIR --account ID'), [])
  t.deepEqual(check('key list|enable --data DIR [--account ID]'), ['key enable has no option --account'])
  t.deepEqual(check('model frob --data DIR'), ['model has no subcommand frob'])
  t.deepEqual(check('key --data DIR'), ['key needs a subcommand'])
})
