/**
 * A SwarmTrainer's aggregation: the node's own model combined with its peers' under the
 * job's rule, falling back to the median when the rule cannot run (`combine`), and the round
 * an aggregate stands for when its peers are well ahead (`reachedRound`, catch-up).
 */
import type { Logger } from '../../common/index.js'
import { aggregate, AggregationError, type AggregationRule, type Weights } from '../aggregate/index.js'
import { CATCH_UP_LAG } from './constants.js'
import type { ResolvedSwarmOptions } from './options.js'

/** An aggregate and the rule that made it (`own`: no peer models, the node's own model). */
export interface Combined {
  weights: Map<string, Float32Array>
  rule: AggregationRule | 'own'
}

/** The lower median of some numbers (−1 for none). */
export function lowerMedian(values: number[]): number {
  if (values.length === 0) return -1
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

type AggregatorOptions = Pick<ResolvedSwarmOptions, 'rule' | 'trimFraction' | 'krumF' | 'catchUp' | 'seed'>

/** Aggregates models under the job's rule. */
export class Aggregator {
  private readonly options: AggregatorOptions
  private readonly log: Logger
  /** Aggregations so far: with the job's seed, the seed of bucketing's shuffle. */
  private calls = 0

  constructor(options: AggregatorOptions, log: Logger) {
    this.options = options
    this.log = log
  }

  /** Aggregate the node's own model (first) with peer models; falls back when the rule cannot run. */
  combine(models: Weights[]): Combined {
    if (models.length === 1) return { weights: new Map(models[0]!), rule: 'own' }
    const o = this.options
    const n = models.length
    try {
      switch (o.rule) {
        case 'mean':
          return { weights: aggregate('mean', models), rule: 'mean' }
        case 'trimmed-mean':
          return {
            weights: aggregate(
              'trimmed-mean',
              models,
              o.trimFraction !== undefined ? { beta: o.trimFraction } : {}
            ),
            rule: 'trimmed-mean'
          }
        case 'median':
          return { weights: aggregate('median', models), rule: 'median' }
        case 'krum': {
          const f = o.krumF ?? Math.max(0, Math.floor((n - 3) / 2))
          if (n < 2 * f + 3) return { weights: aggregate('median', models), rule: 'median' }
          return { weights: aggregate('krum', models, { f, m: n - f }), rule: 'krum' }
        }
        case 'clipped-gossip':
          // The own model is models[0]: neighbours are clipped around it.
          return { weights: aggregate('clipped-gossip', models), rule: 'clipped-gossip' }
        case 'bucketing':
          return {
            weights: aggregate('bucketing', models, { seed: (o.seed + this.calls++) >>> 0 }),
            rule: 'bucketing'
          }
      }
    } catch (err) {
      if (!(err instanceof AggregationError)) throw err
      this.log.warn({ rule: o.rule, n, err: err.message }, 'aggregation rule cannot run; using the median')
    }
    return { weights: aggregate('median', models), rule: 'median' }
  }

  /**
   * The round the aggregate of round r stands for, given the rounds of the peer models in it:
   * peer models of later rounds carry their progress. The lower median of the peers' rounds,
   * so that one peer lying about its round cannot push the node to the end of the job; and
   * only when it is CATCH_UP_LAG rounds or more ahead: a node one round behind its peers
   * (asynchrony) keeps training every round. Jumping on a one-round lead made equally fast
   * nodes leapfrog one another, each training every other round only (seen on an idle
   * machine: 10 local rounds of 20).
   */
  reachedRound(r: number, peerRounds: number[]): number {
    const median = lowerMedian(peerRounds)
    return this.options.catchUp && median >= r + CATCH_UP_LAG ? median : r
  }
}
