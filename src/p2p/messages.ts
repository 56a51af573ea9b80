/**
 * Schemas of the messages on Shoal's gossip topics, and the wire envelope around them.
 *
 * The topic schemas are deliberately loose objects (unknown keys are kept): they fix the
 * fields every node relies on (ids, CIDs, JWTs, each with a length bound), and the training
 * layer may register stricter schemas (`schema.extend({...})`) for its own topics.
 */
import { z } from 'zod'
import { CidString, DidKeyString } from '../common/index.js'
import {
  consentTopic,
  jobsTopic,
  jobUpdatesTopic,
  MAX_GOSSIP_MESSAGE_BYTES,
  receiptsTopic,
  TOPIC_MAX_BYTES
} from './constants.js'

/** One registered gossip topic: its name, the schema of its messages and its size limit. */
export interface TopicSpec<T = unknown> {
  topic: string
  schema: z.ZodType<T>
  /** Largest encoded message (envelope included), ≤ 1 MiB. */
  maxBytes: number
}

/** A did:key (Ed25519, base58btc): the schema every layer uses (src/common/schemas.ts). */
export const DidSchema = DidKeyString

/** A CID in its string form, parsed (base32 / base58btc / base36): src/common/schemas.ts. */
export const CidSchema = CidString

/** A compact JWS/JWT (three base64url parts). */
export const JwtSchema = z
  .string()
  .max(65_536)
  .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/, 'not a compact JWT')

/** A job id as it appears in topic names. */
export const JobIdSchema = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'not a job id')

/** A message on `/shoal/1/<swarm>/jobs`: a job announcement (or another job-level event). */
export const JobMessageSchema = z.looseObject({
  type: z.string().min(1).max(64),
  jobId: JobIdSchema
})
export type JobMessage = z.infer<typeof JobMessageSchema>

/** A message on `/shoal/1/<swarm>/job/<jobId>/updates`: a node's model after a local round. */
export const UpdateMessageSchema = z.looseObject({
  type: z.literal('update'),
  job: JobIdSchema,
  round: z.number().int().min(0),
  weightsCid: CidSchema,
  receipt: JwtSchema.optional()
})
export type UpdateMessage = z.infer<typeof UpdateMessageSchema>

/**
 * A message on `/shoal/1/<swarm>/receipts`: one signed receipt, or a signed fraud proof (a
 * verifier's statement that re-running a receipt gave another result; it embeds the receipt).
 */
export const ReceiptMessageSchema = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('receipt'), receipt: JwtSchema }),
  z.looseObject({ type: z.literal('fraud-proof'), proof: JwtSchema })
])
export type ReceiptMessage = z.infer<typeof ReceiptMessageSchema>

/** A message on `/shoal/1/<swarm>/consent`: a grant or a revocation, inline (JWT) or by CID. */
export const ConsentMessageSchema = z
  .looseObject({
    type: z.enum(['grant', 'revoke']),
    dataset: CidSchema,
    document: JwtSchema.optional(),
    cid: CidSchema.optional()
  })
  .refine((m) => m.document !== undefined || m.cid !== undefined, 'needs a document or a cid')
export type ConsentMessage = z.infer<typeof ConsentMessageSchema>

/**
 * The wire form of every gossip message (UTF-8 JSON): `v` the format version, `body` the
 * topic's message, `cred` the author's membership credential in a private swarm (so that
 * peers that never met the author can check it).
 */
export const EnvelopeSchema = z.object({
  v: z.literal(1),
  body: z.unknown(),
  cred: JwtSchema.optional()
})
export type Envelope = z.infer<typeof EnvelopeSchema>

/** Builds a {@link TopicSpec}. */
export function topicSpec<T>(topic: string, schema: z.ZodType<T>, maxBytes: number): TopicSpec<T> {
  if (!(maxBytes > 0 && maxBytes <= MAX_GOSSIP_MESSAGE_BYTES)) {
    throw new RangeError(`maxBytes must be in (0, ${MAX_GOSSIP_MESSAGE_BYTES}], got ${maxBytes}`)
  }
  return { topic, schema, maxBytes }
}

/** The topics of one swarm with their default schemas and limits. */
export interface SwarmTopics {
  jobs: TopicSpec<JobMessage>
  receipts: TopicSpec<ReceiptMessage>
  consent: TopicSpec<ConsentMessage>
  updates(jobId: string): TopicSpec<UpdateMessage>
}

/** The standard topics of swarm `swarmId`. */
export function swarmTopics(swarmId: string): SwarmTopics {
  return {
    jobs: topicSpec(jobsTopic(swarmId), JobMessageSchema, TOPIC_MAX_BYTES.jobs),
    receipts: topicSpec(receiptsTopic(swarmId), ReceiptMessageSchema, TOPIC_MAX_BYTES.receipts),
    consent: topicSpec(consentTopic(swarmId), ConsentMessageSchema, TOPIC_MAX_BYTES.consent),
    updates: (jobId: string) =>
      topicSpec(jobUpdatesTopic(swarmId, jobId), UpdateMessageSchema, TOPIC_MAX_BYTES.updates)
  }
}
