/**
 * Run by gpt.spec.ts in a separate process: three deterministic train steps of a tiny GPT from
 * a seed; prints the sha256 of the resulting weights and the losses (one JSON line).
 */
import { createHash } from 'node:crypto'
import { LmTrainer, compileGpt, initGptParams } from '../../../../src/training/lm/index.js'
import { WindowSampler, textTokens } from '../../../../src/training/text/index.js'
import { TINY } from './tiny.js'

const model = compileGpt(TINY)
const trainer = await LmTrainer.create(model, { weights: initGptParams(model, 7), deterministic: true })
const sampler = new WindowSampler(
  textTokens('It is not down in any map; true places never are. '.repeat(4)),
  {
    batchSize: 4,
    context: TINY.context,
    seed: 3
  }
)
const losses: number[] = []
for (let i = 0; i < 3; i++) losses.push((await trainer.step(sampler.next(), 1e-2)).loss)
const h = createHash('sha256')
for (const [, w] of trainer.weights()) h.update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength))
await trainer.close()
process.stdout.write(`${JSON.stringify({ hash: h.digest('hex'), losses })}\n`)
