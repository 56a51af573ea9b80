import assert from 'node:assert/strict'
import { logger, rawCid } from '../../../../src/common/index.js'
import { PeerTable } from '../../../../src/training/swarm/peers.js'
import { emptyCounters } from '../../../../src/training/swarm/index.js'

describe('training/swarm: the peer table', () => {
  const table = (): PeerTable =>
    new PeerTable({
      jobId: 'job-1',
      did: 'did:key:zSelf',
      options: { k: 2, peerWaitMs: 0, seed: 1, epoch: '' },
      exclusions: undefined,
      totals: emptyCounters(),
      log: logger('test:peers')
    })
  const announce = (t: PeerTable, did: string, round: number): void =>
    t.onAnnouncement(
      {
        type: 'update',
        job: 'job-1',
        round,
        weightsCid: rawCid(`${did}-${round}`),
        samples: 10
      },
      { did }
    )

  it('chooses each peer model once; in the last round it averages again with models it already used', () => {
    const t = table()
    announce(t, 'did:key:zA', 5)
    announce(t, 'did:key:zB', 5)
    assert.deepEqual(
      t
        .choosePeers(5)
        .map((p) => p.did)
        .sort(),
      ['did:key:zA', 'did:key:zB']
    )
    // Nothing new announced (the peers have finished): an ordinary round takes no one again…
    assert.deepEqual(t.choosePeers(6), [])
    // …the last round does, newest first, so a straggler does not end on its own shard alone.
    announce(t, 'did:key:zA', 6)
    const last = t.choosePeers(7, true)
    assert.deepEqual(
      last.map((p) => `${p.did}@${p.msg.round}`),
      ['did:key:zA@6', 'did:key:zB@5']
    )
    // A fresh model still comes before a used one.
    announce(t, 'did:key:zB', 7)
    assert.deepEqual(t.choosePeers(7, true)[0]!.msg.round, 7)
  })
})
