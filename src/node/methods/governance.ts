/**
 * `governance_*` RPC methods (proposals, votes, tallies, the constitution, founders' decrees,
 * invites of admitted members) and the data-owner side of the ledger (`ledger_rewards`,
 * `ledger_statement`, `ledger_verify_statement`). See docs/governance.md.
 */
import { z } from 'zod'
import { DidKeyString } from '../../common/index.js'
import { ActionSchema, PolicySchema, verifyStatement } from '../../training/index.js'
import { method, type RpcMethod } from '../rpc/index.js'
import type { NodeGovernance } from '../governance.js'
import type { NodeRewards } from '../rewards.js'

const Hash = z.string().min(1).max(256).describe('a document hash (CIDv1, raw, sha2-256, of the JWT)')
const Fraction = z.tuple([z.number(), z.number()])
const Rule = z.object({ quorum: Fraction, threshold: Fraction, strict: z.boolean() })
const CountedVote = z.object({
  voter: z.string(),
  choice: z.enum(['yes', 'no', 'abstain']),
  weight: z.number(),
  vote: z.string(),
  iat: z.number()
})
const Proposal = z.object({
  hash: z.string(),
  proposer: z.string(),
  title: z.string(),
  action: z.record(z.string(), z.unknown()),
  iat: z.number(),
  opens: z.number(),
  closes: z.number(),
  rule: Rule,
  status: z.enum(['pending', 'open', 'passed', 'failed']),
  outcome: z.string(),
  electorate: z.array(z.string()),
  weight: z.number(),
  yes: z.number(),
  no: z.number(),
  abstain: z.number(),
  quorumMet: z.boolean(),
  thresholdMet: z.boolean(),
  votes: z.array(CountedVote),
  superseded: z.number()
})
const Counts = z.record(z.string(), z.number())
const Balances = z.record(z.string(), z.number())

export function governanceMethods(governance: NodeGovernance, rewards: NodeRewards): RpcMethod[] {
  return [
    method({
      name: 'governance_status',
      summary:
        'The swarm’s governance as this node computes it: constitution, members, removed members, policy, approved jobs, proposals by status, the log head (equal on nodes that hold the same documents), refusals by reason',
      params: z.object({}),
      result: z.object({
        governed: z.boolean(),
        swarm: z.string().nullable(),
        constitution: z.string().nullable(),
        members: z.array(z.string()),
        removed: z.array(z.object({ did: z.string(), at: z.number() })),
        policy: z.record(z.string(), z.unknown()),
        approvedJobs: z.array(z.string()),
        proposals: z.object({
          pending: z.number(),
          open: z.number(),
          passed: z.number(),
          failed: z.number()
        }),
        head: z.string(),
        documents: z.number(),
        founder: z.boolean(),
        refused: Counts,
        rejected: Counts
      }),
      handler: async () => {
        await governance.refreshFounder()
        governance.refresh()
        return governance.status()
      }
    }),
    method({
      name: 'governance_found',
      summary:
        'Make the current swarm governed: sign its constitution with the founders’ key (the swarm’s creator only), defaults completed from the given file',
      params: z.object({
        constitution: z
          .record(z.string(), z.unknown())
          .optional()
          .describe('a constitution file (JSON), see docs/governance.md')
      }),
      result: z.object({ constitution: z.string() }),
      handler: async ({ constitution }) => governance.found(constitution ?? {})
    }),
    method({
      name: 'governance_propose',
      summary:
        'Sign and gossip a proposal (admit, remove, job, policy, resolution); its window opens now and lasts windowSeconds (default 3 days within the constitution’s bounds)',
      params: z.object({
        title: z.string().min(1).max(200),
        action: ActionSchema,
        windowSeconds: z.number().int().positive().optional()
      }),
      result: z.object({ proposal: z.string() }),
      handler: async (p) =>
        governance.propose(p.windowSeconds === undefined ? { title: p.title, action: p.action } : p)
    }),
    method({
      name: 'governance_vote',
      summary:
        'Sign and gossip this node’s vote on a proposal (the latest vote signed before the close counts)',
      params: z.object({ proposal: Hash, choice: z.enum(['yes', 'no', 'abstain']) }),
      result: z.object({ vote: z.string() }),
      handler: async ({ proposal, choice }) => governance.vote(proposal, choice)
    }),
    method({
      name: 'governance_decree',
      summary:
        'A founders’ decree: admit (during the bootstrap period) or remove (in an emergency) a member, as far as the constitution allows',
      params: z.object({
        action: z.discriminatedUnion('type', [
          z.object({ type: z.literal('admit'), member: DidKeyString }),
          z.object({
            type: z.literal('remove'),
            member: DidKeyString,
            reason: z.string().max(4000).optional()
          })
        ])
      }),
      result: z.object({ decree: z.string() }),
      handler: async ({ action }) => governance.decree(action)
    }),
    method({
      name: 'governance_proposals',
      summary: 'Every proposal that counts, with its tally and status, by creation',
      params: z.object({ status: z.enum(['pending', 'open', 'passed', 'failed']).optional() }),
      result: z.array(Proposal),
      handler: async ({ status }) =>
        governance.refresh().proposals.filter((p) => status === undefined || p.status === status)
    }),
    method({
      name: 'governance_proposal',
      summary: 'One proposal: its tally, the votes that count, and the votes that do not with their reasons',
      params: z.object({ proposal: Hash }),
      result: Proposal.extend({
        rejectedVotes: z.array(
          z.object({ hash: z.string(), author: z.string(), reason: z.string(), detail: z.string() })
        )
      }),
      handler: async ({ proposal }) => {
        governance.refresh()
        return governance.proposal(proposal)
      }
    }),
    method({
      name: 'governance_tally',
      summary:
        'The outcome of every proposal (or one), a pure function of the documents: nodes with the same head compute the same tallies',
      params: z.object({ proposal: Hash.optional() }),
      result: z.object({
        head: z.string(),
        tallies: z.array(
          z.object({
            hash: z.string(),
            title: z.string(),
            status: z.string(),
            outcome: z.string(),
            yes: z.number(),
            no: z.number(),
            abstain: z.number(),
            weight: z.number()
          })
        )
      }),
      handler: async ({ proposal }) => {
        const s = governance.refresh()
        return {
          head: s.head,
          tallies: s.proposals
            .filter((p) => proposal === undefined || p.hash === proposal)
            .map(({ hash, title, status, outcome, yes, no, abstain, weight }) => ({
              hash,
              title,
              status,
              outcome,
              yes,
              no,
              abstain,
              weight
            }))
        }
      }
    }),
    method({
      name: 'governance_rejected',
      summary: 'The documents this node holds that do not count, with the reason of each',
      params: z.object({}),
      result: z.array(
        z.object({
          hash: z.string(),
          kind: z.string(),
          author: z.string(),
          reason: z.string(),
          detail: z.string()
        })
      ),
      handler: async () => governance.refresh().rejected
    }),
    method({
      name: 'governance_invite',
      summary:
        'An invite for an admitted member (any member that holds the credential the founders’ node issued)',
      params: z.object({ member: DidKeyString }),
      result: z.object({ invite: z.string() }),
      handler: async ({ member }) => governance.invite(member)
    }),
    method({
      name: 'governance_submit',
      summary:
        'Hand this node a signed governance document (JWT): checked, stored and counted like a gossiped one',
      params: z.object({ document: z.string().min(1).max(65_536) }),
      result: z.object({ result: z.string() }),
      handler: async ({ document }) => ({ result: await governance.add(document) })
    }),
    method({
      name: 'ledger_rewards',
      summary:
        'Trainers and data owners: each credited round also credits the owners of its shards (the policy’s data share), forfeited with a convicted trainer or a revoked grant',
      params: z.object({}),
      result: z.object({
        trainers: Balances,
        dataOwners: z.object({
          balances: Balances,
          history: z.array(
            z.object({
              owner: z.string(),
              trainer: z.string(),
              job: z.string(),
              round: z.number(),
              shard: z.string(),
              grant: z.string(),
              credits: z.number(),
              forfeited: z.enum(['trainer', 'revoked']).nullable(),
              receipt: z.string()
            })
          )
        }),
        totals: Balances,
        dataShare: z.number(),
        ledger: z.string(),
        hash: z.string()
      }),
      handler: async () => rewards.ledger()
    }),
    method({
      name: 'ledger_statement',
      summary:
        'The balances (trainers, data owners, totals) at the current ledger hash, signed by this node as a JWT',
      params: z.object({}),
      result: z.object({ jwt: z.string(), ledger: z.string() }),
      handler: async () => rewards.statement()
    }),
    method({
      name: 'ledger_verify_statement',
      summary: 'Verify a ledger statement JWT (signature, schema, balances hash); returns its claims',
      params: z.object({ statement: z.string().min(1).max(1_048_576) }),
      result: z.object({
        iss: z.string(),
        iat: z.number(),
        swarm: z.string().nullable(),
        ledger: z.string(),
        balances: z.string(),
        trainers: Balances,
        dataOwners: Balances,
        totals: Balances
      }),
      handler: async ({ statement }) => {
        const { kind: _kind, ...claims } = await verifyStatement(statement)
        return claims
      }
    })
  ]
}

/** The policy schema, for the CLI's `--policy` parsing. */
export const PolicyParam = PolicySchema
