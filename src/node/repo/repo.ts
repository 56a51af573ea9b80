/**
 * The data dir (`$SHOAL_HOME`, default ~/.shoal), laid out like Kubo's repo:
 *
 *   config.json   node config overrides (see config/default.json)
 *   keystore/     the node's Ed25519 key (0600), optionally sealed by a passphrase
 *   blocks/       Helia blockstore (blockstore-fs)
 *   datastore/    Helia datastore (level)
 *   ledger/       level databases of the node's own state (receipts, grants, jobs)
 *   repo.lock     held by the running daemon (one daemon per data dir)
 *   api           the running daemon's RPC address, for the CLI
 *   rpc.cookie    the RPC bearer token (0600, rewritten at each start)
 */
import { randomBytes } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import { chmod, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { ShoalError, type ErrorCategory } from '../../common/index.js'

/** Thrown when the data dir is missing, already initialised, or locked by another daemon. */
export class RepoError extends ShoalError<
  'REPO_EXISTS' | 'REPO_NOT_INITIALIZED' | 'REPO_LOCKED',
  { home: string; pid?: number }
> {
  static override readonly categories: Record<RepoError['code'], ErrorCategory> = {
    REPO_EXISTS: 'refused',
    REPO_NOT_INITIALIZED: 'not-found',
    REPO_LOCKED: 'refused'
  }
}

export function resolveHome(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.SHOAL_HOME ?? join(homedir(), '.shoal'))
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/** Write a file atomically (temp + rename) with the given mode. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
  await writeFile(tmp, data, { mode })
  await chmod(tmp, mode)
  await rename(tmp, path)
}

export class Repo {
  readonly home: string
  readonly configPath: string
  readonly keystoreDir: string
  readonly blocksDir: string
  readonly datastoreDir: string
  readonly ledgerDir: string
  readonly lockPath: string
  readonly apiPath: string
  readonly cookiePath: string
  private locked = false

  constructor(home: string) {
    this.home = resolve(home)
    this.configPath = join(this.home, 'config.json')
    this.keystoreDir = join(this.home, 'keystore')
    this.blocksDir = join(this.home, 'blocks')
    this.datastoreDir = join(this.home, 'datastore')
    this.ledgerDir = join(this.home, 'ledger')
    this.lockPath = join(this.home, 'repo.lock')
    this.apiPath = join(this.home, 'api')
    this.cookiePath = join(this.home, 'rpc.cookie')
  }

  /** True when the data dir holds a config and a keystore. */
  async isInitialized(): Promise<boolean> {
    return (await exists(this.configPath)) && (await exists(this.keystoreDir))
  }

  /**
   * Create the layout. Refuses an initialised dir unless `force`; with `force` the old
   * keystore and config are moved aside (never deleted) so no key is ever lost.
   */
  async create(
    opts: { force?: boolean; config?: Record<string, unknown> } = {}
  ): Promise<{ movedAside?: string }> {
    let movedAside: string | undefined
    if (await this.isInitialized()) {
      if (opts.force !== true) {
        throw new RepoError(
          'REPO_EXISTS',
          `${this.home} is already initialised (use --force to re-initialise)`,
          {
            home: this.home
          }
        )
      }
      if (await this.lockHeld()) {
        throw new RepoError('REPO_LOCKED', `a daemon is running on ${this.home}; stop it first`, {
          home: this.home
        })
      }
      movedAside = join(this.home, `backup-${new Date().toISOString().replace(/[:.]/g, '-')}`)
      await mkdir(movedAside, { recursive: true, mode: 0o700 })
      await rename(this.keystoreDir, join(movedAside, 'keystore'))
      await rename(this.configPath, join(movedAside, 'config.json'))
    }
    await mkdir(this.home, { recursive: true, mode: 0o700 })
    await chmod(this.home, 0o700)
    for (const d of [this.blocksDir, this.datastoreDir, this.ledgerDir]) {
      await mkdir(d, { recursive: true, mode: 0o700 })
    }
    await writeFileAtomic(this.configPath, JSON.stringify(opts.config ?? {}, null, 2) + '\n', 0o600)
    return movedAside === undefined ? {} : { movedAside }
  }

  async assertInitialized(): Promise<void> {
    if (!(await this.isInitialized())) {
      throw new RepoError('REPO_NOT_INITIALIZED', `no Shoal repo at ${this.home}: run \`shoal init\` first`, {
        home: this.home
      })
    }
  }

  private async lockHeld(): Promise<number | undefined> {
    try {
      const pid = Number.parseInt((await readFile(this.lockPath, 'utf8')).trim(), 10)
      return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined
    } catch {
      return undefined
    }
  }

  /** Take repo.lock (O_EXCL). A lock left by a dead process is taken over. */
  async lock(): Promise<void> {
    if (this.locked) return
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(this.lockPath, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600)
        await fh.writeFile(`${process.pid}\n`)
        await fh.close()
        this.locked = true
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        const pid = await this.lockHeld()
        if (pid !== undefined && pid !== process.pid) {
          throw new RepoError(
            'REPO_LOCKED',
            `another Shoal daemon (pid ${pid}) is using ${this.home}; stop it or use another SHOAL_HOME`,
            { home: this.home, pid }
          )
        }
        await rm(this.lockPath, { force: true }) // stale
      }
    }
    throw new RepoError('REPO_LOCKED', `could not take ${this.lockPath}`, { home: this.home })
  }

  async unlock(): Promise<void> {
    if (!this.locked) return
    this.locked = false
    await rm(this.lockPath, { force: true })
  }

  /** A fresh random RPC token written to rpc.cookie (0600). */
  async writeCookie(): Promise<string> {
    const token = randomBytes(32).toString('base64url')
    await writeFileAtomic(this.cookiePath, token + '\n', 0o600)
    return token
  }

  async readCookie(): Promise<string> {
    return (await readFile(this.cookiePath, 'utf8')).trim()
  }

  async writeApi(url: string): Promise<void> {
    await writeFileAtomic(this.apiPath, url + '\n', 0o644)
  }

  async readApi(): Promise<string | undefined> {
    try {
      return (await readFile(this.apiPath, 'utf8')).trim()
    } catch {
      return undefined
    }
  }

  async removeApi(): Promise<void> {
    await rm(this.apiPath, { force: true })
  }
}
