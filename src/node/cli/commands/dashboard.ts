/** `shoal dashboard`: a one-time login URL for the node's web dashboard (and `--open` to open it). */
import { spawn } from 'node:child_process'
import type { Command } from 'commander'
import type { CliContext } from './context.js'

/** The command that opens a URL in the desktop's browser, if this platform has one. */
function opener(): string | undefined {
  if (process.platform === 'darwin') return 'open'
  if (process.platform === 'win32') return 'explorer'
  return 'xdg-open'
}

/** Registers `dashboard` on `program`. */
export function registerDashboardCommands(program: Command, ctx: CliContext): void {
  program
    .command('dashboard')
    .description('print a one-time login URL for this node’s web dashboard (the token in it works once)')
    .option('--open', 'also open it in the browser')
    .action(async (opts: { open?: boolean }) => {
      const client = await ctx.client()
      const r = await client.call<{ url: string; expiresAt: string }>('dashboard_login')
      ctx.out(ctx.json(), r, () =>
        [
          `open this URL within a few minutes (it works once, then the page keeps a session):`,
          `  ${r.url}`
        ].join('\n')
      )
      const cmd = opts.open === true ? opener() : undefined
      if (cmd !== undefined) {
        const child = spawn(cmd, [r.url], { stdio: 'ignore', detached: true })
        child.on('error', () => process.stderr.write(`could not run ${cmd}: open the URL by hand\n`))
        child.unref()
      }
    })
}
