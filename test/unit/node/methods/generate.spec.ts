/** model_generate: a prompt continued by a gpt checkpoint (named, or a job's latest), refusals by name. */
import assert from 'node:assert/strict'
import type { CID } from 'multiformats/cid'
import { generateMethods } from '../../../../src/node/methods/index.js'
import type { ContentStore } from '../../../../src/storage/index.js'
import { encodeWeights } from '../../../../src/training/export/index.js'
import { compileGpt, gptParams, initGptParams } from '../../../../src/training/lm/index.js'
import { rawCid } from '../../../../src/training/swarm/index.js'
import { TINY } from '../../training/lm/tiny.js'

describe('node/methods: model_generate', () => {
  const weights = encodeWeights(
    initGptParams(compileGpt(TINY), 1),
    gptParams({ ...TINY, mlp: 64, tied: true })
  )
  const GPT = rawCid(weights)
  const MLP = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
  const records: Record<string, { cid: string; spec: unknown }> = {
    [GPT]: { cid: GPT, spec: TINY },
    [MLP]: { cid: MLP, spec: { name: 'mlp', input: [784], layers: [], classes: 10 } }
  }
  const store = {
    async *get(cid: CID) {
      if (cid.toString() !== GPT) throw new Error('not here')
      yield weights
    }
  } as unknown as ContentStore
  const db = { get: async (_kind: string, cid: string) => records[cid] } as never
  const jobs = {
    latestCheckpoint: async (job: string) => (job === 'job-lm' ? { cid: GPT } : undefined)
  } as never
  const m = generateMethods(jobs, store, db)[0]!
  const call = async (
    params: Record<string, unknown>
  ): Promise<{ checkpoint: string; text: string; completion: string }> =>
    (await m.handler(m.params.strict().parse(params), { signal: new AbortController().signal })) as never

  it("continues a prompt with a checkpoint or a job's latest model, reproducibly with a seed", async () => {
    const a = await call({ checkpoint: GPT, prompt: 'Call me', tokens: 12, seed: 3 })
    assert.equal(a.checkpoint, GPT)
    assert.ok(a.text.startsWith('Call me'))
    assert.equal(a.text, `Call me${a.completion}`)
    const b = await call({ job: 'job-lm', prompt: 'Call me', tokens: 12, seed: 3 })
    assert.deepEqual(b, a)
    const greedy = await call({ checkpoint: GPT, prompt: 'Call me', tokens: 5, temperature: 0 })
    assert.equal(
      (await call({ checkpoint: GPT, prompt: 'Call me', tokens: 5, temperature: 0, seed: 9 })).text,
      greedy.text
    )
  })

  it('refuses by name: no model named, an unknown job or checkpoint, a classifier, a prompt longer than the context', async () => {
    const refused = async (params: Record<string, unknown>, code: string): Promise<void> =>
      assert.rejects(call(params), (e: { code?: string }) => {
        assert.equal(e.code, code)
        return true
      })
    await refused({ prompt: 'x' }, 'JOB_NOT_FOUND')
    await refused({ job: 'job-other', prompt: 'x' }, 'JOB_NOT_FOUND')
    await refused({ checkpoint: 'bafkreiaaaa', prompt: 'x' }, 'JOB_NOT_FOUND')
    await refused({ checkpoint: MLP, prompt: 'x' }, 'LM_OPTIONS_INVALID')
    await refused({ checkpoint: GPT, prompt: 'y'.repeat(TINY.context + 1) }, 'PROMPT_TOO_LONG')
    assert.equal(m.params.strict().safeParse({ checkpoint: GPT, prompt: '' }).success, false)
    assert.equal(m.params.strict().safeParse({ checkpoint: GPT, prompt: 'x', tokens: -1 }).success, false)
  })
})
