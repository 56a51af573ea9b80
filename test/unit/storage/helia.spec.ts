import assert from 'node:assert/strict'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { Identity, generateKeypair } from '../../../src/identity/index.js'
import { ContentStore, createHeliaNode, type ShoalHelia } from '../../../src/storage/index.js'
import { codeOf, drain, seededBytes, testLibp2p, testRepo, type TestRepo } from './helpers.js'

describe('storage/createHeliaNode', function () {
  this.timeout(60_000)
  const repos: TestRepo[] = []
  const nodes: ShoalHelia[] = []

  async function repo(): Promise<TestRepo> {
    const r = await testRepo()
    repos.push(r)
    return r
  }

  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop()
    for (const r of repos.splice(0)) await r.cleanup()
  })

  it('uses the given libp2p options as they are (no default services merged in)', async () => {
    const r = await repo()
    const opts = { ...testLibp2p(), services: { identify: identify(), ping: ping() } }
    const helia = await createHeliaNode({
      blocksPath: r.blocksPath,
      datastorePath: r.datastorePath,
      libp2p: opts
    })
    nodes.push(helia)
    assert.equal(helia.status, 'started')
    assert.deepEqual(Object.keys(helia.libp2p.services).sort(), ['identify', 'ping'])
    const addrs = helia.libp2p.getMultiaddrs().map((a) => a.toString())
    assert.ok(addrs.length > 0 && addrs.every((a) => a.startsWith('/ip4/127.0.0.1/tcp/')), addrs.join(' '))
    assert.ok(helia.hasBlockBroker('bitswap'))
    assert.equal(opts.privateKey, undefined, "the caller's options object is not modified")
  })

  it('start: false, then idempotent start/stop, and restart on the same object', async () => {
    const r = await repo()
    const helia = await createHeliaNode({
      blocksPath: r.blocksPath,
      datastorePath: r.datastorePath,
      libp2p: testLibp2p(),
      start: false
    })
    assert.equal(helia.status, 'stopped')
    await helia.start()
    await helia.start()
    assert.equal(helia.status, 'started')
    await helia.stop()
    await helia.stop()
    assert.equal(helia.status, 'stopped')
    await helia.start()
    nodes.push(helia)
    const store = new ContentStore({ helia, identity: Identity.fromKeypair(generateKeypair()) })
    const { cid } = await store.add(seededBytes(1, 1000))
    assert.equal((await drain(store.get(cid))).bytes.byteLength, 1000)
  })

  it('blocks, pins and the peer id survive a restart from the same paths', async () => {
    const r = await repo()
    const owner = Identity.fromKeypair(generateKeypair())
    const data = seededBytes(2, 3 * 65_536 + 5)
    const plainData = seededBytes(3, 70_000)

    let helia = await r.open()
    const peerId = helia.libp2p.peerId.toString()
    let store = new ContentStore({ helia, identity: owner }, { chunkSize: 65_536 })
    const enc = await store.add(data, { name: 'persist' })
    const plain = await store.add(plainData, { plain: true })
    await helia.stop()

    helia = await r.open()
    nodes.push(helia)
    assert.equal(helia.libp2p.peerId.toString(), peerId)
    store = new ContentStore({ helia, identity: owner }, { offline: true })
    assert.deepEqual((await drain(store.get(enc.cid))).bytes, data)
    assert.deepEqual((await drain(store.get(plain.cid))).bytes, plainData)
    const pins = new Map<string, boolean | undefined>()
    for await (const p of store.pins()) pins.set(p.cid.toString(), p.encrypted)
    assert.equal(pins.get(enc.cid.toString()), true)
    assert.equal(pins.get(plain.cid.toString()), false)
    const st = await store.stat(enc.cid)
    assert.deepEqual([st.pinned, st.name, st.size], [true, 'persist', data.byteLength])
    // Pinned blocks survive gc after the restart.
    await store.gc()
    assert.deepEqual((await drain(store.get(enc.cid))).bytes, data)
  })

  it('bitswap: a second node fetches an encrypted object by CID and opens it with the content key', async () => {
    const a = await (await repo()).open()
    const b = await (await repo()).open()
    nodes.push(a, b)
    const owner = Identity.fromKeypair(generateKeypair())
    const reader = Identity.fromKeypair(generateKeypair())
    const storeA = new ContentStore({ helia: a, identity: owner }, { chunkSize: 65_536 })
    const storeB = new ContentStore({ helia: b, identity: reader })
    const data = seededBytes(4, 40 * 65_536 + 17)
    const { cid } = await storeA.add(data)

    // Not local and offline: NOT_FOUND without waiting.
    assert.equal(codeOf((await drain(storeB.get(cid, { offline: true }))).err), 'NOT_FOUND')

    await b.libp2p.dial(a.libp2p.getMultiaddrs()[0]!)
    // The reader is not a recipient of the wrapped key ...
    assert.equal(
      codeOf((await drain(storeB.get(cid, { signal: AbortSignal.timeout(20_000) }))).err),
      'NOT_AUTHORIZED'
    )
    // ... but with the content key (as a grant will deliver it) the object streams over bitswap.
    const contentKey = await storeA.contentKey(cid)
    const got = await drain(storeB.get(cid, { contentKey, signal: AbortSignal.timeout(20_000) }))
    assert.equal(got.err, undefined)
    assert.deepEqual(got.bytes, data)
  })
})
