/** Default fraction of values trimmed from each side by the trimmed mean. */
export const DEFAULT_TRIM_FRACTION = 0.2

/** Up to this many models, per-coordinate sorts use insertion sort on a reused scratch array. */
export const INSERTION_SORT_MAX = 32

/** Magic bytes of the compressed update format (ASCII). */
export const COMPRESSED_MAGIC = 'SHCU'
/** Current version of the compressed update format. */
export const COMPRESSED_VERSION = 1
/** Largest header accepted when decoding a compressed update. */
export const MAX_COMPRESSED_HEADER_BYTES = 1 << 20
/** Most tensors accepted when decoding a compressed update. */
export const MAX_COMPRESSED_TENSORS = 4096
/** Most dimensions of one tensor accepted when decoding a compressed update. */
export const MAX_COMPRESSED_RANK = 8
