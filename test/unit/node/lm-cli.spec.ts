/**
 * Language models from the command line and the RPC: `shoal dataset import --source text|moby-dick`
 * sends the text options; `shoal job create --model gpt|<spec.json> --outer lr,momentum
 * --warmup N | --schedule constant` and job_create turn them into a gpt job (AdamW, lr 2e-3 and the
 * warm-up + cosine schedule by default).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Command } from 'commander'
import {
  registerDatasetCommands,
  registerJobCommands,
  type CliContext
} from '../../../src/node/cli/commands/index.js'
import type { NodeDb } from '../../../src/node/db.js'
import type { NodeJobs } from '../../../src/node/jobs/index.js'
import { jobMethods } from '../../../src/node/methods/index.js'
import type { RpcClient } from '../../../src/node/rpc/index.js'
import type { ContentStore } from '../../../src/storage/index.js'
import {
  DEFAULT_LM_OPTIMIZER,
  GPT_DEFAULT,
  parseJobSpec,
  type JobError
} from '../../../src/training/index.js'

const DATASET = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const CREATOR = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
const TINY = { type: 'gpt', name: 'tiny', vocab: 256, context: 16, layers: 1, heads: 2, dModel: 16 }

async function cli(argv: string[]): Promise<Array<[string, Record<string, unknown>]>> {
  const calls: Array<[string, Record<string, unknown>]> = []
  const client = {
    call: async (method: string, params: Record<string, unknown>) => {
      calls.push([method, params])
      return {
        id: 'job-1',
        name: 'n',
        manifestCid: DATASET,
        count: 1,
        shards: [],
        split: 'contiguous(held-out 0.05)'
      }
    }
  } as unknown as RpcClient
  const ctx: CliContext = {
    globals: () => ({ home: '/nowhere' }),
    json: () => false,
    client: async () => client,
    out: () => {}
  }
  const program = new Command('shoal').exitOverride()
  registerDatasetCommands(program, ctx)
  registerJobCommands(program, ctx)
  await program.parseAsync(argv, { from: 'user' })
  return calls
}

/** The params `shoal job create --dataset <DATASET> …args` sends to job_create. */
async function created(...args: string[]): Promise<Record<string, unknown>> {
  const [[, params]] = (await cli(['job', 'create', '--dataset', DATASET, ...args])) as [
    [string, Record<string, unknown>]
  ]
  return params
}

/** job_create over a fake NodeJobs: `call` runs it with a name and the dataset, `seen` keeps the specs it created. */
function jobCreate(): {
  call: (params: Record<string, unknown>) => Promise<unknown>
  parse: (params: Record<string, unknown>) => unknown
  seen: Array<Record<string, unknown>>
} {
  const seen: Array<Record<string, unknown>> = []
  const jobs = { create: async (spec: Record<string, unknown>) => seen.push(spec) } as unknown as NodeJobs
  const m = jobMethods(jobs, {} as ContentStore, {} as NodeDb, {}).find((x) => x.name === 'job_create')!
  const parse = (params: Record<string, unknown>): unknown =>
    m.params.parse({ name: 'lm', dataset: DATASET, ...params })
  return {
    call: async (params) => m.handler(parse(params) as never, { signal: new AbortController().signal }),
    parse,
    seen
  }
}

describe('node/cli and job_create: language models', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-lm-cli-'))
  })
  after(async () => rm(dir, { recursive: true, force: true }))

  it('dataset import sends a text file’s absolute path, the held-out fraction and maxBytes', async () => {
    const calls = await cli([
      'dataset',
      'import',
      '--source',
      'text',
      '--text',
      'book.txt',
      '--name',
      'book',
      '--shards',
      '3',
      '--held-out',
      '0.1',
      '--max-bytes',
      '40000'
    ])
    assert.deepEqual(calls, [
      [
        'dataset_import',
        {
          source: 'text',
          name: 'book',
          shards: 3,
          split: 'iid',
          text: resolve('book.txt'),
          heldOut: 0.1,
          maxBytes: 40_000
        }
      ]
    ])
  })

  it('job create sends gpt, a spec file or a built-in name, the outer step and the schedule', async () => {
    const gpt = await created('--model', 'gpt', '--outer', '0.7,0.9')
    assert.equal(gpt.model, 'gpt')
    assert.deepEqual(gpt.outer, { lr: 0.7, momentum: 0.9 })
    const file = join(dir, 'tiny.json')
    await writeFile(file, JSON.stringify(TINY))
    const spec = await created('--model', file)
    assert.deepEqual(spec.model, TINY)
    assert.equal('outer' in spec, false)
    const mlp = await created()
    assert.equal(mlp.model, 'mlp')
    const warm = await created('--model', 'gpt', '--warmup', '30')
    assert.equal(warm.warmup, 30)
    assert.equal('schedule' in warm, false)
    const flat = await created('--model', 'gpt', '--schedule', 'constant')
    assert.equal(flat.schedule, 'constant')
    const cosine = await created('--schedule', 'warmup-cosine', '--outer', '0.7,0.9')
    assert.equal(cosine.schedule, 'warmup-cosine')
    assert.deepEqual(cosine.outer, { lr: 0.7, momentum: 0.9 })
    // `none` asks for plain averaging (a gpt job's default is the outer step): null, not absent.
    const plain = await created('--model', 'gpt', '--outer', 'none')
    assert.equal(plain.outer, null)
  })

  it('job create refuses an unreadable spec file, a bad --outer and a bad --schedule (usage)', async () => {
    for (const argv of [
      ['--model', join(dir, 'nowhere.json')],
      ['--model', 'gpt', '--outer', '0.7'],
      ['--model', 'gpt', '--outer', 'off'],
      ['--model', 'gpt', '--schedule', 'linear']
    ]) {
      await assert.rejects(
        cli(['job', 'create', '--dataset', DATASET, ...argv]),
        (err: { code?: string; category?: string }) => {
          assert.equal(err.code, 'JOB_USAGE')
          assert.equal(err.category, 'usage')
          return true
        }
      )
    }
  })

  it('job_create makes a gpt job with AdamW and, unless told otherwise, the outer step', async () => {
    const { call, seen } = jobCreate()
    await call({ model: 'gpt', outer: { lr: 0.5, momentum: 0.8 } })
    await call({ model: TINY })
    await call({
      model: TINY,
      optimizer: { type: 'adamw', beta1: 0.8, beta2: 0.9, eps: 1e-8, weightDecay: 0 },
      outer: null
    })
    await call({ model: 'mlp' })
    assert.deepEqual((seen[0]!.model as { dModel: number }).dModel, GPT_DEFAULT.dModel)
    assert.deepEqual(seen[0]!.optimizer, DEFAULT_LM_OPTIMIZER)
    assert.deepEqual(seen[0]!.outer, { lr: 0.5, momentum: 0.8 })
    assert.equal((seen[1]!.model as { name: string }).name, 'tiny')
    // A gpt job takes DiLoCo's outer step by default (bench:lm-swarm); null asks for plain averaging.
    assert.deepEqual(seen[1]!.outer, { lr: 0.7, momentum: 0.9 })
    assert.equal((seen[2]!.optimizer as { beta1: number }).beta1, 0.8)
    assert.equal('outer' in seen[2]!, false)
    // A classifier's default stays plain averaging.
    assert.equal('outer' in seen[3]!, false)
    for (const s of seen) parseJobSpec({ ...s, creator: CREATOR })
  })

  it('job_create: warm-up + cosine by default for gpt, the given warm-up, constant on request; a classifier’s on request', async () => {
    const { call, parse, seen } = jobCreate()
    await call({ model: 'gpt' })
    await call({ model: 'gpt', warmup: 30 })
    await call({ model: 'gpt', schedule: 'constant' })
    await call({ model: 'mlp' })
    await call({ model: 'mlp', schedule: 'warmup-cosine', warmup: 10 })
    const hyper = seen.map((s) => parseJobSpec({ ...s, creator: CREATOR }).hyper)
    assert.deepEqual(hyper[0]!.schedule, { type: 'warmup-cosine' })
    assert.deepEqual(hyper[1]!.schedule, { type: 'warmup-cosine', warmupSteps: 30 })
    assert.equal(hyper[2]!.schedule, undefined)
    assert.equal(hyper[3]!.schedule, undefined)
    assert.deepEqual(hyper[4]!.schedule, { type: 'warmup-cosine', warmupSteps: 10 })
    // DP-SGD rounds take one rate: a schedule beside it is refused with its path.
    assert.throws(
      () =>
        parseJobSpec({
          ...seen[4]!,
          privacy: { mode: 'dp-sgd', clipNorm: 1, noiseMultiplier: 1, delta: 1e-5 },
          creator: CREATOR
        }),
      (err: JobError) => err.reason === 'schema' && /hyper\.schedule.*DP-SGD/.test(err.message)
    )
    assert.throws(() => parse({ schedule: 'linear' }))
    // A gpt job's open rate and batch are the language model's (AdamW), not a classifier's SGD ones.
    assert.equal(hyper[0]!.lr, 2e-3)
    assert.equal(hyper[0]!.batchSize, 16)
    assert.equal(hyper[3]!.lr, 0.05)
    assert.equal(hyper[3]!.batchSize, 32)
  })
})
