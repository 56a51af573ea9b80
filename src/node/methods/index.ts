/**
 * The node's JSON-RPC methods, one file per namespace (`node_*`, `storage_*`, `peers_*` and
 * `swarm_*`, `train_*` and `model_*`, `dataset_*`, `job_*`, `node_duty_cycle`, `receipts_*` and `ledger_*`, `governance_*`). Each
 * factory takes the services its methods call — never the node — and returns `RpcMethod`s
 * that `node.ts` hands to the RPC server.
 */
export { nodeMethods, NodeInfo, type NodeInfoSource } from './node.js'
export { storageMethods, storageStreams, parseCid, BadRequestError } from './storage.js'
export { p2pMethods, PeerDialError } from './p2p.js'
export {
  trainingMethods,
  readWeights,
  TrainingRequestError,
  type TrainingComponents,
  type ConsentEntry
} from './training.js'
export { datasetMethods } from './datasets.js'
export { jobMethods } from './jobs.js'
export { generateMethods, MAX_GENERATE_TOKENS } from './generate.js'
export {
  dutyCycleMethods,
  DUTY_PERIOD_MIN_SECONDS,
  DUTY_PERIOD_MAX_SECONDS,
  type DutyCycleControl,
  type DutyCycleReport
} from './duty.js'
export { receiptMethods } from './receipts.js'
export { governanceMethods } from './governance.js'
