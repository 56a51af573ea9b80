/**
 * Every kind of record the node keeps in its level database (`$SHOAL_HOME/ledger/node`), with
 * its shape and the one service that writes it. `NodeDb` is typed by {@link NodeRecords}: a
 * kind that is not listed here, or a value of the wrong shape, does not compile.
 */
import { IMAGE_NORMALIZATION, type ExportOptions } from '../training/index.js'

/** A model this node holds: trained locally, by a job, or imported. Writers: jobs runner, training methods. */
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

/** The newest checkpoint of a job on this node (key = job id). Writers: jobs runner, unlearning. */
export interface LatestRecord {
  cid: string
  round?: number
  accuracy?: number
}

/** A dataset this node imported and owns (key = manifest CID). Writer: NodeDatasets. */
export interface DatasetRecord {
  manifestCid: string
  name: string
  owner: string
  count: number
  shards: Array<{ cid: string; count: number; labelCounts: number[] }>
  split: string
  createdAt: string
}

/** A job this node knows: created here or announced on the jobs topic (key = job id). Writer: JobCatalog. */
export interface JobRecord {
  id: string
  jwt: string
  name: string
  creator: string
  dataset: string
  createdAt: string
}

/** A job this node has joined (resumed after a restart) or left (not re-joined on announcement). Writer: jobs runner. */
export interface JobMark {
  id: string
}

/** A receipt, this node's or a peer's (key = `receiptHash`). Writer: NodeReceipts. */
export interface ReceiptRecord {
  hash: string
  jwt: string
  job: string
  round: number
  issuer: string
  /** CID of the receipt's pinned dag-json document (`receiptDocument`), when pinned. */
  doc?: string
}

/** The head of this node's receipt chain (key = its DID). Writer: NodeReceipts. */
export interface ReceiptHead {
  jwt: string
  hash: string
}

/** An accepted fraud proof (key = sha-256 of the proof JWT). Writer: NodeAudit. */
export interface FraudProofRecord {
  hash: string
  proof: string
  offender: string
  verifier: string
  /** The convicted receipt's hash. */
  receipt: string
  job: string
  round: number
  /** `reexecution`: re-run here; `attested`: signed by the owner of the data; `issued`: found here. */
  checked: 'reexecution' | 'attested' | 'issued'
  at: string
}

/** One re-execution this node ran (key = receipt hash). Writer: NodeAudit. */
export interface AuditRecord {
  receipt: string
  issuer: string
  job: string
  round: number
  outcome: 'match' | 'mismatch' | 'error'
  /** `exact` (by hash) or `tolerance` (a non-bit-exact round compared within its provider's bound). */
  mode?: 'exact' | 'tolerance'
  /** For a tolerance check: the claimed update against the re-run's. */
  comparison?: { relDistance: number; cosine: number; updateNorm: number; claimedNorm: number }
  detail?: string
  ms: number
  at: string
}

/** A DID caught training on data whose grant had ended (key = DID). Writer: NodeAudit. */
export interface LineageOffenseRecord {
  did: string
  receipt: string
  reason: string
  grant?: string
  at: string
}

/** One unlearning: a grant ended, the job rolled back before its first influence and retrained without it. */
export interface UnlearningEvent {
  grant: string
  how: 'revoked' | 'expired'
  /** The first round whose receipts name the grant (its first influence). */
  fromRound: number
  /** The round of the checkpoint rolled back to; null: back to the initial weights. */
  rolledBackTo: number | null
  /** This node's checkpoints dropped (influenced by the grant). */
  checkpointsDropped: number
  /** `retraining`/`done`: this node retrains; `no-data`: its only data was revoked; `not-training`: it does not train this job. */
  retrain: 'retraining' | 'done' | 'no-data' | 'not-training'
  startedAt: string
  finishedAt?: string
  /** From the end of the grant to the end of retraining on this node (ms). */
  ms?: number
}

/** A job's unlearned grants and unlearning events (key = job id). Writer: JobUnlearning. */
export interface ExclusionRecord {
  job: string
  /** Unlearned grants, sorted. */
  grants: string[]
  events: UnlearningEvent[]
}

/** Every record kind and its shape. */
export interface NodeRecords {
  checkpoints: CheckpointRecord
  latest: LatestRecord
  datasets: DatasetRecord
  jobs: JobRecord
  joined: JobMark
  left: JobMark
  receipts: ReceiptRecord
  'receipt-head': ReceiptHead
  'fraud-proofs': FraudProofRecord
  audits: AuditRecord
  'lineage-offenses': LineageOffenseRecord
  'job-exclusions': ExclusionRecord
}

export type RecordKind = keyof NodeRecords
