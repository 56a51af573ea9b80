/**
 * A local Shoal swarm of node processes on 127.0.0.1, driven only through each node's RPC, as
 * a real deployment would be: used by `npm start`, the multi-process tests and the swarm
 * benchmark. One owner node holds the data; N trainer nodes each get one shard by grant.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { RpcClient } from '../../src/node/rpc/index.js'
import { exited, shoal, startDaemon, type Daemon } from './processes.js'

export interface SwarmNode {
  name: string
  home: string
  daemon?: Daemon
  rpc?: RpcClient
  did?: string
}

export interface JobStatus {
  state: string
  /** Paused and waiting (the step in progress has finished). */
  held?: boolean
  round: number | null
  accuracy: number | null
  loss: number | null
  peersUsed: number
  bytesSent: number
  bytesReceived: number
  receipts: number
  rejected: Array<{ round: number; from: string; reason: string }>
  history: Array<{
    round: number
    /** The round after it: round + 1, or later when the node caught up with newer peer models. */
    nextRound: number
    accuracy?: number
    trainMs: number
    netMs: number
    aggMs: number
    bytesSent: number
    bytesReceived: number
    /** The peer models aggregated in the round. */
    peers: Array<{ from: string; cid: string; round: number }>
    /** Peer models refused, and those that could not be fetched in time. */
    rejected: number
    unavailable: number
  }>
  error: unknown
}

export interface DatasetInfo {
  manifestCid: string
  shards: Array<{ cid: string; count: number; labelCounts: number[] }>
}

export async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms
  let last: unknown
  for (;;) {
    const v = await fn().catch((err: unknown) => {
      last = err
      return undefined
    })
    if (v !== undefined) return v
    if (Date.now() > end) {
      const why = last instanceof Error ? ` (last error: ${last.message})` : ''
      throw new Error(`timed out waiting for ${what}${why}`)
    }
    await sleep(300)
  }
}

export class LocalSwarm {
  readonly root: string
  readonly owner: SwarmNode
  readonly trainers: SwarmNode[]
  private readonly env: NodeJS.ProcessEnv
  private readonly launch: ((n: SwarmNode) => Promise<Daemon>) | undefined

  /** `launch` starts a node's daemon elsewhere (e.g. in a network-lab namespace); default: on 127.0.0.1. */
  constructor(init: {
    root: string
    trainers: number
    env?: NodeJS.ProcessEnv
    launch?: (n: SwarmNode) => Promise<Daemon>
  }) {
    this.root = init.root
    this.launch = init.launch
    this.owner = { name: 'owner', home: join(init.root, 'owner') }
    this.trainers = Array.from({ length: init.trainers }, (_, i) => ({
      name: `node-${i + 1}`,
      home: join(init.root, `node-${i + 1}`)
    }))
    this.env = init.env ?? { SHOAL_LOG: 'error' }
  }

  get all(): SwarmNode[] {
    return [this.owner, ...this.trainers]
  }

  async call<T>(n: SwarmNode, method: string, params: Record<string, unknown> = {}): Promise<T> {
    if (n.rpc === undefined) throw new Error(`${n.name} is not running`)
    return n.rpc.call<T>(method, params)
  }

  /** `shoal init` (if needed) and `shoal daemon` for one node. */
  async startNode(n: SwarmNode): Promise<void> {
    const r = await shoal(n.home, ['init'])
    if (r.code !== 0 && !/already initialised/.test(r.stderr)) throw new Error(`${n.name}: ${r.stderr}`)
    n.daemon = this.launch !== undefined ? await this.launch(n) : await startDaemon(n.home, [], this.env)
    n.rpc = new RpcClient(n.daemon.api, (await readFile(join(n.home, 'rpc.cookie'), 'utf8')).trim())
    n.did = (await this.call<{ did: string }>(n, 'node_info')).did
  }

  async start(): Promise<void> {
    await mkdir(this.root, { recursive: true })
    await Promise.all(this.all.map(async (n) => this.startNode(n)))
  }

  /**
   * The owner creates a private swarm and invites every trainer; trainers join with the invite
   * (which names only the owner) and find each other by peer exchange.
   */
  async form(meshMs = 60_000): Promise<string> {
    const swarm = await this.call<{ id: string }>(this.owner, 'swarm_create', {
      name: 'local',
      private: true
    })
    for (const t of this.trainers) {
      const { invite } = await this.call<{ invite: string }>(this.owner, 'swarm_invite', { did: t.did })
      await this.call(t, 'swarm_join', { invite })
    }
    await this.meshTrainers(meshMs)
    return swarm.id
  }

  /**
   * Waits until every live trainer is connected to, and has verified, every other live node:
   * nothing is dialed by hand, so this exercises discovery (the invite's bootstrap, then peer
   * exchange among members).
   */
  async meshTrainers(ms = 60_000): Promise<void> {
    const live = this.all.filter((t) => t.rpc !== undefined)
    const dids = new Set(live.map((n) => n.did))
    await until(
      'trainers to discover and verify each other',
      async () => {
        for (const t of live.filter((n) => n !== this.owner)) {
          const peers = await this.call<Array<{ did: string | null; member: boolean | null }>>(
            t,
            'peers_list'
          )
          const verified = new Set(
            peers.filter((p) => p.member === true && dids.has(p.did!)).map((p) => p.did)
          )
          if (verified.size < live.length - 1) return undefined
        }
        return true
      },
      ms
    )
  }

  async importAndGrant(opts: { alpha?: number; seed?: number } = {}): Promise<DatasetInfo> {
    const ds = await this.call<DatasetInfo>(this.owner, 'dataset_import', {
      source: 'mnist',
      name: 'mnist',
      shards: this.trainers.length,
      split: 'dirichlet',
      alpha: opts.alpha ?? 0.5,
      seed: opts.seed ?? 42
    })
    for (const [i, t] of this.trainers.entries()) {
      const g = await this.call<{ grant: string; document: string }>(this.owner, 'dataset_grant', {
        dataset: ds.manifestCid,
        did: t.did,
        shards: [ds.shards[i]!.cid]
      })
      // The grant also travels by gossip; handing it over directly as well makes this robust
      // to a trainer whose mesh formed after the message went out.
      await this.call(t, 'dataset_grant_add', { document: g.document, dataset: ds.manifestCid }).catch(
        () => {}
      )
    }
    return ds
  }

  /**
   * The owner creates the job; waits (up to `joinMs`) until every trainer has joined it. A
   * trainer that does not join in time is reported with what it last said: the job unknown to
   * it, or its last `job_join` error.
   */
  async createJob(params: Record<string, unknown>, joinMs = 60_000): Promise<string> {
    const job = await this.call<{ id: string }>(this.owner, 'job_create', params)
    await Promise.all(
      this.trainers.map(async (t) => {
        let why = 'the job is not in its job_list'
        await until(
          `${t.name} to join`,
          async () => {
            const list = await this.call<Array<{ id: string; state: string }>>(t, 'job_list')
            const mine = list.find((j) => j.id === job.id)
            if (mine === undefined) {
              await this.call(this.owner, 'job_announce', { job: job.id })
              return undefined
            }
            if (mine.state === 'known') {
              why = 'known, not joined'
              await this.call(t, 'job_join', { job: job.id }).catch((err: unknown) => {
                why = `job_join: ${err instanceof Error ? err.message : String(err)}`
              })
            }
            return mine.state !== 'known' ? true : undefined
          },
          joinMs
        ).catch((err: unknown) => {
          throw new Error(`${(err as Error).message}: ${why}`)
        })
      })
    )
    return job.id
  }

  async status(n: SwarmNode, job: string): Promise<JobStatus> {
    return this.call<JobStatus>(n, 'job_status', { job })
  }

  /** Poll every live trainer until all are done (or failed); `onTick` sees each poll. */
  async waitDone(
    job: string,
    onTick?: (s: Map<string, JobStatus>) => void | Promise<void>,
    ms = 600_000
  ): Promise<Map<string, JobStatus>> {
    const end = Date.now() + ms
    const statuses = new Map<string, JobStatus>()
    for (;;) {
      await Promise.all(
        this.trainers.map(async (t) => {
          if (t.rpc === undefined) return
          const s = await this.status(t, job).catch(() => undefined)
          if (s !== undefined) statuses.set(t.name, s)
        })
      )
      await onTick?.(statuses)
      const live = this.trainers.filter((t) => t.rpc !== undefined)
      if (live.every((t) => ['done', 'failed', 'left'].includes(statuses.get(t.name)?.state ?? '')))
        return statuses
      if (Date.now() > end) throw new Error('timed out waiting for the job')
      await sleep(1000)
    }
  }

  /** A centralized run of the same model on the owner node (the union of the shards). */
  async reference(opts: { epochs: number; batchSize: number; lr: number; seed?: number }): Promise<number> {
    const { task } = await this.call<{ task: string }>(this.owner, 'train_local', {
      model: 'mlp',
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      lr: opts.lr,
      seed: opts.seed ?? 42
    })
    const ref = await until(
      'the reference run',
      async () => {
        const s = await this.call<{ state: string; history: Array<{ accuracy?: number }> }>(
          this.owner,
          'train_status',
          { task }
        )
        return s.state === 'running' ? undefined : s
      },
      600_000
    )
    return ref.history.at(-1)?.accuracy ?? NaN
  }

  /** SIGKILL a node (no clean shutdown). */
  async kill(n: SwarmNode): Promise<void> {
    n.daemon?.child.kill('SIGKILL')
    if (n.daemon !== undefined) await exited(n.daemon.child)
    n.daemon = undefined
    n.rpc = undefined
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.all.map(async (n) => {
        if (n.daemon !== undefined && n.daemon.child.exitCode === null) {
          n.daemon.child.kill('SIGTERM')
          await exited(n.daemon.child)
        }
      })
    )
  }

  output(): string {
    return this.all
      .map((n) => `--- ${n.name} ---\n${n.daemon?.output().slice(-3000) ?? '(not running)'}`)
      .join('\n')
  }
}
