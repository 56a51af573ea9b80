/**
 * In-process implementations of the swarm's components: a hub that carries announcements
 * between the buses of several nodes in one process, a content-addressed weight store and a
 * checkpoint store, all in memory. For tests and simulations; a node uses the gossip and
 * Helia adapters (`adapters.ts`).
 */
import { rawCid } from '../../common/index.js'
import { NotFoundError } from '../../storage/index.js'
import type { UpdateAnnouncement } from './messages.js'
import type { AnnouncementSource, Checkpoint, CheckpointStore, UpdateBus, WeightStore } from './types.js'

/** The CIDv1 (raw, sha2-256) of some bytes, base32: what the memory store names them by. */
export { rawCid }

type Handler = (msg: UpdateAnnouncement, from: AnnouncementSource) => void

/**
 * Announcements between nodes of one process. Each message is delivered asynchronously
 * (like a network would) to every other node's subscribers, as a copy.
 */
export class MemoryHub {
  private readonly subscribers = new Set<{ did: string; handler: Handler }>()
  /** Messages published through the hub, in order. */
  readonly log: Array<{ from: string; msg: UpdateAnnouncement }> = []

  /** The bus of the node with DID `did`. */
  bus(did: string): UpdateBus {
    return {
      publish: async (msg) => this.publish(did, msg),
      subscribe: (handler) => {
        const entry = { did, handler }
        this.subscribers.add(entry)
        return () => {
          this.subscribers.delete(entry)
        }
      }
    }
  }

  /** Deliver `msg` as if `from` had published it (tests use it to play a misbehaving peer). */
  async publish(from: string, msg: UpdateAnnouncement): Promise<void> {
    this.log.push({ from, msg: structuredClone(msg) })
    const targets = [...this.subscribers].filter((s) => s.did !== from)
    await new Promise<void>((resolve) => setImmediate(resolve))
    for (const s of targets) {
      if (!this.subscribers.has(s)) continue
      s.handler(structuredClone(msg), { did: from })
    }
  }
}

/** A content-addressed store in memory (reference-counted `put`/`remove`), shared by several nodes. */
export class MemoryWeightStore implements WeightStore {
  private readonly objects = new Map<string, { bytes: Uint8Array; refs: number }>()

  async put(bytes: Uint8Array, signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted()
    const cid = rawCid(bytes)
    const known = this.objects.get(cid)
    if (known !== undefined) known.refs++
    else this.objects.set(cid, { bytes: bytes.slice(), refs: 1 })
    return cid
  }

  /** @throws {NotFoundError} `NOT_FOUND` for an unknown CID. */
  async get(cid: string, signal?: AbortSignal): Promise<Uint8Array> {
    signal?.throwIfAborted()
    const o = this.objects.get(cid)
    if (o === undefined) throw new NotFoundError(`no object ${cid}`, { cid })
    return o.bytes.slice()
  }

  async remove(cid: string): Promise<void> {
    const o = this.objects.get(cid)
    if (o !== undefined && --o.refs <= 0) this.objects.delete(cid)
  }

  /** Whether the store holds `cid`. */
  has(cid: string): boolean {
    return this.objects.has(cid)
  }

  /** Objects held. */
  get size(): number {
    return this.objects.size
  }
}

/** Checkpoints in memory: the latest per job (it outlives the SwarmTrainer that wrote it). */
export class MemoryCheckpointStore implements CheckpointStore {
  private readonly byJob = new Map<string, Checkpoint>()

  async save(cp: Checkpoint): Promise<void> {
    this.byJob.set(cp.job, { ...cp })
  }

  async latest(job: string): Promise<Checkpoint | undefined> {
    const cp = this.byJob.get(job)
    return cp === undefined ? undefined : { ...cp }
  }
}
