import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { generateKeypair, Identity } from '../../../../src/identity/index.js'
import {
  buildManifest,
  checkShardAgainstManifest,
  decodeShard,
  encodeShard,
  fromLabeledImages,
  loadMnist,
  ManifestError,
  shardDirichlet,
  shardEntry,
  shardStats,
  verifyManifest,
  type BuildManifestInput,
  type ManifestBody
} from '../../../../src/storage/datasets/index.js'
import { synthetic } from './helpers.js'

const cidOf = async (bytes: Uint8Array): Promise<string> =>
  CID.create(1, raw.code, await sha256.digest(bytes)).toString()

async function refused(p: Promise<unknown>, reason: string): Promise<ManifestError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof ManifestError, `expected ManifestError, got ${String(err)}`)
    assert.equal(err.code, 'MANIFEST_INVALID')
    assert.equal(err.fields.reason, reason, err.message)
    return err
  }
  assert.fail(`expected MANIFEST_INVALID (${reason})`)
}

/** Re-encode a JWT's payload, keeping its header and signature (a forged body). */
function forgePayload(jwt: string, edit: (payload: { manifest: ManifestBody }) => void): string {
  const [h, p, s] = jwt.split('.')
  const payload = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')) as { manifest: ManifestBody }
  edit(payload)
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`
}

describe('datasets: manifest', () => {
  const alice = Identity.fromKeypair(generateKeypair())
  const mallory = Identity.fromKeypair(generateKeypair())
  const ds = synthetic(60, { classes: 4, shape: [2], seed: 8 })
  let input: BuildManifestInput

  before(async () => {
    const split = shardDirichlet(ds, 3, 0.5, 7)
    const blobs = split.map((idx) => encodeShard(ds, idx))
    const cids = await Promise.all(blobs.map(cidOf))
    const stats = shardStats(ds, split)
    input = {
      name: 'synthetic-3',
      schema: { shape: [2], dtype: 'uint8', classes: 4, labelNames: ['a', 'b', 'c', 'd'] },
      shards: split.map((idx, i) => ({
        cid: cids[i]!,
        count: idx.length,
        labelCounts: stats.labelCounts[i]!
      })),
      source: 'synthetic',
      split: { kind: 'dirichlet', alpha: 0.5, seed: 7 }
    }
  })

  it('signs and verifies a manifest (object and bare JWT forms)', async () => {
    const signed = await buildManifest(alice, input)
    assert.equal(signed.body.owner, alice.did)
    assert.equal(signed.body.count, 60)
    const body = await verifyManifest(signed, { expectedOwner: alice.did })
    assert.deepEqual(body, signed.body)
    assert.deepEqual(await verifyManifest(signed.jwt), signed.body)
    await refused(verifyManifest(signed, { expectedOwner: mallory.did }), 'unexpected-owner')
  })

  it('refuses a tampered manifest: changed body beside the JWT, or a forged JWT payload', async () => {
    const signed = await buildManifest(alice, input)
    const body = structuredClone(signed.body)
    body.shards[0]!.cid = body.shards[1]!.cid.replace(/.$/, (c) => (c === 'a' ? 'b' : 'a'))
    await refused(verifyManifest({ body, jwt: signed.jwt }), 'body-mismatch')
    const forged = forgePayload(signed.jwt, (p) => {
      p.manifest.name = 'renamed'
    })
    const err = await refused(verifyManifest(forged), 'signature')
    assert.equal(err.fields.jwtReason, 'signature')
    await refused(verifyManifest('not.a.jwt'), 'signature')
  })

  it('refuses a manifest signed by someone other than its owner', async () => {
    const signed = await buildManifest(alice, input)
    const jwt = await mallory.signJwt({ manifest: signed.body }) // body.owner is alice
    await refused(verifyManifest({ body: signed.body, jwt }), 'issuer-mismatch')
  })

  it('refuses counts that do not add up, wrong label-count lengths, duplicate CIDs, bad schema', async () => {
    const signed = await buildManifest(alice, input)
    const signBody = async (edit: (b: ManifestBody) => void): Promise<string> => {
      const b = structuredClone(signed.body)
      edit(b)
      return alice.signJwt({ manifest: b })
    }
    await refused(verifyManifest(await signBody((b) => b.shards[0]!.labelCounts[0]!++)), 'label-counts-sum')
    await refused(verifyManifest(await signBody((b) => b.count++)), 'total-count')
    await refused(
      verifyManifest(await signBody((b) => b.shards[1]!.labelCounts.push(0))),
      'label-counts-length'
    )
    await refused(
      verifyManifest(await signBody((b) => (b.shards[2]!.cid = b.shards[0]!.cid))),
      'duplicate-cid'
    )
    await refused(verifyManifest(await signBody((b) => (b.shards[0]!.cid = 'bafy-not-a-cid'))), 'schema')
    await refused(verifyManifest(await signBody((b) => b.schema.labelNames!.pop())), 'schema')
    // buildManifest never signs an inconsistent manifest.
    const bad = structuredClone(input)
    bad.shards[0]!.count += 1
    await refused(buildManifest(alice, bad), 'label-counts-sum')
    await refused(buildManifest(alice, { ...input, split: { kind: 'iid', alpha: 0.5, seed: 1 } }), 'schema')
  })

  it('checks a decoded shard against its entry', async () => {
    const signed = await buildManifest(alice, input)
    const split = shardDirichlet(ds, 3, 0.5, 7)
    const shard = decodeShard(encodeShard(ds, split[1]!))
    checkShardAgainstManifest(signed.body.shards[1]!, shard, signed.body.schema)
    assert.throws(() => checkShardAgainstManifest(signed.body.shards[0]!, shard), /shard-mismatch/)
    const wrongSchema = { ...signed.body.schema, shape: [1, 2] }
    assert.throws(
      () => checkShardAgainstManifest(signed.body.shards[1]!, shard, wrongSchema),
      (err: unknown) => err instanceof ManifestError && err.fields.reason === 'shard-mismatch'
    )
  })

  it('mnist end to end: Dirichlet shards → encode → manifest → verify → check each shard', async () => {
    const mnist = fromLabeledImages(await loadMnist())
    const split = shardDirichlet(mnist, 5, 0.5, 2026)
    const blobs = split.map((idx) => encodeShard(mnist, idx))
    const cids = await Promise.all(blobs.map(cidOf))
    const signed = await buildManifest(alice, {
      name: 'mnist-5',
      schema: { shape: mnist.shape, dtype: 'uint8', classes: 10 },
      shards: blobs.map((b, i) => shardEntry(cids[i]!, decodeShard(b))),
      source: 'mnist',
      split: { kind: 'dirichlet', alpha: 0.5, seed: 2026 }
    })
    const body = await verifyManifest(signed, { expectedOwner: alice.did })
    assert.equal(body.count, mnist.count)
    body.shards.forEach((entry, i) => checkShardAgainstManifest(entry, decodeShard(blobs[i]!), body.schema))
  })
})
