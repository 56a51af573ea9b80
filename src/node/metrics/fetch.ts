/**
 * Fetch latency over the network: how long this node waits for a peer's model (reaching its
 * announcer, then bitswap) or for a granted shard (its ciphertext fetched, then decrypted), by
 * kind and outcome, and the bytes that came. A read whose root block is already in this node's
 * blockstore is local (its own checkpoints, a shard read before) and is not observed.
 */
import { CID } from 'multiformats/cid'
import { Counter, Histogram } from 'prom-client'
import type { Dataset } from '../../storage/index.js'
import { ContentWeightStore, type ContentWeightStoreInit } from '../../training/index.js'

/** What was fetched: a peer's model, or a shard of a dataset this node holds a grant to. */
export type FetchKind = 'model' | 'shard'
/**
 * How a fetch ended: `timeout` when its deadline passed (the round's fetch deadline, or a
 * `TIMEOUT` error), `aborted` when its caller gave up for another reason (a halted round).
 */
export type FetchOutcome = 'ok' | 'timeout' | 'error' | 'aborted'

/** Buckets of the fetch latency histogram (seconds): a 1 MB model on loopback … a stalled fetch. */
export const FETCH_LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

/** What a {@link FetchMeter} needs. */
export interface FetchMeterComponents {
  /** The node's blockstore: a CID whose root block it holds is read locally, not fetched. */
  blocks?: { has(cid: CID): boolean | Promise<boolean> }
}

function outcomeOf(err: unknown, signal: AbortSignal | undefined): FetchOutcome {
  if (signal?.aborted === true) {
    const reason: unknown = signal.reason
    return (reason as { name?: unknown } | undefined)?.name === 'TimeoutError' ? 'timeout' : 'aborted'
  }
  const e = err as { name?: unknown; code?: unknown } | undefined
  if (e?.name === 'TimeoutError' || e?.code === 'TIMEOUT') return 'timeout'
  if (e?.name === 'AbortError') return 'aborted'
  return 'error'
}

/** Bytes of a decoded shard (features and labels). */
export function datasetBytes(d: Pick<Dataset, 'features' | 'labels'>): number {
  return d.features.byteLength + d.labels.byteLength
}

/**
 * Times fetches into `shoal_fetch_duration_seconds{kind, outcome}` and counts their bytes in
 * `shoal_fetch_bytes_total{kind}`. The metrics are registered by {@link NodeMetrics} (source
 * `fetches`), so the meter can be built before the metrics, beside the stores it wraps.
 */
export class FetchMeter {
  readonly duration: Histogram<'kind' | 'outcome'>
  readonly bytes: Counter<'kind'>
  private readonly blocks: FetchMeterComponents['blocks']

  constructor(components: FetchMeterComponents = {}) {
    this.blocks = components.blocks
    this.duration = new Histogram({
      name: 'shoal_fetch_duration_seconds',
      help: 'Fetches over the network (model: a peer model; shard: a granted shard, decrypted) by outcome',
      labelNames: ['kind', 'outcome'],
      buckets: FETCH_LATENCY_BUCKETS,
      registers: []
    })
    this.bytes = new Counter({
      name: 'shoal_fetch_bytes_total',
      help: 'Bytes fetched over the network, by kind (model | shard: decrypted size)',
      labelNames: ['kind'],
      registers: []
    })
  }

  /** Records one fetch. */
  observe(kind: FetchKind, outcome: FetchOutcome, seconds: number, bytes = 0): void {
    this.duration.observe({ kind, outcome }, seconds)
    if (bytes > 0) this.bytes.inc({ kind }, bytes)
  }

  /**
   * Runs `read` of `cid` and observes it, unless the root block of `cid` is local. `size`
   * gives the bytes of what it returned; `signal` is the caller's (its reason tells a
   * deadline from a cancellation).
   */
  async time<T>(
    kind: FetchKind,
    cid: string,
    read: () => Promise<T>,
    opts: { size?: (value: T) => number; signal?: AbortSignal | undefined } = {}
  ): Promise<T> {
    if (await this.isLocal(cid)) return read()
    const started = performance.now()
    const seconds = (): number => (performance.now() - started) / 1000
    try {
      const value = await read()
      this.observe(kind, 'ok', seconds(), opts.size?.(value) ?? 0)
      return value
    } catch (err) {
      this.observe(kind, outcomeOf(err, opts.signal), seconds())
      throw err
    }
  }

  private async isLocal(cid: string): Promise<boolean> {
    if (this.blocks === undefined) return false
    try {
      return await this.blocks.has(CID.parse(cid))
    } catch {
      return false // not a CID: the read itself reports it
    }
  }
}

/** A {@link ContentWeightStore} whose reads of models from peers are timed by a {@link FetchMeter}. */
export class MeteredWeightStore extends ContentWeightStore {
  private readonly meter: FetchMeter

  constructor(
    components: ConstructorParameters<typeof ContentWeightStore>[0] & { meter: FetchMeter },
    init: ContentWeightStoreInit = {}
  ) {
    super(components, init)
    this.meter = components.meter
  }

  override async get(cid: string, signal?: AbortSignal): Promise<Uint8Array> {
    return this.meter.time('model', cid, async () => super.get(cid, signal), {
      size: (b) => b.byteLength,
      signal
    })
  }
}

/** `read(shard, …)` timed as a `shard` fetch (the re-executor's and the trainers' shard reads). */
export function meteredShardRead<A extends unknown[]>(
  meter: FetchMeter,
  read: (shard: string, ...rest: A) => Promise<Dataset>
): (shard: string, ...rest: A) => Promise<Dataset> {
  return async (shard, ...rest) =>
    meter.time('shard', shard, async () => read(shard, ...rest), {
      size: datasetBytes,
      signal: rest.find((x): x is AbortSignal => x instanceof AbortSignal)
    })
}
