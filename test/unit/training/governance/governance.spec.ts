import assert from 'node:assert/strict'
import { Identity, keypairFromSeed } from '../../../../src/identity/index.js'
import {
  computeGovernance,
  constitutionClaims,
  decodeDocument,
  documentHash,
  GovernanceError,
  logHead,
  signConstitution,
  signDecree,
  signProposal,
  signVote,
  verifyDocument,
  type GovernanceState,
  type ProposalClaims,
  type VerifiedDocument
} from '../../../../src/training/governance/index.js'

const identity = (n: number): Identity => Identity.fromKeypair(keypairFromSeed(new Uint8Array(32).fill(n)))

const T0 = 1_700_000_000
const founder = identity(1)
const [a, b, c, d, e] = [identity(11), identity(12), identity(13), identity(14), identity(15)]
const newcomer = identity(16)
const outsider = identity(17)
const SWARM = { id: 'swarm-gov', founders: [founder.did] }
const members = [a, b, c, d, e]

const law = constitutionClaims(
  { members: members.map((m) => m.did), window: { min: 10, max: 3600 }, founders: { admitFor: 100 } },
  { swarm: SWARM.id, creator: a.did, founder: founder.did, now: T0 }
)

async function constitutionJwt(): Promise<string> {
  const { kind: _k, iss: _i, ...input } = law
  return signConstitution(founder, input)
}

type ProposalInput = Omit<ProposalClaims, 'kind' | 'iss' | 'iat' | 'swarm' | 'constitution' | 'rule'> &
  Partial<Pick<ProposalClaims, 'swarm' | 'constitution' | 'rule'>> & { iat?: number }

let CONSTITUTION: string
let CHASH: string

async function propose(by: Identity, input: ProposalInput): Promise<string> {
  return signProposal(by, {
    iat: T0 + 10,
    swarm: SWARM.id,
    constitution: CHASH,
    rule: law.rules[input.action.type],
    ...input
  })
}

async function vote(
  by: Identity,
  proposal: string,
  choice: 'yes' | 'no' | 'abstain',
  iat: number
): Promise<string> {
  return signVote(by, { iat, swarm: SWARM.id, proposal: documentHash(proposal), choice })
}

async function verified(jwts: string[], now: number): Promise<VerifiedDocument[]> {
  const out: VerifiedDocument[] = []
  for (const jwt of jwts) {
    const r = await verifyDocument(jwt, { now })
    assert.ok(r.ok, `${r.ok ? '' : r.reason}: ${r.ok ? '' : r.detail}`)
    out.push(r.doc)
  }
  return out
}

async function state(
  jwts: string[],
  now: number,
  credits?: Record<string, number>
): Promise<GovernanceState> {
  return computeGovernance(await verified(jwts, now), { swarm: SWARM, now, ...(credits ? { credits } : {}) })
}

function reasonOf(s: GovernanceState, jwt: string): string | undefined {
  return s.rejected.find((r) => r.hash === documentHash(jwt))?.reason
}

describe('training/governance', function () {
  this.timeout(30_000)

  before(async () => {
    CONSTITUTION = await constitutionJwt()
    CHASH = documentHash(CONSTITUTION)
  })

  describe('documents', () => {
    it('signs and verifies each kind; a forged or altered document fails its signature', async () => {
      const p = await propose(a, {
        title: 't',
        action: { type: 'resolution', text: 'we like data' },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const ok = await verifyDocument(p, { swarm: SWARM.id, now: T0 + 20 })
      assert.ok(ok.ok)
      assert.equal(ok.doc.kind, 'proposal')
      assert.equal(ok.doc.hash, documentHash(p))
      // Forged: the payload says a wrote it, but b signed it.
      const other = await signProposal(b, { ...decodePayload(p), iat: T0 + 10 } as never)
      const [h1, , s1] = p.split('.')
      const [, p2] = other.split('.')
      void h1
      const forged = `${p.split('.')[0]}.${p2}.${s1}`
      const f = await verifyDocument(forged, { now: T0 + 20 })
      assert.equal(f.ok, false)
      assert.equal(!f.ok && f.reason, 'bad-signature')
      const bad = await verifyDocument(p.slice(0, -4) + 'AAAA', { now: T0 + 20 })
      assert.equal(!bad.ok && bad.reason, 'bad-signature')
    })

    it('refuses a document for another swarm (replay) and a proposal of an unknown kind', async () => {
      const elsewhere = await signVote(a, { iat: T0, swarm: 'other-swarm', proposal: CHASH, choice: 'yes' })
      const r = await verifyDocument(elsewhere, { swarm: SWARM.id, now: T0 })
      assert.equal(!r.ok && r.reason, 'wrong-swarm')
      const payload = {
        kind: 'shoal.gov.proposal/1',
        iat: T0,
        swarm: SWARM.id,
        constitution: CHASH,
        title: 'x',
        action: { type: 'seize-treasury', amount: 1 },
        opens: T0,
        closes: T0 + 100,
        rule: law.rules.admit
      }
      const unknown = await a.signJwt(payload)
      const u = await verifyDocument(unknown, { now: T0 })
      assert.equal(!u.ok && u.reason, 'unknown-kind')
      const notJwt = decodeDocument('hello')
      assert.equal(!notJwt.ok && notJwt.reason, 'malformed')
      const noKind = await a.signJwt({ hello: 1 })
      assert.equal((await verifyDocument(noKind)).ok, false)
    })

    it('refuses to sign claims outside the schema', async () => {
      await assert.rejects(
        signVote(a, { iat: T0, swarm: SWARM.id, proposal: CHASH, choice: 'maybe' as 'yes' }),
        (err: unknown) => err instanceof GovernanceError && err.code === 'GOVERNANCE_INVALID_INPUT'
      )
    })
  })

  describe('tally', () => {
    it('admits a sixth member when 3 of 5 vote yes; it can vote on later proposals only', async () => {
      const admit = await propose(a, {
        title: 'admit newcomer',
        action: { type: 'admit', member: newcomer.did },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const votes = [
        await vote(a, admit, 'yes', T0 + 20),
        await vote(b, admit, 'yes', T0 + 21),
        await vote(c, admit, 'yes', T0 + 22)
      ]
      // newcomer is not in the admission's electorate (not a member at its creation).
      const early = await vote(newcomer, admit, 'yes', T0 + 30)
      const open = await state([CONSTITUTION, admit, ...votes, early], T0 + 50)
      assert.equal(open.proposals[0]!.status, 'open')
      assert.ok(!open.members.includes(newcomer.did))
      const s = await state([CONSTITUTION, admit, ...votes, early], T0 + 100)
      const p = s.proposals[0]!
      assert.equal(p.status, 'passed', p.outcome)
      assert.deepEqual([p.yes, p.no, p.abstain, p.weight], [3, 0, 0, 5])
      assert.ok(s.members.includes(newcomer.did))
      assert.equal(s.members.length, 6)
      assert.equal(reasonOf(s, early), 'not-member')
      assert.equal(s.counts['not-member'], 1)
      // A later proposal has six voters.
      const later = await propose(newcomer, {
        iat: T0 + 200,
        title: 'hello',
        action: { type: 'resolution', text: 'hi' },
        opens: T0 + 200,
        closes: T0 + 300
      })
      const s2 = await state([CONSTITUTION, admit, ...votes, later], T0 + 250)
      assert.equal(s2.proposals.find((x) => x.title === 'hello')!.electorate.length, 6)
    })

    it('fails below quorum, and below the threshold', async () => {
      const job = await propose(a, {
        title: 'train mnist',
        action: { type: 'job', job: 'job-1' },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const two = [await vote(a, job, 'yes', T0 + 20), await vote(b, job, 'yes', T0 + 20)]
      const s = await state([CONSTITUTION, job, ...two], T0 + 100)
      assert.equal(s.proposals[0]!.status, 'failed')
      assert.equal(s.proposals[0]!.quorumMet, false)
      assert.match(s.proposals[0]!.outcome, /quorum not met: 2 of 5/)
      assert.deepEqual(s.approvedJobs, [])
      const split = [...two, await vote(c, job, 'no', T0 + 20), await vote(d, job, 'no', T0 + 20)]
      const s2 = await state([CONSTITUTION, job, ...split], T0 + 100)
      assert.equal(s2.proposals[0]!.status, 'failed')
      assert.equal(s2.proposals[0]!.thresholdMet, false)
      const yes = [...split, await vote(e, job, 'yes', T0 + 20)]
      const s3 = await state([CONSTITUTION, job, ...yes], T0 + 100)
      assert.equal(s3.proposals[0]!.status, 'passed')
      assert.deepEqual(s3.approvedJobs, ['job-1'])
    })

    it('does not remove a member with 3 yes and 2 no (less than two thirds)', async () => {
      const remove = await propose(a, {
        title: 'remove e',
        action: { type: 'remove', member: e.did },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const votes = [
        await vote(a, remove, 'yes', T0 + 20),
        await vote(b, remove, 'yes', T0 + 20),
        await vote(c, remove, 'yes', T0 + 20),
        await vote(d, remove, 'no', T0 + 20),
        await vote(e, remove, 'no', T0 + 20)
      ]
      const s = await state([CONSTITUTION, remove, ...votes], T0 + 100)
      assert.equal(s.proposals[0]!.status, 'failed')
      assert.equal(s.proposals[0]!.thresholdMet, false)
      assert.ok(s.members.includes(e.did))
      assert.deepEqual(s.removed, [])
    })

    it('removes a member with at least two thirds of yes and no', async () => {
      const remove = await propose(a, {
        title: 'remove e',
        action: { type: 'remove', member: e.did },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const votes = [
        await vote(a, remove, 'yes', T0 + 20),
        await vote(b, remove, 'yes', T0 + 20),
        await vote(c, remove, 'yes', T0 + 20),
        await vote(d, remove, 'no', T0 + 20)
      ]
      const s = await state([CONSTITUTION, remove, ...votes], T0 + 100)
      assert.equal(s.proposals[0]!.status, 'passed')
      assert.deepEqual(s.removed, [{ did: e.did, at: T0 + 100 }])
      assert.ok(!s.members.includes(e.did))
      const after = await propose(e, {
        iat: T0 + 150,
        title: 'let me back',
        action: { type: 'resolution', text: 'please' },
        opens: T0 + 150,
        closes: T0 + 250
      })
      const otherP = await propose(a, {
        iat: T0 + 150,
        title: 'other',
        action: { type: 'resolution', text: 'x' },
        opens: T0 + 150,
        closes: T0 + 250
      })
      const eVote = await vote(e, otherP, 'yes', T0 + 160)
      const s2 = await state([CONSTITUTION, remove, ...votes, after, otherP, eVote], T0 + 300)
      assert.equal(reasonOf(s2, after), 'removed')
      assert.equal(reasonOf(s2, eVote), 'removed')
      assert.equal(s2.counts.removed, 2)
    })

    it('counts the latest vote of a member before the close; later and earlier ones are refused', async () => {
      const p = await propose(a, {
        title: 'r',
        action: { type: 'resolution', text: 'x' },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const first = await vote(a, p, 'yes', T0 + 20)
      const changed = await vote(a, p, 'no', T0 + 30)
      const late = await vote(a, p, 'yes', T0 + 101)
      const early = await vote(b, p, 'yes', T0 + 5)
      const s = await state([CONSTITUTION, p, late, changed, first, early], T0 + 200)
      const st = s.proposals[0]!
      assert.deepEqual(
        st.votes.map((v) => [v.voter, v.choice]),
        [[a.did, 'no']]
      )
      assert.equal(st.superseded, 1)
      assert.equal(reasonOf(s, late), 'after-close')
      assert.equal(reasonOf(s, early), 'too-early')
      // Two votes in the same second: the one numbered later counts, whatever their hashes.
      for (const [first, second] of [
        ['yes', 'no'],
        ['no', 'yes']
      ] as const) {
        const v0 = await signVote(c, {
          iat: T0 + 50,
          swarm: SWARM.id,
          proposal: documentHash(p),
          choice: first
        })
        const v1 = await signVote(c, {
          iat: T0 + 50,
          swarm: SWARM.id,
          proposal: documentHash(p),
          choice: second,
          seq: 1
        })
        const same = await state([CONSTITUTION, p, v1, v0], T0 + 200)
        assert.equal(same.proposals[0]!.votes.find((v) => v.voter === c.did)!.choice, second)
      }
    })

    it('refuses votes from non-members, for unknown proposals, duplicates and replays from another swarm', async () => {
      const p = await propose(a, {
        title: 'r',
        action: { type: 'resolution', text: 'x' },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const stranger = await vote(outsider, p, 'yes', T0 + 20)
      const ghost = await signVote(a, {
        iat: T0 + 20,
        swarm: SWARM.id,
        proposal: documentHash('nothing'),
        choice: 'yes'
      })
      const ok = await vote(b, p, 'yes', T0 + 20)
      const replay = await signVote(c, {
        iat: T0 + 20,
        swarm: 'other-swarm',
        proposal: documentHash(p),
        choice: 'yes'
      })
      const s = await state([CONSTITUTION, p, stranger, ghost, ok, ok, replay], T0 + 200)
      assert.equal(reasonOf(s, stranger), 'not-member')
      assert.equal(reasonOf(s, ghost), 'unknown-proposal')
      assert.equal(reasonOf(s, ok), 'duplicate')
      assert.equal(reasonOf(s, replay), 'wrong-swarm')
      assert.equal(s.proposals[0]!.votes.length, 1)
      assert.deepEqual(s.counts, { 'not-member': 1, 'unknown-proposal': 1, duplicate: 1, 'wrong-swarm': 1 })
    })

    it('refuses impossible windows, wrong rules, other constitutions and non-member proposers', async () => {
      const backwards = await propose(a, {
        title: 'w',
        action: { type: 'resolution', text: 'x' },
        opens: T0 + 100,
        closes: T0 + 50
      })
      const tooShort = await propose(a, {
        title: 'w2',
        action: { type: 'resolution', text: 'x' },
        opens: T0 + 10,
        closes: T0 + 12
      })
      const before = await propose(a, {
        iat: T0 + 1000,
        title: 'w3',
        action: { type: 'resolution', text: 'x' },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const tooLong = await propose(a, {
        title: 'w4',
        action: { type: 'resolution', text: 'x' },
        opens: T0 + 10,
        closes: T0 + 10_000
      })
      const easy = await propose(a, {
        title: 'easy removal',
        action: { type: 'remove', member: b.did },
        rule: { quorum: [1, 10], threshold: [1, 10], strict: false },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const otherLaw = await propose(a, {
        title: 'c',
        constitution: documentHash('another'),
        action: { type: 'resolution', text: 'x' },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const stranger = await propose(outsider, {
        title: 's',
        action: { type: 'resolution', text: 'x' },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const admitMember = await propose(a, {
        title: 'dup',
        action: { type: 'admit', member: b.did },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const all = [CONSTITUTION, backwards, tooShort, before, tooLong, easy, otherLaw, stranger, admitMember]
      const s = await state(all, T0 + 2000)
      for (const w of [backwards, tooShort, before, tooLong]) assert.equal(reasonOf(s, w), 'bad-window')
      assert.equal(reasonOf(s, easy), 'rule-mismatch')
      assert.equal(reasonOf(s, otherLaw), 'wrong-constitution')
      assert.equal(reasonOf(s, stranger), 'not-member')
      assert.equal(reasonOf(s, admitMember), 'target')
      assert.equal(s.proposals.length, 0)
      assert.equal(s.counts['bad-window'], 4)
    })

    it('takes membership as of the proposal: a member admitted later cannot swing it', async () => {
      const admit = await propose(a, {
        title: 'admit',
        action: { type: 'admit', member: newcomer.did },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const admitVotes = await Promise.all([a, b, c].map(async (m) => vote(m, admit, 'yes', T0 + 20)))
      // Made while newcomer is not yet a member (closes after its admission).
      const job = await propose(b, {
        iat: T0 + 50,
        title: 'job',
        action: { type: 'job', job: 'j2' },
        opens: T0 + 50,
        closes: T0 + 300
      })
      const jobVotes = [
        await vote(a, job, 'yes', T0 + 60),
        await vote(b, job, 'yes', T0 + 60),
        await vote(newcomer, job, 'yes', T0 + 150)
      ]
      const s = await state([CONSTITUTION, admit, ...admitVotes, job, ...jobVotes], T0 + 300)
      const j = s.proposals.find((p) => p.title === 'job')!
      assert.equal(j.electorate.length, 5)
      assert.equal(j.status, 'failed') // 2 of 5: no quorum
      assert.equal(reasonOf(s, jobVotes[2]!), 'not-member')
    })

    it('lets the founders admit by decree during the bootstrap only, and checks decrees are the founders’', async () => {
      const ok = await signDecree(founder, {
        iat: T0 + 50,
        swarm: SWARM.id,
        constitution: CHASH,
        action: { type: 'admit', member: newcomer.did }
      })
      const late = await signDecree(founder, {
        iat: T0 + 500,
        swarm: SWARM.id,
        constitution: CHASH,
        action: { type: 'admit', member: outsider.did }
      })
      const fake = await signDecree(a, {
        iat: T0 + 50,
        swarm: SWARM.id,
        constitution: CHASH,
        action: { type: 'remove', member: b.did }
      })
      const fakeLaw = await signConstitution(a, { ...stripLaw(), members: [a.did] })
      const s = await state([CONSTITUTION, ok, late, fake, fakeLaw], T0 + 1000)
      assert.ok(s.members.includes(newcomer.did))
      assert.ok(!s.members.includes(outsider.did))
      assert.equal(reasonOf(s, late), 'founder-power')
      assert.equal(reasonOf(s, fake), 'not-founder')
      assert.equal(reasonOf(s, fakeLaw), 'not-founder')
      assert.equal(s.events.filter((x) => x.by === 'decree').length, 1)
    })

    it('applies passed policy changes; weighs by credits when the constitution says so', async () => {
      const change = await propose(a, {
        title: 'median',
        action: { type: 'policy', changes: { aggregation: 'median', rewards: { trainer: 100, data: 80 } } },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const votes = await Promise.all([a, b, c, d].map(async (m) => vote(m, change, 'yes', T0 + 20)))
      const s = await state([CONSTITUTION, change, ...votes], T0 + 100)
      assert.deepEqual(s.policy, { rewards: { trainer: 100, data: 80 }, aggregation: 'median' })
      // By credits: a rich minority decides.
      const weighted = constitutionClaims(
        { members: members.map((m) => m.did), weighting: 'credits', window: { min: 10, max: 3600 } },
        { swarm: SWARM.id, creator: a.did, founder: founder.did, now: T0 }
      )
      const { kind: _k, iss: _i, ...input } = weighted
      const wc = await signConstitution(founder, input)
      const p = await signProposal(b, {
        iat: T0 + 10,
        swarm: SWARM.id,
        constitution: documentHash(wc),
        title: 'r',
        action: { type: 'resolution', text: 'x' },
        opens: T0 + 10,
        closes: T0 + 100,
        rule: weighted.rules.resolution
      })
      const vs = [
        await vote(a, p, 'yes', T0 + 20),
        await vote(b, p, 'no', T0 + 20),
        await vote(c, p, 'no', T0 + 20)
      ]
      const docs = await verified([wc, p, ...vs], T0 + 100)
      const rich = computeGovernance(docs, { swarm: SWARM, now: T0 + 100, credits: { [a.did]: 1000 } })
      assert.equal(rich.proposals[0]!.status, 'passed')
      assert.equal(rich.proposals[0]!.yes, 1001)
      const flat = computeGovernance(docs, { swarm: SWARM, now: T0 + 100 })
      assert.equal(flat.proposals[0]!.status, 'failed')
    })

    it('is a pure function of the documents: every order gives the same state and head', async () => {
      const admit = await propose(a, {
        title: 'admit',
        action: { type: 'admit', member: newcomer.did },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const job = await propose(c, {
        title: 'job',
        action: { type: 'job', job: 'j3' },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const docs = [
        CONSTITUTION,
        admit,
        job,
        await vote(a, admit, 'yes', T0 + 20),
        await vote(b, admit, 'no', T0 + 20),
        await vote(b, admit, 'yes', T0 + 40),
        await vote(c, admit, 'yes', T0 + 20),
        await vote(d, job, 'abstain', T0 + 20),
        await vote(outsider, job, 'yes', T0 + 20)
      ]
      const first = await state(docs, T0 + 500)
      for (let i = 0; i < 4; i++) {
        const shuffled = [...docs].sort(() => (Math.sin(i * 97 + docs.length) > 0 ? 1 : -1)).reverse()
        shuffled.push(docs[i]!) // a duplicate changes nothing but the count
        const again = await state(shuffled, T0 + 500)
        assert.equal(again.head, first.head)
        assert.deepEqual(again.proposals, first.proposals)
        assert.deepEqual(again.members, first.members)
      }
      assert.equal(first.head, logHead(docs.map(documentHash)))
    })

    it('counts nothing without the swarm’s constitution', async () => {
      const p = await propose(a, {
        title: 'r',
        action: { type: 'resolution', text: 'x' },
        opens: T0 + 10,
        closes: T0 + 100
      })
      const s = await state([p], T0 + 200)
      assert.equal(s.constitution, null)
      assert.equal(reasonOf(s, p), 'wrong-constitution')
    })
  })
})

function decodePayload(jwt: string): Record<string, unknown> {
  const {
    kind: _k,
    iss: _i,
    ...rest
  } = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
  return rest
}

function stripLaw(): Omit<typeof law, 'kind' | 'iss'> {
  const { kind: _k, iss: _i, ...rest } = law
  return rest
}
