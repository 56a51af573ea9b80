import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Identity, encryptForDids, keypairFromSeed } from '../../../../src/identity/index.js'
import { ConsentMessageSchema, libp2pOptions } from '../../../../src/p2p/index.js'
import {
  ContentStore,
  createHeliaNode,
  readFile,
  type AddOptions,
  type AddResult,
  type ShoalHelia
} from '../../../../src/storage/index.js'
import {
  buildManifest,
  decodeShard,
  encodeShard,
  importDataset,
  loadManifest,
  shardDirichlet,
  type Dataset,
  type ImportResult,
  type ManifestBody
} from '../../../../src/storage/datasets/index.js'
import {
  GrantStore,
  createGrant,
  createRevocation,
  decryptShard,
  grantConstants,
  grantId,
  openGrant,
  readGrantedShard,
  verifyRevocation
} from '../../../../src/storage/grants/index.js'
import type { GrantLookup } from '../../../../src/training/receipts/index.js'
import { synthetic } from '../datasets/helpers.js'

const SPLIT_SEED = 42
const ALPHA = 0.5

function identityOf(seed: number): Identity {
  const bytes = new Uint8Array(32).fill(seed)
  bytes[0] = 0x6a
  return Identity.fromKeypair(keypairFromSeed(bytes))
}

const codeOf = (err: unknown): string | undefined => (err as { code?: string }).code

/** Asserts that `p` rejects with `code`; returns the error. */
async function rejectsWith(
  p: Promise<unknown>,
  code: string
): Promise<Error & { fields: Record<string, unknown> }> {
  try {
    await p
  } catch (err) {
    assert.equal(codeOf(err), code, `expected ${code}, got ${codeOf(err)}: ${(err as Error).message}`)
    return err as Error & { fields: Record<string, unknown> }
  }
  assert.fail(`expected a rejection with ${code}`)
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const p of source) parts.push(p)
  return new Uint8Array(Buffer.concat(parts))
}

async function pinned(store: ContentStore): Promise<Set<string>> {
  const out = new Set<string>()
  for await (const pin of store.pins()) out.add(pin.cid.toString())
  return out
}

/** Every entry of a level database opened directly: [key, value bytes]. */
async function dump(path: string): Promise<Array<[string, Uint8Array]>> {
  const db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' })
  await db.open()
  try {
    const out: Array<[string, Uint8Array]> = []
    for await (const [k, v] of db.iterator()) out.push([k, v])
    return out
  } finally {
    await db.close()
  }
}

/** Whether `key` appears in `value` as raw bytes, hex, base64 or base64url. */
function holdsKey(value: Uint8Array, key: Uint8Array): boolean {
  const buf = Buffer.from(value)
  const k = Buffer.from(key)
  return (
    buf.includes(k) ||
    buf.includes(k.toString('hex')) ||
    buf.includes(k.toString('base64')) ||
    buf.includes(k.toString('base64url'))
  )
}

interface Node {
  id: Identity
  helia: ShoalHelia
  store: ContentStore
}

describe('storage/grants: encrypted datasets shared by grant', function () {
  this.timeout(30_000)
  let dir: string
  let a: Node // the owner
  let b: Node // the grantee
  let c: Node // a third party, no grant
  const mallory = identityOf(0x4d)
  let grantsB: GrantStore
  let grantsC: GrantStore
  let ds: Dataset
  let imported: ImportResult
  let body: ManifestBody
  let manifestCid: string
  let shardCids: string[]
  let split: number[][]
  const now = (): number => Math.floor(Date.now() / 1000)

  async function node(id: Identity, name: string): Promise<Node> {
    const helia = await createHeliaNode({
      blocksPath: join(dir, name, 'blocks'),
      datastorePath: join(dir, name, 'datastore'),
      libp2p: libp2pOptions({ privateKey: id.libp2pPrivateKey })
    })
    const store = new ContentStore({ helia, identity: id }, { worker: false, rootTimeoutMs: 10_000 })
    return { id, helia, store }
  }

  async function ownerKeys(cids: string[]): Promise<Map<string, Uint8Array>> {
    const keys = new Map<string, Uint8Array>()
    for (const cid of cids) keys.set(cid, await a.store.contentKey(CID.parse(cid)))
    return keys
  }

  const expectedShard = (i: number): Dataset => decodeShard(encodeShard(ds, split[i]!))

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-grants-'))
    a = await node(identityOf(0x0a), 'a')
    b = await node(identityOf(0x0b), 'b')
    c = await node(identityOf(0x0c), 'c')
    await b.helia.libp2p.dial(a.helia.libp2p.getMultiaddrs()[0]!)
    await c.helia.libp2p.dial(a.helia.libp2p.getMultiaddrs()[0]!)
    grantsB = new GrantStore({ identity: b.id }, { path: join(dir, 'b', 'ledger', 'grants') })
    grantsC = new GrantStore({ identity: c.id }, { path: join(dir, 'c', 'ledger', 'grants') })
    await grantsB.start()
    await grantsC.start()

    ds = synthetic(300, { shape: [28, 28], classes: 10, seed: 7 })
    split = shardDirichlet(ds, 3, ALPHA, SPLIT_SEED)
    imported = await importDataset(a.store, a.id, ds, {
      name: 'synthetic-300',
      shards: 3,
      split: 'dirichlet',
      alpha: ALPHA,
      seed: SPLIT_SEED,
      source: 'synthetic'
    })
    body = imported.manifest.body
    manifestCid = imported.manifestCid.toString()
    shardCids = imported.shards.map((s) => s.cid.toString())
  })

  after(async () => {
    await grantsB?.stop()
    await grantsC?.stop()
    for (const n of [a, b, c]) {
      await n?.store.stop()
      await n?.helia.stop()
    }
    await rm(dir, { recursive: true, force: true })
  })

  describe('import', () => {
    it('stores 3 encrypted shards and a signed manifest, all pinned; the manifest verifies', async () => {
      assert.equal(imported.shards.length, 3)
      assert.equal(body.owner, a.id.did)
      assert.equal(body.count, 300)
      assert.deepEqual(body.split, { kind: 'dirichlet', alpha: ALPHA, seed: SPLIT_SEED })
      assert.deepEqual(
        imported.shards.map((s) => s.count),
        split.map((s) => s.length)
      )
      const pins = await pinned(a.store)
      for (const cid of [...shardCids, manifestCid]) assert.ok(pins.has(cid), `${cid} pinned`)
      for (const cid of shardCids) assert.equal((await a.store.stat(CID.parse(cid))).encrypted, true)
      assert.equal((await a.store.stat(imported.manifestCid)).encrypted, false)

      // The owner loads it back, decrypting and checking every shard.
      const loaded = await loadManifest(a.store, manifestCid, { deep: true, expectedOwner: a.id.did })
      assert.deepEqual(loaded.body, body)
      assert.equal(loaded.jwt, imported.manifest.jwt)
      // Anyone can fetch and verify the (public) manifest over bitswap.
      const remote = await loadManifest(c.store, imported.manifestCid)
      assert.deepEqual(remote.body, body)
    })

    it('refuses a manifest whose shard counts do not match the stored shards (MANIFEST_INVALID)', async () => {
      // Swap the entries' counts between shards 0 and 1: consistent, signed, and wrong.
      const [e0, e1, e2] = body.shards
      assert.notDeepEqual(e0!.labelCounts, e1!.labelCounts)
      const forged = await buildManifest(a.id, {
        name: 'swapped',
        schema: body.schema,
        shards: [
          { cid: e0!.cid, count: e1!.count, labelCounts: e1!.labelCounts },
          { cid: e1!.cid, count: e0!.count, labelCounts: e0!.labelCounts },
          e2!
        ],
        source: 'synthetic',
        split: { kind: 'dirichlet', alpha: ALPHA, seed: SPLIT_SEED }
      })
      const { cid } = await a.store.add(new TextEncoder().encode(forged.jwt), { plain: true })
      // Signed and self-consistent: a shallow load accepts it …
      assert.equal((await loadManifest(a.store, cid)).body.name, 'swapped')
      // … a deep load decrypts the shards and refuses it.
      const err = await rejectsWith(loadManifest(a.store, cid, { deep: true }), 'MANIFEST_INVALID')
      assert.equal(err.fields.reason, 'shard-mismatch')
      assert.equal(err.fields.cid, e0!.cid)
      await a.store.unpin(cid)
    })

    for (const failAt of [2, 4]) {
      it(`a failed import (add #${failAt} fails) leaves nothing pinned`, async () => {
        class FailingStore extends ContentStore {
          adds = 0
          override async add(
            source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array,
            opts: AddOptions = {}
          ): Promise<AddResult> {
            if (++this.adds === failAt) throw new Error('disk full')
            return super.add(source, opts)
          }
        }
        const store = new FailingStore({ helia: a.helia, identity: a.id }, { worker: false, offline: true })
        const before = await pinned(a.store)
        await assert.rejects(
          importDataset(store, a.id, ds, {
            name: 'doomed',
            shards: 3,
            split: 'iid',
            seed: 1,
            source: 'synthetic'
          }),
          /disk full/
        )
        assert.equal(store.adds, failAt)
        assert.deepEqual(await pinned(a.store), before)
      })
    }

    it('refuses a store that encrypts for someone else, and unpins', async () => {
      const before = await pinned(a.store)
      const foreign = new ContentStore(
        { helia: a.helia, identity: mallory },
        { worker: false, offline: true }
      )
      const err = await rejectsWith(
        importDataset(foreign, a.id, ds, { name: 'x', shards: 2, split: 'iid', seed: 1, source: 's' }),
        'DATASET_ARGUMENT'
      )
      assert.match(err.message, /not for the owner/)
      assert.deepEqual(await pinned(a.store), before)
    })
  })

  describe('grants', () => {
    let grantJwt: string
    let id: string

    before(async () => {
      grantJwt = await createGrant(a.id, {
        manifest: body,
        manifestCid,
        grantee: b.id.did,
        purpose: 'job-1',
        keys: await ownerKeys([shardCids[0]!, shardCids[1]!])
      })
      id = grantId(grantJwt)
    })

    it('is a small JWT that fits a consent gossip message; its id is the CID of the JWT', async () => {
      assert.ok(grantJwt.length < grantConstants.MAX_DOCUMENT_BYTES)
      const msg = ConsentMessageSchema.safeParse({ type: 'grant', dataset: manifestCid, document: grantJwt })
      assert.equal(msg.success, true)
      const expected = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(grantJwt)))
      assert.equal(id, expected.toString())
    })

    it('B fetches the ciphertext over bitswap and decrypts the original shard', async () => {
      const opened = await openGrant(b.id, grantJwt, { manifest: body, manifestCid })
      assert.deepEqual(opened.claims.shards, [shardCids[0], shardCids[1]])
      assert.equal(opened.claims.purpose, 'job-1')
      assert.deepEqual(opened.keys.get(shardCids[0]!), await a.store.contentKey(CID.parse(shardCids[0]!)))

      const added = await grantsB.addGrant(grantJwt, body, { manifestCid })
      assert.deepEqual(
        { mine: added.mine, keysStored: added.keysStored, duplicate: added.duplicate },
        { mine: true, keysStored: true, duplicate: false }
      )
      assert.equal(await b.helia.blockstore.has(CID.parse(shardCids[0]!)), false)
      const { dataset, grant } = await readGrantedShard(b.store, grantsB, shardCids[0]!, { purpose: 'job-1' })
      assert.equal(await b.helia.blockstore.has(CID.parse(shardCids[0]!)), true)
      assert.deepEqual(dataset, expectedShard(0))
      assert.equal(grant.id, id)
      const second = await decryptShard(b.store, grantsB, shardCids[1]!, { purpose: 'job-1' })
      assert.deepEqual(second, expectedShard(1))

      // The grant is for job-1 only.
      const err = await rejectsWith(
        decryptShard(b.store, grantsB, shardCids[0]!, { purpose: 'job-2' }),
        'GRANT_MISSING'
      )
      assert.match(err.message, /job-1/)
    })

    it('lists and finds grants in the shape the receipts module looks up', async () => {
      const lookup: GrantLookup = grantsB
      const info = await lookup.find(id)
      assert.deepEqual(info, {
        id,
        dataset: manifestCid,
        shards: [shardCids[0], shardCids[1]],
        grantee: b.id.did,
        purpose: 'job-1',
        iat: info!.iat,
        owner: a.id.did,
        shardSizes: { [shardCids[0]!]: split[0]!.length, [shardCids[1]!]: split[1]!.length }
      })
      assert.deepEqual(await grantsB.list({ dataset: manifestCid }), [info])
      assert.deepEqual(await grantsB.list({ dataset: shardCids[2]! }), [])
      assert.equal(
        await grantsB.find('bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'),
        undefined
      )
    })

    it('without a grant, C can fetch the ciphertext bytes but cannot decrypt', async () => {
      const shard = CID.parse(shardCids[0]!)
      const env = await c.store.envelope(shard)
      const ciphertext = await collect(readFile(c.helia, env.ciphertext))
      const plain = encodeShard(ds, split[0]!)
      assert.ok(ciphertext.byteLength > plain.byteLength)
      assert.equal(Buffer.from(ciphertext).includes(Buffer.from(plain.subarray(64, 128))), false)
      await rejectsWith(collect(c.store.get(shard)), 'NOT_AUTHORIZED')

      // C keeps B's grant as a public record (checked against the manifest it loads), but it
      // opens nothing for C.
      const loaded = await loadManifest(c.store, manifestCid)
      const added = await grantsC.addGrant(grantJwt, loaded)
      assert.deepEqual({ mine: added.mine, keysStored: added.keysStored }, { mine: false, keysStored: false })
      await rejectsWith(decryptShard(c.store, grantsC, shard, { purpose: 'job-1' }), 'GRANT_MISSING')
      await rejectsWith(openGrant(c.id, grantJwt, { manifest: body }), 'GRANT_NOT_FOR_YOU')
      // B was not granted shard 2.
      await rejectsWith(decryptShard(b.store, grantsB, shardCids[2]!, { purpose: 'job-1' }), 'GRANT_MISSING')
      await rejectsWith(collect(b.store.get(CID.parse(shardCids[2]!))), 'NOT_AUTHORIZED')
    })

    it('refuses a grant signed by anyone but the dataset owner (GRANT_NOT_OWNER)', async () => {
      await rejectsWith(
        createGrant(mallory, {
          manifest: body,
          manifestCid,
          grantee: b.id.did,
          purpose: 'any',
          keys: new Map()
        }),
        'GRANT_NOT_OWNER'
      )
      // A forged grant with real keys, signed by mallory.
      const keys = await ownerKeys([shardCids[2]!])
      const forged = await mallory.signJwt({
        typ: 'shoal/grant',
        dataset: manifestCid,
        shards: [shardCids[2]],
        grantee: b.id.did,
        purpose: 'any',
        keys: await encryptForDids(keys.get(shardCids[2]!)!, [b.id.did])
      })
      const err = await rejectsWith(openGrant(b.id, forged, { manifest: body }), 'GRANT_NOT_OWNER')
      assert.match(err.message, new RegExp(grantId(forged)))
      await rejectsWith(grantsB.addGrant(forged, body), 'GRANT_NOT_OWNER')
      await rejectsWith(decryptShard(b.store, grantsB, shardCids[2]!, { purpose: 'any' }), 'GRANT_MISSING')

      // A grant altered after signing fails its signature.
      const [h, p, s] = grantJwt.split('.')
      const tampered = `${h}.${p}.${s!.startsWith('A') ? 'B' : 'A'}${s!.slice(1)}`
      const bad = await rejectsWith(openGrant(b.id, tampered, { manifest: body }), 'GRANT_INVALID')
      assert.equal(bad.fields.reason, 'signature')
      // A grant presented with another dataset's manifest, and a revocation presented as a grant.
      const other = { ...imported.manifest, cid: imported.shards[0]!.cid }
      const wrong = await rejectsWith(openGrant(b.id, grantJwt, { manifest: other }), 'GRANT_INVALID')
      assert.equal(wrong.fields.reason, 'dataset')
      const notAGrant = await createRevocation(a.id, grantId(grantJwt))
      const typ = await rejectsWith(grantsB.addGrant(notAGrant, body), 'GRANT_INVALID')
      assert.equal(typ.fields.reason, 'type')
    })

    it('revoke: keyFor throws GRANT_REVOKED naming the grant, and the keys are gone from the level db', async () => {
      const path = join(dir, 'b', 'ledger', 'grants')
      const keys = await ownerKeys([shardCids[0]!, shardCids[1]!])
      await grantsB.stop()
      const before = await dump(path)
      assert.equal(before.filter(([k]) => k.startsWith('!keys!')).length, 2)
      assert.ok(before.some(([, v]) => holdsKey(v, keys.get(shardCids[0]!)!)))
      await grantsB.start()

      // Only the owner can revoke.
      const fake = await createRevocation(mallory, id)
      const refused = await rejectsWith(grantsB.addRevocation(fake), 'REVOCATION_INVALID')
      assert.equal(refused.fields.reason, 'not-owner')
      assert.ok(await grantsB.keyFor(shardCids[0]!, { purpose: 'job-1' }))

      const revocation = await createRevocation(a.id, id, {
        reason: 'consent withdrawn',
        dataset: manifestCid
      })
      assert.ok(revocation.length < grantConstants.MAX_DOCUMENT_BYTES)
      const rev = await verifyRevocation(revocation, { id, owner: a.id.did, dataset: manifestCid })
      assert.equal(rev.grant, id)
      const res = await grantsB.addRevocation(revocation)
      assert.deepEqual(res, { grant: id, status: 'revoked', keysDeleted: 2 })

      const err = await rejectsWith(grantsB.keyFor(shardCids[0]!, { purpose: 'job-1' }), 'GRANT_REVOKED')
      assert.equal(err.fields.grant, id)
      assert.match(err.message, new RegExp(`grant ${id}`))
      assert.match(err.message, /consent withdrawn/)
      await rejectsWith(decryptShard(b.store, grantsB, shardCids[1]!, { purpose: 'job-1' }), 'GRANT_REVOKED')
      assert.equal((await grantsB.find(id))?.revokedAt, rev.revokedAt)

      // Straight from the database: no key entries, no key bytes anywhere.
      await grantsB.stop()
      const after = await dump(path)
      await grantsB.start()
      assert.deepEqual(
        after.filter(([k]) => k.startsWith('!keys!')),
        []
      )
      for (const key of keys.values())
        assert.equal(
          after.some(([, v]) => holdsKey(v, key)),
          false
        )
      assert.ok(
        after.some(([k]) => k === `!grants!${id}`),
        'the grant stays as a (revoked) record'
      )

      // Receiving the grant again does not bring the keys back.
      const again = await grantsB.addGrant(grantJwt, body, { manifestCid })
      assert.deepEqual(
        { keysStored: again.keysStored, duplicate: again.duplicate },
        { keysStored: false, duplicate: true }
      )
      await rejectsWith(grantsB.keyFor(shardCids[0]!, { purpose: 'job-1' }), 'GRANT_REVOKED')
      assert.equal((await grantsB.addRevocation(revocation)).status, 'already-revoked')
    })

    it('expiry: GRANT_EXPIRED naming the grant; an expired grant loses its keys', async () => {
      const exp = now() + 3600
      const jwt = await createGrant(a.id, {
        manifest: body,
        manifestCid,
        grantee: b.id.did,
        purpose: 'any',
        expiresAt: exp,
        keys: await ownerKeys([shardCids[2]!])
      })
      const gid = grantId(jwt)
      await grantsB.addGrant(jwt, body, { manifestCid })
      assert.deepEqual(
        await decryptShard(b.store, grantsB, shardCids[2]!, { purpose: 'job-9', now: exp - 1 }),
        expectedShard(2)
      )
      const err = await rejectsWith(
        grantsB.keyFor(shardCids[2]!, { purpose: 'job-9', now: exp }),
        'GRANT_EXPIRED'
      )
      assert.equal(err.fields.grant, gid)
      assert.match(err.message, new RegExp(`grant ${gid}`))
      // The keys went with it: even an earlier clock cannot bring them back.
      await rejectsWith(grantsB.keyFor(shardCids[2]!, { purpose: 'job-9', now: exp - 10 }), 'GRANT_EXPIRED')
      await rejectsWith(openGrant(b.id, jwt, { manifest: body, now: exp }), 'GRANT_EXPIRED')
      assert.equal((await grantsB.find(gid))?.exp, exp)
    })

    it('sweep deletes the keys of grants that have expired', async () => {
      const exp = now() + 600
      const jwt = await createGrant(a.id, {
        manifest: body,
        manifestCid,
        grantee: b.id.did,
        purpose: 'job-7',
        expiresAt: exp,
        keys: await ownerKeys([shardCids[0]!])
      })
      await grantsB.addGrant(jwt, body)
      assert.equal(await grantsB.sweep({ now: exp - 1 }), 0)
      assert.ok(await grantsB.keyFor(shardCids[0]!, { purpose: 'job-7' }))
      assert.equal(await grantsB.sweep({ now: exp }), 1)
      await rejectsWith(grantsB.keyFor(shardCids[0]!, { purpose: 'job-7' }), 'GRANT_EXPIRED')
    })

    it('a revocation with endsAt shortens the expiry: usable until then, expired from then; never extends', async () => {
      const exp = now() + 86_400
      const jwt = await createGrant(a.id, {
        manifest: body,
        manifestCid,
        grantee: b.id.did,
        purpose: 'job-8',
        expiresAt: exp,
        keys: await ownerKeys([shardCids[1]!])
      })
      const gid = grantId(jwt)
      await grantsB.addGrant(jwt, body)
      const endsAt = now() + 600
      const shortening = await createRevocation(a.id, gid, { endsAt, reason: 'expiry shortened' })
      assert.equal((await verifyRevocation(shortening, { id: gid, owner: a.id.did })).endsAt, endsAt)
      // Only the owner may shorten it.
      await rejectsWith(
        grantsB.addRevocation(await createRevocation(mallory, gid, { endsAt })),
        'REVOCATION_INVALID'
      )
      assert.deepEqual(await grantsB.addRevocation(shortening), {
        grant: gid,
        status: 'shortened',
        keysDeleted: 0
      })
      const info = await grantsB.find(gid)
      assert.deepEqual([info?.exp, info?.signedExp, info?.revokedAt], [endsAt, exp, undefined])
      // Still usable before endsAt: nothing ends before then.
      assert.ok(await grantsB.keyFor(shardCids[1]!, { purpose: 'job-8', now: endsAt - 1 }))
      // A later endsAt cannot give back what the owner took: the earliest end holds.
      const later = await createRevocation(a.id, gid, { endsAt: endsAt + 60 })
      assert.equal((await grantsB.addRevocation(later)).status, 'not-shortened')
      assert.equal((await grantsB.find(gid))?.exp, endsAt)
      assert.deepEqual((await grantsB.documents(gid))?.shortenings, [shortening])
      const err = await rejectsWith(
        grantsB.keyFor(shardCids[1]!, { purpose: 'job-8', now: endsAt }),
        'GRANT_EXPIRED'
      )
      assert.equal(err.fields.grant, gid)
      await assert.rejects(
        createRevocation(a.id, gid, { endsAt: now() - 1 }),
        /endsAt must be a time in the future/
      )
    })

    it('a shortening that arrives before its grant is applied when the grant arrives', async () => {
      const store = new GrantStore({ identity: b.id }, { path: join(dir, 'b3-grants') })
      await store.start()
      try {
        const jwt = await createGrant(a.id, {
          manifest: body,
          manifestCid,
          grantee: b.id.did,
          purpose: 'job-5',
          keys: await ownerKeys([shardCids[2]!])
        })
        const gid = grantId(jwt)
        const endsAt = now() + 300
        assert.equal(
          (await store.addRevocation(await createRevocation(a.id, gid, { endsAt }))).status,
          'pending'
        )
        const added = await store.addGrant(jwt, body)
        assert.equal(added.keysStored, true)
        assert.deepEqual([added.grant.exp, added.grant.signedExp], [endsAt, null])
        await rejectsWith(store.keyFor(shardCids[2]!, { purpose: 'job-5', now: endsAt }), 'GRANT_EXPIRED')
      } finally {
        await store.stop()
      }
    })

    it('a revocation that arrives before its grant is applied when the grant arrives', async () => {
      const store = new GrantStore({ identity: b.id }, { path: join(dir, 'b2-grants') })
      await store.start()
      try {
        const jwt = await createGrant(a.id, {
          manifest: body,
          manifestCid,
          grantee: b.id.did,
          purpose: 'job-3',
          keys: await ownerKeys([shardCids[2]!])
        })
        const gid = grantId(jwt)
        // A revocation by someone else waits too, but cannot displace the owner's.
        const fake = await store.addRevocation(await createRevocation(mallory, gid))
        const early = await store.addRevocation(await createRevocation(a.id, gid))
        assert.deepEqual([fake.status, early.status], ['pending', 'pending'])
        const added = await store.addGrant(jwt, body)
        assert.equal(added.keysStored, false)
        assert.ok(added.grant.revokedAt !== undefined)
        const err = await rejectsWith(store.keyFor(shardCids[2]!, { purpose: 'job-3' }), 'GRANT_REVOKED')
        assert.equal(err.fields.grant, gid)

        // Only a forged revocation waiting: the grant arrives usable.
        const other = await createGrant(a.id, {
          manifest: body,
          manifestCid,
          grantee: b.id.did,
          purpose: 'job-4',
          keys: await ownerKeys([shardCids[2]!])
        })
        await store.addRevocation(await createRevocation(mallory, grantId(other)))
        assert.equal((await store.addGrant(other, body)).keysStored, true)
        assert.ok(await store.keyFor(shardCids[2]!, { purpose: 'job-4' }))
      } finally {
        await store.stop()
      }
    })

    it(`a grant of ${grantConstants.MAX_GRANT_SHARDS} shards still fits a consent message; one more is refused`, async () => {
      const n = grantConstants.MAX_GRANT_SHARDS
      const cids = await Promise.all(
        Array.from({ length: n + 1 }, async (_, i) =>
          CID.createV1(0x71, await sha256.digest(new TextEncoder().encode(`shard-${i}`))).toString()
        )
      )
      const big = await buildManifest(a.id, {
        name: 'big',
        schema: { shape: [1], dtype: 'uint8', classes: 2 },
        shards: cids.map((cid) => ({ cid, count: 1, labelCounts: [1, 0] })),
        source: 'synthetic',
        split: { kind: 'iid', seed: 1 }
      })
      const keys = new Map(cids.map((cid, i) => [cid, new Uint8Array(32).fill(i)]))
      const input = { manifest: big.body, manifestCid, grantee: b.id.did, purpose: 'any' }
      const tooMany = await rejectsWith(createGrant(a.id, { ...input, keys }), 'GRANT_INVALID')
      assert.equal(tooMany.fields.reason, 'shards')
      keys.delete(cids[n]!)
      const jwt = await createGrant(a.id, { ...input, keys })
      assert.ok(jwt.length <= grantConstants.MAX_DOCUMENT_BYTES, `${jwt.length} characters`)
      const envelope = JSON.stringify({ v: 1, body: { type: 'grant', dataset: manifestCid, document: jwt } })
      assert.ok(envelope.length + 4096 <= 32_768)
      const opened = await openGrant(b.id, jwt, { manifest: big.body })
      assert.deepEqual(opened.keys.get(cids[5]!), new Uint8Array(32).fill(5))
    })
  })
})
