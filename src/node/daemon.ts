/**
 * `shoal daemon`: load the config, start the node, and stop cleanly on SIGINT/SIGTERM
 * (RPC closed, api file removed, Helia and level flushed and closed, repo unlocked).
 */
import { configureLogger } from '../common/index.js'
import { loadConfig } from './config/index.js'
import { ShoalNode } from './node.js'
import { Repo } from './repo/index.js'

export interface DaemonOptions {
  home: string
  sets?: string[]
  passphrase?: string
  /** Called once the node is ready (the CLI prints a banner). */
  onReady?: (node: ShoalNode) => void
}

/** Start a daemon and return a function that stops it; installs signal handlers. */
export async function runDaemon(opts: DaemonOptions): Promise<ShoalNode> {
  const repo = new Repo(opts.home)
  await repo.assertInitialized()
  const config = await loadConfig({ repoConfigPath: repo.configPath, sets: opts.sets })
  configureLogger({ level: process.env.SHOAL_LOG ?? config.log.level, format: config.log.format })
  const node = new ShoalNode({ home: opts.home, config, passphrase: opts.passphrase })
  await node.start()
  let stopping = false
  const shutdown = (signal: string): void => {
    if (stopping) {
      process.stderr.write(`\n${signal} again: exiting without a clean stop\n`)
      process.exit(130)
    }
    stopping = true
    process.stderr.write(`\n${signal}: stopping the node…\n`)
    node.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`error while stopping: ${(err as Error).message}\n`)
        process.exit(1)
      }
    )
  }
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  opts.onReady?.(node)
  return node
}
