/** How the CLI finds the running daemon: the data dir's `api` file and `rpc.cookie`. */
import { ShoalError } from '../../common/index.js'
import { Repo } from '../repo/index.js'
import { RpcClient } from '../rpc/index.js'

/** Thrown when no daemon runs for the data dir. */
export class DaemonNotRunningError extends ShoalError<'DAEMON_NOT_RUNNING', { home: string }> {
  static override readonly category = 'unavailable'
}

export async function connect(home: string, apiOverride?: string): Promise<RpcClient> {
  const repo = new Repo(home)
  const api = apiOverride ?? (await repo.readApi())
  const hint = `start one with \`shoal daemon\` (SHOAL_HOME=${home}), or \`npx shoal daemon\` from the project`
  if (api === undefined) {
    throw new DaemonNotRunningError('DAEMON_NOT_RUNNING', `no Shoal daemon is running for ${home}: ${hint}`, {
      home
    })
  }
  let token: string
  try {
    token = process.env.SHOAL_API_TOKEN ?? (await repo.readCookie())
  } catch {
    throw new DaemonNotRunningError('DAEMON_NOT_RUNNING', `cannot read ${repo.cookiePath}: ${hint}`, { home })
  }
  const client = new RpcClient(api, token)
  try {
    await client.call('node_info')
  } catch (err) {
    if ((err as ShoalError).code === 'DAEMON_UNREACHABLE') {
      throw new DaemonNotRunningError(
        'DAEMON_NOT_RUNNING',
        `the Shoal daemon for ${home} is not answering at ${api} (stale api file?): ${hint}`,
        { home }
      )
    }
    throw err
  }
  return client
}
