/**
 * The governance gossip topic of a swarm, `/shoal/1/<swarm>/governance`: signed documents
 * (constitution, proposals, votes, decrees), the digest of a node's document set (so that a
 * node that missed some learns it and syncs), and membership credentials issued for admitted
 * members (so that any member can hand the new member its invite).
 */
import { z } from 'zod'
import { DidSchema, JwtSchema, topicSpec, type TopicSpec } from '../../p2p/index.js'
import { MAX_DOCUMENT_BYTES } from './constants.js'

/** Size limit of a governance gossip message. */
export const GOVERNANCE_TOPIC_MAX_BYTES = 32_768

/** The governance topic's name for `swarm`. */
export function governanceTopicName(swarm: string): string {
  if (!/^[A-Za-z0-9._:-]{1,128}$/.test(swarm))
    throw new RangeError(`not a swarm id: ${JSON.stringify(swarm)}`)
  return `/shoal/1/${swarm}/governance`
}

/** A message on the governance topic. */
export const GovernanceMessageSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('document'), jwt: JwtSchema.max(MAX_DOCUMENT_BYTES) }),
  z.looseObject({
    type: z.literal('head'),
    head: z.string().regex(/^[0-9a-f]{64}$/),
    n: z.int().min(0)
  }),
  z.looseObject({
    type: z.literal('credential'),
    proposal: z.string().min(1).max(256),
    member: DidSchema,
    credential: JwtSchema.max(MAX_DOCUMENT_BYTES)
  })
])
export type GovernanceMessage = z.infer<typeof GovernanceMessageSchema>

/** The topic spec (schema and limit) of a swarm's governance topic. */
export function governanceTopic(swarm: string): TopicSpec<GovernanceMessage> {
  return topicSpec(governanceTopicName(swarm), GovernanceMessageSchema, GOVERNANCE_TOPIC_MAX_BYTES)
}
