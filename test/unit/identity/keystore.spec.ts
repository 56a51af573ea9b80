import assert from 'node:assert/strict'
import { chmod, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  identityConstants,
  keypairFromSeed,
  Keystore,
  KeystoreError,
  verifySignature
} from '../../../src/identity/index.js'

/** Cheap scrypt for tests only (the default is N = 2^17). */
const kdf = { N: 2 ** 10, r: 8, p: 1 }
const keypair = keypairFromSeed(new Uint8Array(32).fill(42))

async function rejectsWith(p: Promise<unknown>, code: string, path?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof KeystoreError, String(err))
    assert.equal(err.code, code, err.message)
    if (path !== undefined) {
      assert.equal(err.fields.path, path)
      assert.ok(err.message.includes(path), err.message)
    }
    return true
  })
}

describe('identity: keystore', () => {
  let root: string
  let dir: string
  let file: string

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'shoal-keystore-'))
    dir = join(root, 'keystore')
    file = join(dir, 'self.key')
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('init (unsealed) → load gives the same identity; file 0600, directory 0700', async () => {
    assert.equal(await Keystore.exists(dir), false)
    const created = await Keystore.init(dir)
    assert.equal(await Keystore.exists(dir), true)
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.equal((await stat(dir)).mode & 0o777, 0o700)
    assert.deepEqual(await readdir(dir), ['self.key']) // no temp file left behind
    const json = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
    assert.equal(json.version, 1)
    assert.equal(json.type, 'ed25519')
    assert.equal(json.sealed, false)
    assert.equal(json.did, created.did)
    const loaded = await Keystore.load(dir)
    assert.equal(loaded.did, created.did)
    assert.ok(loaded.peerId.equals(created.peerId))
    const msg = new TextEncoder().encode('m')
    assert.ok(verifySignature(created.did, msg, loaded.sign(msg)))
  })

  it('init with a given keypair stores that key', async () => {
    const id = await Keystore.init(dir, { keypair })
    assert.deepEqual(id.publicKey, keypair.publicKey)
    assert.equal((await Keystore.load(dir)).did, id.did)
  })

  it('sealed: needs the passphrase; the seed is not in the file', async () => {
    const id = await Keystore.init(dir, { keypair, passphrase: 'correct horse', kdf })
    const text = await readFile(file, 'utf8')
    const json = JSON.parse(text) as { sealed: boolean; kdf: Record<string, unknown>; did: string }
    assert.equal(json.sealed, true)
    assert.equal(json.did, id.did)
    assert.deepEqual({ N: json.kdf.N, r: json.kdf.r, p: json.kdf.p }, kdf)
    assert.ok(!text.includes(Buffer.from(keypair.secretKey).toString('base64')))
    assert.ok(!text.includes(Buffer.from(keypair.secretKey).toString('hex')))
    assert.equal((await Keystore.load(dir, { passphrase: 'correct horse' })).did, id.did)
    await rejectsWith(Keystore.load(dir), 'PASSPHRASE_REQUIRED', file)
    await rejectsWith(Keystore.load(dir, { passphrase: '' }), 'PASSPHRASE_REQUIRED', file)
    await rejectsWith(Keystore.load(dir, { passphrase: 'correct horsf' }), 'WRONG_PASSPHRASE', file)
  })

  it('the default scrypt cost is strong (N = 2^17) and loads', async function () {
    this.timeout(30_000)
    assert.ok(identityConstants.SCRYPT_DEFAULTS.N >= 2 ** 15)
    const id = await Keystore.init(dir, { passphrase: 'p' })
    const json = JSON.parse(await readFile(file, 'utf8')) as { kdf: { N: number; r: number; p: number } }
    assert.deepEqual({ N: json.kdf.N, r: json.kdf.r, p: json.kdf.p }, { N: 2 ** 17, r: 8, p: 1 })
    assert.equal((await Keystore.load(dir, { passphrase: 'p' })).did, id.did)
  })

  it('a truncated file is KEYSTORE_CORRUPT and is left byte-identical', async () => {
    await Keystore.init(dir, { keypair })
    const full = await readFile(file)
    await truncate(file, Math.floor(full.length / 2))
    const before = await readFile(file)
    await rejectsWith(Keystore.load(dir), 'KEYSTORE_CORRUPT', file)
    assert.deepEqual(await readFile(file), before)
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.deepEqual(await readdir(dir), ['self.key'])
  })

  it('garbled fields, a wrong did, or an altered sealed key are KEYSTORE_CORRUPT', async () => {
    await Keystore.init(dir, { keypair })
    const good = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
    const write = (o: unknown): Promise<void> => writeFile(file, JSON.stringify(o), { mode: 0o600 })

    await write({ ...good, seed: 'AAAA' })
    await rejectsWith(Keystore.load(dir), 'KEYSTORE_CORRUPT', file)
    await write({ ...good, seed: 42 })
    await rejectsWith(Keystore.load(dir), 'KEYSTORE_CORRUPT', file)
    await write({ ...good, version: 2 })
    await rejectsWith(Keystore.load(dir), 'KEYSTORE_CORRUPT', file)
    await write({ ...good, did: 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp' })
    await rejectsWith(Keystore.load(dir), 'KEYSTORE_CORRUPT', file)
    const before = await readFile(file)
    await rejectsWith(Keystore.load(dir), 'KEYSTORE_CORRUPT', file)
    assert.deepEqual(await readFile(file), before)

    await Keystore.init(dir, { keypair, passphrase: 'pw', kdf, force: true })
    const sealed = JSON.parse(await readFile(file, 'utf8')) as { cipher: { ciphertext: string }; did: string }
    const ct = Buffer.from(sealed.cipher.ciphertext, 'base64')
    ct[3] = (ct[3] ?? 0) ^ 0x80
    await write({ ...sealed, cipher: { ...sealed.cipher, ciphertext: ct.toString('base64') } })
    await rejectsWith(Keystore.load(dir, { passphrase: 'pw' }), 'KEYSTORE_CORRUPT', file)
    // the did is the AEAD's associated data: another (valid) did breaks the seal
    await write({ ...sealed, did: 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp' })
    await rejectsWith(Keystore.load(dir, { passphrase: 'pw' }), 'KEYSTORE_CORRUPT', file)
    // a hostile cost is refused before any work
    await write({ ...sealed, kdf: { ...(sealed as unknown as { kdf: object }).kdf, N: 2 ** 40 } })
    await rejectsWith(Keystore.load(dir, { passphrase: 'pw' }), 'KEYSTORE_CORRUPT', file)
  })

  it('init on an existing keystore is KEYSTORE_EXISTS unless force', async () => {
    const first = await Keystore.init(dir)
    const before = await readFile(file)
    await rejectsWith(Keystore.init(dir), 'KEYSTORE_EXISTS', file)
    assert.deepEqual(await readFile(file), before)
    assert.equal((await Keystore.load(dir)).did, first.did)
    const second = await Keystore.init(dir, { force: true })
    assert.notEqual(second.did, first.did)
    assert.equal((await Keystore.load(dir)).did, second.did)
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    assert.deepEqual(await readdir(dir), ['self.key'])
  })

  it('a missing key file is KEYSTORE_NOT_FOUND', async () => {
    await rejectsWith(Keystore.load(dir), 'KEYSTORE_NOT_FOUND', file)
  })

  it('a group- or world-readable key file is refused', async () => {
    await Keystore.init(dir)
    await chmod(file, 0o644)
    await rejectsWith(Keystore.load(dir), 'KEYSTORE_INSECURE_PERMISSIONS', file)
    await chmod(file, 0o640)
    await rejectsWith(Keystore.load(dir), 'KEYSTORE_INSECURE_PERMISSIONS', file)
    assert.equal((await stat(file)).mode & 0o777, 0o640) // not "fixed" behind the user's back
    await chmod(file, 0o600)
    await Keystore.load(dir)
  })

  it('bad init options are refused', async () => {
    await rejectsWith(Keystore.init(dir, { passphrase: '' }), 'KEYSTORE_INVALID_OPTIONS')
    await rejectsWith(Keystore.init(dir, { passphrase: 'x', kdf: { N: 1000 } }), 'KEYSTORE_INVALID_OPTIONS')
    await rejectsWith(
      Keystore.init(dir, { passphrase: 'x', kdf: { N: 2 ** 30 } }),
      'KEYSTORE_INVALID_OPTIONS'
    )
    assert.equal(await Keystore.exists(dir), false)
  })
})
