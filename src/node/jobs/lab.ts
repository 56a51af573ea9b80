/**
 * LAB TOOL: `SHOAL_LAB_BYZANTINE=<attack>[:param]` makes this node a Byzantine trainer in every job
 * it runs (src/training/swarm/byzantine.ts: sign-flip, scale, noise, alie, ipm, label-flip,
 * free-ride, withhold), for the attack benchmarks (`npm run bench:byzantine`). It is refused
 * (`CONFIG_INVALID`, the daemon does not start) on a node that listens on, or announces, anything
 * but loopback: a lab attack never reaches a real swarm. Not a config key on purpose (no
 * config.json or `--set` can turn it on).
 */
import { parseByzantine, type ByzantineAttack } from '../../training/index.js'
import { ConfigError, type ShoalConfig } from '../config/index.js'

/** The variable that turns a node into a Byzantine trainer (lab only). */
export const LAB_BYZANTINE_ENV = 'SHOAL_LAB_BYZANTINE'

/** Lab settings of the job runner. */
export interface JobLab {
  byzantine?: ByzantineAttack
}

const LOOPBACK = /^\/(ip4\/127\.\d+\.\d+\.\d+|ip6\/::1)(\/|$)/

/**
 * The lab settings `env` asks for, or undefined (the normal case).
 *
 * @throws {ConfigError} `CONFIG_INVALID` for an unknown attack, or for one on a node that listens
 *   or announces beyond loopback.
 */
export function labFromEnv(
  env: NodeJS.ProcessEnv,
  p2p: Pick<ShoalConfig['p2p'], 'listen' | 'announce'>
): JobLab | undefined {
  const raw = env[LAB_BYZANTINE_ENV]
  if (raw === undefined || raw === '') return undefined
  const fail = (reason: string): ConfigError =>
    new ConfigError('CONFIG_INVALID', `${LAB_BYZANTINE_ENV}: ${reason}`, {
      path: LAB_BYZANTINE_ENV,
      source: 'environment',
      reason
    })
  const outside = [...p2p.listen, ...p2p.announce].filter((a) => !LOOPBACK.test(a))
  if (outside.length > 0)
    throw fail(`a lab attack runs only on a loopback-only node; this one uses ${outside.join(', ')}`)
  try {
    return { byzantine: parseByzantine(raw) }
  } catch (err) {
    throw fail((err as Error).message)
  }
}
