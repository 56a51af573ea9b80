/** Node-level constants. */
export const VERSION = '0.1.0'
/** Plain HTTP endpoints that stream bytes beside the JSON-RPC (same bearer token). */
export const ADD_PATH = '/api/v0/add'
export const GET_PATH = '/api/v0/get'
/** HTTP trailer that marks a complete, verified `get` stream. */
export const INTEGRITY_TRAILER = 'x-shoal-integrity'
