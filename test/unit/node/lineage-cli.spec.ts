import assert from 'node:assert/strict'
import { renderLineage } from '../../../src/node/cli/lineage.js'
import type { JobLineage } from '../../../src/node/jobs/index.js'

describe('node/cli: shoal job lineage', () => {
  const lineage: JobLineage = {
    job: 'bafkjob',
    epoch: 'abcdef0123456789',
    excluded: ['g-c'],
    grants: [
      {
        grant: 'g-a',
        dataset: 'bafkdataset',
        owner: 'did:key:z6MkOwner',
        grantee: 'did:key:z6MkA',
        status: 'valid',
        unlearned: false,
        firstRound: 0,
        lastRound: 11,
        receipts: 12,
        trainers: ['did:key:z6MkA']
      },
      {
        grant: 'g-c',
        dataset: 'bafkdataset',
        owner: 'did:key:z6MkOwner',
        grantee: 'did:key:z6MkC',
        status: 'revoked',
        unlearned: true,
        firstRound: 4,
        lastRound: 11,
        receipts: 8,
        trainers: ['did:key:z6MkC']
      }
    ],
    checkpoints: [0, 1, 2, 3, 5, 6].map((round) => ({
      cid: `cp-${round}`,
      round,
      excluded: round >= 4 ? ['g-c'] : [],
      influencedBy: ['g-a']
    })),
    unlearning: [
      {
        grant: 'g-c',
        how: 'revoked',
        fromRound: 4,
        rolledBackTo: 3,
        checkpointsDropped: 8,
        retrain: 'done',
        startedAt: '2026-11-22T10:00:00.000Z',
        finishedAt: '2026-11-22T10:00:04.000Z',
        ms: 4000
      }
    ]
  }

  it('groups grants by dataset and owner, with the checkpoints each influences as round ranges', () => {
    const text = renderLineage(lineage)
    assert.match(text, /lineage epoch abcdef0123456789, excluding 1 grants/)
    assert.match(text, /dataset bafkdataset owned by did:key:z6MkOwner/)
    assert.match(
      text,
      /grant g-a → did:key:z6MkA: valid; trained rounds 0–11 \(12 receipts\); influences checkpoints: 0–3, 5–6/
    )
    assert.match(text, /grant g-c → did:key:z6MkC: revoked, unlearned; .* influences checkpoints: none/)
    assert.match(
      text,
      /unlearned grant g-c \(revoked\): first used in round 4, rolled back to round 3, 8 checkpoints dropped; retraining done in 4\.0 s/
    )
  })

  it('says so when the node holds no receipts of the job', () => {
    const text = renderLineage({
      ...lineage,
      epoch: '',
      excluded: [],
      grants: [],
      checkpoints: [],
      unlearning: []
    })
    assert.equal(text, 'job bafkjob\nno receipts for this job on this node')
  })
})
