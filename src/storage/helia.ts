/**
 * Builds the node's Helia 7 instance with full control over its parts: `createHeliaLight`
 * (no HTTP gateways, no delegated routing), `withLibp2pLight` with the caller's libp2p options
 * used as they are (no defaults merged in: Helia's `config: 'merge'` drops nested keys such as
 * `services.pubsub`), and bitswap. Blocks live in blockstore-fs, pins and libp2p's peer store in
 * datastore-level, so both survive restarts.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { withBitswap, type BitswapOptions } from '@helia/bitswap'
import { withLibp2pLight, type HeliaWithLibp2p } from '@helia/libp2p'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import { FsBlockstore } from 'blockstore-fs'
import { NextToLast } from 'blockstore-fs/sharding'
import { LevelDatastore } from 'datastore-level'
import { createHeliaLight } from 'helia'
import type { Libp2pOptions } from 'libp2p'
import type { AbortOptions, ServiceMap } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { logger } from '../common/index.js'

const log = logger('shoal:storage')

/**
 * blockstore-fs, reading a block with one `readFile` instead of a 64 KiB read stream (sixteen
 * reads and a concatenation per 1 MiB block). Same on-disk layout (NextToLast sharding).
 */
class ShoalFsBlockstore extends FsBlockstore {
  private readonly sharding: NextToLast

  constructor(location: string) {
    const sharding = new NextToLast()
    super(location, { shardingStrategy: sharding })
    this.sharding = sharding
  }

  override async *get(key: CID, options?: AbortOptions): AsyncGenerator<Uint8Array> {
    const { dir, file } = this.sharding.encode(key)
    let bytes: Uint8Array
    try {
      bytes = await readFile(join(this.path, dir, file), { signal: options?.signal })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      // Helia and its pins match on this name.
      const notFound = new Error(`block ${key.toString()} not found`, { cause: err })
      notFound.name = 'NotFoundError'
      throw notFound
    }
    yield bytes
  }
}

/** Options of {@link createHeliaNode}. */
export interface HeliaNodeInit<S extends ServiceMap = ServiceMap> {
  /** Directory of the blockstore (one file per block). Created if missing. */
  blocksPath: string
  /** Directory of the level datastore (pins, libp2p peer store and keychain). Created if missing. */
  datastorePath: string
  /**
   * libp2p options, passed to `createLibp2p` unchanged (Helia fills in only `datastore`,
   * `nodeInfo` and, when absent, a `privateKey` kept in the datastore's keychain).
   */
  libp2p: Libp2pOptions<S>
  /** Options of the bitswap block broker. */
  bitswap?: BitswapOptions
  /** Start the node before returning (default true). */
  start?: boolean
}

/** A Helia node with libp2p: the type {@link createHeliaNode} returns. */
export type ShoalHelia<S extends ServiceMap = ServiceMap> = HeliaWithLibp2p<S>

/**
 * Create (and by default start) a Helia node backed by blockstore-fs and datastore-level.
 * `stop()` also closes both stores (releasing the level lock), so another node can be created
 * from the same paths afterwards; `start()` after `stop()` reopens them.
 *
 * @example
 * ```ts
 * const helia = await createHeliaNode({
 *   blocksPath: join(home, 'blocks'),
 *   datastorePath: join(home, 'datastore'),
 *   libp2p: { addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], … }
 * })
 * ```
 */
export async function createHeliaNode<S extends ServiceMap = ServiceMap>(
  init: HeliaNodeInit<S>
): Promise<ShoalHelia<S>> {
  await mkdir(init.blocksPath, { recursive: true })
  await mkdir(init.datastorePath, { recursive: true })
  const blockstore = new ShoalFsBlockstore(init.blocksPath)
  const datastore = new LevelDatastore(init.datastorePath)
  await blockstore.open()
  await datastore.open()
  let open = true

  const light = createHeliaLight({
    blockstore,
    datastore,
    // dag-pb and raw are built in; envelopes are dag-cbor and pins must walk their links.
    codecs: [dagCbor, dagJson]
  })
  // A shallow copy: Helia writes datastore, nodeInfo and privateKey into the options it gets.
  const helia = withBitswap(withLibp2pLight(light, { ...init.libp2p }), init.bitswap)

  // Helia starts and stops its wrapped stores itself, but never opens or closes them: a level
  // database keeps its lock until closed. Wrap start/stop to do that, and make both idempotent.
  const heliaStart = helia.start.bind(helia)
  const heliaStop = helia.stop.bind(helia)
  helia.start = async function start(options) {
    if (helia.status === 'started' || helia.status === 'starting') return helia
    if (!open) {
      await blockstore.open()
      await datastore.open()
      open = true
    }
    await heliaStart(options)
    log.info({ peerId: helia.libp2p.peerId.toString(), blocksPath: init.blocksPath }, 'helia started')
    return helia
  }
  helia.stop = async function stop(options) {
    if (helia.status === 'stopped' || helia.status === 'stopping') {
      if (!open) return helia
    } else {
      await heliaStop(options)
    }
    if (open) {
      await datastore.close()
      await blockstore.close()
      open = false
    }
    log.info({ blocksPath: init.blocksPath }, 'helia stopped')
    return helia
  }

  if (init.start !== false) {
    try {
      await helia.start()
    } catch (err) {
      await helia.stop().catch(() => {})
      throw err
    }
  }
  return helia
}
