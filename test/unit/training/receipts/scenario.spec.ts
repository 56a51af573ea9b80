import assert from 'node:assert/strict'
import {
  LedgerInputError,
  checkFraudProof,
  computeLedger,
  decodeReceipt,
  issueFraudProof,
  issueReceipt,
  ledgerHash,
  receiptHash,
  verifyAll
} from '../../../../src/training/receipts/index.js'
import type { VerifyAllResult } from '../../../../src/training/receipts/index.js'
import {
  FakeReexecutor,
  MemoryGrants,
  T0,
  grantFor,
  honestChain,
  honestInput,
  identity,
  sha256Hex,
  shuffled
} from './helpers.js'

const ROUNDS = 4

describe('training/receipts: honest nodes verify, cheaters are caught and excluded, one ledger', function () {
  this.timeout(60_000)
  const honest = { alice: identity(41), bob: identity(42), carol: identity(43) }
  const cheat = {
    dave: identity(44), // (a1) claims 10× the samples it trained
    erin: identity(45), // (a2) claims 10× the steps and samples, announces the 1× weights
    frank: identity(46), // (b) announces random weights with a receipt for real training
    grace: identity(47), // (c) replays an old receipt
    heidi: identity(48) // (d) forks its chain
  }
  const verifiers = [identity(51), identity(52), identity(53)]
  const grants = new MemoryGrants()
    .add(grantFor('g-alice', honest.alice, [0, 1]))
    .add(grantFor('g-bob', honest.bob, [2]))
    .add(grantFor('g-carol', honest.carol, [3], { purpose: 'any' }))
    .add(grantFor('g-dave', cheat.dave, [4]))
    .add(grantFor('g-erin', cheat.erin, [5]))
    .add(grantFor('g-frank', cheat.frank, [6]))
    .add(grantFor('g-grace', cheat.grace, [7]))
    .add(grantFor('g-heidi', cheat.heidi, [1]))
  const receipts: string[] = []
  const honestReceipts: string[] = []
  const bad: Record<string, string> = {}
  let first: VerifyAllResult

  before(async () => {
    honestReceipts.push(...(await honestChain(honest.alice, 'g-alice', [0, 1], ROUNDS)))
    honestReceipts.push(...(await honestChain(honest.bob, 'g-bob', [2], ROUNDS)))
    honestReceipts.push(...(await honestChain(honest.carol, 'g-carol', [3], ROUNDS)))
    receipts.push(...honestReceipts)

    // A cheater's chain: honest rounds, with round `at` replaced by `lie`.
    const chainWith = async (
      who: (typeof cheat)[keyof typeof cheat],
      grant: string,
      shards: number[],
      at: number,
      lie: (input: ReturnType<typeof honestInput>) => ReturnType<typeof honestInput>
    ): Promise<string[]> => {
      const out: string[] = []
      for (let r = 0; r < ROUNDS; r++) {
        const input = honestInput({ round: r, grant, shards })
        out.push(await issueReceipt(who, r === at ? lie(input) : input, out.at(-1) ?? null))
      }
      return out
    }
    const dave = await chainWith(cheat.dave, 'g-dave', [4], 2, (i) => ({ ...i, samples: i.samples * 10 }))
    bad.dave = dave[2]!
    const erin = await chainWith(cheat.erin, 'g-erin', [5], 1, (i) => ({
      ...i,
      steps: i.steps * 10,
      samples: i.samples * 10,
      hyper: { ...i.hyper, steps: i.hyper.steps * 10 }
    }))
    bad.erin = erin[1]!
    const frank = await chainWith(cheat.frank, 'g-frank', [6], 3, (i) => ({
      ...i,
      resultHash: sha256Hex('random weights of frank')
    }))
    bad.frank = frank[3]!
    const grace = await honestChain(cheat.grace, 'g-grace', [7], ROUNDS)
    const replay = await issueReceipt(
      cheat.grace,
      { ...honestInput({ round: 1, grant: 'g-grace', shards: [7] }), iat: T0 + 3600 },
      grace.at(-1)!
    )
    bad.grace = replay
    const heidi = await honestChain(cheat.heidi, 'g-heidi', [1], ROUNDS)
    const fork = await issueReceipt(
      cheat.heidi,
      { ...honestInput({ round: 2, grant: 'g-heidi', shards: [1] }), lossAfter: 0.01 },
      heidi[1]!
    )
    bad.heidi = fork
    receipts.push(...dave, ...erin, ...frank, ...grace, replay, ...heidi, fork)
    // Gossip delivers some receipts twice: that is not a replay by their issuer.
    receipts.push(honestReceipts[0]!, honestReceipts[5]!)

    first = await verifyAll(shuffled(receipts, 1), {
      grants,
      reexec: new FakeReexecutor(),
      fraction: 1,
      verifier: verifiers[0]!,
      now: T0 + 86_400
    })
  })

  it('every honest receipt verifies at every level, and no honest DID is excluded', () => {
    const byHash = new Map(first.results.map((v) => [v.receipt, v]))
    for (const jwt of honestReceipts) {
      const v = byHash.get(receiptHash(jwt))!
      assert.ok(v.ok, JSON.stringify(v.failure))
      assert.ok(v.reexecuted)
    }
    for (const who of Object.values(honest)) assert.ok(!first.excluded.has(who.did))
    assert.equal(first.results.length, receipts.length - 2, 'identical copies are merged')
  })

  it('excludes exactly the cheaters, each for the right reason, at the right level', () => {
    assert.deepEqual(
      [...first.excluded].sort(),
      Object.values(cheat)
        .map((c) => c.did)
        .sort()
    )
    const verdict = (jwt: string): (typeof first.results)[number] =>
      first.results.find((v) => v.receipt === receiptHash(jwt))!
    const expect: Record<string, [string, string, string]> = {
      dave: ['lineage', 'samples-mismatch', 'lineage'],
      erin: ['reexecution', 'result-mismatch', 'fraud'],
      frank: ['reexecution', 'result-mismatch', 'fraud'],
      grace: ['chain', 'replay', 'replay'],
      heidi: ['chain', 'equivocation', 'equivocation']
    }
    for (const [name, [level, reason, why]] of Object.entries(expect)) {
      const v = verdict(bad[name]!)
      assert.equal(v.ok, false, name)
      assert.equal(v.failure?.level, level, name)
      assert.equal(v.failure?.reason, reason, name)
      const did = cheat[name as keyof typeof cheat].did
      assert.ok(
        first.exclusions.some((e) => e.did === did && e.reason === why),
        `${name}: ${JSON.stringify(first.exclusions.filter((e) => e.did === did))}`
      )
    }
    // The cheaters' other (honest) rounds still verify; their credits are forfeited by the ledger.
    assert.ok(first.results.filter((v) => v.did === cheat.frank.did && v.ok).length === ROUNDS - 1)
  })

  it('re-execution mismatches come with fraud proofs that another node re-checks', async () => {
    assert.equal(first.fraudProofs.length, 2)
    const offenders = []
    for (const proof of first.fraudProofs) {
      const check = await checkFraudProof(proof, new FakeReexecutor())
      assert.ok(check.ok, JSON.stringify(check))
      assert.equal(check.verifier, verifiers[0]!.did)
      offenders.push(check.offender)
    }
    assert.deepEqual(offenders.sort(), [cheat.erin.did, cheat.frank.did].sort())
  })

  it('equivocation and replay evidence are the offenders’ own signed receipts', () => {
    const kinds = first.evidence.map((e) => `${e.kind}:${e.did}`).sort()
    assert.deepEqual(kinds, [`equivocation:${cheat.heidi.did}`, `replay:${cheat.grace.did}`].sort())
    for (const e of first.evidence) {
      for (const jwt of e.receipts) assert.equal(decodeReceipt(jwt).claims.iss, e.did)
    }
  })

  it('a node that re-executes nothing excludes the fraudsters from others’ proofs, but not an honest node falsely accused', async () => {
    const honestClaimed = decodeReceipt(honestReceipts[1]!).claims.resultHash!
    const falseAccusation = await issueFraudProof(
      cheat.frank,
      { receipt: honestReceipts[1]!, expectedHash: sha256Hex('lies'), claimedHash: honestClaimed },
      { iat: T0 + 1000 }
    )
    const r = await verifyAll(shuffled(receipts, 2), {
      grants,
      reexec: new FakeReexecutor(),
      fraction: 0,
      verifier: verifiers[1]!,
      proofs: [...first.fraudProofs, falseAccusation],
      now: T0 + 86_400
    })
    assert.ok(r.excluded.has(cheat.erin.did) && r.excluded.has(cheat.frank.did))
    assert.ok(!r.excluded.has(honest.alice.did))
    const rejected = r.proofChecks.filter((c) => !c.result.ok)
    assert.equal(rejected.length, 1)
    assert.equal(rejected[0]!.proof, falseAccusation)
    assert.equal(rejected[0]!.result.ok ? '' : rejected[0]!.result.reason, 'expected-hash-wrong')
    assert.equal(r.results.filter((v) => v.reexecuted).length, 0)
    assert.deepEqual([...r.excluded].sort(), [...first.excluded].sort())
  })

  it('junk, forgeries and an unreachable grant store fail receipts without excluding anyone', async () => {
    const forged = honestReceipts[0]!.replace(/\.[^.]+$/, '.' + 'A'.repeat(86))
    const failing = {
      find: async (): Promise<undefined> => {
        throw new Error('datastore closed')
      }
    }
    const r = await verifyAll(['junk', forged, ...honestReceipts.slice(0, 4)], {
      grants: failing,
      now: T0 + 86_400
    })
    assert.equal(r.excluded.size, 0)
    assert.equal(r.verified.length, 0)
    const reasons = r.results.map((v) => `${v.failure?.level}/${v.failure?.reason}`).sort()
    assert.deepEqual(reasons, [
      'lineage/grant-lookup-failed',
      'lineage/grant-lookup-failed',
      'lineage/grant-lookup-failed',
      'lineage/grant-lookup-failed',
      'signature/bad-signature',
      'signature/malformed'
    ])
  })

  it('sampled re-execution is deterministic for a verifier', async () => {
    const run = async (seed: number): Promise<string[]> => {
      const r = await verifyAll(shuffled(honestReceipts, seed), {
        grants,
        reexec: new FakeReexecutor(),
        fraction: 0.5,
        verifier: verifiers[2]!,
        now: T0 + 86_400
      })
      return r.results.filter((v) => v.reexecuted).map((v) => v.receipt)
    }
    const a = await run(3)
    assert.deepEqual(await run(4), a)
    assert.ok(a.length > 0 && a.length < honestReceipts.length, String(a.length))
  })

  it('three nodes, three arrival orders: the same verdicts and the same ledger, forfeits applied', async () => {
    const ledgers = []
    for (let n = 0; n < 3; n++) {
      const r =
        n === 0
          ? first
          : await verifyAll(shuffled(receipts, 10 + n), {
              grants,
              reexec: new FakeReexecutor(),
              fraction: 1,
              verifier: verifiers[n]!,
              now: T0 + 86_400
            })
      assert.deepEqual([...r.excluded].sort(), [...first.excluded].sort())
      ledgers.push(
        computeLedger(shuffled(r.verified, 100 + n), { forfeited: r.excluded, creditPerSample: 3 })
      )
    }
    assert.deepEqual(ledgers[1], ledgers[0])
    assert.deepEqual(ledgers[2], ledgers[0])
    assert.equal(ledgerHash(ledgers[1]!), ledgerHash(ledgers[0]!))
    assert.equal(JSON.stringify(ledgers[2]), JSON.stringify(ledgers[0]))
    const ledger = ledgers[0]!
    // Honest balances: 3 credits × the samples of each round.
    for (const who of Object.values(honest)) {
      const expected = honestReceipts
        .map((j) => decodeReceipt(j).claims)
        .filter((c) => c.iss === who.did)
        .reduce((sum, c) => sum + 3 * c.samples, 0)
      assert.equal(ledger.balances[who.did], expected)
      assert.ok(expected > 0)
    }
    // Cheaters forfeit everything, including their honest rounds.
    for (const who of Object.values(cheat)) {
      assert.equal(ledger.balances[who.did], 0, who.did)
      assert.ok(ledger.history.filter((e) => e.did === who.did).every((e) => e.credits === 0 && e.forfeited))
    }
    assert.deepEqual(Object.keys(ledger.balances), Object.keys(ledger.balances).sort())
    for (const e of ledger.history) assert.ok(Number.isSafeInteger(e.credits))
  })

  it('the ledger counts a receipt once, and one receipt per (did, job, round)', () => {
    const once = computeLedger(honestReceipts, { forfeited: new Set() })
    const twice = computeLedger([...honestReceipts, ...shuffled(honestReceipts, 7)], { forfeited: new Set() })
    assert.deepEqual(twice, once)
    assert.equal(once.history.length, honestReceipts.length)
    // Unverified input with a replay (grace's) still cannot be credited twice for one round.
    const withReplay = computeLedger([...receipts, bad.grace!], { forfeited: new Set() })
    assert.equal(withReplay.history.filter((e) => e.did === cheat.grace.did).length, ROUNDS)
    const total = Object.values(once.balances).reduce((a, b) => a + b, 0)
    assert.equal(
      total,
      once.history.reduce((a, e) => a + e.credits, 0)
    )
    assert.throws(
      () => computeLedger(honestReceipts, { forfeited: new Set(), creditPerSample: 0.5 }),
      LedgerInputError
    )
    assert.deepEqual(computeLedger([], { forfeited: new Set() }), { balances: {}, history: [] })
  })
})
