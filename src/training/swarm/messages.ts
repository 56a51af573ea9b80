/**
 * What goes on a job's updates topic: a node's announcement of its model after a local
 * round. The p2p layer's `UpdateMessageSchema` fixes `{ type: 'update', job, round,
 * weightsCid, receipt? }`; the swarm protocol adds `samples` (examples processed in the
 * round) and `loss` (its mean training loss, when finite). The model itself travels by CID.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { jobUpdatesTopic, topicSpec, TOPIC_MAX_BYTES, UpdateMessageSchema } from '../../p2p/index.js'
import type { TopicSpec } from '../../p2p/index.js'

/** An announcement on `/shoal/1/<swarm>/job/<jobId>/updates`. */
export const UpdateAnnouncementSchema = UpdateMessageSchema.extend({
  /** Examples processed in the round (each counted every time it is seen). */
  samples: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** Mean training loss of the round's local steps (absent when not finite). */
  loss: z.number().optional(),
  /**
   * The lineage epoch the model belongs to: after a revoked grant is unlearned, the swarm
   * retrains without it under a new epoch (see `epochOf`), and models of other epochs are
   * ignored. Absent for a job that never unlearned anything.
   */
  epoch: z.string().min(1).max(64).optional()
})
export type UpdateAnnouncement = z.infer<typeof UpdateAnnouncementSchema>

/**
 * The updates topic of a job with the announcement schema, for
 * `GossipService.register`/`publish`/`subscribe`. Register this spec rather than the p2p
 * layer's default `swarmTopics(swarm).updates(jobId)`: one topic name takes one spec.
 */
export function updatesTopic(swarmId: string, jobId: string): TopicSpec<UpdateAnnouncement> {
  return topicSpec(jobUpdatesTopic(swarmId, jobId), UpdateAnnouncementSchema, TOPIC_MAX_BYTES.updates)
}

/**
 * The epoch of a job's lineage that excludes `grants` (ids of revoked or expired grants whose
 * data was unlearned): '' for none, else the first 16 hex digits of sha-256 of the sorted ids.
 * Nodes that honoured the same revocations agree on it.
 */
export function epochOf(grants: readonly string[]): string {
  if (grants.length === 0) return ''
  const sorted = [...new Set(grants)].sort()
  return createHash('sha256').update(sorted.join('\n')).digest('hex').slice(0, 16)
}
