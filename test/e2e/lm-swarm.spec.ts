/**
 * A language model trained by a swarm of daemons (loopback only), end to end through the RPC:
 * the owner imports the first 40 KB of Moby Dick as a text dataset (two contiguous shards and a
 * held-out shard, encrypted) and grants each trainer one shard and the held-out one; a tiny gpt
 * job (1 layer, d 16, context 32) runs on both trainers, which aggregate each other's models;
 * their held-out loss falls, a trainer continues a prompt with the job's model, and the owner
 * re-executes a trainer's round from its receipt.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalSwarm, type DatasetInfo, type JobStatus } from '../../scripts/lib/swarm.js'

const MODEL = { type: 'gpt', name: 'tiny-e2e', vocab: 256, context: 32, layers: 1, heads: 2, dModel: 16 }
const ROUNDS = 5

type LmStatus = Omit<JobStatus, 'history'> & {
  peersAggregated: number
  history: Array<{ testLoss?: number }>
}

describe('a language model trained by a swarm of daemons', function () {
  this.timeout(180_000)
  let swarm: LocalSwarm

  before(async () => {
    swarm = new LocalSwarm({ root: await mkdtemp(join(tmpdir(), 'shoal-e2e-lm-')), trainers: 2 })
    await swarm.start()
    await swarm.form()
  })
  after(async () => {
    await swarm?.stop()
    if (swarm !== undefined) await rm(swarm.root, { recursive: true, force: true })
  })

  it('trains a gpt job on a granted text dataset; loss falls, the model writes, a round re-executes', async () => {
    const ds = await swarm.call<DatasetInfo & { count: number; split: string }>(
      swarm.owner,
      'dataset_import',
      {
        source: 'moby-dick',
        name: 'moby-40k',
        shards: 2,
        heldOut: 0.1,
        maxBytes: 40_000
      }
    )
    assert.equal(ds.count, 40_000)
    assert.deepEqual(
      ds.shards.map((s) => s.labelCounts),
      [
        [18_000, 0],
        [18_000, 0],
        [0, 4_000]
      ]
    )
    const heldOut = ds.shards[2]!.cid
    for (const [i, t] of swarm.trainers.entries()) {
      const g = await swarm.call<{ document: string }>(swarm.owner, 'dataset_grant', {
        dataset: ds.manifestCid,
        did: t.did,
        shards: [ds.shards[i]!.cid, heldOut]
      })
      await swarm
        .call(t, 'dataset_grant_add', { document: g.document, dataset: ds.manifestCid })
        .catch(() => {})
    }

    const job = await swarm.createJob({
      name: 'moby-tiny',
      dataset: ds.manifestCid,
      model: MODEL,
      rounds: ROUNDS,
      H: 20,
      k: 1,
      lr: 0.01,
      batchSize: 8,
      maxNorm: 100,
      seed: 1
    })
    const done = await swarm.waitDone(job, undefined, 150_000)
    for (const t of swarm.trainers) {
      const s = await swarm.call<LmStatus>(t, 'job_status', { job })
      assert.equal(done.get(t.name)?.state, 'done', `${t.name}: ${JSON.stringify(s.error)}`)
      assert.ok(s.peersAggregated > 0, `${t.name} aggregated the other's models`)
      const losses = s.history.map((h) => h.testLoss).filter((l): l is number => l !== undefined)
      assert.ok(losses.length >= 2, `${t.name} evaluated on the held-out text`)
      assert.ok(losses.at(-1)! < losses[0]!, `${t.name}: held-out loss ${losses.join(' → ')}`)
      console.log(`      ${t.name}: held-out nats/char ${losses.map((l) => l.toFixed(3)).join(' → ')}`)
    }

    const gen = await swarm.call<{ text: string; completion: string }>(swarm.trainers[0]!, 'model_generate', {
      job,
      prompt: 'Call me',
      tokens: 40,
      seed: 1
    })
    assert.ok(gen.text.startsWith('Call me') && gen.completion.length > 0)
    console.log(`      model_generate: ${JSON.stringify(gen.text)}`)

    // The owner can read every shard: it re-runs a trainer's round bit for bit from the receipt.
    const receipts = await swarm.call<Array<{ hash: string; issuer: string }>>(swarm.owner, 'receipts_list', {
      job,
      issuer: swarm.trainers[1]!.did
    })
    assert.ok(receipts.length > 0, 'the owner holds the trainer’s receipts')
    const v = await swarm.call<{
      ok: boolean
      levels: Array<{ level: string; status: string; reason?: string }>
    }>(swarm.owner, 'receipts_verify', { receipt: receipts.at(-1)!.hash, reexecute: true })
    assert.equal(v.levels.find((l) => l.level === 'reexecution')?.status, 'pass', JSON.stringify(v.levels))
  })
})
