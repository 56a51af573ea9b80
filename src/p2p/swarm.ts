/**
 * Swarms and membership credentials.
 *
 * A swarm is named by its founders: its id is a hash of their DIDs. A member of a private
 * swarm holds a credential: a did-jwt signed by a founder, `{ swarm: <id>, sub: <member DID> }`
 * with an `exp`. Peers check it during the membership handshake (`SwarmMembership`) and
 * when it rides on a gossip message.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { base32 } from 'multiformats/bases/base32'
import { z } from 'zod'
import { generateKeypair, Identity, JwtInvalidError, verifyJwt } from '../identity/index.js'
import { CREDENTIAL_TTL_SECONDS, SWARM_ID_BYTES, SWARM_ID_DOMAIN } from './constants.js'
import { MembershipError } from './errors.js'
import { DidSchema } from './messages.js'

/** A swarm as members and configs know it. */
export interface SwarmDescriptor {
  /** {@link swarmIdFromFounders} of `founders`; names the swarm's topics. */
  id: string
  name: string
  /** Whether membership is enforced (credential handshake, gater, gossip validators). */
  private: boolean
  /** did:key of each founder; any of them may issue credentials. */
  founders: string[]
}

/** A verified credential. */
export interface VerifiedCredential {
  /** The member's did:key (`sub`). */
  member: string
  /** The founder that signed it (`iss`). */
  issuer: string
  /** `exp`, in Unix seconds. */
  expiresAt: number
}

/** Options of {@link verifyCredential}. */
export interface VerifyCredentialOptions {
  /** Unix seconds to check `exp`/`nbf` against (default now). */
  now?: number
  /** The DID the credential must name (`sub`): the remote peer's DID in a handshake. */
  subject?: string
}

/** The id of a swarm with these founders: base32 multibase of SHA-256(domain ‖ sorted DIDs), 16 bytes. */
export function swarmIdFromFounders(founders: string[]): string {
  if (founders.length === 0) throw new RangeError('a swarm needs at least one founder')
  const input = [SWARM_ID_DOMAIN, ...[...new Set(founders)].sort()].join('\n')
  return base32.encode(sha256(new TextEncoder().encode(input)).subarray(0, SWARM_ID_BYTES))
}

/**
 * Creates a swarm with one founder: a new Ed25519 key (or `founder` when given) whose DID
 * fixes the swarm id. Keep the founder identity safe: it issues every credential.
 */
export function createSwarm(init: { name: string; private: boolean; founder?: Identity }): {
  swarm: SwarmDescriptor
  founder: Identity
} {
  const founder = init.founder ?? Identity.fromKeypair(generateKeypair())
  const founders = [founder.did]
  return {
    swarm: { id: swarmIdFromFounders(founders), name: init.name, private: init.private, founders },
    founder
  }
}

const DescriptorSchema = z.object({
  id: z.string().min(1).max(128),
  name: z.string().min(1).max(256),
  private: z.boolean(),
  founders: z.array(DidSchema).min(1).max(64)
})

/**
 * Parses and checks a swarm descriptor (e.g. from a config file): its fields, and that its
 * id is the one its founders give.
 *
 * @throws {RangeError} for a malformed descriptor or an id that does not match the founders.
 */
export function parseSwarmDescriptor(value: unknown): SwarmDescriptor {
  const parsed = DescriptorSchema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new RangeError(`invalid swarm descriptor: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`)
  }
  const expected = swarmIdFromFounders(parsed.data.founders)
  if (parsed.data.id !== expected) {
    throw new RangeError(`swarm id ${parsed.data.id} does not match its founders (expected ${expected})`)
  }
  return parsed.data
}

/**
 * Issues a membership credential for `memberDid`, signed by `founder`.
 *
 * @throws {MembershipError} `NOT_A_FOUNDER` when `founder` is not one of the swarm's founders.
 */
export async function issueCredential(
  founder: Identity,
  swarm: SwarmDescriptor,
  memberDid: string,
  opts: { expiresIn?: number } = {}
): Promise<string> {
  if (!swarm.founders.includes(founder.did)) {
    throw new MembershipError(
      'NOT_A_FOUNDER',
      'not_a_founder',
      `${founder.did} is not a founder of ${swarm.id}`,
      {
        swarm: swarm.id,
        issuer: founder.did
      }
    )
  }
  DidSchema.parse(memberDid)
  return founder.signJwt(
    { swarm: swarm.id, sub: memberDid },
    { expiresIn: opts.expiresIn ?? CREDENTIAL_TTL_SECONDS }
  )
}

/**
 * Verifies a membership credential for `swarm`: EdDSA signature of a did:key issuer that is
 * a founder, `swarm` claim, `exp` (required) and `nbf`, and `sub` equal to `opts.subject`
 * when given.
 *
 * @throws {MembershipError} `CREDENTIAL_INVALID` (reason `malformed`, `bad_signature`,
 * `not_yet_valid`), `CREDENTIAL_EXPIRED` (`expired`), `NOT_A_MEMBER` (`issuer_not_founder`,
 * `wrong_swarm`, `subject_mismatch`).
 */
export async function verifyCredential(
  jwt: string,
  swarm: SwarmDescriptor,
  opts: VerifyCredentialOptions = {}
): Promise<VerifiedCredential> {
  const facts = { swarm: swarm.id }
  let payload: Record<string, unknown>
  let issuer: string
  try {
    const verified = await verifyJwt(jwt, opts.now === undefined ? {} : { now: opts.now })
    payload = verified.payload
    issuer = verified.issuer
  } catch (err) {
    if (err instanceof JwtInvalidError) {
      switch (err.fields.reason) {
        case 'expired':
          throw new MembershipError('CREDENTIAL_EXPIRED', 'expired', 'the credential has expired', facts, {
            cause: err
          })
        case 'not_yet_valid':
          throw new MembershipError(
            'CREDENTIAL_INVALID',
            'not_yet_valid',
            'the credential is not valid yet',
            facts,
            {
              cause: err
            }
          )
        case 'signature':
          throw new MembershipError(
            'CREDENTIAL_INVALID',
            'bad_signature',
            'the credential signature is invalid',
            facts,
            {
              cause: err
            }
          )
        default:
          break
      }
    }
    throw new MembershipError(
      'CREDENTIAL_INVALID',
      'malformed',
      `the credential is not a valid JWT: ${String(err)}`,
      facts,
      {
        cause: err
      }
    )
  }
  if (typeof payload.exp !== 'number') {
    throw new MembershipError('CREDENTIAL_INVALID', 'malformed', 'the credential has no exp', facts)
  }
  if (!swarm.founders.includes(issuer)) {
    throw new MembershipError(
      'NOT_A_MEMBER',
      'issuer_not_founder',
      `${issuer} is not a founder of ${swarm.id}`,
      {
        ...facts,
        issuer
      }
    )
  }
  if (payload.swarm !== swarm.id) {
    throw new MembershipError('NOT_A_MEMBER', 'wrong_swarm', `the credential is for another swarm`, {
      ...facts,
      credentialSwarm: typeof payload.swarm === 'string' ? payload.swarm : null
    })
  }
  if (typeof payload.sub !== 'string' || !DidSchema.safeParse(payload.sub).success) {
    throw new MembershipError('CREDENTIAL_INVALID', 'malformed', 'the credential has no did:key sub', facts)
  }
  if (opts.subject !== undefined && payload.sub !== opts.subject) {
    throw new MembershipError('NOT_A_MEMBER', 'subject_mismatch', 'the credential names another member', {
      ...facts,
      sub: payload.sub,
      expected: opts.subject
    })
  }
  return { member: payload.sub, issuer, expiresAt: payload.exp }
}
