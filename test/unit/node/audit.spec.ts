import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ReceiptMessage } from '../../../src/p2p/index.js'
import { issueFraudProof, issueReceipt, receiptHash } from '../../../src/training/receipts/index.js'
import { NodeAudit } from '../../../src/node/audit.js'
import { NodeDb } from '../../../src/node/db.js'
import { NodeReceipts } from '../../../src/node/receipts.js'
import { FakeSwarm } from './fake-swarm.js'
import {
  FakeReexecutor,
  MemoryGrants,
  grantFor,
  honestChain,
  honestInput,
  identity,
  sha256Hex,
  T0
} from '../training/receipts/helpers.js'

const asReceipts = (jwts: readonly string[]): ReceiptMessage[] =>
  jwts.map((receipt) => ({ type: 'receipt', receipt }))

describe('node/audit: re-execution, fraud proofs, exclusion', function () {
  this.timeout(60_000)
  const owner = identity(80)
  const alice = identity(81)
  const mallory = identity(82) // announces other weights than her training gives (round 1)
  const trudy = identity(84) // keeps training after her grant was revoked
  const grants = new MemoryGrants()
    .add(grantFor('g-alice', alice, [0], { owner: owner.did }))
    .add(grantFor('g-mallory', mallory, [1], { owner: owner.did }))
    .add(grantFor('g-trudy', trudy, [2], { owner: owner.did, revokedAt: T0 + 100 }))
  let dir: string
  const made: NodeDb[] = []
  let honest: string[]
  let cheating: string[]
  let lie: string

  async function makeNode(
    id: number,
    opts: { canRead: boolean; fraction?: number | (() => number) }
  ): Promise<{ swarm: FakeSwarm; receipts: NodeReceipts; audit: NodeAudit; reexec: FakeReexecutor }> {
    const db = new NodeDb(join(dir, `node-${id}`))
    await db.start()
    made.push(db)
    const swarm = new FakeSwarm()
    const reexec = new FakeReexecutor()
    const audit = new NodeAudit(
      {
        db,
        identity: identity(id),
        grants,
        reexec,
        canRead: async () => opts.canRead,
        swarm
      },
      { fraction: opts.fraction ?? 1, queue: 100 }
    )
    const receipts = new NodeReceipts({ db, swarm, grants, identity: identity(id), audit })
    await receipts.start()
    await audit.start()
    swarm.enter()
    return { swarm, receipts, audit, reexec }
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-audit-'))
    honest = await honestChain(alice, 'g-alice', [0], 3)
    cheating = []
    for (let r = 0; r < 3; r++) {
      const input = honestInput({ round: r, grant: 'g-mallory', shards: [1] })
      const claims = r === 1 ? { ...input, resultHash: sha256Hex('random weights') } : input
      cheating.push(await issueReceipt(mallory, claims, cheating.at(-1) ?? null))
    }
    lie = cheating[1]!
  })

  after(async () => {
    for (const db of made) await db.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('a verifier that reads the data re-runs every sampled receipt, proves the mismatch and excludes its issuer', async () => {
    const v = await makeNode(90, { canRead: true })
    await v.swarm.deliver(asReceipts([...honest, ...cheating]))
    await v.audit.idle()
    const s = v.audit.stats()
    assert.equal(s.considered, 6)
    assert.equal(s.reexecuted, 6)
    assert.equal(s.matched, 5)
    assert.equal(s.mismatched, 1)
    assert.equal(s.proofsIssued, 1)
    assert.deepEqual(s.convicted, [mallory.did])
    assert.ok(v.audit.excluded(mallory.did))
    assert.ok(!v.audit.excluded(alice.did))
    // The proof was gossiped, and names the lying receipt.
    const sent = v.swarm.published.filter((m) => m.type === 'fraud-proof')
    assert.equal(sent.length, 1)
    const proofs = await v.audit.proofs()
    assert.equal(proofs[0]!.receipt, receiptHash(lie))
    assert.equal(proofs[0]!.checked, 'issued')
    // The ledger forfeits the offender's credits; the honest issuer keeps hers.
    const ledger = await v.receipts.ledger()
    assert.deepEqual(ledger.excluded, [mallory.did])
    assert.equal(ledger.balances[mallory.did] ?? 0, 0)
    assert.ok(ledger.balances[alice.did]! > 0)
    // receipts_verify: the lie fails at re-execution with the proof; an honest one passes it.
    const bad = await v.receipts.verify(lie)
    assert.equal(bad.failed, 'reexecution')
    assert.equal(bad.levels.find((l) => l.level === 'reexecution')!.reason, 'fraud-proof')
    assert.equal(bad.issuer!.excluded, true)
    const good = await v.receipts.verify(honest[1]!)
    assert.ok(good.ok, JSON.stringify(good))
    assert.equal(good.levels.find((l) => l.level === 'reexecution')!.status, 'pass')
  })

  it('a node that cannot read the data accepts a proof only from the data’s owner; then its ledger is the verifier’s', async () => {
    const v = await makeNode(91, { canRead: true })
    await v.swarm.deliver(asReceipts([...honest, ...cheating]))
    await v.audit.idle()
    const byVerifier = v.swarm.published.find((m) => m.type === 'fraud-proof')
    assert.ok(byVerifier !== undefined && byVerifier.type === 'fraud-proof')

    const w = await makeNode(92, { canRead: false })
    await w.swarm.deliver(asReceipts([...honest, ...cheating]))
    await w.audit.idle()
    assert.equal(w.audit.stats().skipped['no-data'], 6)
    assert.equal(w.reexec.runs, 0)
    // Signed by a peer that is no authority on the data: refused, nobody convicted.
    await w.swarm.deliver([byVerifier])
    assert.equal(w.audit.stats().proofsRejected.untrusted, 1)
    assert.ok(!w.audit.excluded(mallory.did))
    // The owner's own proof is accepted without a re-run.
    const claimed = JSON.parse(Buffer.from(lie.split('.')[1]!, 'base64url').toString('utf8')) as {
      resultHash: string
    }
    const expected = new FakeReexecutor()
    const rerun = await expected.run(
      JSON.parse(Buffer.from(lie.split('.')[1]!, 'base64url').toString('utf8'))
    )
    const byOwner = await issueFraudProof(owner, {
      receipt: lie,
      claimedHash: claimed.resultHash,
      expectedHash: rerun.resultHash
    })
    await w.swarm.deliver([{ type: 'fraud-proof', proof: byOwner }])
    assert.ok(w.audit.excluded(mallory.did))
    assert.equal((await w.audit.proofs())[0]!.checked, 'attested')
    assert.equal(w.reexec.runs, 0)
    const [lv, lw] = [await v.receipts.ledger(), await w.receipts.ledger()]
    assert.equal(lw.hash, lv.hash)
    assert.deepEqual(lw.balances, lv.balances)
    // A duplicate is recognised as such.
    assert.deepEqual(await w.receipts.checkProof(byOwner), { ok: true, duplicate: true })
  })

  it('a false accusation against an honest node is refused by a node that re-runs it', async () => {
    const v = await makeNode(93, { canRead: true, fraction: 0 })
    await v.swarm.deliver(asReceipts(honest))
    const claimed = JSON.parse(Buffer.from(honest[2]!.split('.')[1]!, 'base64url').toString('utf8')) as {
      resultHash: string
    }
    const framing = await issueFraudProof(owner, {
      receipt: honest[2]!,
      claimedHash: claimed.resultHash,
      expectedHash: sha256Hex('made up')
    })
    const r = await v.receipts.checkProof(framing)
    assert.equal(r.ok, false)
    assert.equal(r.reason, 'expected-hash-wrong')
    assert.ok(!v.audit.excluded(alice.did))
    assert.deepEqual((await v.receipts.ledger()).excluded, [])
  })

  it('excludes a peer whose receipts show training on a revoked grant (after a grace period)', async () => {
    const v = await makeNode(96, { canRead: false, fraction: 0 })
    const chain: string[] = []
    for (const [round, iat] of [
      [0, T0], // before the revocation
      [1, T0 + 150], // in flight when it was revoked: within the grace period
      [2, T0 + 400] // long after: she keeps using the data
    ] as const) {
      chain.push(
        await issueReceipt(
          trudy,
          { ...honestInput({ round, grant: 'g-trudy', shards: [2] }), iat },
          chain.at(-1) ?? null
        )
      )
    }
    await v.swarm.deliver(chain.slice(0, 2))
    assert.ok(!v.audit.excluded(trudy.did))
    await v.swarm.deliver(chain.slice(2))
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.ok(v.audit.excluded(trudy.did))
    assert.deepEqual(v.audit.stats().lineageOffenders, [trudy.did])
    assert.ok(!v.audit.excluded(alice.did))
    // The ledger forfeits her credits (a lineage failure), as on every node.
    assert.ok((await v.receipts.ledger()).excluded.includes(trudy.did))
  })

  it('reads a changing fraction at each receipt (a governed swarm’s policy)', async () => {
    let fraction = 0
    const v = await makeNode(97, { canRead: true, fraction: () => fraction })
    await v.swarm.deliver(asReceipts(honest.slice(0, 1)))
    await v.audit.idle()
    assert.equal(v.audit.stats().skipped['not-sampled'], 1)
    assert.equal(v.reexec.runs, 0)
    fraction = 1
    assert.equal(v.audit.fraction, 1)
    await v.swarm.deliver(asReceipts(honest.slice(1, 2)))
    await v.audit.idle()
    assert.equal(v.reexec.runs, 1)
  })

  it('skips what it should not re-run: sampled out, or unverifiable (a GPU round without published weights)', async () => {
    const none = await makeNode(94, { canRead: true, fraction: 0 })
    await none.swarm.deliver(asReceipts(honest))
    await none.audit.idle()
    assert.equal(none.audit.stats().skipped['not-sampled'], 3)
    assert.equal(none.reexec.runs, 0)

    const v = await makeNode(95, { canRead: true })
    const gpu = await issueReceipt(
      identity(83),
      { ...honestInput({ round: 0, grant: 'g-alice', shards: [0] }), ep: 'cuda' },
      null
    )
    await v.swarm.deliver(asReceipts([gpu]))
    await v.audit.idle()
    assert.equal(v.audit.stats().skipped.unverifiable, 1)
    assert.equal(v.reexec.runs, 0)
    const report = await v.receipts.verify(gpu, { reexecute: true })
    const level = report.levels.find((l) => l.level === 'reexecution')!
    assert.equal(level.status, 'skip')
    assert.equal(level.reason, 'unverifiable')
  })
})
