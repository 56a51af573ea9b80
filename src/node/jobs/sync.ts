/**
 * Jobs by anti-entropy: a job is announced once on the swarm's jobs topic when it is created,
 * and a member that was not in the topic's mesh then (joining, offline, cut off) never heard
 * of it — a 16-volunteer `bench:wan` run stopped because one volunteer never joined the job.
 * Members bring their job sets to the union with `ItemSync` over
 * `/shoal/1/job-sync/1.0.0` (src/p2p/sync.ts): items are job JWTs, grouped by creator, and an
 * item taken in goes through the same path as a gossiped announcement (verified — the id is the
 * CID of the JWT — recorded, handed to the runner, which joins when the node holds grants).
 */
import type { PeerId } from '@libp2p/interface'
import type { Logger } from '../../common/index.js'
import { groupDigest, type GroupDigest, type ItemSource, type JobMessage } from '../../p2p/index.js'
import { jobIdOf, type VerifiedJob } from '../../training/index.js'
import type { JobRecord } from '../records.js'

/** The protocol of job anti-entropy. */
export const JOB_SYNC_PROTOCOL = '/shoal/1/job-sync/1.0.0'

/** What the source needs: the node's jobs, and the path of an announcement. */
export interface JobSyncComponents {
  list(): Promise<JobRecord[]>
  /** Verifies, records when new and hands the job on (JobCatalog.receive with the runner's listener). */
  receive(msg: JobMessage): Promise<VerifiedJob>
  log: Logger
}

/** The node's jobs as anti-entropy items (see the module doc). */
export function jobSyncSource(c: JobSyncComponents): ItemSource {
  const groups = async (): Promise<Map<string, JobRecord[]>> => {
    const out = new Map<string, JobRecord[]>()
    for (const rec of await c.list()) {
      const list = out.get(rec.creator) ?? []
      list.push(rec)
      out.set(rec.creator, list)
    }
    return out
  }
  return {
    digests: async () => {
      const out = new Map<string, GroupDigest>()
      for (const [creator, recs] of await groups()) out.set(creator, groupDigest(recs.map((r) => r.id)))
      return out
    },
    ids: async (group) => ((await groups()).get(group) ?? []).map((r) => r.id),
    get: async (ids) => {
      const want = new Set(ids)
      return (await c.list()).filter((r) => want.has(r.id)).map((r) => r.jwt)
    },
    accept: async (items: string[], from: PeerId) => {
      const known = new Set((await c.list()).map((r) => r.id))
      let n = 0
      for (const jwt of items) {
        const id = jobIdOf(jwt)
        if (known.has(id)) continue
        try {
          await c.receive({ type: 'job', jobId: id, jwt })
          known.add(id)
          n++
        } catch (err) {
          c.log.warn(
            { from: from.toString(), job: id, err: (err as Error).message },
            'job sync: a job refused'
          )
        }
      }
      return n
    },
    idOf: (jwt) => jobIdOf(jwt)
  }
}
