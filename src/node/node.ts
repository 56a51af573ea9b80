/**
 * The composition root (as Lodestar's BeaconNode.init): the only place that builds concrete
 * objects and wires them. Starts in order (repo lock → identity → Helia/libp2p → storage →
 * RPC → api file) and stops in reverse.
 */
import { logger } from '../common/index.js'
import { Keystore, type Identity } from '../identity/index.js'
import { ContentStore, createHeliaNode, type ShoalHelia } from '../storage/index.js'
import { grantStatus } from '../storage/grants/index.js'
import { PeerAccessList, addressGater, libp2pOptions, type P2PServices } from '../p2p/index.js'
import type { ShoalConfig } from './config/index.js'
import { Repo } from './repo/index.js'
import { RpcServer, type RpcMethod, type StreamHandler } from './rpc/index.js'
import { nodeMethods } from './methods/node.js'
import { storageMethods, storageStreams } from './methods/storage.js'
import { p2pMethods } from './methods/p2p.js'
import { NodeSwarm } from './swarm.js'
import { NodeDb } from './db.js'
import { trainingMethods } from './methods/training.js'
import { datasetMethods } from './methods/datasets.js'
import { NodeDatasets } from './datasets.js'
import { NodeJobs } from './jobs.js'
import { jobMethods } from './methods/jobs.js'
import { NodeReceipts } from './receipts.js'
import { NodeAudit } from './audit.js'
import { NodePrivacy } from './privacy.js'
import { receiptMethods } from './methods/receipts.js'
import { join } from 'node:path'
import { VERSION } from './constants.js'

const log = logger('shoal:node')

export interface ShoalNodeInit {
  home: string
  config: ShoalConfig
  passphrase?: string
}

export class ShoalNode {
  readonly repo: Repo
  readonly config: ShoalConfig
  readonly version = VERSION
  private readonly passphrase: string | undefined
  private _identity?: Identity
  private _helia?: ShoalHelia<P2PServices>
  private _store?: ContentStore
  private _rpc?: RpcServer
  private _swarm?: NodeSwarm
  private _db?: NodeDb
  private _datasets?: NodeDatasets
  private _jobs?: NodeJobs
  private _receipts?: NodeReceipts
  private _audit?: NodeAudit
  private _privacy?: NodePrivacy
  private _startedAt = 0
  private starting?: Promise<void>

  constructor(init: ShoalNodeInit) {
    this.repo = new Repo(init.home)
    this.config = init.config
    this.passphrase = init.passphrase
  }

  get identity(): Identity {
    if (this._identity === undefined) throw new Error('node not started')
    return this._identity
  }

  get helia(): ShoalHelia<P2PServices> {
    if (this._helia === undefined) throw new Error('node not started')
    return this._helia
  }

  get store(): ContentStore {
    if (this._store === undefined) throw new Error('node not started')
    return this._store
  }

  get swarm(): NodeSwarm {
    if (this._swarm === undefined) throw new Error('node not started')
    return this._swarm
  }

  get rpcUrl(): URL {
    if (this._rpc === undefined) throw new Error('node not started')
    return this._rpc.url()
  }

  get startedAt(): number {
    return this._startedAt
  }

  async start(): Promise<void> {
    this.starting ??= this.doStart()
    return this.starting
  }

  private async doStart(): Promise<void> {
    await this.repo.assertInitialized()
    await this.repo.lock()
    try {
      this._identity = await Keystore.load(this.repo.keystoreDir, { passphrase: this.passphrase })
      const { p2p } = this.config
      const access = new PeerAccessList()
      const own = { addrs: (): ReturnType<ShoalHelia<P2PServices>['libp2p']['getMultiaddrs']> => [] }
      const dhtSwarm = p2p.dht ? await NodeSwarm.savedId(this.repo) : undefined
      this._helia = await createHeliaNode({
        blocksPath: this.repo.blocksDir,
        datastorePath: this.repo.datastoreDir,
        libp2p: libp2pOptions({
          privateKey: this._identity.libp2pPrivateKey,
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
          ...(dhtSwarm !== undefined ? { dhtProtocol: `/shoal/1/${dhtSwarm}/kad/1.0.0` } : {})
        })
      })
      const libp2p = this._helia.libp2p
      own.addrs = () => libp2p.getMultiaddrs()
      this._swarm = new NodeSwarm({
        repo: this.repo,
        identity: this._identity,
        helia: this._helia,
        access,
        passphrase: this.passphrase,
        exchange: { allowPrivate: p2p.allowPrivateAddresses }
      })
      await this._swarm.start()
      this._store = new ContentStore(
        { helia: this._helia, identity: this._identity },
        { chunkSize: this.config.storage.chunkSize }
      )
      await this._store.start()
      this._db = new NodeDb(join(this.repo.ledgerDir, 'node'))
      await this._db.start()
      this._datasets = new NodeDatasets({
        store: this._store,
        identity: this._identity,
        db: this._db,
        swarm: this._swarm,
        grantsPath: join(this.repo.ledgerDir, 'grants')
      })
      await this._datasets.start()
      const datasets = this._datasets
      // The audit re-runs rounds with the jobs service's re-executor and gossips fraud proofs
      // through the receipts service: both exist before the audit does any work (start()).
      const late: { jobs?: NodeJobs; receipts?: NodeReceipts } = {}
      this._privacy = new NodePrivacy({ db: this._db, job: async (id) => late.jobs!.spec(id) })
      this._audit = new NodeAudit(
        {
          db: this._db,
          identity: this._identity,
          grants: datasets.grants,
          reexec: { run: async (claims, opts) => late.jobs!.reexecutor.run(claims, opts) },
          canRead: async (shard, job) => datasets.canRead(shard, job),
          publish: async (proof) => late.receipts?.publishProof(proof)
        },
        { fraction: this.config.receipts.reexecFraction, queue: this.config.receipts.auditQueue }
      )
      late.receipts = this._receipts = new NodeReceipts({
        db: this._db,
        swarm: this._swarm,
        grants: this._datasets.grants,
        identity: this._identity,
        audit: this._audit,
        documents: this._store
      })
      await this._receipts.start()
      late.jobs = this._jobs = new NodeJobs({
        identity: this._identity,
        store: this._store,
        db: this._db,
        swarm: this._swarm,
        datasets: this._datasets,
        config: this.config,
        jobsDir: join(this.repo.ledgerDir, 'jobs'),
        exclusions: this._audit,
        privacy: this._privacy
      })
      await this._jobs.start()
      await this._audit.start()
      const token = await this.repo.writeCookie()
      const methods: RpcMethod[] = [
        ...nodeMethods(this),
        ...storageMethods(this._store),
        ...p2pMethods(this._helia, this._swarm),
        ...trainingMethods({
          store: this._store,
          db: this._db,
          config: this.config,
          lineage: async (job) => late.jobs!.lineage(job),
          readDataset: async (dataset, signal) => datasets.readOwned(dataset, signal),
          grantStatus: async (grant) => {
            const g = await datasets.grants.find(grant)
            return g === undefined ? 'unknown' : grantStatus(g)
          }
        }),
        ...datasetMethods(this._datasets, this._privacy),
        ...jobMethods(this._jobs, this._store, this._db),
        ...receiptMethods(this._receipts)
      ]
      const streams: Record<string, StreamHandler> = { ...storageStreams(this._store) }
      this._rpc = new RpcServer(
        { methods, streams },
        {
          host: this.config.rpc.host,
          port: this.config.rpc.port,
          token,
          maxBodyBytes: this.config.rpc.maxBodyBytes,
          info: { title: 'Shoal node JSON-RPC', version: VERSION }
        }
      )
      const url = await this._rpc.start()
      await this.repo.writeApi(url.href)
      this._startedAt = Date.now()
      log.info({ did: this._identity.did, rpc: url.href }, 'node started')
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  /** Stop in reverse order; safe to call more than once and after a failed start. */
  async stop(): Promise<void> {
    const {
      _rpc: rpc,
      _store: store,
      _jobs: jobs,
      _receipts: receipts,
      _audit: audit,
      _datasets: datasets,
      _swarm: swarm,
      _db: db,
      _helia: helia
    } = this
    this._rpc = undefined
    this._jobs = undefined
    this._receipts = undefined
    this._audit = undefined
    this._privacy = undefined
    this._datasets = undefined
    this._swarm = undefined
    this._db = undefined
    this._helia = undefined
    this._store = undefined
    this.starting = undefined
    // Reverse order of start: RPC first (no new work), then jobs, consent, gossip, the node's
    // records, and Helia (which closes libp2p and flushes the level datastore).
    await rpc?.stop()
    await this.repo.removeApi()
    await audit?.stop()
    await jobs?.stop()
    await receipts?.stop()
    await datasets?.stop()
    await swarm?.stop()
    await db?.stop()
    await store?.stop()
    await helia?.stop()
    await this.repo.unlock()
    log.info('node stopped')
  }
}
