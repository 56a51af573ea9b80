import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { unixfs } from '@helia/unixfs'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import * as dagCbor from '@ipld/dag-cbor'
import { FsBlockstore } from 'blockstore-fs'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { Identity, generateKeypair } from '../../../src/identity/index.js'
import {
  ContentStore,
  encodeEnvelope,
  readFile,
  storageConstants,
  type ShoalHelia
} from '../../../src/storage/index.js'
import { codeOf, drain, inPieces, isPrefix, seededBytes, testRepo, type TestRepo } from './helpers.js'

const CS = 65_536

async function toArray<T>(source: AsyncIterable<T> | Iterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of source) out.push(x)
  return out
}

async function leafCids(helia: ShoalHelia, root: CID): Promise<CID[]> {
  if (root.code === 0x55) return [root]
  const codec = await helia.getCodec(0x70)
  const parts: Uint8Array[] = []
  for await (const p of helia.blockstore.get(root)) parts.push(p)
  // (a root is small: one block)
  const node = codec.decode(Buffer.concat(parts)) as { Links: Array<{ Hash: CID }> }
  return node.Links.map((l) => l.Hash)
}

async function collectLeaves(helia: ShoalHelia, root: CID): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const leaf of readFile(helia, root)) out.push(leaf)
  return out
}

for (const mode of ['worker', 'main thread'] as const)
  describe(`storage/ContentStore (crypto on the ${mode})`, function () {
    this.timeout(60_000)
    // workerMinBytes 0: the worker handles every object, small ones included.
    const cryptoInit = mode === 'worker' ? { workerMinBytes: 0 } : { worker: false }
    let repo: TestRepo
    let helia: ShoalHelia
    let owner: Identity
    let store: ContentStore

    before(async () => {
      repo = await testRepo()
      helia = await repo.open()
      owner = Identity.fromKeypair(generateKeypair())
      store = new ContentStore({ helia, identity: owner }, { chunkSize: CS, offline: true, ...cryptoInit })
    })

    after(async () => {
      await store.stop()
      await helia.stop()
      await repo.cleanup()
    })

    describe('round trips', () => {
      const sizes = [0, 1, CS - 1, CS, CS + 1, 2 * CS, 5 * CS + 123]
      for (const [i, size] of sizes.entries()) {
        it(`encrypted, ${size} bytes as a stream of random pieces`, async () => {
          const data = seededBytes(100 + i, size)
          const res = await store.add(inPieces(data, i, 3 * CS), { name: `obj-${i}` })
          assert.equal(res.encrypted, true)
          assert.equal(res.size, size)
          assert.equal(res.cid.code, dagCbor.code)
          const { bytes, err } = await drain(store.get(res.cid))
          assert.equal(err, undefined)
          assert.deepEqual(bytes, data)

          const st = await store.stat(res.cid)
          assert.equal(st.encrypted, true)
          assert.equal(st.size, size)
          assert.equal(st.chunkSize, CS)
          assert.equal(st.name, `obj-${i}`)
          assert.equal(st.pinned, true)
          assert.equal(st.owner, owner.did)
          // One sealed chunk per leaf, none of them the plaintext, each under the CID of its hash.
          const leaves = await collectLeaves(helia, st.ciphertextCid!)
          const cids = await leafCids(helia, st.ciphertextCid!)
          assert.equal(cids.length, leaves.length)
          for (const [j, c] of cids.entries()) {
            assert.equal(c.code, 0x55)
            assert.deepEqual(
              c.multihash.digest,
              new Uint8Array(createHash('sha256').update(leaves[j]!).digest())
            )
          }
          assert.equal(leaves.length, size === 0 ? 1 : Math.ceil(size / CS))
          for (const [j, leaf] of leaves.entries()) {
            assert.equal(leaf.byteLength, Math.min(CS, size - j * CS) + storageConstants.TAG_BYTES)
            // A ciphertext byte equals its plaintext byte with probability 1/256, so only a prefix of 8 bytes
            // or more says anything (a 1-byte chunk matched its ciphertext in one CI run in 256).
            const plain = data.subarray(j * CS, j * CS + 32)
            if (plain.byteLength >= 8) assert.ok(!isPrefix(plain, leaf))
          }
        })
      }

      it('encrypted with the default 1 MiB chunks: exact boundary and multi-chunk, one buffer in', async () => {
        const big = new ContentStore({ helia, identity: owner }, { offline: true, ...cryptoInit })
        for (const size of [storageConstants.DEFAULT_CHUNK_SIZE, 2.5 * storageConstants.DEFAULT_CHUNK_SIZE]) {
          const data = seededBytes(size, size)
          const res = await big.add(data)
          const { bytes, err } = await drain(big.get(res.cid))
          assert.equal(err, undefined)
          assert.deepEqual(bytes, data)
          assert.equal((await big.stat(res.cid)).chunkSize, storageConstants.DEFAULT_CHUNK_SIZE)
        }
      })

      it('the envelope records algorithm, sizes, hash and ciphertext, and no plaintext', async () => {
        const data = seededBytes(5, 3 * CS + 10)
        const progress: number[] = []
        const res = await store.add(data, { name: 'x', onProgress: (n) => progress.push(n) })
        assert.equal(progress.at(-1), data.byteLength)
        const env = await store.envelope(res.cid)
        assert.equal(env.v, 1)
        assert.equal(env.alg, 'AES-256-GCM')
        assert.equal(env.size, data.byteLength)
        assert.deepEqual(env.sha256, new Uint8Array(createHash('sha256').update(data).digest()))
        assert.equal(env.wrappedKey.recipients?.length, 1)
        const raw = Buffer.concat(await toArray(helia.blockstore.get(res.cid)))
        assert.equal(raw.indexOf(Buffer.from(data.subarray(0, 16))), -1)
      })

      it('ChaCha20-Poly1305 objects round trip', async () => {
        const chacha = new ContentStore(
          { helia, identity: owner },
          { chunkSize: CS, algorithm: 'CHACHA20-POLY1305', ...cryptoInit }
        )
        const data = seededBytes(6, 2 * CS + 5)
        const res = await chacha.add(data)
        assert.equal((await chacha.stat(res.cid)).algorithm, 'CHACHA20-POLY1305')
        // Any store can read it: the algorithm comes from the envelope.
        assert.deepEqual((await drain(store.get(res.cid))).bytes, data)
      })

      it('plain: ordinary UnixFS, same CID as @helia/unixfs, readable by UnixFS', async () => {
        const data = seededBytes(7, 3 * CS + 99)
        const res = await store.add(inPieces(data, 7, CS), { plain: true, name: 'public' })
        assert.equal(res.encrypted, false)
        assert.equal(res.size, data.byteLength)
        assert.equal(res.cid.toString(), (await unixfs(helia).addBytes(data)).toString())
        assert.deepEqual((await drain(store.get(res.cid))).bytes, data)
        assert.deepEqual(Buffer.concat(await toArray(unixfs(helia).cat(res.cid))), Buffer.from(data))
        const st = await store.stat(res.cid)
        assert.deepEqual(
          { encrypted: st.encrypted, size: st.size, pinned: st.pinned },
          { encrypted: false, size: data.byteLength, pinned: true }
        )
        // Adding the same public bytes again is idempotent.
        assert.equal((await store.add(data, { plain: true })).cid.toString(), res.cid.toString())
        // Any UnixFS file reads back: CIDv0 with dag-pb leaves, small chunks, a deeper tree.
        const fs = unixfs(helia)
        const v0 = await fs.addBytes(data, {
          cidVersion: 0,
          rawLeaves: false,
          chunker: fixedSize({ chunkSize: 1000 }),
          layout: balanced({ maxChildrenPerNode: 7 })
        })
        assert.equal(v0.version, 0)
        assert.deepEqual((await drain(store.get(v0))).bytes, data)
        const dir = await fs.addDirectory()
        assert.equal(codeOf((await drain(store.get(dir))).err), 'UNSUPPORTED_FORMAT')
        const empty = await store.add(new Uint8Array(0), { plain: true })
        assert.deepEqual((await drain(store.get(empty.cid))).bytes, new Uint8Array(0))
      })

      it('an aborted add stops', async () => {
        const ctl = new AbortController()
        ctl.abort()
        await assert.rejects(store.add(seededBytes(1, 10), { signal: ctl.signal }), { name: 'AbortError' })
        // Aborted in the middle of a stream.
        const mid = new AbortController()
        const source = (async function* () {
          yield seededBytes(2, 3 * CS)
          mid.abort()
          yield seededBytes(3, 3 * CS)
        })()
        await assert.rejects(store.add(source, { signal: mid.signal }), { name: 'AbortError' })
      })

      if (mode === 'worker') {
        it("a short final chunk's buffer holds no stale bytes beyond the chunk", async () => {
          const data = seededBytes(300, 2 * CS + 10)
          const { cid } = await store.add(data)
          const chunks: Uint8Array[] = []
          for await (const c of store.get(cid)) chunks.push(c)
          const last = chunks.at(-1)!
          assert.equal(last.byteLength, 10)
          const tail = new Uint8Array(last.buffer, last.byteOffset + last.byteLength)
          assert.ok(tail.byteLength > 0 && tail.every((b) => b === 0))
        })
      }

      it('concurrent adds and gets, and a get abandoned half way, leave the store working', async () => {
        const datas = [0, 1, 2, 3].map((i) => seededBytes(200 + i, 4 * CS + i * 1000))
        const added = await Promise.all(datas.map(async (d, i) => store.add(inPieces(d, i, CS))))
        const read = await Promise.all(added.map(async (a) => drain(store.get(a.cid))))
        for (const [i, r] of read.entries()) assert.deepEqual(r.bytes, datas[i])
        for await (const first of store.get(added[0]!.cid)) {
          assert.ok(first.byteLength > 0 && isPrefix(first, datas[0]!))
          break
        }
        const ctl = new AbortController()
        const aborted = drain(store.get(added[1]!.cid, { signal: ctl.signal }))
        ctl.abort()
        assert.equal((await aborted).err instanceof Error, true)
        assert.deepEqual((await drain(store.get(added[2]!.cid))).bytes, datas[2])
      })
    })

    describe('tampering is detected (INTEGRITY) and no wrong byte is returned', () => {
      const data = seededBytes(42, 6 * CS + 1000)
      let cid: CID

      before(async () => {
        cid = (await store.add(data)).cid
      })

      /** A new envelope like the original but with other fields (a forged or corrupted copy). */
      async function forge(changes: Record<string, unknown>): Promise<CID> {
        const env = await store.envelope(cid)
        const { cid: forged, bytes } = await encodeEnvelope({ ...env, ...changes })
        await helia.blockstore.put(forged, bytes)
        return forged
      }

      /** A ciphertext DAG made of these leaves, laid out as ContentStore does. */
      async function ciphertextOf(leaves: Uint8Array[]): Promise<CID> {
        return unixfs(helia).addByteStream(
          (async function* () {
            yield* leaves
          })(),
          { chunker: (s) => s, rawLeaves: true, cidVersion: 1 }
        )
      }

      async function expectIntegrity(target: CID): Promise<Uint8Array> {
        const { bytes, err } = await drain(store.get(target))
        assert.equal(codeOf(err), 'INTEGRITY', String(err))
        assert.ok(isPrefix(bytes, data), 'yielded bytes must be a prefix of the plaintext')
        return bytes
      }

      it('a flipped byte in a ciphertext block inside the blockstore', async () => {
        const env = await store.envelope(cid)
        const leaves = await leafCids(helia, env.ciphertext)
        const victim = leaves[3]!
        const original = Buffer.concat(await toArray(helia.blockstore.get(victim)))
        const flipped = Buffer.from(original)
        flipped[1234]! ^= 0x80
        const raw = new FsBlockstore(repo.blocksPath)
        await raw.put(victim, flipped)
        try {
          const bytes = await expectIntegrity(cid)
          assert.equal(
            bytes.byteLength,
            3 * CS,
            'the chunks before the damaged one were verified and yielded'
          )
        } finally {
          await raw.put(victim, original)
        }
        assert.deepEqual((await drain(store.get(cid))).bytes, data)
      })

      it('truncation: the last chunk dropped (length kept, or length fixed to match)', async () => {
        const env = await store.envelope(cid)
        const leaves = await collectLeaves(helia, env.ciphertext)
        const truncated = await ciphertextOf(leaves.slice(0, -1))
        await expectIntegrity(await forge({ ciphertext: truncated }))
        await expectIntegrity(await forge({ ciphertext: truncated, size: 6 * CS }))
      })

      it('two chunks swapped, a chunk duplicated, a chunk appended', async () => {
        const env = await store.envelope(cid)
        const l = await collectLeaves(helia, env.ciphertext)
        await expectIntegrity(
          await forge({ ciphertext: await ciphertextOf([l[0]!, l[2]!, l[1]!, ...l.slice(3)]) })
        )
        await expectIntegrity(await forge({ ciphertext: await ciphertextOf([l[0]!, l[0]!, ...l.slice(2)]) }))
        await expectIntegrity(await forge({ ciphertext: await ciphertextOf([...l, l[1]!]) }))
      })

      it("the envelope's length or hash altered", async () => {
        await expectIntegrity(await forge({ size: data.byteLength + 1 }))
        await expectIntegrity(await forge({ size: data.byteLength - 1 }))
        const badHash = new Uint8Array(32)
        const bytes = await expectIntegrity(await forge({ sha256: badHash }))
        // Every chunk authenticated, so all of it was yielded before the final hash check.
        assert.deepEqual(bytes, data)
      })

      it('the envelope re-pointed at another object of the same owner (other key): refused', async () => {
        const other = await store.add(seededBytes(43, 6 * CS + 1000))
        const otherEnv = await store.envelope(other.cid)
        await expectIntegrity(await forge({ ciphertext: otherEnv.ciphertext }))
      })

      it('a malformed envelope', async () => {
        const bytes = dagCbor.encode({ type: storageConstants.ENVELOPE_TYPE, v: 1, alg: 'AES-256-GCM' })
        const bad = CID.createV1(dagCbor.code, await sha256.digest(bytes))
        await helia.blockstore.put(bad, bytes)
        assert.equal(codeOf((await drain(store.get(bad))).err), 'INTEGRITY')
        const future = await forge({ v: 2 })
        assert.equal(codeOf((await drain(store.get(future))).err), 'UNSUPPORTED_FORMAT')
      })
    })

    describe('keys', () => {
      it('another identity cannot decrypt (NOT_AUTHORIZED), but can with the content key', async () => {
        const data = seededBytes(8, 2 * CS)
        const { cid } = await store.add(data)
        const stranger = new ContentStore(
          { helia, identity: Identity.fromKeypair(generateKeypair()) },
          cryptoInit
        )
        const { bytes, err } = await drain(stranger.get(cid))
        assert.equal(codeOf(err), 'NOT_AUTHORIZED')
        assert.equal(bytes.byteLength, 0)
        await assert.rejects(stranger.contentKey(cid), { code: 'NOT_AUTHORIZED' })

        const key = await store.contentKey(cid)
        assert.equal(key.byteLength, 32)
        assert.deepEqual((await drain(stranger.get(cid, { contentKey: key }))).bytes, data)

        const wrong = new Uint8Array(32).fill(7)
        assert.equal(codeOf((await drain(stranger.get(cid, { contentKey: wrong }))).err), 'NOT_AUTHORIZED')
      })

      it('each object gets its own key', async () => {
        const data = seededBytes(9, 100)
        const a = await store.add(data)
        const b = await store.add(data)
        assert.notEqual(a.cid.toString(), b.cid.toString())
        assert.notDeepEqual(await store.contentKey(a.cid), await store.contentKey(b.cid))
      })
    })

    describe('not found', () => {
      let missing: CID
      before(async () => {
        missing = CID.createV1(dagCbor.code, await sha256.digest(new TextEncoder().encode('nothing here')))
      })

      it('an unknown CID is NOT_FOUND at once when offline', async () => {
        const t = Date.now()
        assert.equal(codeOf((await drain(store.get(missing))).err), 'NOT_FOUND')
        await assert.rejects(store.stat(missing), { code: 'NOT_FOUND' })
        const plainMissing = CID.createV1(0x55, await sha256.digest(new TextEncoder().encode('nope')))
        assert.equal(codeOf((await drain(store.get(plainMissing))).err), 'NOT_FOUND')
        assert.ok(Date.now() - t < 2000)
      })

      it('online, an unknown CID is NOT_FOUND after the root timeout, and a signal aborts', async () => {
        const online = new ContentStore({ helia, identity: owner }, { rootTimeoutMs: 300 })
        const t = Date.now()
        assert.equal(codeOf((await drain(online.get(missing))).err), 'NOT_FOUND')
        assert.ok(Date.now() - t < 5000)
        const { err } = await drain(online.get(missing, { signal: AbortSignal.timeout(100) }))
        // The caller's abort surfaces as such, not as NOT_FOUND.
        assert.match(String((err as Error).name), /AbortError|TimeoutError/)
      })

      it('a CID of another codec is UNSUPPORTED_FORMAT', async () => {
        const json = CID.createV1(0x0200, await sha256.digest(new TextEncoder().encode('{}')))
        assert.equal(codeOf((await drain(store.get(json))).err), 'UNSUPPORTED_FORMAT')
      })
    })

    describe('pins and gc', () => {
      it('pins lists objects; unpin + gc removes their blocks and leaves the others', async () => {
        const keep = await store.add(seededBytes(10, 3 * CS), { name: 'keep' })
        const drop = await store.add(seededBytes(11, 3 * CS), { name: 'drop' })
        const dropPlain = await store.add(seededBytes(12, 3 * CS), { plain: true, name: 'drop-plain' })
        const dropCt = (await store.envelope(drop.cid)).ciphertext
        const dropLeaves = await leafCids(helia, dropCt)

        const pins = await toArray(store.pins())
        const byCid = new Map(pins.map((p) => [p.cid.toString(), p]))
        assert.deepEqual(
          [byCid.get(keep.cid.toString())?.encrypted, byCid.get(keep.cid.toString())?.name],
          [true, 'keep']
        )
        assert.equal(byCid.get(dropPlain.cid.toString())?.encrypted, false)

        await store.unpin(drop.cid)
        await store.unpin(dropPlain.cid)
        assert.equal((await store.stat(drop.cid)).pinned, false)
        await assert.rejects(store.unpin(drop.cid), { code: 'NOT_FOUND' })

        const { removed } = await store.gc()
        // The blockstore keys blocks by multihash, so compare multihashes.
        const mh = (c: CID): string => Buffer.from(c.multihash.bytes).toString('hex')
        const removedSet = new Set(removed.map(mh))
        for (const c of [drop.cid, dropCt, ...dropLeaves, dropPlain.cid]) {
          assert.ok(removedSet.has(mh(c)), `gc removed ${c.toString()}`)
          assert.equal(await helia.blockstore.has(c), false)
        }
        assert.equal(codeOf((await drain(store.get(drop.cid))).err), 'NOT_FOUND')
        assert.equal(codeOf((await drain(store.get(dropPlain.cid))).err), 'NOT_FOUND')
        assert.deepEqual((await drain(store.get(keep.cid))).bytes, seededBytes(10, 3 * CS))
        assert.ok(!removedSet.has(mh(keep.cid)))
      })

      it('a ciphertext block missing under a pinned envelope is NOT_FOUND offline', async () => {
        const data = seededBytes(13, 4 * CS)
        const { cid } = await store.add(data)
        const leaves = await leafCids(helia, (await store.envelope(cid)).ciphertext)
        const raw = new FsBlockstore(repo.blocksPath)
        const saved = Buffer.concat(await toArray(raw.get(leaves[2]!)))
        await raw.delete(leaves[2]!)
        try {
          const { bytes, err } = await drain(store.get(cid))
          assert.equal(codeOf(err), 'NOT_FOUND')
          assert.ok(isPrefix(bytes, data))
        } finally {
          await raw.put(leaves[2]!, saved)
        }
      })
    })
  })
