/** @sv/device-agent: the agent is a command; its only export is the CLI entry. */
export { run, type CliIo } from './main.js'
