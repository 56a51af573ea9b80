/**
 * What goes on a job's updates topic: a node's announcement of its model after a local
 * round. The p2p layer's `UpdateMessageSchema` fixes `{ type: 'update', job, round,
 * weightsCid, receipt? }`; the swarm protocol adds `samples` (examples processed in the
 * round) and `loss` (its mean training loss, when finite). The model itself travels by CID.
 */
import { z } from 'zod'
import { jobUpdatesTopic, topicSpec, TOPIC_MAX_BYTES, UpdateMessageSchema } from '../../p2p/index.js'
import type { TopicSpec } from '../../p2p/index.js'

/** An announcement on `/shoal/1/<swarm>/job/<jobId>/updates`. */
export const UpdateAnnouncementSchema = UpdateMessageSchema.extend({
  /** Examples processed in the round (each counted every time it is seen). */
  samples: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** Mean training loss of the round's local steps (absent when not finite). */
  loss: z.number().optional()
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
