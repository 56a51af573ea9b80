/**
 * Text datasets on a node: `NodeDatasets.import` of a plain-text file or the bundled Moby Dick
 * cuts the byte tokens into contiguous shards and a held-out shard, each encrypted for the owner,
 * under a signed manifest naming the kind (`text`) and the tokenizer (`bytes`); a grant covers
 * them like any dataset's shards; refusals are named.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { Identity, keypairFromSeed } from '../../../src/identity/index.js'
import { libp2pOptions } from '../../../src/p2p/index.js'
import {
  ContentStore,
  TEXT_HELD_OUT,
  createHeliaNode,
  loadManifest,
  textOf,
  type ShoalHelia
} from '../../../src/storage/index.js'
import { mobyDick } from '../../../src/training/text/index.js'
import { NodeDatasets } from '../../../src/node/datasets.js'
import { NodeDb } from '../../../src/node/db.js'
import type { NodeSwarm } from '../../../src/node/swarm.js'

function identityOf(seed: number): Identity {
  const bytes = new Uint8Array(32).fill(seed)
  bytes[0] = 0x6b
  return Identity.fromKeypair(keypairFromSeed(bytes))
}

const codeOf = (err: unknown): string | undefined => (err as { code?: string }).code

/** A text of `n` bytes, with some multi-byte UTF-8 characters, that does not repeat quickly. */
function someText(n: number): Uint8Array {
  const words = ['whale', 'sea', 'Ahab', 'harpoon', 'déjà', 'vu', 'ship', 'mast', '—', 'Ishmael']
  let s = ''
  for (let i = 0; s.length < n; i++) s += `${words[(i * 7 + (i >> 3)) % words.length]} `
  return new TextEncoder().encode(s).subarray(0, n)
}

describe('node/datasets: text datasets', function () {
  this.timeout(60_000)
  let dir: string
  let helia: ShoalHelia
  let store: ContentStore
  let db: NodeDb
  let datasets: NodeDatasets
  const owner = identityOf(0x01)
  const trainer = identityOf(0x02)

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-text-'))
    helia = await createHeliaNode({
      blocksPath: join(dir, 'blocks'),
      datastorePath: join(dir, 'datastore'),
      libp2p: libp2pOptions({ privateKey: owner.libp2pPrivateKey })
    })
    store = new ContentStore({ helia, identity: owner }, { worker: false, rootTimeoutMs: 10_000 })
    db = new NodeDb(join(dir, 'db'))
    await db.start()
    const swarm = { onEnter: () => {} } as unknown as NodeSwarm
    datasets = new NodeDatasets({ store, identity: owner, db, swarm, grantsPath: join(dir, 'grants') })
    await datasets.start()
  })

  after(async () => {
    await datasets?.stop()
    await db?.stop()
    await store?.stop()
    await helia?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('imports a text file as contiguous encrypted shards and a held-out shard, with kind and tokenizer in the manifest', async () => {
    const text = someText(3_000)
    const path = join(dir, 'book.txt')
    await writeFile(path, text)
    const rec = await datasets.import({
      source: 'text',
      text: path,
      name: 'book',
      shards: 3,
      split: 'iid',
      heldOut: 0.1
    })
    assert.equal(rec.count, 3_000)
    assert.equal(rec.split, 'contiguous(held-out 0.1)')
    assert.deepEqual(
      rec.shards.map((s) => s.count),
      [900, 900, 900, 300]
    )
    // The label counts say which shard is held out.
    assert.deepEqual(
      rec.shards.map((s) => s.labelCounts),
      [
        [900, 0],
        [900, 0],
        [900, 0],
        [0, 300]
      ]
    )

    const { body } = await loadManifest(store, rec.manifestCid, { deep: true, expectedOwner: owner.did })
    assert.equal(body.schema.kind, 'text')
    assert.equal(body.schema.tokenizer, 'bytes')
    assert.deepEqual(body.schema.labelNames, ['train', 'held-out'])
    assert.deepEqual(body.split, { kind: 'contiguous', heldOut: 0.1 })
    assert.equal(body.source, 'book.txt')

    // Encrypted; the owner reads back the text, in order, the tail held out.
    const parts = []
    for (const s of rec.shards) {
      assert.equal((await store.stat(CID.parse(s.cid))).encrypted, true)
      parts.push(textOf(await datasets.readAny(s.cid, 'any')))
    }
    assert.deepEqual(Buffer.concat(parts.map((p) => p.train)), Buffer.from(text.subarray(0, 2_700)))
    assert.deepEqual(Buffer.from(parts[3]!.heldOut), Buffer.from(text.subarray(2_700)))
    assert.ok(parts.slice(0, 3).every((p) => p.heldOut.length === 0))
    assert.ok((await datasets.readAny(rec.shards[3]!.cid, 'any')).labels.every((l) => l === TEXT_HELD_OUT))

    // A grant covers every shard, the held-out one included, as for any dataset.
    const g = await datasets.grant({ dataset: rec.manifestCid, grantee: trainer.did, purpose: 'any' })
    const info = await datasets.grants.find(g.grant)
    assert.deepEqual(info?.shards.slice().sort(), rec.shards.map((s) => s.cid).sort())
  })

  it('imports the bundled Moby Dick, cut to maxBytes', async () => {
    const rec = await datasets.import({
      source: 'moby-dick',
      name: 'moby',
      shards: 2,
      split: 'iid',
      maxBytes: 20_000
    })
    assert.equal(rec.count, 20_000)
    assert.deepEqual(
      rec.shards.map((s) => s.count),
      [9_500, 9_500, 1_000]
    )
    const first = textOf(await datasets.readAny(rec.shards[0]!.cid, 'any')).train
    assert.deepEqual(Buffer.from(first), Buffer.from(new TextEncoder().encode(mobyDick()).subarray(0, 9_500)))
    assert.equal((await loadManifest(store, rec.manifestCid)).body.source, 'moby-dick')
  })

  it('refuses an empty file, a missing file, no path and a bad shard count, by name', async () => {
    const empty = join(dir, 'empty.txt')
    await writeFile(empty, '')
    const before = (await datasets.list()).length
    const refused = async (req: Record<string, unknown>, code: string, message: RegExp): Promise<void> => {
      await assert.rejects(
        datasets.import({ name: 'bad', shards: 2, split: 'iid', source: 'text', ...req }),
        (err: Error) => {
          assert.equal(codeOf(err), code, err.message)
          assert.match(err.message, message)
          return true
        }
      )
    }
    await refused({ text: empty }, 'TEXT_EMPTY', /empty\.txt is empty/)
    await refused({ text: join(dir, 'nowhere.txt') }, 'DATASET_SOURCE', /cannot read .*nowhere\.txt: ENOENT/)
    await refused({ text: dir }, 'DATASET_SOURCE', /EISDIR/)
    await refused({}, 'DATASET_SOURCE', /needs the path of a text file/)
    const short = join(dir, 'short.txt')
    await writeFile(short, 'Call me')
    await refused(
      { text: short, shards: 10 },
      'TEXT_EMPTY',
      /7 training tokens cannot make 10 non-empty shards/
    )
    await refused({ text: short, shards: 0 }, 'TEXT_INVALID', /shards must be an integer ≥ 1/)
    await refused({ text: short, heldOut: 1 }, 'TEXT_INVALID', /heldOut must be in \[0, 1\)/)
    assert.equal((await datasets.list()).length, before)
  })
})
