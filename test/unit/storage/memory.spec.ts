import assert from 'node:assert/strict'
import { createHash, randomFillSync } from 'node:crypto'
import { Identity, generateKeypair } from '../../../src/identity/index.js'
import { ContentStore, type ShoalHelia } from '../../../src/storage/index.js'
import { testRepo, type TestRepo } from './helpers.js'

const MiB = 1_048_576
const SIZE = 256 * MiB
const LIMIT = 150 * MiB

const WARM_UP = 32 * MiB

/** `size` bytes in fresh 256 KiB pieces (a random template plus a counter, so no two are equal). */
async function* generate(size: number, hash: ReturnType<typeof createHash>): AsyncGenerator<Uint8Array> {
  const template = Buffer.alloc(256 * 1024)
  randomFillSync(template)
  for (let sent = 0, i = 0; sent < size; sent += template.byteLength, i++) {
    const b = Buffer.from(template)
    b.writeUInt32LE(i, 0)
    hash.update(b)
    yield b
  }
}

describe('storage/ContentStore memory', function () {
  this.timeout(120_000)
  let repo: TestRepo
  let helia: ShoalHelia
  let store: ContentStore

  before(async () => {
    repo = await testRepo()
    helia = await repo.open()
    store = new ContentStore({ helia, identity: Identity.fromKeypair(generateKeypair()) }, { offline: true })
    // Fixed costs paid once per process, not per byte, are left out of the measure: the crypto
    // worker, code loaded and compiled, and the allocator's and garbage collector's working set,
    // which a first, smaller object brings to its steady state.
    await store.start()
    await roundTrip(WARM_UP)
  })

  async function roundTrip(size: number): Promise<void> {
    const inHash = createHash('sha256')
    const added = await store.add(generate(size, inHash))
    assert.equal(added.size, size)
    const outHash = createHash('sha256')
    let got = 0
    for await (const b of store.get(added.cid)) {
      outHash.update(b)
      got += b.byteLength
    }
    assert.equal(got, size)
    assert.equal(outHash.digest('hex'), inHash.digest('hex'))
  }

  after(async () => {
    await store.stop()
    await helia.stop()
    await repo.cleanup()
  })

  it(`adds and gets a ${SIZE / MiB} MiB stream with RSS growth under ${LIMIT / MiB} MiB`, async () => {
    const baseline = process.memoryUsage.rss()
    let peak = baseline
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss())
    }, 10)
    try {
      await roundTrip(SIZE)
    } finally {
      clearInterval(timer)
    }
    peak = Math.max(peak, process.memoryUsage.rss())
    const growth = peak - baseline
    console.log(
      `      RSS growth ${(growth / MiB).toFixed(1)} MiB for ${SIZE / MiB} MiB in and out ` +
        `(after a ${WARM_UP / MiB} MiB warm-up)`
    )
    assert.ok(growth < LIMIT, `RSS grew by ${(growth / MiB).toFixed(1)} MiB`)
  })
})
