import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PeerId } from '@libp2p/interface'
import { Identity, keypairFromSeed } from '../../../src/identity/index.js'
import {
  createSwarm,
  issueCredential,
  swarmTopics,
  verifyCredential,
  type ItemSource,
  type SwarmDescriptor,
  type SwarmTopics
} from '../../../src/p2p/index.js'
import {
  GovernanceError,
  signProposal,
  signVote,
  type GovernanceMessage
} from '../../../src/training/index.js'
import { NodeGovernance, type GovernanceSwarm } from '../../../src/node/governance.js'
import { NodeDb } from '../../../src/node/db.js'
import { NodeReceipts } from '../../../src/node/receipts.js'
import { issueReceipt } from '../../../src/training/index.js'
import { FakeSwarm } from './fake-swarm.js'
import { decodeInvite, encodeInvite } from '../../../src/node/swarm.js'

const identity = (n: number): Identity => Identity.fromKeypair(keypairFromSeed(new Uint8Array(32).fill(n)))

type Handler = (msg: GovernanceMessage, meta: { did: string; from: PeerId }) => void | Promise<void>

/** Members on one in-memory gossip bus; an offline member neither sends nor receives. */
class Bus {
  readonly members: Member[] = []
  async deliver(from: Member, msg: GovernanceMessage): Promise<void> {
    for (const m of this.members)
      if (m !== from && m.online && from.online)
        for (const h of m.handlers) await h(msg, { did: from.identity.did, from: from.identity.peerId })
  }

  /** One anti-entropy exchange, as ItemSync runs it: `a` fetches what `b` holds and it lacks. */
  async sync(a: Member, b: Member): Promise<number> {
    const [mine, theirs] = [await a.source.digests(), await b.source.digests()]
    const want: string[] = []
    for (const [group, d] of theirs) {
      if (mine.get(group)?.h === d.h) continue
      const have = new Set(await a.source.ids(group))
      for (const id of await b.source.ids(group)) if (!have.has(id)) want.push(id)
    }
    return a.source.accept(await b.source.get(want), b.identity.peerId)
  }
}

class Member implements GovernanceSwarm {
  readonly handlers = new Set<Handler>()
  readonly revokedDids: string[] = []
  online = true
  governance!: NodeGovernance
  source!: ItemSource
  private readonly listeners: Array<(topics: SwarmTopics) => void> = []
  readonly gossip = {
    subscribe: (_spec: unknown, handler: Handler): (() => void) => {
      this.handlers.add(handler)
      return () => this.handlers.delete(handler)
    },
    publish: async (_spec: unknown, msg: GovernanceMessage): Promise<void> => this.bus.deliver(this, msg)
  }

  constructor(
    readonly bus: Bus,
    readonly identity: Identity,
    readonly swarm: SwarmDescriptor,
    private readonly founder: Identity | undefined
  ) {}

  onEnter(listener: (topics: SwarmTopics) => void): void {
    this.listeners.push(listener)
    listener(swarmTopics(this.swarm.id))
  }

  itemSync(): { syncWith(peer: PeerId): Promise<unknown> } {
    return {
      syncWith: async (peer) => {
        const other = this.bus.members.find((m) => m.identity.peerId.equals(peer))
        if (other !== undefined && other.online) await this.bus.sync(this, other)
      }
    }
  }

  revoke(did: string): void {
    this.revokedDids.push(did)
  }

  async founderIdentity(): Promise<Identity | undefined> {
    return this.founder
  }

  async invite(did: string): Promise<string> {
    if (this.founder === undefined) throw new Error('not a founder')
    const credential = await issueCredential(this.founder, this.swarm, did)
    return encodeInvite({ v: 1, swarm: this.swarm, bootstrap: [], credential })
  }
}

describe('node/governance: a governed swarm of five members', function () {
  this.timeout(60_000)
  const clock = { ms: Date.now() }
  const now = (): number => clock.ms
  const advance = (s: number): void => {
    clock.ms += s * 1000
  }
  let dir: string
  const bus = new Bus()
  const founderKey = identity(90)
  const { swarm } = createSwarm({ name: 'gov', private: true, founder: founderKey })
  const ids = [identity(91), identity(92), identity(93), identity(94), identity(95)]
  const newcomer = identity(96)
  let m: Member[]

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-gov-'))
    m = ids.map((id, i) => new Member(bus, id, swarm, i === 0 ? founderKey : undefined))
    bus.members.push(...m)
    for (const [i, member] of m.entries()) {
      member.governance = new NodeGovernance(
        { identity: member.identity, swarm: member, path: join(dir, `n${i}`) },
        { now, headIntervalMs: 3_600_000 }
      )
      member.source = member.governance.syncSource()
      await member.governance.start()
    }
  })

  after(async () => {
    for (const member of m) await member.governance.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const refresh = (): void => {
    for (const member of m) if (member.online) member.governance.refresh()
  }

  it('decides admissions, removals and jobs by the members’ votes; an offline member syncs and agrees', async () => {
    const [n0, n1, n2, n3, n4] = m as [Member, Member, Member, Member, Member]
    n4.online = false // offline for the whole vote
    await n0.governance.found({ members: ids.map((i) => i.did), window: { min: 10, max: 3600 } })
    for (const member of [n0, n1, n2, n3])
      assert.equal(
        member.governance.status().governed,
        true,
        `${m.indexOf(member)} ${JSON.stringify(member.governance.status())}`
      )
    assert.equal(n4.governance.status().governed, false)

    // Only the founder may found; a second constitution is refused.
    await assert.rejects(
      n0.governance.found({}),
      (e: unknown) => e instanceof GovernanceError && e.code === 'GOVERNANCE_REJECTED'
    )

    const { proposal: admit } = await n1.governance.propose({
      title: 'admit a sixth member',
      action: { type: 'admit', member: newcomer.did },
      windowSeconds: 10
    })
    const { proposal: job } = await n0.governance.propose({
      title: 'train job-x',
      action: { type: 'job', job: 'job-x' },
      windowSeconds: 10
    })
    for (const member of [n0, n1, n2]) await member.governance.vote(admit, 'yes')
    await n0.governance.vote(job, 'yes')
    // A vote changed before the close: the latest counts.
    await n3.governance.vote(admit, 'no')
    await n3.governance.vote(admit, 'abstain')
    assert.equal(n2.governance.proposal(admit).status, 'open')
    assert.equal(n2.governance.jobAllowed('job-x'), false)

    advance(11)
    refresh()
    for (const member of [n0, n1, n2, n3]) {
      const p = member.governance.proposal(admit)
      assert.equal(p.status, 'passed', p.outcome)
      assert.deepEqual([p.yes, p.no, p.abstain], [3, 0, 1])
      assert.equal(member.governance.proposal(job).status, 'failed')
      assert.equal(member.governance.jobAllowed('job-x'), false, 'a job below quorum never starts')
      assert.ok(member.governance.status().members.includes(newcomer.did))
    }
    // The founder node issued the newcomer's credential and gossiped it: any member hands out the invite.
    await waitFor(() => n2.governance.invite(newcomer.did))
    const invite = decodeInvite(n2.governance.invite(newcomer.did).invite)
    assert.equal(
      (await verifyCredential(invite.credential, swarm, { subject: newcomer.did })).member,
      newcomer.did
    )

    // Remove n3: a later proposal and vote of n3 are refused, and every node refuses n3.
    const { proposal: remove } = await n0.governance.propose({
      title: 'remove n3',
      action: { type: 'remove', member: n3.identity.did, reason: 'spam' },
      windowSeconds: 10
    })
    for (const member of [n0, n1, n2]) await member.governance.vote(remove, 'yes')
    await n3.governance.vote(remove, 'no')
    advance(11)
    refresh()
    for (const member of [n0, n1, n2]) {
      assert.equal(member.governance.proposal(remove).status, 'passed')
      assert.deepEqual(member.revokedDids, [n3.identity.did])
      assert.ok(!member.governance.status().members.includes(n3.identity.did))
    }
    await assert.rejects(
      n3.governance.propose({
        title: 'let me back',
        action: { type: 'resolution', text: 'please' },
        windowSeconds: 10
      }),
      (e: unknown) => e instanceof GovernanceError && e.fields.reason === 'removed'
    )
    const t = Math.floor(now() / 1000)
    const late = await signProposal(n3.identity, {
      iat: t,
      swarm: swarm.id,
      constitution: n0.governance.status().constitution!,
      title: 'again',
      action: { type: 'resolution', text: 'x' },
      opens: t,
      closes: t + 20,
      rule: n0.governance.state().constitution!.claims.rules.resolution
    })
    assert.equal(await n0.governance.add(late), 'removed')
    assert.equal(n0.governance.status().refused.removed, 1)
    // Bad input at a node: a vote replayed from another swarm, a duplicate, a forgery.
    const elsewhere = await signVote(n1.identity, {
      iat: t,
      swarm: 'another-swarm',
      proposal: remove,
      choice: 'yes'
    })
    assert.equal(await n0.governance.add(elsewhere), 'wrong-swarm')
    assert.equal(await n0.governance.add(late), 'duplicate')
    const forged = late.slice(0, late.lastIndexOf('.') + 1) + elsewhere.slice(elsewhere.lastIndexOf('.') + 1)
    assert.equal(await n0.governance.add(forged), 'bad-signature')

    // n4 comes back: it learns the log head, syncs, and computes the same outcome.
    n4.online = true
    assert.notEqual(n4.governance.status().head, n0.governance.status().head)
    await n0.governance.refresh() // publishes nothing new; n4 asks by head gossip:
    await bus.deliver(n0, { type: 'head', head: n0.governance.status().head, n: 0 })
    n4.governance.refresh()
    const [s0, s4] = [n0.governance.refresh(), n4.governance.refresh()]
    assert.equal(s4.head, s0.head)
    assert.deepEqual(s4.proposals, s0.proposals)
    assert.deepEqual(s4.members, s0.members)
    assert.deepEqual(n4.revokedDids, [n3.identity.did])
    for (const member of [n1, n2]) assert.equal(member.governance.refresh().head, s0.head)
  })
})

async function waitFor(f: () => unknown, ms = 5_000): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    try {
      f()
      return
    } catch (err) {
      if (Date.now() > end) throw err
      await new Promise((r) => setTimeout(r, 20))
    }
  }
}

describe('node/governance: receipts of a removed member', () => {
  it('refuses the receipts a removed member signs after its removal, and keeps the earlier ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-gov-receipts-'))
    const db = new NodeDb(join(dir, 'db'))
    await db.start()
    const removed = identity(97)
    const removedAt = 1_700_000_100
    const receipts = new NodeReceipts({
      db,
      swarm: new FakeSwarm(),
      grants: { find: async () => undefined },
      identity: identity(98),
      refuse: (issuer, iat) => (issuer === removed.did && iat >= removedAt ? 'removed' : undefined)
    })
    const input = (round: number, iat: number): Parameters<typeof issueReceipt>[1] => ({
      job: 'job-1',
      round,
      baseCid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
      shards: [{ cid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', grant: 'g' }],
      hyper: { lr: 0.1, batchSize: 8, steps: 1, optimizer: 'sgd' },
      seed: 1,
      samples: 8,
      steps: 1,
      resultHash: '0'.repeat(64),
      lossBefore: 1,
      lossAfter: 1,
      ep: 'cpu',
      iat
    })
    const before = await issueReceipt(removed, input(0, removedAt - 10), null)
    const after = await issueReceipt(removed, input(1, removedAt + 10), before)
    assert.equal(await receipts.add(before), 'accepted')
    assert.equal(await receipts.add(after), 'removed')
    assert.deepEqual(receipts.stats().rejected, { removed: 1 })
    assert.equal((await receipts.list()).length, 1)
    await db.stop()
    await rm(dir, { recursive: true, force: true })
  })
})
