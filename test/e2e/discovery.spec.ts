/**
 * Discovery without hand-made connections (loopback only): a founder invites two volunteers,
 * whose invites name only the founder. Peer exchange among members connects the volunteers to
 * each other, and each aggregates the other's models (the founder trains nothing, so every
 * peer model a volunteer used came from the other volunteer).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalSwarm } from '../../scripts/lib/swarm.js'

interface Peer {
  did: string | null
  member: boolean | null
  relayed?: boolean
}

describe('discovery: volunteers that only know the founder', function () {
  this.timeout(300_000)
  let swarm: LocalSwarm

  before(async () => {
    swarm = new LocalSwarm({ root: await mkdtemp(join(tmpdir(), 'shoal-e2e-discovery-')), trainers: 2 })
    await swarm.start()
  })
  after(async () => {
    await swarm.stop()
    await rm(swarm.root, { recursive: true, force: true })
  })

  it('find each other by peer exchange and fetch each other’s models', async () => {
    const [a, b] = swarm.trainers as [(typeof swarm.trainers)[0], (typeof swarm.trainers)[0]]
    // Before joining, neither volunteer is connected to anybody.
    for (const t of [a, b]) assert.deepEqual(await swarm.call<Peer[]>(t, 'peers_list'), [])
    await swarm.form() // invites carry only the founder's addresses; nothing is dialed by hand
    for (const [me, other] of [
      [a, b],
      [b, a]
    ] as const) {
      const peers = await swarm.call<Peer[]>(me, 'peers_list')
      assert.ok(
        peers.some((p) => p.did === other.did && p.member === true),
        `${me.name} is connected to ${other.name}`
      )
    }
    const info = await swarm.call<{ exchange: { exchanges: number; learned: number } }>(b, 'swarm_info')
    assert.ok(info.exchange.exchanges >= 1, 'the later volunteer asked a member for its peers')

    const ds = await swarm.importAndGrant({ alpha: 1, seed: 3 })
    const job = await swarm.createJob({
      name: 'discovery',
      dataset: ds.manifestCid,
      model: 'mlp',
      rounds: 4,
      H: 10,
      k: 1,
      lr: 0.05,
      batchSize: 32,
      seed: 1
    })
    const done = await swarm.waitDone(job)
    for (const t of [a, b]) {
      const s = done.get(t.name)! as Awaited<ReturnType<typeof swarm.status>> & {
        peersAggregated: number
        isolated: boolean
      }
      assert.equal(s.state, 'done', `${t.name}: ${JSON.stringify(s.error)}`)
      assert.ok(s.peersAggregated > 0, `${t.name} aggregated a peer model`)
      assert.ok(s.bytesReceived > 0, `${t.name} fetched peer weights`)
      assert.equal(s.isolated, false)
    }
  })
})
