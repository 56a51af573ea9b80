import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { Rng } from '../../../../src/common/rng.js'
import {
  aggregate,
  decodeCompressed,
  encodeCompressed,
  type AggregateOptions,
  type AggregationRule
} from '../../../../src/training/aggregate/index.js'

/** Timings only (printed, best of 3 after a warm-up); the asserts check that each rule produced a full model. */
describe('aggregate: micro-benchmark, 8 models × 100k params', () => {
  it('times each rule and the int8 codec', () => {
    const rng = new Rng(9)
    const models = Array.from({ length: 8 }, () => {
      const w = new Float32Array(100_000 - 128)
      for (let i = 0; i < w.length; i++) w[i] = rng.gaussian() * 0.05
      return new Map([
        ['dense0.weight', w],
        ['dense0.bias', new Float32Array(128).fill(0.01)]
      ])
    })
    const cases: Array<[AggregationRule, AggregateOptions]> = [
      ['mean', {}],
      ['trimmed-mean', { beta: 0.25 }],
      ['median', {}],
      ['krum', { f: 2 }],
      ['krum', { f: 2, m: 4 }]
    ]
    const rows: string[] = []
    for (const [rule, opts] of cases) {
      aggregate(rule, models, opts) // warm-up
      let ms = Infinity
      let out = new Map<string, Float32Array>()
      for (let r = 0; r < 3; r++) {
        const t0 = performance.now()
        out = aggregate(rule, models, opts)
        ms = Math.min(ms, performance.now() - t0)
      }
      assert.equal(out.get('dense0.weight')!.length + out.get('dense0.bias')!.length, 100_000)
      rows.push(`${rule}${opts.m ? ` (m=${opts.m})` : ''}: ${ms.toFixed(1)} ms`)
    }
    encodeCompressed(models[0]!, 'int8')
    const t0 = performance.now()
    const bytes = encodeCompressed(models[0]!, 'int8')
    const t1 = performance.now()
    const back = decodeCompressed(bytes)
    const t2 = performance.now()
    assert.equal(back.size, 2)
    rows.push(
      `int8 encode ${(t1 - t0).toFixed(1)} ms, decode ${(t2 - t1).toFixed(1)} ms, ${bytes.length} bytes`
    )
    console.log(`      ${rows.join('\n      ')}`)
  })
})
