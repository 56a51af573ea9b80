/**
 * The node's own records (checkpoints, jobs, receipts, …) in a level database under
 * `$SHOAL_HOME/ledger/node`: keys `<kind>!<key>`, values as JSON. The kinds and their shapes
 * are listed in `records.ts` ({@link NodeRecords}).
 */
import { Level } from 'level'
import type { NodeRecords, RecordKind } from './records.js'

export type { NodeRecords, RecordKind } from './records.js'
export { exportOptionsOf, type CheckpointRecord } from './records.js'

/** Told of each written record (see {@link NodeDb.onPut}). */
export type PutListener = <K extends RecordKind>(kind: K, key: string, value: NodeRecords[K]) => void

export class NodeDb {
  private readonly db: Level<string, string>
  private readonly putListeners = new Set<PutListener>()

  constructor(path: string) {
    this.db = new Level<string, string>(path, { valueEncoding: 'utf8' })
  }

  async start(): Promise<void> {
    await this.db.open()
  }

  async stop(): Promise<void> {
    await this.db.close()
  }

  async put<K extends RecordKind>(kind: K, key: string, value: NodeRecords[K]): Promise<void> {
    await this.db.put(`${kind}!${key}`, JSON.stringify(value))
    for (const l of this.putListeners) l(kind, key, value)
  }

  /**
   * Writes several records at once: all of them or none (one level batch), so that records that
   * must agree (a receipt and its chain's head) never diverge when a write fails half-way (a
   * full disk). Listeners are told after the batch is written, in order.
   */
  async putAll(
    entries: ReadonlyArray<{ [K in RecordKind]: { kind: K; key: string; value: NodeRecords[K] } }[RecordKind]>
  ): Promise<void> {
    await this.db.batch(
      entries.map((e) => ({
        type: 'put' as const,
        key: `${e.kind}!${e.key}`,
        value: JSON.stringify(e.value)
      }))
    )
    for (const e of entries) for (const l of this.putListeners) l(e.kind, e.key, e.value)
  }

  /**
   * Calls `listener` after each record is written (the node's event bus derives its events from
   * them); returns the unsubscribe function. A listener must not throw nor block.
   */
  onPut(listener: PutListener): () => void {
    this.putListeners.add(listener)
    return () => {
      this.putListeners.delete(listener)
    }
  }

  async get<K extends RecordKind>(kind: K, key: string): Promise<NodeRecords[K] | undefined> {
    const v = await this.db.get(`${kind}!${key}`)
    return v === undefined ? undefined : (JSON.parse(v) as NodeRecords[K])
  }

  async del(kind: RecordKind, key: string): Promise<void> {
    await this.db.del(`${kind}!${key}`)
  }

  async list<K extends RecordKind>(kind: K): Promise<Array<NodeRecords[K]>> {
    const out: Array<NodeRecords[K]> = []
    // '"' sorts right after '!', so this range holds exactly the keys of `kind`.
    for await (const v of this.db.values({ gt: `${kind}!`, lt: `${kind}"` }))
      out.push(JSON.parse(v) as NodeRecords[K])
    return out
  }
}
