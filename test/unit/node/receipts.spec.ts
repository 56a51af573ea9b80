import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { issueReceipt, receiptHash, verifyChain } from '../../../src/training/receipts/index.js'
import { NodeDb } from '../../../src/node/db.js'
import { NodeReceipts } from '../../../src/node/receipts.js'
import { FakeSwarm } from './fake-swarm.js'
import { receiptMethods } from '../../../src/node/methods/receipts.js'
import { registerReceiptCommands } from '../../../src/node/cli/receipts.js'
import type { RpcClient } from '../../../src/node/rpc/index.js'
import {
  MemoryGrants,
  grantFor,
  honestChain,
  honestInput,
  identity,
  payloadText,
  withPayload,
  shuffled
} from '../training/receipts/helpers.js'

describe('node/receipts: gossip, storage, verification and the ledger', function () {
  this.timeout(60_000)
  const alice = identity(61)
  const bob = identity(62)
  const carol = identity(63)
  const heidi = identity(64) // forks her chain
  const dave = identity(65) // names a grant nobody issued
  const grants = new MemoryGrants()
    .add(grantFor('g-alice', alice, [0, 1]))
    .add(grantFor('g-bob', bob, [2]))
    .add(grantFor('g-carol', carol, [3], { purpose: 'any' }))
    .add(grantFor('g-heidi', heidi, [4]))
  let dir: string
  const nodes: Array<{ db: NodeDb; swarm: FakeSwarm; receipts: NodeReceipts }> = []
  let honest: string[] = []
  let fork: { chain: string[]; forked: string }

  async function makeNode(): Promise<{ db: NodeDb; swarm: FakeSwarm; receipts: NodeReceipts }> {
    const db = new NodeDb(join(dir, `node-${nodes.length}`))
    await db.start()
    const swarm = new FakeSwarm()
    const receipts = new NodeReceipts({ db, swarm, grants, identity: identity(70 + nodes.length) })
    await receipts.start()
    swarm.enter()
    const node = { db, swarm, receipts }
    nodes.push(node)
    return node
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-receipts-'))
    honest = [
      ...(await honestChain(alice, 'g-alice', [0, 1], 3)),
      ...(await honestChain(bob, 'g-bob', [2], 3)),
      ...(await honestChain(carol, 'g-carol', [3], 2))
    ]
    const chain = await honestChain(heidi, 'g-heidi', [4], 3)
    // A second receipt on round 1's prev (round 0): a fork of heidi's chain.
    const forked = await issueReceipt(
      heidi,
      honestInput({ round: 5, grant: 'g-heidi', shards: [4], seed: 7 }),
      chain[0]!
    )
    fork = { chain, forked }
  })

  after(async () => {
    for (const n of nodes) {
      await n.receipts.stop()
      await n.db.stop()
    }
    await rm(dir, { recursive: true, force: true })
  })

  it('three nodes fed the same receipts in different orders compute the same ledger', async () => {
    const trio = [await makeNode(), await makeNode(), await makeNode()]
    assert.equal(trio[0]!.swarm.topic, '/shoal/1/test-swarm/receipts')
    await trio[0]!.swarm.deliver(honest)
    await trio[1]!.swarm.deliver(shuffled(honest, 1))
    await trio[2]!.swarm.deliver([...shuffled(honest, 2), ...shuffled(honest, 3)]) // every copy twice
    assert.deepEqual(trio[2]!.receipts.stats(), { accepted: 8, duplicates: 8, rejected: {} })
    const ledgers = await Promise.all(trio.map(async (n) => n.receipts.ledger()))
    // samples per round = 20 steps × 64: alice 3 rounds, bob 3, carol 2
    assert.deepEqual(ledgers[0]!.balances, {
      [alice.did]: 3 * 1280,
      [bob.did]: 3 * 1280,
      [carol.did]: 2 * 1280
    })
    assert.equal(ledgers[0]!.verified, 8)
    assert.deepEqual(ledgers[0]!.excluded, [])
    for (const l of ledgers.slice(1)) {
      assert.equal(l.hash, ledgers[0]!.hash)
      assert.deepEqual(l.balances, ledgers[0]!.balances)
    }
    const listed = await trio[1]!.receipts.list({ issuer: bob.did })
    assert.deepEqual(
      listed.map((r) => r.round),
      [0, 1, 2]
    )
    assert.equal((await trio[1]!.receipts.get(listed[0]!.hash))?.jwt, honest[3])
    assert.equal((await trio[1]!.receipts.list({ job: 'other' })).length, 0)
  })

  it('rejects a tampered or malformed receipt without storing it, counting the reason', async () => {
    const n = await makeNode()
    const tampered = withPayload(
      honest[0]!,
      payloadText(honest[0]!).replace('"samples":1280', '"samples":12800')
    )
    assert.notEqual(tampered, honest[0])
    await n.swarm.deliver([tampered, 'a.b.c', honest[0]!])
    assert.deepEqual(n.receipts.stats(), {
      accepted: 1,
      duplicates: 0,
      rejected: { 'bad-signature': 1, malformed: 1 }
    })
    assert.equal(await n.receipts.get(receiptHash(tampered)), undefined)
    assert.deepEqual(
      (await n.receipts.list()).map((r) => r.hash),
      [receiptHash(honest[0]!)]
    )
    const report = await n.receipts.verify(tampered)
    assert.equal(report.ok, false)
    assert.equal(report.failed, 'signature')
    assert.deepEqual(
      report.levels.map((l) => [l.level, l.status, l.reason]),
      [
        ['signature', 'fail', 'bad-signature'],
        ['chain', 'skip', undefined],
        ['lineage', 'skip', undefined],
        ['reexecution', 'skip', undefined]
      ]
    )
  })

  it('excludes the issuer of a forked chain, on every node, and verify names the failing level', async () => {
    const all = [...honest, ...fork.chain, fork.forked]
    const pair = [await makeNode(), await makeNode()]
    await pair[0]!.swarm.deliver(all)
    await pair[1]!.swarm.deliver(shuffled(all, 9))
    const [a, b] = await Promise.all(pair.map(async (n) => n.receipts.ledger()))
    assert.equal(a!.hash, b!.hash)
    assert.deepEqual(a!.excluded, [heidi.did])
    assert.equal(a!.balances[heidi.did], 0)
    assert.equal(a!.balances[alice.did], 3 * 1280)
    assert.ok(a!.exclusions.some((e) => e.did === heidi.did && e.reason === 'equivocation'))
    const entries = a!.history.filter((e) => e.did === heidi.did)
    assert.ok(entries.length > 0 && entries.every((e) => e.forfeited && e.credits === 0))

    const forked = await pair[0]!.receipts.verify(receiptHash(fork.forked))
    assert.equal(forked.ok, false)
    assert.equal(forked.failed, 'chain')
    assert.equal(forked.levels[1]?.reason, 'equivocation')
    assert.equal(forked.levels[2]?.status, 'pass') // lineage is fine: the fork is the offence
    assert.equal(forked.issuer?.excluded, true)
    const root = await pair[0]!.receipts.verify(fork.chain[0]!)
    assert.equal(root.ok, true)
    assert.equal(root.issuer?.excluded, true) // an honest-looking receipt of an excluded DID
    const fine = await pair[0]!.receipts.verify(receiptHash(honest[1]!))
    assert.equal(fine.ok, true)
    assert.equal(fine.failed, null)
    assert.equal(fine.issuer?.excluded, false)
  })

  it('verify reports a lineage failure, and refuses an unknown hash', async () => {
    const n = await makeNode()
    const unGranted = await issueReceipt(dave, honestInput({ round: 0, grant: 'g-dave', shards: [5] }), null)
    await n.swarm.deliver([unGranted])
    const report = await n.receipts.verify(receiptHash(unGranted))
    assert.equal(report.stored, true)
    assert.equal(report.failed, 'lineage')
    assert.equal(report.levels[2]?.reason, 'grant-not-found')
    assert.deepEqual((await n.receipts.ledger()).excluded, [dave.did])
    await assert.rejects(n.receipts.verify(receiptHash(honest[0]!)), { code: 'RECEIPT_NOT_FOUND' })
  })

  it('pins every stored receipt as a dag-json document and records its CID', async () => {
    const db = new NodeDb(join(dir, 'node-docs'))
    await db.start()
    const swarm = new FakeSwarm()
    const pinned: unknown[] = []
    const receipts = new NodeReceipts({
      db,
      swarm,
      grants,
      identity: identity(79),
      documents: {
        putDocument: async (value) => {
          pinned.push(value)
          return { toString: () => `doc-${pinned.length}` }
        }
      }
    })
    await receipts.start()
    swarm.enter()
    await swarm.deliver([
      honest[0]!,
      honest[0]!,
      withPayload(honest[1]!, payloadText(honest[1]!).replace('"round":1', '"round":7'))
    ])
    assert.deepEqual(
      pinned,
      [{ type: 'shoal/receipt', jwt: honest[0]! }],
      'once, and never an invalid receipt'
    )
    assert.equal((await receipts.get(receiptHash(honest[0]!)))!.doc, 'doc-1')
    await receipts.stop()
    await db.stop()
  })

  it('signs a round once: a round trained again after a restart gets its stored receipt back, not a replay', async () => {
    const node = await makeNode()
    const input = (round: number): ReturnType<typeof honestInput> =>
      honestInput({ round, grant: 'g-alice', shards: [0], job: 'job-restart' })
    const r0 = await node.receipts.issue(input(0))
    const r1 = await node.receipts.issue(input(1))
    // Killed after round 1's receipt, before its checkpoint: the node trains round 1 again.
    assert.equal(await node.receipts.issue({ ...input(1), iat: 2_000_000_000 }), r1)
    const r2 = await node.receipts.issue(input(2))
    const own = await node.receipts.list({ job: 'job-restart' })
    assert.deepEqual(
      own.map((r) => r.round),
      [0, 1, 2]
    )
    assert.deepEqual(await verifyChain([r0, r1, r2]), {
      ok: true,
      did: identity(70 + nodes.length - 1).did,
      order: [r0, r1, r2].map(receiptHash)
    })
    // Another lineage epoch (an unlearning retrains without a grant) is another round: signed anew.
    const retrained = await node.receipts.issue({ ...input(1), excluded: ['g-bob'], iat: 1_700_009_999 })
    assert.notEqual(retrained, r1)
    assert.equal((await node.receipts.list({ job: 'job-restart' })).length, 4)
  })

  it('a disk that fills between writes cannot fork the chain: a receipt and its head are stored together', async () => {
    const node = await makeNode()
    const input = (round: number): ReturnType<typeof honestInput> =>
      honestInput({ round, grant: 'g-alice', shards: [0], job: 'job-disk' })
    const r0 = await node.receipts.issue(input(0))
    // The disk fills right after the receipt's own write: the chain head's write fails (ENOSPC).
    let armed = true
    const full = (): never => {
      armed = false
      throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })
    }
    const put = node.db.put.bind(node.db)
    const putAll = node.db.putAll.bind(node.db)
    node.db.put = (async (...a: Parameters<NodeDb['put']>) =>
      armed && a[0] === 'receipt-head' ? full() : put(...a)) as NodeDb['put']
    node.db.putAll = (async (e: Parameters<NodeDb['putAll']>[0]) =>
      armed && e.some((x) => x.kind === 'receipt-head') ? full() : putAll(e)) as NodeDb['putAll']
    const r1 = await node.receipts.issue(input(1)).catch(() => undefined)
    // Space returns; round 1 is trained again, later (another iat), then round 2.
    node.db.put = put
    node.db.putAll = putAll
    const again = await node.receipts.issue({ ...input(1), iat: 1_700_000_500 })
    assert.equal(r1, undefined, 'the failed write is reported')
    const r2 = await node.receipts.issue({ ...input(2), iat: 1_700_000_600 })
    assert.equal((await verifyChain([r0, again, r2])).ok, true)
    // What the node stores (and serves to peers by receipt sync) is that one chain: no orphan
    // receipt of round 1 beside it (two receipts on one prev are a fork; its issuer is excluded).
    const own = await node.receipts.list({ job: 'job-disk' })
    assert.deepEqual(
      own.map((r) => r.round),
      [0, 1, 2]
    )
    const stored = await verifyChain(own.map((r) => r.jwt))
    assert.equal(stored.ok, true, JSON.stringify(stored))
  })

  it('stops listening after stop()', async () => {
    const n = await makeNode()
    await n.receipts.stop()
    await n.receipts.stop()
    assert.equal(n.swarm.handlers.size, 0)
    await n.swarm.deliver([honest[0]!])
    assert.equal((await n.receipts.list()).length, 0)
  })

  it('serves the RPC methods and the CLI (exit code 6 for an invalid receipt)', async () => {
    const n = await makeNode()
    await n.swarm.deliver([...honest, ...fork.chain, fork.forked])
    const methods = receiptMethods(n.receipts)
    const call = async (name: string, params: Record<string, unknown> = {}): Promise<unknown> => {
      const m = methods.find((x) => x.name === name)!
      const result = await m.handler(m.params.strict().parse(params), { signal: AbortSignal.timeout(10_000) })
      return m.result.parse(result) // the handlers' results fit the schemas in the OpenRPC document
    }
    const balances = (await call('ledger_balances')) as { hash: string; excluded: string[] }
    assert.equal(balances.hash, (await n.receipts.ledger()).hash)
    assert.deepEqual(balances.excluded, [heidi.did])
    assert.equal(((await call('ledger_history', { did: bob.did })) as unknown[]).length, 3)
    assert.equal(((await call('receipts_list', { issuer: heidi.did })) as unknown[]).length, 4)
    await call('receipts_get', { hash: receiptHash(honest[0]!) })
    await assert.rejects(call('receipts_get', { hash: 'bafkreinothere' }), { code: 'RECEIPT_NOT_FOUND' })
    await call('receipts_stats')

    const client = { call } as unknown as RpcClient
    const printed: string[] = []
    const run = async (argv: string[], json = false): Promise<number | undefined> => {
      const program = new Command('shoal').exitOverride()
      registerReceiptCommands(
        program,
        async () => client,
        (j, value, human) => printed.push(j ? JSON.stringify(value) : human()),
        () => json
      )
      const before = process.exitCode
      process.exitCode = undefined
      try {
        await program.parseAsync(argv, { from: 'user' })
        return process.exitCode === undefined ? undefined : Number(process.exitCode)
      } finally {
        process.exitCode = before
      }
    }
    assert.equal(await run(['receipts', 'verify', receiptHash(honest[0]!)]), undefined)
    assert.match(printed.at(-1)!, /^valid$/m)
    assert.equal(await run(['receipts', 'verify', fork.forked]), 6)
    assert.match(printed.at(-1)!, /INVALID at the chain level/)
    assert.equal(await run(['ledger']), undefined)
    assert.ok(printed.at(-1)!.includes(`${alice.did}  3840`))
    assert.equal(await run(['ledger', 'history', '--did', carol.did], true), undefined)
    assert.equal((JSON.parse(printed.at(-1)!) as unknown[]).length, 2)
    assert.equal(await run(['receipts', 'list', '--job', 'job-1']), undefined)
    assert.equal(printed.at(-1)!.split('\n').length, 1 + 12)
  })
})
