/** `shoal dashboard`: a one-time login URL for the node's web dashboard (and `--open` to open it). */
import { spawn } from 'node:child_process'
import type { Command } from 'commander'
import type { CliContext } from './context.js'

/**
 * The command that opens `url`: `$BROWSER` when set (read as xdg-open and Python's webbrowser
 * read it: the first of its `:`-separated commands, split on spaces, `%s` replaced by the URL or
 * the URL appended), else the platform's opener.
 */
export function browserCommand(
  url: string,
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform
): { cmd: string; args: string[] } {
  const words = (env.BROWSER ?? '').split(':')[0]!.trim().split(/\s+/).filter(Boolean)
  if (words.length > 0) {
    const [cmd, ...rest] = words as [string, ...string[]]
    const args = rest.some((a) => a.includes('%s'))
      ? rest.map((a) => a.replaceAll('%s', url))
      : [...rest, url]
    return { cmd, args }
  }
  if (platform === 'darwin') return { cmd: 'open', args: [url] }
  if (platform === 'win32') return { cmd: 'explorer', args: [url] }
  return { cmd: 'xdg-open', args: [url] }
}

/** Registers `dashboard` on `program`. */
export function registerDashboardCommands(program: Command, ctx: CliContext): void {
  program
    .command('dashboard')
    .description('print a one-time login URL for this node’s web dashboard (the token in it works once)')
    .option('--open', 'also open it in the browser ($BROWSER, else the desktop’s default)')
    .action(async (opts: { open?: boolean }) => {
      const client = await ctx.client()
      const r = await client.call<{ url: string; expiresAt: string }>('dashboard_login')
      ctx.out(ctx.json(), r, () =>
        [
          `open this URL within a few minutes (it works once, then the page keeps a session):`,
          `  ${r.url}`
        ].join('\n')
      )
      if (opts.open === true) {
        const { cmd, args } = browserCommand(r.url)
        const child = spawn(cmd, args, { stdio: 'ignore', detached: true })
        child.on('error', () => process.stderr.write(`could not run ${cmd}: open the URL by hand\n`))
        child.unref()
      }
    })
}
