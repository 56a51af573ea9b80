/**
 * JWTs (did-jwt, EdDSA) verified offline against did:key, and JWEs (ECDH-ES+X25519,
 * XChaCha20-Poly1305 key wrapping) addressed to DIDs.
 */
import { createJWE, decodeJWT, verifyJWT, createAnonEncrypter } from 'did-jwt'
import type { JWE, JWTPayload } from 'did-jwt'
import { JWT_SKEW_SECONDS } from './constants.js'
// did-jwt 8.0.x exports ECDH-ES+XC20PKW (xc20pAnonEncrypterEcdhESx25519WithXc20PkwV2) only under
// its older name createAnonEncrypter (the same function); likewise createAnonDecrypter.
import { didKeyResolver, publicKeyFromDid, x25519PublicKeyFromEd25519 } from './did.js'
import { JweError, JwtInvalidError } from './errors.js'
import type { JwtInvalidReason } from './errors.js'

/** Options of {@link verifyJwt}. */
export interface VerifyJwtOptions {
  /** Required when the JWT has an `aud`: one of its audiences must equal this. */
  audience?: string
  /** The time to check `exp`/`nbf`/`iat` against, in Unix seconds (default: now). */
  now?: number
}

/** A verified JWT. */
export interface VerifiedJwt {
  payload: JWTPayload & Record<string, unknown>
  /** The issuer's did:key (the payload's `iss`). */
  issuer: string
}

function reasonOf(message: string, payload: JWTPayload | undefined, now: number): JwtInvalidReason {
  const prefix = message.split(':', 1)[0]
  switch (prefix) {
    case 'invalid_signature':
    case 'no_suitable_keys':
      return 'signature'
    case 'invalid_audience':
    case 'invalid_config': // did-jwt 8: "JWT audience does not match your DID or callback url"
      return 'audience'
    case 'resolver_error':
      return 'issuer'
    case 'not_supported':
      return 'unsupported'
    case 'invalid_argument':
      return 'malformed'
    case 'invalid_jwt':
      if (payload?.exp !== undefined && payload.exp <= now - JWT_SKEW_SECONDS) return 'expired'
      if (payload?.nbf !== undefined && payload.nbf > now + JWT_SKEW_SECONDS) return 'not_yet_valid'
      if (payload?.iat !== undefined && payload.iat > now + JWT_SKEW_SECONDS) return 'not_yet_valid'
      return 'invalid'
    default:
      return 'invalid'
  }
}

/**
 * Verifies a did-jwt JWT signed with EdDSA by a did:key, offline: signature, `exp`, `nbf`,
 * `iat` (with {@link JWT_SKEW_SECONDS} of skew) and `aud`.
 *
 * @throws {JwtInvalidError} `JWT_INVALID` with `reason`: `malformed`, `signature`,
 * `expired`, `not_yet_valid`, `audience`, `issuer`, `unsupported` or `invalid`.
 */
export async function verifyJwt(jwt: string, opts: VerifyJwtOptions = {}): Promise<VerifiedJwt> {
  const now = opts.now ?? Math.floor(Date.now() / 1000)
  let payload: JWTPayload | undefined
  try {
    const decoded = decodeJWT(jwt)
    payload = decoded.payload
    if (decoded.header.alg !== 'EdDSA') {
      throw new JwtInvalidError('unsupported', `alg ${String(decoded.header.alg)} is not EdDSA`)
    }
  } catch (err) {
    if (err instanceof JwtInvalidError) throw err
    throw new JwtInvalidError('malformed', (err as Error).message, { cause: err })
  }
  if (typeof payload.iss !== 'string') {
    throw new JwtInvalidError('issuer', 'the JWT has no iss')
  }
  try {
    publicKeyFromDid(payload.iss)
  } catch (err) {
    throw new JwtInvalidError('issuer', (err as Error).message, { cause: err })
  }
  try {
    const verified = await verifyJWT(jwt, {
      resolver: didKeyResolver(),
      audience: opts.audience,
      skewTime: JWT_SKEW_SECONDS,
      policies: { now }
    })
    return { payload: verified.payload as JWTPayload & Record<string, unknown>, issuer: verified.issuer }
  } catch (err) {
    const message = (err as Error).message ?? String(err)
    throw new JwtInvalidError(reasonOf(message, payload, now), message, { cause: err })
  }
}

/**
 * Encrypts `plaintext` as one JWE that each DID can open: a shared content key
 * (XChaCha20-Poly1305), wrapped per recipient with ECDH-ES on the X25519 key derived from
 * its did:key (anonymous sender, `ECDH-ES+XC20PKW`).
 *
 * @throws {InvalidDidError} `INVALID_DID` for a bad recipient.
 * @throws {JweError} `JWE_NO_RECIPIENTS` for an empty list.
 */
export async function encryptForDids(plaintext: Uint8Array, dids: string[]): Promise<JWE> {
  const unique = [...new Set(dids)]
  if (unique.length === 0) throw new JweError('JWE_NO_RECIPIENTS', 'a JWE needs at least one recipient DID')
  const encrypters = unique.map((did) =>
    createAnonEncrypter(x25519PublicKeyFromEd25519(publicKeyFromDid(did)))
  )
  return createJWE(plaintext, encrypters)
}
