/**
 * The `shoal` command line. `init` and `daemon` act on the data dir; every other command is
 * a client of the running daemon's RPC (as `ipfs` is of Kubo), found through `$SHOAL_HOME/api`.
 * Human output by default, `--json` for scripts; exit codes are listed in EXIT below, and a
 * failed command's code is that of its error's category (CATEGORY_EXIT). The commands live in
 * ./commands/, one module per group.
 */
import { Command, CommanderError } from 'commander'
import { ShoalError, type ErrorCategory } from '../../common/index.js'
import { resolveHome } from '../repo/index.js'
import { VERSION } from '../constants.js'
import { connect } from './connect.js'
import { registerReceiptCommands } from './receipts.js'
import {
  out,
  registerDashboardCommands,
  registerDatasetCommands,
  registerGovernanceCommands,
  registerJobCommands,
  registerNetworkCommands,
  registerNodeCommands,
  registerPredictCommands,
  registerStorageCommands,
  registerTrainingCommands,
  registerVolunteerCommands,
  type CliContext,
  type Globals
} from './commands/index.js'

export { parseExpiry } from './commands/index.js'

/** Exit codes, stable for scripts. */
export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  DAEMON_NOT_RUNNING: 3,
  NOT_FOUND: 4,
  INTEGRITY: 5,
  REFUSED: 6
} as const

/** The exit code of a failed command, by the category of its error (anything not a ShoalError: ERROR). */
export const CATEGORY_EXIT: Record<ErrorCategory, number> = {
  usage: EXIT.USAGE,
  unavailable: EXIT.DAEMON_NOT_RUNNING,
  'not-found': EXIT.NOT_FOUND,
  integrity: EXIT.INTEGRITY,
  refused: EXIT.REFUSED,
  internal: EXIT.ERROR
}

/** The exit code `main` gives for `err`. */
export function exitCodeOf(err: unknown): number {
  return err instanceof ShoalError ? CATEGORY_EXIT[err.category] : EXIT.ERROR
}

export function buildProgram(): Command {
  const program = new Command('shoal')
    .description('Shoal: a peer-to-peer node for community-owned AI training')
    .version(VERSION)
    .option('--home <dir>', 'data dir (default $SHOAL_HOME or ~/.shoal)')
    .option('--json', 'machine-readable output')
    .option('--api <url>', 'daemon RPC address (default: read from the data dir)')
    .showHelpAfterError()

  const globals = (): Globals & { home: string } => {
    const o = program.opts<Globals>()
    return { ...o, home: o.home ?? resolveHome() }
  }
  const ctx: CliContext = {
    globals,
    json: () => globals().json === true,
    client: async () => connect(globals().home, globals().api),
    out
  }

  registerNodeCommands(program, ctx)
  registerStorageCommands(program, ctx)
  registerNetworkCommands(program, ctx)
  registerTrainingCommands(program, ctx)
  registerDatasetCommands(program, ctx)
  registerJobCommands(program, ctx)
  registerVolunteerCommands(program, ctx)
  registerPredictCommands(program, ctx)
  registerReceiptCommands(program, ctx.client, ctx.out, ctx.json)
  registerGovernanceCommands(program, ctx)
  registerDashboardCommands(program, ctx)

  return program
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram().exitOverride()
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE
      return
    }
    const code = err instanceof ShoalError ? err.code : undefined
    const json = program.opts<Globals>().json === true
    if (json)
      process.stderr.write(JSON.stringify({ error: { code, message: (err as Error).message } }) + '\n')
    else process.stderr.write(`shoal: ${(err as Error).message}${code !== undefined ? ` [${code}]` : ''}\n`)
    process.exitCode = exitCodeOf(err)
  }
}
