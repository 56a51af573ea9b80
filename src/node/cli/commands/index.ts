/**
 * The command groups of the `shoal` CLI, one module each; `buildProgram` in ../main.ts registers
 * them in this order (which is the order of `shoal --help`).
 */
export { out, readPassphrase, renderValue, type CliContext, type Globals } from './context.js'
export { registerNodeCommands } from './node.js'
export { registerStorageCommands } from './storage.js'
export { registerNetworkCommands } from './network.js'
export { EXIT_TRAINING_FAILED, registerTrainingCommands } from './training.js'
export { parseExpiry, registerDatasetCommands } from './dataset.js'
export { registerJobCommands } from './job.js'
export { registerVolunteerCommands } from './volunteer.js'
export { registerPredictCommands } from './predict.js'
export { registerGovernanceCommands, found as foundGovernance } from './governance.js'
export { registerDashboardCommands } from './dashboard.js'
