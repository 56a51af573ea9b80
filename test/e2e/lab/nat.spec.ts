/**
 * Shoal across NATs, in the network lab (Linux network namespaces, addresses in 198.18.0.0/15
 * only; needs root, iproute2 and iptables — `.ci/run` installs them). A founder on a public
 * address serves as a member relay (`p2p.relay.serve`); one volunteer sits behind a
 * port-preserving NAT, the other behind a symmetric NAT (`--random-fully`), each on a 20 Mbit/s
 * link. They join with invites that name only the founder, find each other by peer exchange,
 * reach each other through the founder's relay (limits lifted for members), and train a job in
 * which each aggregates the other's models. What DCUtR hole punching achieved is measured and
 * printed; it is not required (js-libp2p on Node cannot hole-punch over TCP, and libp2p counts
 * 198.18.0.0/15 as private, so DCUtR does not even try here: see docs/p2p.md).
 */
import assert from 'node:assert/strict'
import type { LabHost } from '../../../scripts/lab/index.js'
import type { JobStatus, LocalSwarm } from '../../../scripts/lib/swarm.js'
import { natSwarm, type NatSwarm } from './setup.js'

interface Peer {
  did: string | null
  addr: string
  member: boolean | null
  relayed: boolean
  limited: boolean
  upgraded: boolean
}

describe('lab: a founder in public, two volunteers behind NATs', function () {
  this.timeout(480_000)
  let lab: NatSwarm | undefined
  let swarm: LocalSwarm
  let founder: LabHost
  let v1: LabHost
  let v2: LabHost

  before(async () => {
    lab = await natSwarm({ name: 'nat', symmetric: true, mbit: 20 })
    ;({ swarm, founder, v1, v2 } = lab)
  })
  after(async () => lab?.destroy())

  it('join by invite, reach each other through a member relay, and exchange models', async () => {
    const [a, b] = swarm.trainers as [(typeof swarm.trainers)[0], (typeof swarm.trainers)[0]]
    const id = await swarm.call<{ reachability: string; listenAddresses: string[] }>(swarm.owner, 'node_info')
    assert.ok(id.listenAddresses.some((x) => x.includes(founder.ip)))
    await swarm.form()
    await swarm.meshTrainers(180_000)

    // The founder sees each volunteer from its router's public address, not its own.
    const atFounder = await swarm.call<Peer[]>(swarm.owner, 'peers_list')
    for (const [t, h] of [
      [a, v1],
      [b, v2]
    ] as const) {
      const c = atFounder.find((p) => p.did === t.did)
      assert.ok(c !== undefined && c.addr.includes(`/ip4/${h.router!.ip}/`), `${t.name} is behind its NAT`)
      assert.equal(c.relayed, false)
    }
    // The volunteers cannot dial each other directly: their connection goes through the relay.
    const ab = (await swarm.call<Peer[]>(a, 'peers_list')).filter((p) => p.did === b.did)
    assert.ok(ab.length > 0)
    assert.ok(
      ab.every((p) => p.relayed || p.upgraded),
      'no direct connection except by upgrade'
    )
    assert.ok(
      ab.every((p) => !p.limited),
      'a member relay lifts the limits'
    )
    const aInfo = await swarm.call<{ reachability: string; relayAddresses: string[] }>(a, 'node_info')
    assert.ok(aInfo.relayAddresses.length > 0, 'the volunteer holds a reservation on the founder')
    // Gossipsub sees every peer behind the relay at the relay's IP: that IP is exempt from its
    // IP-colocation penalty, which a private swarm turns off anyway (src/p2p/keeper.ts).
    const keeper = (
      await swarm.call<{ gossipKeeper: { relayIps: string[]; colocationPenalty: boolean } }>(a, 'swarm_info')
    ).gossipKeeper
    assert.deepEqual(keeper.relayIps, [founder.ip])
    assert.equal(keeper.colocationPenalty, false)

    const ds = await swarm.importAndGrant({ alpha: 1, seed: 5 })
    const job = await swarm.createJob({
      name: 'lab-nat',
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
      const s = done.get(t.name)! as JobStatus & { peersAggregated: number; isolated: boolean }
      assert.equal(s.state, 'done', `${t.name}: ${JSON.stringify(s.error)}`)
      assert.ok(s.peersAggregated > 0, `${t.name} aggregated the other volunteer's model`)
      assert.ok(s.bytesReceived > 0)
      assert.equal(s.isolated, false)
    }
    // The founder trains nothing: every model a volunteer aggregated came from the other one,
    // over the only path between them.
    const after = (await swarm.call<Peer[]>(a, 'peers_list')).filter((p) => p.did === b.did)
    const paths = after.map((p) => (p.relayed ? 'relayed' : p.upgraded ? 'direct (upgraded)' : 'direct'))
    console.log(
      `      measured: v1 (port-preserving NAT) ↔ v2 (symmetric NAT): ${paths.join(', ')}; ` +
        `v1 reachability ${aInfo.reachability}, founder ${id.reachability}`
    )
    assert.ok(after.length > 0)
  })
})
