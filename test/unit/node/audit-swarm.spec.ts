/**
 * The audit loop end to end, in one process: deterministic SwarmTrainers sign receipts as a
 * node does; a verifier that can read every shard (the data owner) re-executes them for real
 * with the RoundReexecutor, proves two cheaters (10× samples claimed; random weights announced
 * with a receipt that commits to them) and convicts them; the honest trainers, which take the
 * verifier's convictions as exclusions, stop aggregating the cheaters' models, and the ledger
 * forfeits their credits while every honest round re-executes to its claim.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Identity } from '../../../src/identity/index.js'
import { encodeCompressed } from '../../../src/training/aggregate/index.js'
import type { TensorDataset } from '../../../src/training/data/index.js'
import { decodeWeights, encodeWeights } from '../../../src/training/export/index.js'
import { compileModel, initParams, paramsOf } from '../../../src/training/graph/index.js'
import { issueReceipt, type GrantInfo } from '../../../src/training/receipts/index.js'
import {
  MemoryHub,
  MemoryWeightStore,
  RoundReexecutor,
  concatDatasets,
  rawCid,
  type ClassifierJobSpec,
  type RoundRecord,
  type RoundReceiptSigner,
  type RoundStats,
  type UpdateBus
} from '../../../src/training/swarm/index.js'
import { NodeAudit } from '../../../src/node/audit.js'
import { NodeDb } from '../../../src/node/db.js'
import { NodeReceipts } from '../../../src/node/receipts.js'
import { FakeSwarm } from './fake-swarm.js'
import { MemoryGrants } from '../training/receipts/helpers.js'
import { identityOf, makeNode, smallTask, testJob } from '../training/swarm/helpers.js'

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const JOB_ID = 'job-audit-loop'

/** Shard i of `data` granted to `ids[i]` by `owner` (grant `<prefix>-i`), as a data owner's node holds them. */
function grantShards(
  data: readonly TensorDataset[],
  ids: readonly Identity[],
  owner: Identity,
  prefix: string
): {
  shards: Map<string, TensorDataset>
  grants: MemoryGrants
  shardOf: Array<{ cid: string; grant: string }>
} {
  const shards = new Map<string, TensorDataset>()
  const grants = new MemoryGrants()
  const shardOf = ids.map((id, i) => {
    const d = data[i]!
    const cid = rawCid(new Uint8Array(d.x.buffer, d.x.byteOffset, d.x.byteLength))
    shards.set(cid, d)
    const grant: GrantInfo = {
      id: `${prefix}-${i}`,
      dataset: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
      shards: [cid],
      grantee: id.did,
      purpose: 'any',
      owner: owner.did,
      shardSizes: { [cid]: d.count }
    }
    grants.add(grant)
    return { cid, grant: grant.id }
  })
  return { shards, grants, shardOf }
}

describe('node/audit with real re-execution: cheaters proven, convicted and excluded by honest trainers', function () {
  this.timeout(180_000)
  let dir: string
  let db: NodeDb

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-audit-loop-'))
    db = new NodeDb(join(dir, 'verifier'))
    await db.start()
  })

  after(async () => {
    await db.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('catches both cheaters by re-running their rounds; the honest nodes drop them and verify', async () => {
    const task = await smallTask(5, { trainCount: 1000, testCount: 300 })
    const job: ClassifierJobSpec = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 4, k: 4, rounds: 6 } })
    const compiled = compileModel(job.model, job.optimizer)
    const params = paramsOf(job.model)
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const owner = identityOf(70)
    const ids = [0, 1, 2, 3, 4].map((i) => identityOf(71 + i))
    const [inflater, forger] = [ids[3]!, ids[4]!]
    const { shards, grants, shardOf } = grantShards(task.shards, ids, owner, 'g')

    // The verifier: the owner's node, which reads every shard and re-executes every receipt.
    const loop = new FakeSwarm()
    const reexec = new RoundReexecutor({
      job: async () => job,
      weights: async (cid) => decodeWeights(await store.get(cid)),
      shards: async (cids) => concatDatasets(cids.map((c) => shards.get(c)!))
    })
    const audit = new NodeAudit(
      {
        db,
        identity: owner,
        grants,
        reexec,
        canRead: async (cid) => shards.has(cid),
        swarm: loop
      },
      { fraction: 1, queue: 1000 }
    )
    const receipts = new NodeReceipts({ db, swarm: loop, grants, identity: owner, audit })
    await receipts.start()
    await audit.start()
    loop.enter()

    // Random weights the forger announces, committed to by its receipts.
    const random = encodeCompressed(initParams(compiled, 4242), 'none', params)
    const randomCid = await store.put(random)
    const randomHash = sha256(encodeWeights(initParams(compiled, 4242), params))

    const signer = (id: Identity, i: number): RoundReceiptSigner => {
      let prev: string | null = null
      return {
        sign: async (r: RoundRecord) => {
          const honestHash = sha256(encodeWeights(r.weights, params))
          const jwt = await issueReceipt(
            id,
            {
              job: r.job,
              round: r.round,
              baseCid: r.baseCid,
              shards: [shardOf[i]!],
              hyper: r.hyper,
              seed: r.seed,
              samples: id === inflater ? r.samples * 10 : r.samples,
              steps: r.steps,
              resultHash: id === forger ? randomHash : honestHash,
              lossBefore: r.lossBefore,
              lossAfter: r.lossAfter,
              ep: r.ep
            },
            prev
          )
          prev = jwt
          void loop.deliver([jwt], id.did)
          return jwt
        }
      }
    }
    const forgerBus = (): UpdateBus => {
      const bus = hub.bus(forger.did)
      return { publish: async (m) => bus.publish({ ...m, weightsCid: randomCid }), subscribe: bus.subscribe }
    }
    const stats: RoundStats[][] = ids.map(() => [])
    const trainers = ids.map((id, i) =>
      makeNode(
        {
          bus: id === forger ? forgerBus() : hub.bus(id.did),
          store,
          train: task.shards[i]!,
          test: task.test,
          receipts: signer(id, i),
          ...(i < 3 ? { exclusions: audit } : {})
        },
        { job, jobId: JOB_ID, did: id.did, requireReceipts: true, retainRounds: 100, peerWaitMs: 3_000 }
      )
    )
    try {
      await Promise.all(trainers.map(async (n, i) => n.run({ onRound: (s) => void stats[i]!.push(s) })))
      await audit.idle()
    } finally {
      await Promise.all(trainers.map(async (n) => n.stop()))
      await reexec.close()
    }

    const s = audit.stats()
    assert.equal(s.reexecuted, 30, JSON.stringify(s))
    assert.equal(s.errors, 0, JSON.stringify(await audit.audits()))
    assert.equal(s.matched, 18, 'every honest round re-executes to its claimed weights')
    assert.equal(s.mismatched, 12)
    assert.deepEqual(s.convicted, [inflater.did, forger.did].sort())
    const proofs = await audit.proofs()
    assert.deepEqual([...new Set(proofs.map((p) => p.offender))].sort(), [inflater.did, forger.did].sort())

    // The honest trainers stop using the cheaters once convicted: never in their last round.
    for (const i of [0, 1, 2]) {
      const lastRound = stats[i]!.at(-1)!
      assert.ok(
        !lastRound.peers.some((p) => p.from === inflater.did || p.from === forger.did),
        JSON.stringify(lastRound.peers)
      )
      assert.ok(trainers[i]!.counters.excluded > 0)
      assert.ok(lastRound.peers.length >= 1)
    }
    const ledger = await receipts.ledger()
    assert.deepEqual(ledger.excluded, [inflater.did, forger.did].sort())
    for (const i of [0, 1, 2]) assert.ok(ledger.balances[ids[i]!.did]! > 0)
    assert.equal(ledger.balances[inflater.did] ?? 0, 0)
    assert.equal(ledger.balances[forger.did] ?? 0, 0)
  })

  it('multi-threaded rounds are audited within a tolerance: honest ones match, a lazy trainer is convicted', async () => {
    const task = await smallTask(3, { trainCount: 600, testCount: 100 })
    const job: ClassifierJobSpec = testJob({ hyper: { lr: 0.05, batchSize: 32, H: 8, k: 2, rounds: 3 } })
    const params = paramsOf(job.model)
    const hub = new MemoryHub()
    const store = new MemoryWeightStore()
    const owner = identityOf(80)
    const ids = [0, 1, 2].map((i) => identityOf(81 + i))
    const lazy = ids[2]!
    const { shards, grants, shardOf } = grantShards(task.shards, ids, owner, 'gp')
    const vdb = new NodeDb(join(dir, 'verifier-parallel'))
    await vdb.start()
    const loop = new FakeSwarm()
    const reexec = new RoundReexecutor({
      job: async () => job,
      weights: async (cid) => decodeWeights(await store.get(cid)),
      shards: async (cids) => concatDatasets(cids.map((c) => shards.get(c)!))
    })
    const audit = new NodeAudit(
      { db: vdb, identity: owner, grants, reexec, canRead: async (cid) => shards.has(cid), swarm: loop },
      { fraction: 1, queue: 1000 }
    )
    const receipts = new NodeReceipts({ db: vdb, swarm: loop, grants, identity: owner, audit })
    await receipts.start()
    await audit.start()
    loop.enter()

    const jwts: string[] = []
    const signer = (id: Identity, i: number): RoundReceiptSigner => {
      let prev: string | null = null
      return {
        sign: async (r: RoundRecord) => {
          let resultCid = r.resultCid!
          let weights = r.weights
          if (id === lazy) {
            // Half the update it trained, published and committed to as its result.
            const base = decodeWeights(await store.get(r.baseCid))
            weights = new Map(
              [...r.weights].map(([k, v]) => [k, v.map((x, j) => (x + base.get(k)![j]!) / 2)])
            )
            resultCid = await store.put(encodeWeights(weights, params))
          }
          const jwt = await issueReceipt(
            id,
            {
              job: r.job,
              round: r.round,
              baseCid: r.baseCid,
              shards: [shardOf[i]!],
              hyper: r.hyper,
              seed: r.seed,
              samples: r.samples,
              steps: r.steps,
              resultHash: sha256(encodeWeights(weights, params)),
              resultCid,
              threads: r.threads!,
              lossBefore: r.lossBefore,
              lossAfter: r.lossAfter,
              ep: r.ep
            },
            prev
          )
          prev = jwt
          jwts.push(jwt)
          void loop.deliver([jwt], id.did)
          return jwt
        }
      }
    }
    const trainers = ids.map((id, i) =>
      makeNode(
        { bus: hub.bus(id.did), store, train: task.shards[i]!, receipts: signer(id, i) },
        { job, jobId: 'job-parallel-audit', did: id.did, deterministic: false, threads: 2, retainRounds: 100 }
      )
    )
    try {
      await Promise.all(trainers.map(async (n) => n.run()))
      await audit.idle()
      const s = audit.stats()
      assert.equal(s.reexecuted, 9, JSON.stringify(s))
      assert.equal(s.errors, 0, JSON.stringify(await audit.audits()))
      assert.equal(s.matched, 6, 'the honest multi-threaded rounds')
      assert.equal(s.withinTolerance, 6)
      assert.equal(s.mismatched, 3, 'the lazy rounds')
      assert.deepEqual(s.convicted, [lazy.did])
      const honest = jwts.find((j) => !j.includes(lazy.did))!
      const report = await receipts.verify(honest, { reexecute: true })
      const level = report.levels.find((l) => l.level === 'reexecution')!
      assert.equal(level.status, 'pass')
      assert.match(level.detail ?? '', /within the 'cpu-parallel' tolerance/)
      const ledger = await receipts.ledger()
      assert.deepEqual(ledger.excluded, [lazy.did])
      for (const id of ids.slice(0, 2))
        assert.ok(ledger.balances[id.did]! > 0, 'tolerance-verified rounds earn credit')
    } finally {
      await Promise.all(trainers.map(async (n) => n.stop()))
      await reexec.close()
      await audit.stop()
      await receipts.stop()
      await vdb.stop()
    }
  })
})
