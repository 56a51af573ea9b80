/**
 * The node's key file: `<keystoreDir>/self.key` (mode 0600, directory 0700), JSON.
 *
 * Unsealed: `{ version: 1, type: 'ed25519', did, sealed: false, seed }` (seed in base64).
 * Sealed: `{ version: 1, type: 'ed25519', did, sealed: true, kdf: { name: 'scrypt', N, r, p,
 * salt }, check, cipher: { name: 'xchacha20poly1305', nonce, ciphertext } }`: scrypt turns the
 * passphrase into 64 bytes, the first 32 encrypt the seed with the did as associated data,
 * SHA-256 of the last 32 gives `check` (16 bytes), which tells a wrong passphrase from a
 * damaged ciphertext. Writes are atomic (temp file, fsync, link or rename); loading never
 * writes, moves or deletes the file.
 */
import { constants as fsConstants } from 'node:fs'
import { chmod, link, lstat, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { join } from 'node:path'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { z } from 'zod'
import { logger } from '../common/index.js'
import {
  ED25519_KEY_BYTES,
  KEY_FILE_MODE,
  KEY_FILE_NAME,
  KEY_FILE_VERSION,
  KEYSTORE_DIR_MODE,
  SCRYPT_BOUNDS,
  SCRYPT_DEFAULTS,
  SCRYPT_SALT_BYTES,
  XCHACHA_NONCE_BYTES
} from './constants.js'
import { KeystoreError } from './errors.js'
import { Identity } from './identity.js'
import { generateKeypair, keypairFromSeed } from './keys.js'
import type { Ed25519Keypair } from './keys.js'

const log = logger('shoal:identity:keystore')

/** scrypt cost parameters. */
export interface ScryptParams {
  N: number
  r: number
  p: number
}

/** Options of {@link Keystore.init}. */
export interface KeystoreInitOptions {
  /** Seal the key with this passphrase (scrypt + XChaCha20-Poly1305). Unsealed when absent. */
  passphrase?: string
  /** Replace an existing key file (the old key is lost). */
  force?: boolean
  /** Store this key pair instead of generating one. */
  keypair?: Ed25519Keypair
  /** scrypt cost (default {@link SCRYPT_DEFAULTS}); lower it only in tests. */
  kdf?: Partial<ScryptParams>
}

const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/)
const header = { version: z.literal(KEY_FILE_VERSION), type: z.literal('ed25519'), did: z.string() }
const unsealedSchema = z.object({ ...header, sealed: z.literal(false), seed: b64 })
const sealedSchema = z.object({
  ...header,
  sealed: z.literal(true),
  kdf: z.object({
    name: z.literal('scrypt'),
    N: z.number().int(),
    r: z.number().int(),
    p: z.number().int(),
    salt: b64
  }),
  check: b64,
  cipher: z.object({ name: z.literal('xchacha20poly1305'), nonce: b64, ciphertext: b64 })
})
const keyFileSchema = z.discriminatedUnion('sealed', [unsealedSchema, sealedSchema])
type SealedFile = z.infer<typeof sealedSchema>

function scryptBoundsError(p: ScryptParams): string | undefined {
  const logN = Math.log2(p.N)
  if (!Number.isInteger(logN) || logN < SCRYPT_BOUNDS.minLogN || logN > SCRYPT_BOUNDS.maxLogN) {
    return `N must be a power of two between 2^${SCRYPT_BOUNDS.minLogN} and 2^${SCRYPT_BOUNDS.maxLogN}`
  }
  if (!Number.isInteger(p.r) || p.r < 1 || p.r > SCRYPT_BOUNDS.maxR)
    return `r must be 1..${SCRYPT_BOUNDS.maxR}`
  if (!Number.isInteger(p.p) || p.p < 1 || p.p > SCRYPT_BOUNDS.maxP)
    return `p must be 1..${SCRYPT_BOUNDS.maxP}`
  if (scryptMem(p) > SCRYPT_BOUNDS.maxMemBytes) return 'scrypt memory (128·r·(N+p+2)) exceeds 1 GiB'
  return undefined
}

function scryptMem(p: ScryptParams): number {
  return 128 * p.r * (p.N + p.p + 2)
}

async function deriveKeys(
  passphrase: string,
  salt: Uint8Array,
  params: ScryptParams
): Promise<{ key: Uint8Array; check: Uint8Array }> {
  const out = await new Promise<Buffer>((resolve, reject) => {
    scrypt(
      passphrase.normalize('NFKC'),
      salt,
      64,
      { ...params, maxmem: scryptMem(params) + 1024 * 1024 },
      (err, derived) => (err === null ? resolve(derived) : reject(err))
    )
  })
  const key = new Uint8Array(out.subarray(0, 32))
  const check = new Uint8Array(createHash('sha256').update(out.subarray(32)).digest().subarray(0, 16))
  out.fill(0)
  return { key, check }
}

function fromB64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64'))
}

function toB64(b: Uint8Array): string {
  return Buffer.from(b).toString('base64')
}

/** The keystore: a directory holding the node's one Ed25519 key. */
export class Keystore {
  /** The key file's path inside a keystore directory. */
  static keyFile(keystoreDir: string): string {
    return join(keystoreDir, KEY_FILE_NAME)
  }

  /** True when `keystoreDir` holds a key file (whatever its state). */
  static async exists(keystoreDir: string): Promise<boolean> {
    try {
      await lstat(Keystore.keyFile(keystoreDir))
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw err
    }
  }

  /**
   * Creates the key file (a new key unless `keypair` is given) and returns its identity.
   *
   * @throws {KeystoreError} `KEYSTORE_EXISTS` when a key file exists and `force` is not set;
   * `KEYSTORE_INVALID_OPTIONS` for an empty passphrase or scrypt cost out of bounds.
   */
  static async init(keystoreDir: string, opts: KeystoreInitOptions = {}): Promise<Identity> {
    const path = Keystore.keyFile(keystoreDir)
    const force = opts.force === true
    if (opts.passphrase === '') {
      throw new KeystoreError(
        'KEYSTORE_INVALID_OPTIONS',
        'the passphrase is empty; omit it to store unsealed',
        { path }
      )
    }
    const params: ScryptParams = { ...SCRYPT_DEFAULTS, ...opts.kdf }
    const bad = scryptBoundsError(params)
    if (bad !== undefined) {
      throw new KeystoreError('KEYSTORE_INVALID_OPTIONS', `bad scrypt parameters: ${bad}`, {
        path,
        ...params
      })
    }
    if (!force && (await Keystore.exists(keystoreDir))) {
      throw new KeystoreError(
        'KEYSTORE_EXISTS',
        `a key file already exists at ${path} (use force to replace it)`,
        { path }
      )
    }
    const kp = opts.keypair ?? generateKeypair()
    const identity = Identity.fromKeypair(kp)
    const did = identity.did

    let file: Record<string, unknown>
    if (opts.passphrase === undefined) {
      file = { version: KEY_FILE_VERSION, type: 'ed25519', did, sealed: false, seed: toB64(kp.secretKey) }
    } else {
      const salt = randomBytes(SCRYPT_SALT_BYTES)
      const nonce = randomBytes(XCHACHA_NONCE_BYTES)
      const { key, check } = await deriveKeys(opts.passphrase, salt, params)
      const ciphertext = xchacha20poly1305(key, nonce, new TextEncoder().encode(did)).encrypt(kp.secretKey)
      key.fill(0)
      file = {
        version: KEY_FILE_VERSION,
        type: 'ed25519',
        did,
        sealed: true,
        kdf: { name: 'scrypt', ...params, salt: toB64(salt) },
        check: toB64(check),
        cipher: { name: 'xchacha20poly1305', nonce: toB64(nonce), ciphertext: toB64(ciphertext) }
      }
    }

    await mkdir(keystoreDir, { recursive: true, mode: KEYSTORE_DIR_MODE })
    if (process.platform !== 'win32') await chmod(keystoreDir, KEYSTORE_DIR_MODE)
    await writeAtomic(path, `${JSON.stringify(file, null, 2)}\n`, force)
    log.info({ did, path, sealed: opts.passphrase !== undefined }, 'keystore initialised')
    return identity
  }

  /**
   * Loads the key file. Never modifies, moves or deletes it.
   *
   * @throws {KeystoreError} `KEYSTORE_NOT_FOUND`, `KEYSTORE_INSECURE_PERMISSIONS` (group or
   * others can access the file), `KEYSTORE_CORRUPT`, `PASSPHRASE_REQUIRED`, `WRONG_PASSPHRASE`.
   */
  static async load(keystoreDir: string, opts: { passphrase?: string } = {}): Promise<Identity> {
    const path = Keystore.keyFile(keystoreDir)
    let text: string
    try {
      const st = await stat(path)
      if (!st.isFile()) {
        throw new KeystoreError('KEYSTORE_CORRUPT', `the key file ${path} is not a regular file`, { path })
      }
      if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
        const mode = `0${(st.mode & 0o777).toString(8)}`
        throw new KeystoreError(
          'KEYSTORE_INSECURE_PERMISSIONS',
          `the key file ${path} has mode ${mode}; it must not be accessible to group or others (chmod 600 ${path})`,
          { path, mode }
        )
      }
      text = await readFile(path, 'utf8')
    } catch (err) {
      if (err instanceof KeystoreError) throw err
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new KeystoreError('KEYSTORE_NOT_FOUND', `no key file at ${path} (run init first)`, { path })
      }
      throw err
    }

    let parsed: z.infer<typeof keyFileSchema>
    try {
      parsed = keyFileSchema.parse(JSON.parse(text))
    } catch (err) {
      const why =
        err instanceof SyntaxError ? 'it is not valid JSON (truncated?)' : 'its fields are not valid'
      throw new KeystoreError(
        'KEYSTORE_CORRUPT',
        `the key file ${path} is corrupt: ${why}`,
        { path },
        { cause: err }
      )
    }

    let seed: Uint8Array
    if (!parsed.sealed) {
      if (opts.passphrase !== undefined)
        log.warn({ path }, 'key file is not sealed; the passphrase is unused')
      seed = fromB64(parsed.seed)
    } else {
      seed = await unseal(path, parsed, opts.passphrase)
    }
    if (seed.length !== ED25519_KEY_BYTES) {
      throw new KeystoreError(
        'KEYSTORE_CORRUPT',
        `the key file ${path} is corrupt: the key is not 32 bytes`,
        { path }
      )
    }
    const identity = Identity.fromKeypair(keypairFromSeed(seed))
    seed.fill(0)
    if (identity.did !== parsed.did) {
      throw new KeystoreError(
        'KEYSTORE_CORRUPT',
        `the key file ${path} is corrupt: its key belongs to ${identity.did}, not to the did it names (${parsed.did})`,
        { path, did: parsed.did }
      )
    }
    log.debug({ did: identity.did, path }, 'keystore loaded')
    return identity
  }
}

async function unseal(path: string, file: SealedFile, passphrase: string | undefined): Promise<Uint8Array> {
  if (passphrase === undefined || passphrase === '') {
    throw new KeystoreError(
      'PASSPHRASE_REQUIRED',
      `the key file ${path} is sealed; a passphrase is required`,
      { path }
    )
  }
  const params: ScryptParams = { N: file.kdf.N, r: file.kdf.r, p: file.kdf.p }
  const bad = scryptBoundsError(params)
  if (bad !== undefined) {
    throw new KeystoreError('KEYSTORE_CORRUPT', `the key file ${path} is corrupt: ${bad}`, { path })
  }
  const salt = fromB64(file.kdf.salt)
  const nonce = fromB64(file.cipher.nonce)
  const check = fromB64(file.check)
  if (salt.length < 8 || nonce.length !== XCHACHA_NONCE_BYTES || check.length !== 16) {
    throw new KeystoreError('KEYSTORE_CORRUPT', `the key file ${path} is corrupt: bad salt, nonce or check`, {
      path
    })
  }
  const derived = await deriveKeys(passphrase, salt, params)
  if (!timingSafeEqual(derived.check, check)) {
    derived.key.fill(0)
    throw new KeystoreError('WRONG_PASSPHRASE', `wrong passphrase for the key file ${path}`, { path })
  }
  try {
    return xchacha20poly1305(derived.key, nonce, new TextEncoder().encode(file.did)).decrypt(
      fromB64(file.cipher.ciphertext)
    )
  } catch (err) {
    throw new KeystoreError(
      'KEYSTORE_CORRUPT',
      `the key file ${path} is corrupt: the passphrase is right but the sealed key or its did was altered`,
      { path },
      { cause: err }
    )
  } finally {
    derived.key.fill(0)
  }
}

/**
 * Writes `data` to `path` with mode 0600 atomically: a temp file in the same directory,
 * fsync, then rename (replace) or hard link (fails if `path` exists), then fsync the directory.
 */
async function writeAtomic(path: string, data: string, replace: boolean): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  const fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, KEY_FILE_MODE)
  try {
    try {
      await fh.chmod(KEY_FILE_MODE)
      await fh.writeFile(data, 'utf8')
      await fh.sync()
    } finally {
      await fh.close()
    }
    if (replace) {
      await rename(tmp, path)
    } else {
      try {
        await link(tmp, path)
        await unlink(tmp)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EEXIST') {
          throw new KeystoreError('KEYSTORE_EXISTS', `a key file already exists at ${path}`, { path })
        }
        // Hard links unsupported here (some network or FUSE file systems): check, then rename.
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err
        if (
          await lstat(path).then(
            () => true,
            () => false
          )
        ) {
          throw new KeystoreError('KEYSTORE_EXISTS', `a key file already exists at ${path}`, { path })
        }
        await rename(tmp, path)
      }
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined)
    throw err
  }
  await syncDir(join(path, '..'))
}

async function syncDir(dir: string): Promise<void> {
  try {
    const dh = await open(dir, 'r')
    try {
      await dh.sync()
    } finally {
      await dh.close()
    }
  } catch {
    // Not supported on every platform (Windows); the rename is still atomic.
  }
}
