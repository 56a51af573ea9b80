import { ShoalError, type ErrorCategory } from '../common/index.js'

/** Why a peer or a credential was refused. */
export type MembershipReason =
  | 'no_credential'
  | 'malformed'
  | 'bad_signature'
  | 'issuer_not_founder'
  | 'wrong_swarm'
  | 'subject_mismatch'
  | 'expired'
  | 'not_yet_valid'
  | 'handshake_failed'
  | 'handshake_timeout'
  | 'denied'
  | 'not_a_founder'

/** Codes of {@link MembershipError}. */
export type MembershipErrorCode =
  'NOT_A_MEMBER' | 'CREDENTIAL_EXPIRED' | 'CREDENTIAL_INVALID' | 'NOT_A_FOUNDER'

/**
 * Thrown when a swarm credential does not make its holder a member:
 * - `NOT_A_MEMBER`: the credential is well formed and signed but is not for this swarm, this
 *   subject, or was not issued by a founder (or no credential was presented);
 * - `CREDENTIAL_EXPIRED`: its `exp` has passed (or its `nbf` is still ahead);
 * - `CREDENTIAL_INVALID`: it is not a JWT, or its signature does not verify;
 * - `NOT_A_FOUNDER`: someone who is not a founder tried to issue one.
 *
 * `fields.reason` says which check failed.
 */
export class MembershipError extends ShoalError<
  MembershipErrorCode,
  { reason: MembershipReason } & Record<string, unknown>
> {
  static override readonly category = 'refused'

  constructor(
    code: MembershipErrorCode,
    reason: MembershipReason,
    message: string,
    fields: Record<string, unknown> = {},
    options?: { cause?: unknown }
  ) {
    super(code, message, { ...fields, reason }, options)
  }
}

/** Codes of {@link GossipError}. */
export type GossipErrorCode =
  'UNKNOWN_TOPIC' | 'INVALID_MESSAGE' | 'MESSAGE_TOO_LARGE' | 'INVALID_TOPIC_SPEC' | 'NOT_STARTED'

/**
 * Thrown by the local side of gossip, never for what peers send (their bad messages are
 * rejected and counted instead):
 * - `UNKNOWN_TOPIC`: publishing or subscribing to a topic that has no registered schema;
 * - `INVALID_MESSAGE`: publishing a message that fails its topic's schema;
 * - `MESSAGE_TOO_LARGE`: publishing a message whose encoding exceeds the topic's limit;
 * - `INVALID_TOPIC_SPEC`: registering a topic with a limit above 1 MiB, or a topic twice
 *   with different specs;
 * - `NOT_STARTED`: publishing before `start()`.
 */
export class GossipError extends ShoalError<GossipErrorCode> {
  static override readonly categories: Record<GossipError['code'], ErrorCategory> = {
    UNKNOWN_TOPIC: 'usage',
    INVALID_MESSAGE: 'usage',
    MESSAGE_TOO_LARGE: 'refused',
    INVALID_TOPIC_SPEC: 'usage',
    NOT_STARTED: 'refused'
  }

  constructor(code: GossipErrorCode, message: string, fields: Record<string, unknown> = {}) {
    super(code, message, fields)
  }
}
