import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { Rng } from '../../../../src/common/rng.js'
import * as Digest from 'multiformats/hashes/digest'
import { Identity, keypairFromSeed } from '../../../../src/identity/index.js'
import { issueReceipt } from '../../../../src/training/receipts/index.js'
import type {
  GrantInfo,
  GrantLookup,
  ReceiptClaims,
  ReceiptInput,
  ReexecutionResult,
  Reexecutor
} from '../../../../src/training/receipts/index.js'

/** A fixed identity per number (seeded keys). */
export const identity = (n: number): Identity =>
  Identity.fromKeypair(keypairFromSeed(new Uint8Array(32).fill(n)))

/** A CIDv1(raw, sha2-256) of a label: a stand-in for stored objects. */
export function fakeCid(label: string): string {
  const digest = createHash('sha256').update(label).digest()
  return CID.createV1(0x55, Digest.create(0x12, digest)).toString()
}

export const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex')

/** A fixed base time (Unix seconds) so that receipts are reproducible. */
export const T0 = 1_700_000_000

/** Grants in memory. */
export class MemoryGrants implements GrantLookup {
  readonly grants = new Map<string, GrantInfo>()
  lookups = 0
  add(g: GrantInfo): this {
    this.grants.set(g.id, g)
    return this
  }
  async find(id: string): Promise<GrantInfo | undefined> {
    this.lookups++
    return this.grants.get(id)
  }
}

/** Samples per shard, as a dataset manifest would list them. */
export const SHARD_SIZES: Record<string, number> = {}
for (let i = 0; i < 8; i++) SHARD_SIZES[fakeCid(`shard-${i}`)] = 500 + 100 * i
export const shardCid = (i: number): string => fakeCid(`shard-${i}`)

/**
 * A deterministic stand-in for the training runtime's CPU re-run: the "weights" hash is a
 * hash of (baseCid, shards, seed, steps, batchSize, lr, optimizer), and samples follow the
 * work rule with the real shard sizes.
 */
export class FakeReexecutor implements Reexecutor {
  runs = 0
  async run(claims: ReceiptClaims): Promise<ReexecutionResult> {
    this.runs++
    const n = claims.shards.reduce((sum, s) => sum + (SHARD_SIZES[s.cid] ?? 0), 0)
    return { resultHash: honestResult(claims), samples: claims.steps * Math.min(claims.hyper.batchSize, n) }
  }
}

/** The weights hash an honest run of these claims produces (the fake re-executor's function). */
export function honestResult(
  c: Pick<ReceiptClaims, 'baseCid' | 'shards' | 'seed' | 'steps' | 'hyper'>
): string {
  return sha256Hex(
    JSON.stringify([
      c.baseCid,
      c.shards.map((s) => s.cid),
      c.seed,
      c.steps,
      c.hyper.batchSize,
      c.hyper.lr,
      c.hyper.optimizer
    ])
  )
}

/** A grant of shards `shardIdx` to `grantee` for `purpose`. */
export function grantFor(
  id: string,
  grantee: Identity,
  shardIdx: number[],
  extra: Partial<GrantInfo> = {}
): GrantInfo {
  const shards = shardIdx.map(shardCid)
  return {
    id,
    dataset: fakeCid('dataset'),
    shards,
    grantee: grantee.did,
    purpose: 'job-1',
    owner: 'did:key:z6MkOwnerPlaceholder',
    shardSizes: Object.fromEntries(shards.map((c) => [c, SHARD_SIZES[c]!])),
    ...extra
  }
}

/** Honest claims for a round: samples from the work rule, result from the honest run. */
export function honestInput(opts: {
  round: number
  grant: string
  shards: number[]
  job?: string
  steps?: number
  batchSize?: number
  seed?: number
  iat?: number
}): ReceiptInput {
  const shards = opts.shards.map((i) => ({ cid: shardCid(i), grant: opts.grant }))
  const steps = opts.steps ?? 20
  const hyper = { lr: 0.05, batchSize: opts.batchSize ?? 64, steps, optimizer: 'sgd', momentum: 0.9 }
  const base = {
    baseCid: fakeCid(`weights-${opts.job ?? 'job-1'}-${opts.round}`),
    shards,
    seed: opts.seed ?? 1000 + opts.round,
    steps,
    hyper
  }
  const input: ReceiptInput = {
    job: opts.job ?? 'job-1',
    round: opts.round,
    ...base,
    samples:
      steps *
      Math.min(
        hyper.batchSize,
        opts.shards.reduce((sum, i) => sum + SHARD_SIZES[shardCid(i)]!, 0)
      ),
    resultHash: honestResult(base),
    lossBefore: 2.3 - opts.round * 0.1,
    lossAfter: 2.2 - opts.round * 0.1,
    ep: 'cpu',
    iat: opts.iat ?? T0 + 60 * opts.round
  }
  return input
}

/** An honest node's chain of `rounds` receipts. */
export async function honestChain(
  who: Identity,
  grant: string,
  shards: number[],
  rounds: number,
  job = 'job-1'
): Promise<string[]> {
  const out: string[] = []
  for (let r = 0; r < rounds; r++) {
    out.push(await issueReceipt(who, honestInput({ round: r, grant, shards, job }), out.at(-1) ?? null))
  }
  return out
}

/** The payload JSON text of a JWT. */
export const payloadText = (jwt: string): string =>
  Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')

/** The JWT with its payload replaced by `text` (header and signature kept). */
export function withPayload(jwt: string, text: string): string {
  const [h, , s] = jwt.split('.')
  return `${h}.${Buffer.from(text, 'utf8').toString('base64url')}.${s}`
}

/** A seeded permutation of `xs` (a copy): an arrival order of gossiped receipts. */
export function shuffled<T>(xs: readonly T[], seed: number): T[] {
  return new Rng(seed).shuffle([...xs]) as T[]
}
