/**
 * The composition root (as Lodestar's BeaconNode.init): the only place that builds concrete
 * objects and wires them. Services are built in dependency order — each gets what it needs,
 * already built — and stopped in exactly the reverse order (a stack of stop functions):
 *
 * repo lock → identity → Helia/libp2p → swarm → content store → node db → datasets → governance →
 * governance sync → models → job catalog → privacy → re-executor → audit → receipts → receipt sync → jobs → events →
 * metrics (→ metrics listener) → RPC server (with the dashboard) → api file
 */
import { join } from 'node:path'
import { logger, type Logger } from '../common/index.js'
import { Keystore, didFromPeerId, type Identity } from '../identity/index.js'
import { ContentStore, createHeliaNode, type ShoalHelia, grantStatus } from '../storage/index.js'
import {
  PeerAccessList,
  RECEIPT_SYNC_PROTOCOL,
  addressGater,
  libp2pOptions,
  type DhtGuardStats,
  type ItemSyncStats,
  type P2PServices
} from '../p2p/index.js'
import type { ShoalConfig } from './config/index.js'
import { Repo } from './repo/index.js'
import { RpcServer, type RpcMethod, type StreamHandler } from './rpc/index.js'
import {
  datasetMethods,
  governanceMethods,
  jobMethods,
  dutyCycleMethods,
  nodeMethods,
  p2pMethods,
  receiptMethods,
  storageMethods,
  storageStreams,
  trainingMethods
} from './methods/index.js'
import { NodeSwarm } from './swarm.js'
import { NodeDb } from './db.js'
import { NodeDatasets } from './datasets.js'
import {
  JOB_SYNC_PROTOCOL,
  NodeJobs,
  PreparedShards,
  imageJobData,
  jobReexecutor,
  labFromEnv
} from './jobs/index.js'
import { NodeReceipts } from './receipts.js'
import { GOVERNANCE_SYNC_PROTOCOL, GovernedJobCatalog, NodeGovernance } from './governance.js'
import { NodeRewards } from './rewards.js'
import { NodeAudit } from './audit.js'
import { NodePrivacy } from './privacy.js'
import { VERSION } from './constants.js'
import { EVENTS_PATH, EventBus, EventStream, NODE_EVENT_TOPICS, wireNodeEvents } from './events/index.js'
import {
  FetchMeter,
  METRICS_PATH,
  MeteredWeightStore,
  MetricsListener,
  NodeMetrics,
  meteredShardRead
} from './metrics/index.js'
import { DashboardGate, dashboardAssets, dashboardMethods } from './dashboard/index.js'

export interface ShoalNodeInit {
  home: string
  config: ShoalConfig
  passphrase?: string
}

/** What a started node is made of (the services the CLI and tests look at). */
interface Started {
  identity: Identity
  helia: ShoalHelia<P2PServices>
  store: ContentStore
  swarm: NodeSwarm
  rpc: RpcServer
}

export class ShoalNode {
  readonly repo: Repo
  readonly config: ShoalConfig
  readonly version = VERSION
  private readonly passphrase: string | undefined
  private parts: Started | undefined
  /** Stop functions of what has been started, in start order (stopped from the end). */
  private stack: Array<{ name: string; stop: () => Promise<unknown> }> = []
  private readonly events: Array<{ service: string; event: 'started' | 'stopped' }> = []
  private _startedAt = 0
  private starting?: Promise<void>
  private log: Logger = logger('shoal:node')

  constructor(init: ShoalNodeInit) {
    this.repo = new Repo(init.home)
    this.config = init.config
    this.passphrase = init.passphrase
  }

  private started(): Started {
    if (this.parts === undefined) throw new Error('node not started')
    return this.parts
  }

  get identity(): Identity {
    return this.started().identity
  }

  get helia(): ShoalHelia<P2PServices> {
    return this.started().helia
  }

  get store(): ContentStore {
    return this.started().store
  }

  get swarm(): NodeSwarm {
    return this.started().swarm
  }

  get rpcUrl(): URL {
    return this.started().rpc.url()
  }

  get startedAt(): number {
    return this._startedAt
  }

  async start(): Promise<void> {
    this.starting ??= this.doStart()
    return this.starting
  }

  /** Runs `start` and pushes `stop` on the stack; returns the service. */
  private async use<T>(
    name: string,
    service: T,
    start?: (s: T) => Promise<unknown>,
    stop?: (s: T) => Promise<unknown>
  ): Promise<T> {
    await start?.(service)
    if (stop !== undefined) this.push(name, async () => stop(service))
    return service
  }

  /** Records a started service and how to stop it. */
  private push(name: string, stop: () => Promise<unknown>): void {
    this.stack.push({ name, stop })
    this.events.push({ service: name, event: 'started' })
  }

  /**
   * What this node started and stopped, in order (services without a stop step are left out):
   * a stop runs the started services in exactly the reverse order.
   */
  get lifecycle(): ReadonlyArray<{ service: string; event: 'started' | 'stopped' }> {
    return this.events
  }

  private async doStart(): Promise<void> {
    await this.repo.assertInitialized()
    await this.repo.lock()
    this.push('repo lock', async () => this.repo.unlock())
    try {
      const identity = await Keystore.load(this.repo.keystoreDir, { passphrase: this.passphrase })
      const node = identity.did.slice(-8)
      this.log = logger('shoal:node', { node })
      const log = (component: string): Logger => logger(component, { node })
      const { p2p } = this.config
      const access = new PeerAccessList()
      const own = { addrs: (): ReturnType<ShoalHelia<P2PServices>['libp2p']['getMultiaddrs']> => [] }
      const dhtSwarm = p2p.dht ? await NodeSwarm.saved(this.repo) : undefined
      const dhtStats: DhtGuardStats = { refusedInbound: 0, refusedTopology: 0, refusedOutbound: 0 }
      const helia = await this.use(
        'helia',
        await createHeliaNode({
          blocksPath: this.repo.blocksDir,
          datastorePath: this.repo.datastoreDir,
          libp2p: libp2pOptions({
            privateKey: identity.libp2pPrivateKey,
            listen: p2p.listen,
            announce: p2p.announce,
            bootstrap: p2p.bootstrap,
            mdns: p2p.mdns,
            connectionGater: addressGater(access.gater, () => own.addrs(), {
              allowPrivate: p2p.allowPrivateAddresses
            }),
            relay: { ...p2p.relay, unlimited: true },
            natTraversal: p2p.natTraversal,
            upnp: p2p.upnp,
            ...(dhtSwarm !== undefined
              ? {
                  dhtProtocol: `/shoal/1/${dhtSwarm.id}/kad/1.0.0`,
                  // A private swarm's DHT talks to verified members only (src/p2p/dht.ts).
                  ...(dhtSwarm.private ? { dhtAdmits: async (peer) => access.admits(peer), dhtStats } : {})
                }
              : {})
          })
        }),
        undefined,
        async (h) => h.stop()
      )
      own.addrs = () => helia.libp2p.getMultiaddrs()
      const swarm = await this.use(
        'swarm',
        new NodeSwarm({
          repo: this.repo,
          identity,
          helia,
          access,
          passphrase: this.passphrase,
          exchange: { allowPrivate: p2p.allowPrivateAddresses },
          ...(dhtSwarm?.private === true ? { dht: dhtStats } : {}),
          log: log('shoal:node:swarm'),
          logger: log
        }),
        async (s) => s.start(),
        async (s) => s.stop()
      )
      const store = await this.use(
        'content store',
        new ContentStore(
          { helia, identity, log: log('shoal:storage') },
          { chunkSize: this.config.storage.chunkSize }
        ),
        async (s) => s.start(),
        async (s) => s.stop()
      )
      const db = await this.use(
        'node db',
        new NodeDb(join(this.repo.ledgerDir, 'node')),
        async (d) => d.start(),
        async (d) => d.stop()
      )
      const datasets = await this.use(
        'datasets',
        new NodeDatasets({
          store,
          identity,
          db,
          swarm,
          grantsPath: join(this.repo.ledgerDir, 'grants'),
          log: log('shoal:node:datasets'),
          logger: log
        }),
        async (d) => d.start(),
        async (d) => d.stop()
      )
      // Governance of the swarm (docs/governance.md): documents, tallies, effects; synced with the members.
      const governance = await this.use(
        'governance',
        new NodeGovernance({
          identity,
          swarm,
          path: join(this.repo.ledgerDir, 'governance'),
          documents: store,
          addresses: () => helia.libp2p.services.netinfo.advertised(),
          log: log('shoal:node:governance')
        }),
        async (g) => g.start(),
        async (g) => g.stop()
      )
      await this.use(
        'governance sync',
        governance.syncSource(),
        async (source) => swarm.addSync('governance', source, { protocol: GOVERNANCE_SYNC_PROTOCOL }),
        async () => swarm.removeSync('governance')
      )
      // Fetches of peer models and granted shards over the network are timed (docs/metrics.md).
      const fetches = new FetchMeter({ blocks: helia.blockstore })
      const models = new MeteredWeightStore({ content: store, reach: swarm.reach, meter: fetches })
      // In a governed swarm a job runs only once a proposal for it passed.
      const catalog = new GovernedJobCatalog(
        {
          identity,
          db,
          models,
          gossip: swarm.gossip,
          log: log('shoal:node:jobs')
        },
        governance
      )
      const privacy = new NodePrivacy({
        db,
        job: async (id) => catalog.spec(id),
        log: log('shoal:node:privacy')
      })
      const prepared = new PreparedShards()
      const reexecutor = await this.use(
        're-executor',
        jobReexecutor({
          spec: async (id) => catalog.spec(id),
          models,
          readShard: meteredShardRead(fetches, async (cid: string, job: string, signal?: AbortSignal) =>
            datasets.readAny(cid, job, signal)
          ),
          prep: imageJobData,
          cache: prepared
        }),
        undefined,
        async (r) => r.close()
      )
      const audit = await this.use(
        'audit',
        new NodeAudit(
          {
            db,
            identity,
            grants: datasets.grants,
            reexec: reexecutor,
            canRead: async (shard, job) => datasets.canRead(shard, job),
            swarm,
            log: log('shoal:node:audit')
          },
          {
            // A governed swarm's policy sets the fraction for every member; else this node's config.
            fraction: () => governance.state().policy.reexecFraction ?? this.config.receipts.reexecFraction,
            queue: this.config.receipts.auditQueue
          }
        ),
        async (a) => a.start(),
        async (a) => a.stop()
      )
      const receipts = await this.use(
        'receipts',
        new NodeReceipts({
          db,
          swarm,
          grants: datasets.grants,
          identity,
          audit,
          documents: store,
          unverifiable: async (job) => (await catalog.spec(job))?.unverifiable,
          // A member removed by the swarm's governance earns nothing for what it signs afterwards.
          refuse: (issuer, iat) =>
            (governance.removedAt(issuer) ?? Infinity) <= iat ? 'removed' : undefined,
          log: log('shoal:node:receipts')
        }),
        async (r) => r.start(),
        async (r) => r.stop()
      )
      // Receipts missed by gossip arrive by anti-entropy with the members (src/p2p/sync.ts);
      // stopped before the receipts and the db it writes to.
      await this.use(
        'receipt sync',
        receipts.syncSource(),
        async (source) => swarm.addSync('receipts', source, { protocol: RECEIPT_SYNC_PROTOCOL }),
        async () => swarm.removeSync('receipts')
      )
      governance.setCredits(async () => (await receipts.ledger()).balances)
      const rewards = new NodeRewards({
        receipts,
        grants: datasets.grants,
        policy: () => (governance.state().constitution === null ? undefined : governance.state().policy),
        identity,
        swarmId: () => swarm.swarm?.id
      })
      const jobs = await this.use(
        'jobs',
        new NodeJobs({
          did: identity.did,
          db,
          store,
          swarm: {
            gossip: swarm.gossip,
            swarmId: () => swarm.swarm?.id,
            noteAnnouncer: (cid, did) => swarm.noteAnnouncer(cid, did),
            onEnter: (listener) => swarm.onEnter(listener)
          },
          datasets: {
            grants: datasets.grants,
            readShard: meteredShardRead(fetches, async (cid: string, job: string) =>
              datasets.readShard(cid, job)
            ),
            onGrantEnded: (listener) => datasets.onGrantEnded(listener)
          },
          catalog,
          models,
          receipts,
          privacy,
          exclusions: audit,
          prepared,
          prep: imageJobData,
          training: this.config.training,
          jobsDir: join(this.repo.ledgerDir, 'jobs'),
          lab: labFromEnv(process.env, this.config.p2p),
          log: log('shoal:node:jobs'),
          trainerLog: log('shoal:training:swarm')
        }),
        async (j) => j.start(),
        async (j) => j.stop()
      )
      // Jobs missed by gossip (the announcement went out before this node was in the mesh) arrive
      // by anti-entropy with the members (src/node/jobs/sync.ts).
      await this.use(
        'job sync',
        jobs.syncSource(),
        async (source) => swarm.addSync('jobs', source, { protocol: JOB_SYNC_PROTOCOL }),
        async () => swarm.removeSync('jobs')
      )
      governance.onApproved((job) => {
        jobs.join(job).catch((err: unknown) => {
          this.log.info({ job, err: (err as Error).message }, 'approved job not joined here')
        })
      })
      // Live events (docs/events.md), derived from the services' records and listeners.
      const bus = new EventBus({ log: log('shoal:node:events') })
      await this.use(
        'events',
        wireNodeEvents(bus, {
          did: identity.did,
          db,
          datasets,
          peers: {
            events: helia.libp2p,
            didOf: (p) => didFromPeerId(p as Parameters<typeof didFromPeerId>[0])
          },
          jobs,
          privacy,
          log: log('shoal:node:events')
        }),
        undefined,
        async (unwire) => unwire()
      )
      const events = new EventStream(bus, { log: log('shoal:node:events') })
      const metrics = await this.use(
        'metrics',
        new NodeMetrics({
          bus,
          connections: () => ({
            connections: helia.libp2p.getConnections().length,
            peers: helia.libp2p.getPeers().length
          }),
          gossip: () => swarm.gossip.stats(),
          contributions: () => jobs.contributions(),
          events: () => events.stats,
          paused: () => jobs.isPaused,
          fetches,
          sync: () => swarm.info().sync as Record<string, ItemSyncStats> | null
        }),
        undefined,
        async (m) => m.stop()
      )
      const { metrics: scrape } = this.config
      if (scrape.port !== null) {
        // Opt-in: /metrics without the token on its own listener (docs/metrics.md).
        await this.use(
          'metrics listener',
          new MetricsListener(metrics, {
            host: scrape.host,
            port: scrape.port,
            log: log('shoal:node:metrics')
          }),
          async (l) => l.start(),
          async (l) => l.stop()
        )
      }
      const dashboard = new DashboardGate({
        assets: dashboardAssets(),
        readable: [EVENTS_PATH, METRICS_PATH],
        log: log('shoal:node:dashboard')
      })
      const token = await this.repo.writeCookie()
      const methods: RpcMethod[] = [
        ...nodeMethods({
          identity,
          version: VERSION,
          home: this.repo.home,
          libp2p: helia.libp2p,
          store,
          startedAt: () => this._startedAt
        }),
        ...storageMethods(store),
        ...p2pMethods(helia, swarm),
        ...trainingMethods({
          store,
          db,
          config: this.config,
          lineage: async (job) => jobs.lineage(job),
          readDataset: async (dataset, signal) => datasets.readOwned(dataset, signal),
          grantStatus: async (grant) => {
            const g = await datasets.grants.find(grant)
            return g === undefined ? 'unknown' : grantStatus(g)
          }
        }),
        ...datasetMethods(datasets, privacy),
        ...jobMethods(jobs, store, db, { unverifiable: this.config.receipts.unverifiable }),
        ...dutyCycleMethods(jobs),
        ...receiptMethods(receipts),
        ...governanceMethods(governance, rewards),
        ...dashboardMethods(dashboard)
      ]
      const streams: Record<string, StreamHandler> = {
        ...storageStreams(store),
        [EVENTS_PATH]: async (req, res, url, signal) => events.handle(req, res, url, signal),
        [METRICS_PATH]: async (req, res) => metrics.handle(req, res)
      }
      const rpc = await this.use(
        'rpc',
        new RpcServer(
          {
            methods,
            streams,
            gate: dashboard,
            onCall: (m, ms, ok) => metrics.rpcCall(m, ms, ok),
            discoverExtra: {
              'x-shoal-events': {
                path: EVENTS_PATH,
                protocol: 'text/event-stream (Server-Sent Events)',
                query: { topics: 'comma-separated topics or prefixes (round, grant, …); none or * for all' },
                topics: NODE_EVENT_TOPICS,
                docs: 'docs/events.md'
              },
              'x-shoal-metrics': { path: METRICS_PATH, format: 'Prometheus text', docs: 'docs/metrics.md' }
            }
          },
          {
            host: this.config.rpc.host,
            port: this.config.rpc.port,
            token,
            maxBodyBytes: this.config.rpc.maxBodyBytes,
            info: { title: 'Shoal node JSON-RPC', version: VERSION }
          }
        ),
        async (r) => r.start(),
        async (r) => r.stop()
      )
      dashboard.bind(rpc.url())
      await this.repo.writeApi(rpc.url().href)
      this.push('api file', async () => this.repo.removeApi())
      this.parts = { identity, helia, store, swarm, rpc }
      this._startedAt = Date.now()
      this.log.info({ did: identity.did, rpc: rpc.url().href }, 'node started')
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  /**
   * Stops what was started, in exactly the reverse order (the api file and the RPC server
   * first: no new work; the repo lock last). Safe to call more than once and after a failed
   * start; a service that fails to stop is logged and the rest still stop.
   */
  async stop(): Promise<void> {
    const stack = this.stack
    this.stack = []
    this.parts = undefined
    this.starting = undefined
    for (const { name, stop } of stack.reverse()) {
      await stop().catch((err: unknown) =>
        this.log.error({ service: name, err: (err as Error).message }, 'stop failed')
      )
      this.events.push({ service: name, event: 'stopped' })
    }
    if (stack.length > 0) this.log.info('node stopped')
  }
}
