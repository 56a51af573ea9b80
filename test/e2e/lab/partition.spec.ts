/**
 * A partition, in the network lab (Linux network namespaces, addresses in 198.18.0.0/15 only;
 * root, iproute2 and iptables). Six volunteers and the data owner on public addresses train
 * one job with k = 5; the lab cuts the swarm into two halves (owner + 3 | 3) by dropping every
 * packet between them. Each node notices that the other half is gone, and both halves keep
 * training on their own. The test holds the trainers (node_pause) while connections die and
 * while the cut heals — so that the rounds left are known, not raced — waits until the members
 * have found each other again (peer exchange, nothing dialed by hand), and lets them finish: every node must
 * end on one model, and every receipt — those signed in either half during the cut included —
 * must reach every node (equal ledger hashes: receipt sync, since gossip does not re-deliver).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NetworkLab, type LabHost } from '../../../scripts/lab/index.js'
import { LocalSwarm, until, type JobStatus, type SwarmNode } from '../../../scripts/lib/swarm.js'
import { loadMnist, trainTestSplit } from '../../../src/storage/index.js'

const ROUNDS = 16

type Status = JobStatus & { isolated: boolean }

describe('lab: a swarm cut in two halves, then healed', function () {
  this.timeout(900_000)
  let lab: NetworkLab
  let swarm: LocalSwarm
  let inputs: number[][]

  before(async () => {
    lab = await NetworkLab.create()
    swarm = new LocalSwarm({
      root: await mkdtemp(join(tmpdir(), 'shoal-lab-partition-')),
      trainers: 6,
      launch: async (n) =>
        lab.startDaemon(hosts.get(n.name)!, n.home, [], { SHOAL_LOG: process.env.SHOAL_LAB_LOG ?? 'warn' })
    })
    const hosts = new Map<string, LabHost>()
    for (const n of swarm.all) hosts.set(n.name, await lab.addPublicHost(n.name))
    await swarm.start()
    const { test } = trainTestSplit(await loadMnist(), { seed: 42 })
    inputs = Array.from({ length: 50 }, (_, i) =>
      Array.from(test.images.subarray(i * 784, (i + 1) * 784), (p) => p / 255)
    )
    labHosts = hosts
  })
  let labHosts: Map<string, LabHost>
  after(async () => {
    await swarm?.stop()
    await lab?.destroy()
    if (swarm !== undefined) await rm(swarm.root, { recursive: true, force: true })
  })

  /** Each trainer's class probabilities on the same 50 held-out digits (its latest model). */
  async function probabilities(job: string): Promise<number[][][]> {
    return Promise.all(
      swarm.trainers.map(async (t) => {
        const r = await swarm.call<{ predictions: Array<{ probs: number[] }> }>(t, 'model_predict', {
          job,
          inputs
        })
        return r.predictions.map((p) => p.probs)
      })
    )
  }
  /** Mean absolute difference of two trainers' probabilities. */
  const gap = (a: number[][], b: number[][]): number => {
    let sum = 0
    let n = 0
    a.forEach((row, i) => row.forEach((p, j) => ((sum += Math.abs(p - b[i]![j]!)), n++)))
    return sum / n
  }

  /**
   * Pauses every trainer (unless `pause` is false: they were paused from a round already) and
   * waits until each holds (its step in progress finished); their statuses.
   */
  async function holdAll(job: string, pause = true): Promise<Status[]> {
    if (pause)
      for (const n of swarm.trainers) assert.deepEqual(await swarm.call(n, 'node_pause'), { paused: true })
    return Promise.all(
      swarm.trainers.map(async (n) => {
        let last: Status | undefined
        try {
          return await until(
            `${n.name} to hold`,
            async () => {
              const s = (last = (await swarm.status(n, job)) as Status)
              if (s.state === 'done' || s.state === 'failed')
                throw new Error(`${n.name} is ${s.state}: the job ended before the hold`)
              return s.held === true ? s : undefined
            },
            300_000
          )
        } catch (err) {
          const { history, ...rest } = last ?? ({ history: [] } as unknown as Status)
          console.log(
            `      ${n.name}: ${JSON.stringify(rest)} last rounds ${JSON.stringify(history.slice(-2))}`
          )
          console.log(`      ${n.name} log tail:\n${n.daemon?.output().slice(-4000)}`)
          throw err
        }
      })
    )
  }
  async function resumeAll(): Promise<void> {
    for (const n of swarm.trainers) assert.deepEqual(await swarm.call(n, 'node_resume'), { paused: false })
  }

  it('both halves train through the cut; after the heal all nodes hold one model and one ledger', async () => {
    const t = swarm.trainers
    const halfA: SwarmNode[] = [swarm.owner, t[0]!, t[1]!, t[2]!]
    const halfB: SwarmNode[] = [t[3]!, t[4]!, t[5]!]
    const sideOf = new Map<string, 'A' | 'B'>([
      ...halfA.map((n) => [n.did!, 'A'] as const),
      ...halfB.map((n) => [n.did!, 'B'] as const)
    ])
    await swarm.form()
    const ds = await swarm.importAndGrant({ alpha: 1, seed: 7 })
    const job = await swarm.createJob({
      name: 'lab-partition',
      dataset: ds.manifestCid,
      model: 'mlp',
      rounds: ROUNDS,
      H: 10,
      k: 5,
      lr: 0.05,
      batchSize: 32,
      seed: 3
    })
    const round = async (n: SwarmNode): Promise<number> => (await swarm.status(n, job)).round ?? -1
    await until('every trainer to finish a round', async () =>
      (await Promise.all(t.map(round))).every((r) => r >= 1) ? true : undefined
    )

    // The cut.
    await lab.partition(
      halfA.map((n) => labHosts.get(n.name)!),
      halfB.map((n) => labHosts.get(n.name)!)
    )
    // Held while the connections across the cut die, so that the job cannot run out meanwhile.
    const cutAt = (await holdAll(job)).map((s) => s.round ?? 0)
    // Each node notices: its connections to the other half die (libp2p's connection monitor).
    await until(
      'each half to lose its connections to the other',
      async () => {
        for (const n of t) {
          const peers = await swarm.call<Array<{ did: string | null }>>(n, 'peers_list')
          const side = sideOf.get(n.did!)
          if (peers.some((p) => p.did !== null && sideOf.has(p.did) && sideOf.get(p.did) !== side))
            return undefined
        }
        return true
      },
      180_000
    )
    // Both halves keep training on their own, each node up to one common round, before which it
    // holds (node_pause fromRound), so that no node can run out the job while the test watches:
    // a node two rounds ahead of its peers does not wait for them, and then trains alone at
    // tens of rounds a second (pausing it once it was seen past a round let one run to the end).
    const holdAt = Math.max(...cutAt) + 4
    for (const n of t)
      assert.deepEqual(await swarm.call(n, 'node_pause', { fromRound: holdAt }), { paused: true })
    const held = await holdAll(job, false)
    for (const [i, s] of held.entries()) {
      assert.ok(s.state === 'paused', `${t[i]!.name}: ${s.state}`)
      assert.equal(s.history.at(-1)?.nextRound, holdAt, `${t[i]!.name} held before round ${holdAt}`)
      const side = sideOf.get(t[i]!.did!)
      // Rounds finished after the hold (status.round is the last finished one) aggregated
      // models from the node's own half only. (A node behind its half can catch up in one
      // round, taking in their newer models: then that one round is all it trains in the cut.)
      const during = s.history.filter((h) => h.round > cutAt[i]!)
      assert.ok(during.length >= 1, `${t[i]!.name} trained during the cut`)
      for (const h of during)
        for (const p of h.peers) assert.equal(sideOf.get(p.from), side, `${t[i]!.name} round ${h.round}`)
      assert.ok(
        during.some((h) => h.peers.length > 0),
        `${t[i]!.name} kept aggregating its own half`
      )
    }
    const split = await probabilities(job)
    const crossBefore = Math.max(...[0, 1, 2].flatMap((i) => [3, 4, 5].map((j) => gap(split[i]!, split[j]!))))
    const heldAt = held.map((s) => s.round ?? 0)
    assert.ok(
      heldAt.every((r) => ROUNDS - 1 - r >= 3),
      `rounds left after the heal: ${heldAt.map((r) => ROUNDS - 1 - r).join(', ')}`
    )

    // The heal: nothing is dialed by hand; members find each other again by peer exchange.
    await lab.heal()
    await swarm.meshTrainers(240_000)
    await resumeAll()
    const done = await swarm.waitDone(job)
    for (const n of t) {
      const s = done.get(n.name)! as Status
      assert.equal(s.state, 'done', `${n.name}: ${JSON.stringify(s.error)}`)
      assert.equal(s.isolated, false)
      // Within the rounds after the heal, each node aggregated the other half's models again.
      const after = s.history.filter((h) => h.round > heldAt[t.indexOf(n)]!)
      assert.ok(
        after.some((h) => h.peers.some((p) => sideOf.get(p.from) !== sideOf.get(n.did!))),
        `${n.name} aggregated the other half after the heal`
      )
    }
    const joined = await probabilities(job)
    const gaps = joined.flatMap((a, i) => joined.slice(i + 1).map((b) => gap(a, b)))
    const acc = t.map((n) => (done.get(n.name)!.accuracy ?? 0) * 100)
    console.log(
      `      measured: largest cross-half gap at the cut ${crossBefore.toFixed(4)}, largest gap after the heal ` +
        `${Math.max(...gaps).toFixed(5)}; accuracies ${acc.map((a) => a.toFixed(2)).join(', ')}; ` +
        `rounds trained after the heal ≥ ${Math.min(...heldAt.map((r) => ROUNDS - 1 - r))}`
    )
    assert.ok(crossBefore > 0, 'the halves drifted apart during the cut')
    // Usually identical (gap 0); under load a node's last round can average a different set of
    // final models (a node that finishes first cannot take in the others' last models): 0.13 of
    // the cut's gap was seen once in a loaded series of five, 0.26 once at load average 22. Most
    // pairs hold the same model; none is as far apart as the halves were.
    const sorted = [...gaps].sort((x, y) => x - y)
    const median = sorted[Math.floor(sorted.length / 2)]!
    assert.ok(
      median < crossBefore / 4,
      `one model after the heal: median gap ${median} vs ${crossBefore} at the cut`
    )
    assert.ok(
      Math.max(...gaps) < crossBefore / 2,
      `one model after the heal: largest gap ${Math.max(...gaps)} vs ${crossBefore} at the cut`
    )

    // One ledger: every receipt, from either half, reaches every node.
    const hashes = await until(
      'every node to hold every receipt (equal ledger hashes)',
      async () => {
        const hs = await Promise.all(
          swarm.all.map(
            async (n) => (await swarm.call<{ hash: string; verified: number }>(n, 'ledger_balances')).hash
          )
        )
        return hs.every((h) => h === hs[0]) ? hs : undefined
      },
      180_000
    )
    assert.equal(new Set(hashes).size, 1)
    // Every daemon is still alive and serving.
    for (const n of swarm.all) assert.ok((await swarm.call<{ did: string }>(n, 'node_info')).did === n.did)
  })
})
