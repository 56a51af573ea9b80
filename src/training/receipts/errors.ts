import { ShoalError } from '../../common/index.js'

/**
 * Thrown by `issueReceipt` when the claims do not satisfy `ReceiptClaimsSchema` or the
 * previous receipt cannot be chained to (not decodable, or issued by another DID).
 * Fields: `issues` (schema paths and messages), or `prevIssuer`/`did`.
 */
export class ReceiptClaimsError extends ShoalError<'RECEIPT_INVALID_CLAIMS'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('RECEIPT_INVALID_CLAIMS', message, fields)
  }
}

/**
 * Thrown when a string is not a receipt (or a fraud proof): not a three-segment JWT in
 * canonical base64url, payload not JSON, too large, or claims outside the schema.
 * Fields: `reason`, `issues` when the schema failed.
 */
export class ReceiptMalformedError extends ShoalError<'RECEIPT_MALFORMED'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('RECEIPT_MALFORMED', message, fields)
  }
}

/**
 * Thrown by `issueFraudProof` when the accusation is inconsistent before anyone re-runs
 * anything: the receipt is not decodable, the claimed hash is not the receipt's, or the
 * expected and claimed results are equal. Fields: `reason`.
 */
export class FraudProofInputError extends ShoalError<'FRAUD_PROOF_INVALID_INPUT'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('FRAUD_PROOF_INVALID_INPUT', message, fields)
  }
}

/**
 * Thrown by `computeLedger` for options it cannot use (a credit per sample that is not a
 * non-negative safe integer) or a balance beyond `Number.MAX_SAFE_INTEGER`. Fields: the
 * offending values.
 */
export class LedgerInputError extends ShoalError<'LEDGER_INVALID_INPUT'> {
  static override readonly category = 'usage'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('LEDGER_INVALID_INPUT', message, fields)
  }
}
