/**
 * Rewards for data on a node (docs/governance.md, "Rewards for data"): over the rounds the
 * trainers' ledger credits (`NodeReceipts.ledger`), the owners of the shards each round trained
 * on are credited too — the `rewards.data` share of the swarm's policy (default 50 % of the
 * round's samples), split by shard — and lose it with the round when the trainer is convicted
 * or the grant is revoked. `statement` signs the balances at the ledger's hash as a JWT.
 */
import { createHash } from 'node:crypto'
import type { Identity } from '../identity/index.js'
import {
  DEFAULT_POLICY,
  dataRewards,
  decodeReceipt,
  signStatement,
  totalBalances,
  type DataRewards,
  type GrantLookup,
  type Policy,
  type ReceiptClaims
} from '../training/index.js'
import type { NodeLedger } from './receipts.js'

/** What the rewards need of the node. */
export interface RewardsComponents {
  receipts: {
    ledger(): Promise<Pick<NodeLedger, 'balances' | 'history' | 'hash' | 'excluded'>>
    get(hash: string): Promise<{ jwt: string } | undefined>
  }
  grants: GrantLookup
  /** The swarm's policy in force (governance), or undefined outside a governed swarm. */
  policy: () => Policy | undefined
  identity: Identity
  swarmId: () => string | undefined
  now?: () => number
}

/** Trainers and data owners. */
export interface RewardsLedger {
  /** The trainers' balances (`ledger_balances`). */
  trainers: Record<string, number>
  dataOwners: DataRewards
  /** Both added up per DID. */
  totals: Record<string, number>
  /** The share of a round's samples its data owners get (percent). */
  dataShare: number
  /** The trainers' ledger hash, and a hash of the data owners' rewards. */
  ledger: string
  hash: string
}

export class NodeRewards {
  private readonly c: RewardsComponents
  private readonly claims = new Map<string, ReceiptClaims>()

  constructor(components: RewardsComponents) {
    this.c = components
  }

  /** The share of data owners in force: the swarm's policy, else the default. */
  dataShare(): number {
    return this.c.policy()?.rewards?.data ?? DEFAULT_POLICY.rewards.data
  }

  async ledger(): Promise<RewardsLedger> {
    const base = await this.c.receipts.ledger()
    const now = Math.floor((this.c.now ?? Date.now)() / 1000)
    const chosen: Array<{ hash: string; claims: ReceiptClaims }> = []
    for (const e of base.history) {
      // A round the trainers' ledger pays nothing for (an unverifiable round under `no-credit`)
      // pays its data owners nothing either; a forfeited one is listed as forfeited.
      if (!e.forfeited && e.credits === 0 && e.samples > 0) continue
      let claims = this.claims.get(e.receipt)
      if (claims === undefined) {
        const rec = await this.c.receipts.get(e.receipt)
        if (rec === undefined) continue
        claims = decodeReceipt(rec.jwt).claims
        this.claims.set(e.receipt, claims)
      }
      chosen.push({ hash: e.receipt, claims })
    }
    const owners = new Map<string, string>()
    const revoked = new Set<string>()
    for (const grant of new Set(chosen.flatMap(({ claims }) => claims.shards.map((s) => s.grant)))) {
      const g = await this.c.grants.find(grant).catch(() => undefined)
      if (g === undefined) continue
      owners.set(grant, g.owner)
      if (g.revokedAt !== undefined || (g.exp !== undefined && g.exp <= now)) revoked.add(grant)
    }
    const dataShare = this.dataShare()
    const dataOwners = dataRewards(chosen, 1, new Set(base.excluded), { data: dataShare, owners, revoked })
    return {
      trainers: base.balances,
      dataOwners,
      totals: totalBalances(base.balances, dataOwners.balances),
      dataShare,
      ledger: base.hash,
      hash: createHash('sha256').update(JSON.stringify(dataOwners)).digest('hex')
    }
  }

  /** The balances signed by this node at the current ledger hash (a JWT anyone can verify). */
  async statement(): Promise<{ jwt: string; ledger: string }> {
    const l = await this.ledger()
    const jwt = await signStatement(this.c.identity, {
      swarm: this.c.swarmId() ?? null,
      ledger: l.ledger,
      trainers: l.trainers,
      dataOwners: l.dataOwners.balances,
      totals: l.totals
    })
    return { jwt, ledger: l.ledger }
  }
}
