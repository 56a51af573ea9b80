/**
 * Shared primitives for every layer: the error base class and structured logging.
 *
 * @example
 * ```ts
 * import { ShoalError, logger } from '../common/index.js'
 * const log = logger('shoal:example')
 * log.info({ cid: 'bafy…' }, 'stored')
 * ```
 */
export { ShoalError, hasCode, isErrorCategory, ERROR_CATEGORIES } from './errors.js'
export type { ErrorCategory, ShoalErrorOptions } from './errors.js'
export { logger, configureLogger, type Logger, type LoggerOptions } from './logger.js'
export { rawCid, RAW_CODEC, SHA2_256_CODE } from './cid.js'
export { Rng } from './rng.js'
export { CidString, DidKeyString, isCid, MAX_CID_CHARS, MAX_DID_CHARS } from './schemas.js'
