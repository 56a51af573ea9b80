/**
 * Issuing, decoding and hashing receipts, and the `signature` verification level.
 */
import { rawCid } from '../../common/index.js'
import { JwtInvalidError, verifyJwt } from '../../identity/index.js'
import type { Identity, JwtInvalidReason } from '../../identity/index.js'
import { ReceiptClaimsSchema, describeIssues } from './claims.js'
import type { ReceiptClaims, ReceiptInput } from './claims.js'
import { MAX_RECEIPT_BYTES, RECEIPT_KIND } from './constants.js'
import { ReceiptClaimsError, ReceiptMalformedError } from './errors.js'
import type { SignatureFailure, SignatureReason } from './types.js'

/** A receipt decoded without verifying its signature. */
export interface DecodedReceipt {
  claims: ReceiptClaims
  /** The JWT header (`alg`, `typ`). */
  header: Record<string, unknown>
  /** `receiptHash` of the JWT. */
  hash: string
}

/** The parts of a compact JWT. */
export interface JwtParts {
  header: Record<string, unknown>
  payload: Record<string, unknown>
}

const B64URL = /^[A-Za-z0-9_-]*$/

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function segmentJson(segment: string, what: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
  } catch {
    throw new ReceiptMalformedError(`the JWT ${what} is not JSON`, { reason: 'malformed' })
  }
  if (!isObject(value))
    throw new ReceiptMalformedError(`the JWT ${what} is not a JSON object`, { reason: 'malformed' })
  return value
}

/**
 * Splits a compact JWT and parses its header and payload, without verifying anything else.
 * Each segment must be canonical base64url (no padding, no stray bits), so that one signed
 * document has exactly one string form and so one hash: nobody but the signer can make a
 * second, distinct-looking copy of a receipt.
 *
 * @throws {ReceiptMalformedError} `RECEIPT_MALFORMED` with `reason` `malformed` or `too-large`.
 */
export function splitJwt(jwt: unknown, maxBytes: number = MAX_RECEIPT_BYTES): JwtParts {
  if (typeof jwt !== 'string')
    throw new ReceiptMalformedError('a JWT must be a string', { reason: 'malformed' })
  if (jwt.length > maxBytes) {
    throw new ReceiptMalformedError(`the JWT has ${jwt.length} bytes, more than ${maxBytes}`, {
      reason: 'too-large',
      bytes: jwt.length,
      limit: maxBytes
    })
  }
  const segments = jwt.split('.')
  if (segments.length !== 3) {
    throw new ReceiptMalformedError(`a JWT has 3 segments, this has ${segments.length}`, {
      reason: 'malformed'
    })
  }
  for (const s of segments) {
    if (s.length === 0 || !B64URL.test(s) || Buffer.from(s, 'base64url').toString('base64url') !== s) {
      throw new ReceiptMalformedError('a JWT segment is not canonical base64url', { reason: 'malformed' })
    }
  }
  return { header: segmentJson(segments[0]!, 'header'), payload: segmentJson(segments[1]!, 'payload') }
}

/**
 * The hash of a receipt: the CIDv1 (codec `raw` 0x55, multihash sha2-256, base32 `bafkrei…`)
 * of the JWT's UTF-8 bytes, i.e. the CID the JWT gets when stored as one raw block. Receipts
 * link to their predecessors by this string (`prev`).
 */
export function receiptHash(jwt: string): string {
  return rawCid(jwt)
}

/**
 * Decodes a receipt and checks its claims against `ReceiptClaimsSchema`, without
 * verifying the signature (use {@link verifySignature} for that).
 *
 * @throws {ReceiptMalformedError} `RECEIPT_MALFORMED` when it is not a receipt.
 */
export function decodeReceipt(jwt: string): DecodedReceipt {
  const { header, payload } = splitJwt(jwt)
  const parsed = ReceiptClaimsSchema.safeParse(payload)
  if (!parsed.success) {
    const issues = describeIssues(parsed.error)
    throw new ReceiptMalformedError(`the claims are not a receipt's: ${issues.join('; ')}`, {
      reason: 'schema',
      issues
    })
  }
  return { claims: parsed.data, header, hash: receiptHash(jwt) }
}

/**
 * Signs a receipt for a finished round: a did-jwt JWT (EdDSA, `iss` = the identity's
 * did:key) whose payload is the claims plus `kind`, `iat` (default now) and `prev` =
 * `receiptHash(prevJwt)` (null for the identity's first receipt). Persist the receipt before
 * announcing it: two receipts with the same `prev` are a fork, which gets a DID excluded.
 *
 * @throws {ReceiptClaimsError} `RECEIPT_INVALID_CLAIMS` when the claims break the schema, the
 *   previous receipt is not this identity's (or not a receipt), or `iat` precedes it.
 */
export async function issueReceipt(
  identity: Identity,
  claims: ReceiptInput,
  prevJwt: string | null
): Promise<string> {
  let prev: string | null = null
  let prevIat = 0
  if (prevJwt !== null) {
    let decoded: DecodedReceipt
    try {
      decoded = decodeReceipt(prevJwt)
    } catch (err) {
      throw new ReceiptClaimsError(`the previous receipt is not a receipt: ${(err as Error).message}`)
    }
    if (decoded.claims.iss !== identity.did) {
      throw new ReceiptClaimsError(
        `the previous receipt was issued by ${decoded.claims.iss}, not ${identity.did}`,
        {
          prevIssuer: decoded.claims.iss,
          did: identity.did
        }
      )
    }
    prev = decoded.hash
    prevIat = decoded.claims.iat
  }
  const iat = claims.iat ?? Math.floor(Date.now() / 1000)
  const parsed = ReceiptClaimsSchema.safeParse({
    ...claims,
    kind: RECEIPT_KIND,
    iss: identity.did,
    iat,
    prev
  })
  if (!parsed.success) {
    const issues = describeIssues(parsed.error)
    throw new ReceiptClaimsError(`invalid receipt claims: ${issues.join('; ')}`, { issues })
  }
  if (parsed.data.iat < prevIat) {
    throw new ReceiptClaimsError(`iat ${parsed.data.iat} precedes the previous receipt's ${prevIat}`, {
      iat: parsed.data.iat,
      prevIat
    })
  }
  const { iss: _iss, ...payload } = parsed.data
  const jwt = await identity.signJwt(payload)
  if (jwt.length > MAX_RECEIPT_BYTES) {
    throw new ReceiptClaimsError(`the receipt has ${jwt.length} bytes, more than ${MAX_RECEIPT_BYTES}`, {
      bytes: jwt.length,
      limit: MAX_RECEIPT_BYTES
    })
  }
  return jwt
}

/** Options of the verification functions. */
export interface VerifyTimeOptions {
  /** The time to check `iat` (not in the future, beyond 300 s of skew) against, Unix seconds. */
  now?: number
}

/** The result of {@link verifySignature}. */
export type SignatureResult = { ok: true; claims: ReceiptClaims; hash: string } | SignatureFailure

const JWT_REASONS: Record<JwtInvalidReason, SignatureReason> = {
  malformed: 'malformed',
  signature: 'bad-signature',
  expired: 'expired',
  not_yet_valid: 'not-yet-valid',
  audience: 'invalid',
  issuer: 'issuer',
  unsupported: 'unsupported-alg',
  invalid: 'invalid'
}

/** Maps a JWT verification error to a signature-level reason. */
export function signatureReasonOf(err: unknown): SignatureReason {
  if (err instanceof JwtInvalidError) return JWT_REASONS[err.fields.reason]
  if (err instanceof ReceiptMalformedError)
    return err.fields.reason === 'too-large' ? 'too-large' : 'malformed'
  return 'invalid'
}

/**
 * Level `signature`: the JWT is canonical, signed with EdDSA by the did:key in `iss`
 * (verified offline with did-jwt), not issued in the future, and its claims fit
 * `ReceiptClaimsSchema`. Never throws.
 */
export async function verifySignature(jwt: string, opts: VerifyTimeOptions = {}): Promise<SignatureResult> {
  const fail = (reason: SignatureReason, detail: string, receipt?: string): SignatureFailure => ({
    ok: false,
    level: 'signature',
    reason,
    detail,
    ...(receipt === undefined ? {} : { receipt })
  })
  try {
    splitJwt(jwt)
  } catch (err) {
    return fail(signatureReasonOf(err), (err as Error).message)
  }
  const hash = receiptHash(jwt)
  let issuer: string
  try {
    issuer = (await verifyJwt(jwt, opts.now === undefined ? {} : { now: opts.now })).issuer
  } catch (err) {
    return fail(signatureReasonOf(err), (err as Error).message, hash)
  }
  let decoded: DecodedReceipt
  try {
    decoded = decodeReceipt(jwt)
  } catch (err) {
    return fail('schema', (err as Error).message, hash)
  }
  if (decoded.claims.iss !== issuer)
    return fail('issuer', `iss ${decoded.claims.iss} is not the signer ${issuer}`, hash)
  return { ok: true, claims: decoded.claims, hash }
}
