/**
 * The swarm's components over the real stack: announcements on the job's gossip topic
 * (`GossipService`), models as plain (public) UnixFS objects in the node's `ContentStore`
 * (fetched from peers by bitswap), and checkpoints as a small JSON file per job.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { z } from 'zod'
import type { GossipService, PeerReach, TopicSpec } from '../../p2p/index.js'
import { CidSchema } from '../../p2p/index.js'
import type { ContentStore } from '../../storage/index.js'
import { ModelTooLargeError } from './errors.js'
import type { UpdateAnnouncement } from './messages.js'
import type { Checkpoint, CheckpointStore, UpdateBus, WeightStore } from './types.js'

/**
 * The job's updates topic on a `GossipService` (started by its owner). Pass
 * `updatesTopic(swarmId, jobId)`; the service validates every message against its schema.
 */
export function gossipUpdateBus(
  gossip: Pick<GossipService, 'publish' | 'subscribe'>,
  topic: TopicSpec<UpdateAnnouncement>
): UpdateBus {
  return {
    publish: async (msg) => {
      await gossip.publish(topic, msg)
    },
    subscribe: (handler) => gossip.subscribe(topic, (msg, meta) => handler(msg, { did: meta.did }))
  }
}

/** Options of {@link ContentWeightStore}. */
export interface ContentWeightStoreInit {
  /** Largest object `get` reads before giving up (default 256 MiB); see `maxModelBytes`. */
  maxBytes?: number
}

/**
 * Models in a `ContentStore` as plain UnixFS objects (public to whoever knows the CID, as
 * models exchanged in a swarm are), pinned while this node keeps them.
 */
export class ContentWeightStore implements WeightStore {
  private readonly content: Pick<ContentStore, 'add' | 'get' | 'unpin'>
  private readonly reach: Pick<PeerReach, 'prepareFetch' | 'keepReached' | 'provide'> | undefined
  private readonly maxBytes: number

  /** `reach`: connects to a CID's announcer before it is fetched (peers beyond current connections). */
  constructor(
    components: {
      content: Pick<ContentStore, 'add' | 'get' | 'unpin'>
      reach?: Pick<PeerReach, 'prepareFetch' | 'keepReached' | 'provide'>
    },
    init: ContentWeightStoreInit = {}
  ) {
    this.content = components.content
    this.reach = components.reach
    this.maxBytes = init.maxBytes ?? 256 * 1024 * 1024
  }

  async put(bytes: Uint8Array, signal?: AbortSignal): Promise<string> {
    const { cid } = await this.content.add(bytes, {
      plain: true,
      ...(signal !== undefined ? { signal } : {})
    })
    this.reach?.provide(cid.toString())
    return cid.toString()
  }

  /**
   * Fetches `cid` (reaching its announcers first, or its providers) and, once it is here, says
   * that this node provides it too.
   *
   * @throws {ModelTooLargeError} `UPDATE_TOO_LARGE` beyond `maxBytes`.
   * @throws the storage layer's errors (`NOT_FOUND`, …) or the signal's reason.
   */
  async get(cid: string, signal?: AbortSignal): Promise<Uint8Array> {
    await this.reach?.prepareFetch(cid, signal)
    const parts: Uint8Array[] = []
    let total = 0
    // A provider lost mid-fetch (a relay dropping the transfer) is reached again.
    const release = this.reach?.keepReached(cid, signal)
    try {
      for await (const part of this.content.get(CID.parse(cid), signal !== undefined ? { signal } : {})) {
        total += part.byteLength
        if (total > this.maxBytes) {
          throw new ModelTooLargeError(`object ${cid} exceeds ${this.maxBytes} bytes`, {
            cid,
            limit: this.maxBytes
          })
        }
        parts.push(part)
      }
    } finally {
      release?.()
    }
    this.reach?.provide(cid)
    const out = new Uint8Array(total)
    let at = 0
    for (const p of parts) {
      out.set(p, at)
      at += p.byteLength
    }
    return out
  }

  async remove(cid: string): Promise<void> {
    await this.content.unpin(CID.parse(cid))
  }
}

const CheckpointFileSchema = z.object({
  job: z.string().min(1),
  round: z.int().min(0),
  weightsCid: CidSchema,
  momentumCid: CidSchema.optional(),
  accuracy: z.number().optional(),
  loss: z.number().optional()
})

/**
 * The latest checkpoint of each job in `<dir>/<job>.json`, replaced atomically (write to a
 * temporary file, then rename), so a crash never leaves a half-written checkpoint.
 */
export class FileCheckpointStore implements CheckpointStore {
  private readonly dir: string

  constructor(init: { dir: string }) {
    this.dir = init.dir
  }

  private path(job: string): string {
    return join(this.dir, `${encodeURIComponent(job)}.json`)
  }

  async save(cp: Checkpoint): Promise<void> {
    const clean = CheckpointFileSchema.parse(cp)
    await mkdir(this.dir, { recursive: true })
    const file = this.path(cp.job)
    const tmp = `${file}.${process.pid}.tmp`
    await writeFile(tmp, JSON.stringify(clean), { mode: 0o600 })
    await rename(tmp, file)
  }

  /** Rolls the job back: `cp` becomes its latest checkpoint, or it has none when `cp` is undefined. */
  async reset(job: string, cp?: Checkpoint): Promise<void> {
    if (cp !== undefined) return this.save({ ...cp, job })
    await rm(this.path(job), { force: true })
  }

  /** The job's checkpoint, or undefined when there is none (or the file is unreadable: it is ignored). */
  async latest(job: string): Promise<Checkpoint | undefined> {
    let text: string
    try {
      text = await readFile(this.path(job), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    try {
      const parsed = CheckpointFileSchema.safeParse(JSON.parse(text))
      return parsed.success && parsed.data.job === job ? parsed.data : undefined
    } catch {
      return undefined
    }
  }
}
