/**
 * Names, limits and defaults of swarm governance (docs/governance.md).
 */

/** `kind` of a constitution document. */
export const CONSTITUTION_KIND = 'shoal.gov.constitution/1'
/** `kind` of a proposal document. */
export const PROPOSAL_KIND = 'shoal.gov.proposal/1'
/** `kind` of a vote document. */
export const VOTE_KIND = 'shoal.gov.vote/1'
/** `kind` of a founders' decree (what the constitution lets the founders' key still do). */
export const DECREE_KIND = 'shoal.gov.decree/1'

/** The kinds of proposal, each with its own rule in the constitution. */
export const PROPOSAL_TYPES = ['admit', 'remove', 'job', 'policy', 'resolution'] as const

/** Largest governance document (a JWT), in bytes. */
export const MAX_DOCUMENT_BYTES = 16_384
/** Longest free text (a resolution, a title, a reason). */
export const MAX_TEXT_CHARS = 4_000
/** Longest title of a proposal. */
export const MAX_TITLE_CHARS = 200
/** Clock skew allowed when a document's `iat` is compared with the verifier's clock (s). */
export const GOVERNANCE_SKEW_S = 300
/** Most members a constitution may list at genesis. */
export const MAX_GENESIS_MEMBERS = 1_024

/** Default shortest voting window (s). */
export const DEFAULT_MIN_WINDOW_S = 60
/** Default longest voting window (s): 30 days. */
export const DEFAULT_MAX_WINDOW_S = 30 * 24 * 3600
/** Default time the founders' key may still admit members directly after the constitution (s): one day. */
export const DEFAULT_FOUNDER_ADMIT_S = 24 * 3600

/** Default share of a round's credits that goes to the owners of the data it trained on (percent). */
export const DEFAULT_DATA_SHARE_PERCENT = 50
/** Default share of a round's credits that goes to its trainer (percent). */
export const DEFAULT_TRAINER_SHARE_PERCENT = 100
