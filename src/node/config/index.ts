/**
 * Node configuration: schema, layered loading and validation.
 *
 * @example
 * ```ts
 * const config = await loadConfig({ repoConfigPath: '/home/me/.shoal/config.json', sets: ['rpc.port=5001'] })
 * ```
 */
export { ConfigSchema, type ShoalConfig } from './schema.js'
export {
  loadConfig,
  validateConfig,
  configFromEnv,
  configFromFlags,
  deepMerge,
  ConfigError,
  type LoadConfigOptions
} from './load.js'
