/**
 * `shoal daemon`: load the config, start the node, and stop cleanly on SIGINT/SIGTERM
 * (RPC closed, api file removed, Helia and level flushed and closed, repo unlocked).
 */
import { configureLogger, logger } from '../common/index.js'
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

/** True for the rejections an aborted operation produces (`AbortSignal.abort()`, `signal.throwIfAborted()`). */
export function isAbort(reason: unknown): boolean {
  if (!(reason instanceof Error)) return false
  return reason.name === 'AbortError' || (reason as { code?: unknown }).code === 'ABORT_ERR'
}

/**
 * What the daemon does with a promise rejection nobody handled. An abort that escaped its
 * caller (e.g. a round in flight halted by an unlearning) is a bug, but one that must not take a
 * volunteer's node down: it is logged with its stack and the node keeps running. Anything else
 * stops the process, as Node would, after saying what it was. Returns whether it kept running.
 */
export function onUnhandledRejection(
  reason: unknown,
  log: { error(obj: unknown, msg: string): void },
  exit: (code: number) => void = (code) => process.exit(code)
): boolean {
  const err =
    reason instanceof Error ? { name: reason.name, message: reason.message, stack: reason.stack } : reason
  if (isAbort(reason)) {
    log.error(
      { err },
      'an aborted operation was not awaited (a bug: please report it); the node keeps running'
    )
    return true
  }
  log.error({ err }, 'unhandled promise rejection: stopping')
  process.stderr.write(
    `unhandled promise rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`
  )
  exit(1)
  return false
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
  const log = logger('shoal:node:daemon')
  process.on('unhandledRejection', (reason) => void onUnhandledRejection(reason, log))
  opts.onReady?.(node)
  return node
}
