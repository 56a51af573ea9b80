/**
 * Errors of swarm governance, and the reasons a document is refused.
 */
import { ShoalError, type ErrorCategory } from '../../common/index.js'

/**
 * Why a governance document is not counted (stable strings to match on):
 * - `malformed`: not a compact JWT, too large, or its payload is not JSON;
 * - `bad-signature`: the EdDSA signature does not verify for `iss` (a forgery), or `iss` is no did:key;
 * - `schema`: the claims are not those of a constitution, proposal, vote or decree;
 * - `unknown-kind`: a proposal of a kind this swarm does not know;
 * - `wrong-swarm`: signed for another swarm (a replay from elsewhere);
 * - `wrong-constitution`: names another constitution than the swarm's;
 * - `future`: issued in the future (beyond the allowed skew);
 * - `bad-window`: a voting window that cannot be (closes ≤ opens, opens before the proposal,
 *   shorter or longer than the constitution allows);
 * - `rule-mismatch`: the rule a proposal names is not the constitution's for its kind;
 * - `not-member`: the author was not a member (of the electorate, for a vote) when it mattered;
 * - `removed`: the author had been removed from the swarm;
 * - `unknown-proposal`: a vote for a proposal nobody holds;
 * - `proposal-invalid`: a vote for a proposal that was itself refused;
 * - `too-early` / `after-close`: a vote outside its proposal's window;
 * - `duplicate`: the same document again;
 * - `not-founder`: a decree or constitution not signed by a founder of the swarm;
 * - `founder-power`: a decree the constitution does not allow the founders' key;
 * - `target`: an admit of a current member, or a remove of someone who is not one.
 */
export type GovernanceRejectReason =
  | 'malformed'
  | 'bad-signature'
  | 'schema'
  | 'unknown-kind'
  | 'wrong-swarm'
  | 'wrong-constitution'
  | 'future'
  | 'bad-window'
  | 'rule-mismatch'
  | 'not-member'
  | 'removed'
  | 'unknown-proposal'
  | 'proposal-invalid'
  | 'too-early'
  | 'after-close'
  | 'duplicate'
  | 'not-founder'
  | 'founder-power'
  | 'target'

/** Codes of {@link GovernanceError}. */
export type GovernanceErrorCode =
  'GOVERNANCE_INVALID_INPUT' | 'GOVERNANCE_REJECTED' | 'GOVERNANCE_NOT_FOUND' | 'GOVERNANCE_NOT_GOVERNED'

/**
 * Thrown when a governance document cannot be signed (bad input), is refused (`reason`), names
 * an unknown proposal, or the swarm is not governed. Fields: `reason`, `detail`, `proposal`.
 */
export class GovernanceError extends ShoalError<GovernanceErrorCode> {
  static override readonly categories: Record<GovernanceErrorCode, ErrorCategory> = {
    GOVERNANCE_INVALID_INPUT: 'usage',
    GOVERNANCE_REJECTED: 'refused',
    GOVERNANCE_NOT_FOUND: 'not-found',
    GOVERNANCE_NOT_GOVERNED: 'refused'
  }
}
