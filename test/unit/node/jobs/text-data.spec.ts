/**
 * The job data step for language models: a `gpt` job's decrypted text shards become `{ tokens }`
 * (the held-out shard gives none and becomes the held-out text), a classifier keeps its image
 * tensors, and a job whose model and dataset are of different kinds is JOB_DATA_MISMATCH.
 */
import assert from 'node:assert/strict'
import { imageJobData } from '../../../../src/node/jobs/index.js'
import { textShard, type Dataset } from '../../../../src/storage/index.js'
import { parseJobSpec, type JobSpec, type ShardData } from '../../../../src/training/index.js'
import { TINY } from '../../training/lm/tiny.js'
import { CREATOR, jobInput } from '../../training/swarm/helpers.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const tokensOf = (d: ShardData): string => new TextDecoder().decode((d as { tokens: Uint8Array }).tokens)

const lmJob = (model: Record<string, unknown> = {}): JobSpec =>
  parseJobSpec({
    ...jobInput({ model: { ...TINY, ...model } as never }),
    optimizer: { type: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 },
    creator: CREATOR.did
  })
const classifierJob = (): JobSpec => parseJobSpec({ ...jobInput(), creator: CREATOR.did })

/** 2 images of 28×28 with labels 3 and 7. */
const images: Dataset = {
  features: new Uint8Array(2 * 784).fill(128),
  labels: Uint8Array.from([3, 7]),
  count: 2,
  shape: [28, 28],
  classes: 10
}

const mismatch = (fn: () => unknown, message: RegExp): void => {
  assert.throws(fn, (err: { code?: string; message: string }) => {
    assert.equal(err.code, 'JOB_DATA_MISMATCH')
    assert.match(err.message, message)
    return true
  })
}

describe('node/jobs: the data of language-model jobs', () => {
  it('gives the tokens of training shards, none for the held-out shard, which becomes the held-out text', async () => {
    const spec = lmJob()
    const shards = [
      textShard(bytes('Call me Ishmael. '), 'train'),
      textShard(bytes('Some years ago'), 'train')
    ]
    const held = textShard(bytes(' - never mind how long'), 'held-out')
    const prepared = [...shards, held].map((d) => imageJobData.tensors(d, spec))
    assert.deepEqual(prepared.map(tokensOf), ['Call me Ishmael. ', 'Some years ago', ''])
    assert.equal(tokensOf((await imageJobData.heldOut(spec))!), ' - never mind how long')
    // Asked once per preparation: another job spec has seen no held-out shard.
    assert.equal(await imageJobData.heldOut(lmJob()), undefined)
    imageJobData.tensors(shards[0]!, spec)
    assert.equal(await imageJobData.heldOut(spec), undefined, 'only training shards prepared this time')
  })

  it('keeps the image tensors of classifiers', async () => {
    const t = imageJobData.tensors(images, classifierJob())
    assert.ok('x' in t && t.count === 2)
    assert.deepEqual([...t.y], [3, 7])
  })

  it('refuses a gpt job on images, a classifier on text, and a vocabulary other than bytes', () => {
    mismatch(() => imageJobData.tensors(images, lmJob()), /language model, but dataset .* is not text/)
    mismatch(
      () => imageJobData.tensors(textShard(bytes('Call me Ishmael.'), 'train'), classifierJob()),
      /'mlp' is a classifier, but dataset .* is text/
    )
    mismatch(
      () => imageJobData.tensors(textShard(bytes('Call me Ishmael.'), 'train'), lmJob({ vocab: 128 })),
      /vocabulary of 128; the text is byte tokens/
    )
  })
})
