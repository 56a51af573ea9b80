/**
 * The objects a node stored for its own rounds (announced models, checkpoints, published
 * results, outer momentum), kept for the last `rounds` rounds and removed from the store after:
 * peers still fetching a round's model find it, and the store does not grow with the job.
 */
import type { Logger } from '../../common/index.js'
import type { WeightStore } from './types.js'

/** A node's own objects of its latest rounds. */
export class RetainedObjects {
  private readonly entries: Array<{ round: number; cids: string[] }> = []

  constructor(
    private readonly store: Pick<WeightStore, 'remove'>,
    private readonly rounds: number,
    private readonly log: Logger
  ) {}

  /**
   * Keep `cids` for `round` (undefined entries — an object the round did not store — are
   * skipped); the objects of rounds beyond the last `rounds` are removed from the store (unless a
   * kept round names them too). Removal failures are logged at debug.
   */
  keep(round: number, cids: ReadonlyArray<string | undefined>): void {
    this.entries.push({ round, cids: cids.filter((c): c is string => c !== undefined) })
    const remove = this.store.remove?.bind(this.store)
    while (this.entries.length > this.rounds) {
      const old = this.entries.shift()!
      if (remove === undefined) continue
      const kept = new Set(this.entries.flatMap((e) => e.cids))
      for (const cid of old.cids) {
        if (kept.has(cid)) continue
        remove(cid).catch((err: unknown) => this.log.debug({ cid, err }, 'could not remove an old model'))
      }
    }
  }
}
