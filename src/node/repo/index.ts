/**
 * The node's data dir: layout, one-daemon lock, api file and RPC cookie.
 *
 * @example
 * ```ts
 * const repo = new Repo(resolveHome())
 * await repo.lock()
 * const token = await repo.writeCookie()
 * ```
 */
export { Repo, RepoError, resolveHome, writeFileAtomic } from './repo.js'
