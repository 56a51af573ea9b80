/**
 * Defaults and limits of the decentralized round protocol (see docs/training-swarm.md).
 * Every default here can be overridden in `SwarmTrainerInit`; the job spec fixes the
 * training hyper-parameters, these fix the protocol's timing and bounds.
 */

/** Rounds run when neither the init nor the job spec (`hyper.rounds`) says. */
export const DEFAULT_ROUNDS = 10

/**
 * How long a node waits, after announcing its round-r model, for its k peers to announce a
 * model of round ≥ r (ms). Bounded: a slow peer delays the others by at most this much.
 */
export const DEFAULT_PEER_WAIT_MS = 2_000

/** Deadline of fetching the chosen peer models of one round, all fetches together (ms). */
export const DEFAULT_FETCH_TIMEOUT_MS = 10_000

/**
 * The job's last round waits this many times `fetchTimeoutMs` for its peer models: its aggregate
 * is the model the node keeps, and no later round mixes in what it missed. A volunteer whose
 * last-round fetches all timed out ended on its own shard's drift alone (bench:wan N = 16:
 * 91.2 % after round 9, 76.5 % after round 10).
 */
export const LAST_ROUND_FETCH_FACTOR = 3

/**
 * How long a node without a checkpoint of its own waits at start for announcements of a
 * running job, to join from the newest peer models instead of the initial weights (ms).
 */
export const DEFAULT_JOIN_WAIT_MS = 3_000

/** Evaluate on the held-out set every this many rounds (and after the last one). */
export const DEFAULT_EVAL_EVERY = 1

/** Rounds of own models (announced + checkpoint) kept in the weight store before `remove`. */
export const DEFAULT_RETAIN_ROUNDS = 2

/** Peers remembered at most (the latest announcement of each). Further DIDs are ignored. */
export const MAX_TRACKED_PEERS = 1024

/** Slack for the header of an exchanged model beyond its values (bytes). */
export const MODEL_HEADER_SLACK_BYTES = 64 * 1024

/** Largest job JWT accepted (the jobs topic carries it inside a 16 KiB message). */
export const MAX_JOB_JWT_BYTES = 12_000

/** `kind` claim of a signed job, keeping job JWTs apart from other signed documents. */
export const JOB_KIND = 'shoal-job'

/** Version of the job document. */
export const JOB_VERSION = 1

/** A node adopts its peers' round (catch-up) only when their lower median is this many rounds ahead. */
export const CATCH_UP_LAG = 2

/**
 * The `ep` a round's record (and receipt) names when it ran in deterministic CPU mode: the
 * only rounds a re-executor can reproduce bit for bit. A multi-threaded CPU round names
 * {@link PARALLEL_CPU_EP}; GPU rounds their provider.
 */
export const REPRODUCIBLE_EP = 'cpu'
/** The `ep` of a CPU round run with several threads (not bit-reproducible). */
export const PARALLEL_CPU_EP = 'cpu-parallel'
