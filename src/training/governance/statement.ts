/**
 * Ledger statements: a node signs the balances it computed — trainers, data owners, totals —
 * at a ledger hash, as a JWT anyone can verify with a did:key resolver, so that a community
 * can pay out however it likes (and compare statements of several members).
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { DidKeyString } from '../../common/index.js'
import { verifyJwt, type Identity } from '../../identity/index.js'
import { GovernanceError } from './errors.js'

/** `kind` of a ledger statement. */
export const STATEMENT_KIND = 'shoal.ledger-statement/1'

const Balances = z.record(DidKeyString, z.int().min(0))

/** The claims of a ledger statement. */
export const StatementClaimsSchema = z.strictObject({
  kind: z.literal(STATEMENT_KIND),
  iss: DidKeyString,
  iat: z.int().min(0),
  swarm: z.string().min(1).max(128).nullable(),
  /** The hash of the trainers' ledger (`ledger_balances.hash`) the statement was made at. */
  ledger: z.string().regex(/^[0-9a-f]{64}$/),
  /** {@link balancesHash} of the three balance sets below. */
  balances: z.string().regex(/^[0-9a-f]{64}$/),
  trainers: Balances,
  dataOwners: Balances,
  totals: Balances
})
export type StatementClaims = z.infer<typeof StatementClaimsSchema>

/** Hex sha-256 of the JSON of `{ trainers, dataOwners, totals }` (keys as given: sorted by the ledger). */
export function balancesHash(b: Pick<StatementClaims, 'trainers' | 'dataOwners' | 'totals'>): string {
  return createHash('sha256')
    .update(JSON.stringify({ trainers: b.trainers, dataOwners: b.dataOwners, totals: b.totals }))
    .digest('hex')
}

/**
 * Signs a statement of balances as `identity`.
 *
 * @throws {GovernanceError} `GOVERNANCE_INVALID_INPUT` for balances outside the schema.
 */
export async function signStatement(
  identity: Identity,
  input: Omit<StatementClaims, 'kind' | 'iss' | 'iat' | 'balances'> & { iat?: number }
): Promise<string> {
  const claims = {
    ...input,
    kind: STATEMENT_KIND,
    iss: identity.did,
    iat: input.iat ?? Math.floor(Date.now() / 1000),
    balances: balancesHash(input)
  }
  const parsed = StatementClaimsSchema.safeParse(claims)
  if (!parsed.success)
    throw new GovernanceError(
      'GOVERNANCE_INVALID_INPUT',
      `not a ledger statement: ${parsed.error.message}`,
      {}
    )
  const { iss: _iss, ...payload } = parsed.data
  return identity.signJwt(payload)
}

/**
 * Verifies a statement: signature (EdDSA, did:key, offline), schema, and that `balances` is the
 * hash of the balances it lists.
 *
 * @throws {GovernanceError} `GOVERNANCE_REJECTED` with `reason` `bad-signature`, `schema` or `malformed`.
 */
export async function verifyStatement(jwt: string): Promise<StatementClaims> {
  let payload: Record<string, unknown>
  try {
    payload = (await verifyJwt(jwt)).payload
  } catch (err) {
    throw new GovernanceError(
      'GOVERNANCE_REJECTED',
      `the statement does not verify: ${(err as Error).message}`,
      {
        reason: 'bad-signature'
      }
    )
  }
  const parsed = StatementClaimsSchema.safeParse(payload)
  if (!parsed.success)
    throw new GovernanceError('GOVERNANCE_REJECTED', `not a ledger statement: ${parsed.error.message}`, {
      reason: 'schema'
    })
  if (balancesHash(parsed.data) !== parsed.data.balances)
    throw new GovernanceError('GOVERNANCE_REJECTED', 'the balances hash does not match the balances', {
      reason: 'malformed'
    })
  return parsed.data
}
