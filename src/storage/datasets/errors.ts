import { ShoalError } from '../../common/index.js'

/** Facts of a dataset parse failure: which file, and where in it. */
export interface DatasetParseFields extends Record<string, unknown> {
  /** The path as given to the reader. */
  file: string
  /** Short, stable description of the problem (e.g. 'truncated', 'bad-magic', 'non-numeric'). */
  reason: string
  /** CSV: 1-based line number (the header, when present, is line 1). */
  line?: number
  /** CSV: 1-based column number. */
  column?: number
  /** CSV: the column's header name, when there is a header. */
  columnName?: string
  /** IDX: byte offset in the file where the problem is. */
  offset?: number
  /** IDX: 0-based sample index where the problem is. */
  sample?: number
}

/**
 * Thrown when an IDX or CSV file cannot be imported: bad magic or dimensions, a
 * truncated or oversized file, a malformed row, a label out of range. The message and
 * the fields name the file and the place (line and column for CSV; sample index and byte
 * offset for IDX). Nothing is returned half-imported.
 */
export class DatasetParseError extends ShoalError<'DATASET_PARSE', DatasetParseFields> {
  static override readonly category = 'usage'
}

/**
 * Thrown when arguments to a split or a dataset operation are unusable: more shards
 * than samples, alpha <= 0, indices out of range.
 */
export class DatasetArgumentError extends ShoalError<'DATASET_ARGUMENT'> {
  static override readonly category = 'usage'
}

/** Thrown when bytes given to `decodeShard` are not a valid shard (truncated, garbled, wrong version). */
export class ShardError extends ShoalError<'SHARD_INVALID', { reason: string }> {
  static override readonly category = 'usage'
}

/** Stable reasons carried by `ManifestError.fields.reason`. */
export type ManifestErrorReason =
  | 'signature'
  | 'issuer-mismatch'
  | 'unexpected-owner'
  | 'body-mismatch'
  | 'schema'
  | 'label-counts-length'
  | 'label-counts-sum'
  | 'total-count'
  | 'duplicate-cid'
  | 'shard-mismatch'

/**
 * Thrown when a dataset manifest is refused: bad signature, signer other than the
 * owner, schema violation, counts that do not add up, duplicate shard CIDs, or a stored
 * shard that does not match its manifest entry. `fields.reason` says which.
 */
export class ManifestError extends ShoalError<
  'MANIFEST_INVALID',
  { reason: ManifestErrorReason } & Record<string, unknown>
> {
  static override readonly category = 'refused'
}
