/**
 * The node's own records (checkpoints, jobs, receipts) in a level database under
 * `$SHOAL_HOME/ledger/node`: keys `<kind>!<key>`, values as JSON.
 */
import { Level } from 'level'
import { IMAGE_NORMALIZATION, type ExportOptions } from '../training/index.js'

export interface CheckpointRecord {
  cid: string
  /** The model spec, so the checkpoint can be exported or resumed on its own. */
  spec: unknown
  source: 'local' | 'job' | 'import'
  job?: string
  round?: number
  epoch?: number
  accuracy?: number
  loss?: number
  lineage: string[]
  /** Job checkpoints: the newest peer-model round aggregated into it (its influence reaches that far). */
  maxInputRound?: number
  /** Job checkpoints: the grants whose data its lineage excludes (unlearned). */
  excluded?: string[]
  /** Imported models: the consent status of the data that trained them, as exported. */
  consent?: Array<{
    grant: string
    dataset: string | null
    owner: string | null
    status: string
    unlearned: boolean
  }>
  /**
   * The standardisation of the model's inputs (exports put it into the graph). Absent: the
   * image standardisation every Shoal image model is trained with; null: none (an imported
   * model whose contract says so).
   */
  normalization?: { mean: number; std: number } | null
  createdAt: string
}

/** How to export a checkpoint so that it takes raw inputs (see {@link CheckpointRecord.normalization}). */
export function exportOptionsOf(rec: Pick<CheckpointRecord, 'normalization'>): ExportOptions {
  if (rec.normalization === null) return {}
  const n = rec.normalization ?? IMAGE_NORMALIZATION
  return { normalization: { mean: n.mean, std: n.std } }
}

export class NodeDb {
  private readonly db: Level<string, string>

  constructor(path: string) {
    this.db = new Level<string, string>(path, { valueEncoding: 'utf8' })
  }

  async start(): Promise<void> {
    await this.db.open()
  }

  async stop(): Promise<void> {
    await this.db.close()
  }

  async put<T>(kind: string, key: string, value: T): Promise<void> {
    await this.db.put(`${kind}!${key}`, JSON.stringify(value))
  }

  async get<T>(kind: string, key: string): Promise<T | undefined> {
    const v = await this.db.get(`${kind}!${key}`)
    return v === undefined ? undefined : (JSON.parse(v) as T)
  }

  async del(kind: string, key: string): Promise<void> {
    await this.db.del(`${kind}!${key}`)
  }

  async list<T>(kind: string): Promise<T[]> {
    const out: T[] = []
    // '"' sorts right after '!', so this range holds exactly the keys of `kind`.
    for await (const v of this.db.values({ gt: `${kind}!`, lt: `${kind}"` })) out.push(JSON.parse(v) as T)
    return out
  }
}
