/**
 * Receipts benchmark: `npx tsx scripts/bench-receipts.ts [--quick] [--out FILE]`.
 *
 * (a) Throughput of issuing receipts and of each verification level over chains of receipts
 *     from several DIDs: signature, chain, lineage (in-memory grants), `verifyAll` without and
 *     with a fake re-executor (fraction 1), the ledger.
 * (b) Real re-execution: the mnist package's digits in 8 shards, a 784-128-10 MLP trained in
 *     onnxruntime-node's deterministic CPU mode (one thread) for `steps` steps from the base
 *     weights, hashed in the SHOALWT1 encoding; honest receipts verify (bit-identical re-run),
 *     a receipt with altered weights gives a fraud proof that re-checks.
 * (c) Analytic detection table: a cheater who fakes a fraction f of its rounds stays
 *     undetected after R rounds with probability (1 − p·f)^R when one verifier re-executes a
 *     fraction p, (1 − p·f)^(R·V) with V independent verifiers; checked by a Monte-Carlo run
 *     of `shouldReexecute` itself.
 *
 * Results go to benchmarks/receipts.md (a Markdown fragment) and the console.
 */
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import os from 'node:os'
import { performance } from 'node:perf_hooks'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { Identity, keypairFromSeed } from '../src/identity/index.js'
import { loadMnist, trainTestSplit, type LabeledImages } from '../src/storage/datasets/mnist.js'
import { BatchLoader, MNIST_MEAN, MNIST_STD, fromImages } from '../src/training/data/index.js'
import { encodeWeights } from '../src/training/export/index.js'
import {
  MODELS,
  compileModel,
  initParams,
  initState,
  type CompiledModel
} from '../src/training/graph/index.js'
import {
  checkFraudProof,
  computeLedger,
  issueReceipt,
  shouldReexecute,
  verifyAll,
  verifyChain,
  verifyLineage,
  verifySignature,
  type GrantInfo,
  type GrantLookup,
  type ReceiptClaims,
  type ReceiptInput,
  type ReexecutionResult,
  type Reexecutor
} from '../src/training/receipts/index.js'
import { Trainer } from '../src/training/runtime/index.js'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const outIdx = args.indexOf('--out')
const outFile = outIdx >= 0 ? args[outIdx + 1]! : 'benchmarks/receipts.md'
const DIDS = quick ? 4 : 10
const ROUNDS = quick ? 10 : 30
const REAL_RUNS = quick ? 4 : 12
const REAL_STEPS = 20
const REAL_BATCH = 64
const REPS = 3
const T0 = 1_700_000_000

const md: string[] = []
const log = (line = ''): void => {
  console.log(line)
  md.push(line)
}
const fmt = (n: number, d = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
const sha256Hex = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex')
const cidOf = (label: string): string =>
  CID.createV1(0x55, Digest.create(0x12, createHash('sha256').update(label).digest())).toString()

interface Timed<T> {
  value: T
  /** Wall-clock seconds. */
  seconds: number
  /** CPU seconds of this process (user + system), less sensitive to other load on a shared machine. */
  cpu: number
}

async function timed<T>(fn: () => Promise<T>): Promise<Timed<T>> {
  const c = process.cpuUsage()
  const t = performance.now()
  const value = await fn()
  const used = process.cpuUsage(c)
  return { value, seconds: (performance.now() - t) / 1000, cpu: (used.user + used.system) / 1e6 }
}

/** The fastest of `REPS` runs (the machine is shared: the minimum is the least disturbed run). */
async function best<T>(fn: () => Promise<T>): Promise<Timed<T>> {
  let fastest: Timed<T> | undefined
  for (let i = 0; i < REPS; i++) {
    const run = await timed(fn)
    if (fastest === undefined || run.seconds < fastest.seconds) fastest = run
  }
  return fastest!
}

// ---------------------------------------------------------------------------------------
// (b)'s machinery first, since honest receipts carry real hashes in both parts.

/** A deterministic CPU re-run: the base weights come from a seed named by baseCid, shards from memory. */
class MnistReexecutor implements Reexecutor {
  private trainer: Trainer | undefined
  constructor(
    private readonly model: CompiledModel,
    private readonly shards: Map<string, LabeledImages>,
    private readonly bases: Map<string, Map<string, Float32Array>>
  ) {}

  async run(claims: ReceiptClaims): Promise<ReexecutionResult> {
    const base = this.bases.get(claims.baseCid)
    if (base === undefined) throw new Error(`base weights ${claims.baseCid} not readable`)
    const parts = claims.shards.map((s) => {
      const shard = this.shards.get(s.cid)
      if (shard === undefined) throw new Error(`shard ${s.cid} not readable`)
      return shard
    })
    const data = fromImages(concat(parts), { mean: MNIST_MEAN, std: MNIST_STD, shape: MODELS.mlp.input })
    const batch = Math.min(claims.hyper.batchSize, data.count)
    const loader = new BatchLoader(data, { batchSize: batch, seed: claims.seed, dropLast: true })
    this.trainer ??= await Trainer.create(this.model, { weights: base, deterministic: true })
    this.trainer.setWeights(base)
    this.trainer.setState(initState(this.model))
    let steps = 0
    let samples = 0
    for (let epoch = 0; steps < claims.steps; epoch++) {
      for (const b of loader.epochSync(epoch)) {
        if (steps === claims.steps) break
        samples += (await this.trainer.step(b.x, b.y, claims.hyper.lr)).size
        steps++
      }
    }
    return { resultHash: sha256Hex(encodeWeights(this.trainer.getWeights(), this.model.params)), samples }
  }

  async close(): Promise<void> {
    await this.trainer?.close()
  }
}

function concat(parts: LabeledImages[]): LabeledImages {
  const px = parts[0]!.rows * parts[0]!.cols
  const count = parts.reduce((n, p) => n + p.count, 0)
  const images = new Uint8Array(count * px)
  const labels = new Uint8Array(count)
  let at = 0
  for (const p of parts) {
    images.set(p.images.subarray(0, p.count * px), at * px)
    labels.set(p.labels.subarray(0, p.count), at)
    at += p.count
  }
  return { images, labels, count, rows: parts[0]!.rows, cols: parts[0]!.cols }
}

function slice(set: LabeledImages, from: number, count: number): LabeledImages {
  const px = set.rows * set.cols
  return {
    images: set.images.slice(from * px, (from + count) * px),
    labels: set.labels.slice(from, from + count),
    count,
    rows: set.rows,
    cols: set.cols
  }
}

class MemoryGrants implements GrantLookup {
  readonly map = new Map<string, GrantInfo>()
  async find(id: string): Promise<GrantInfo | undefined> {
    return this.map.get(id)
  }
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const load = os.loadavg()
  log(`## Receipts (${new Date().toISOString().slice(0, 10)})`)
  log()
  log(`Command: \`npx tsx scripts/bench-receipts.ts${quick ? ' --quick' : ''}\``)
  log()
  log(
    `Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} logical CPUs, ` +
      `${fmt(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}, ${os.platform()} ${os.arch()}; ` +
      `load average at start ${load.map((l) => fmt(l, 1)).join(' / ')}` +
      (load[0]! > os.cpus().length ? ' (shared, busy machine: figures are lower bounds)' : '')
  )
  log()

  // Data, shards, grants.
  const split = trainTestSplit(await loadMnist(), { seed: 42 })
  const shardImages = new Map<string, LabeledImages>()
  const shardCids: string[] = []
  for (let i = 0; i < 8; i++) {
    const cid = cidOf(`mnist-shard-${i}`)
    shardCids.push(cid)
    shardImages.set(cid, slice(split.train, i * 1000, 1000))
  }
  const model = compileModel(MODELS.mlp, { type: 'sgd', momentum: 0.9 })
  const bases = new Map<string, Map<string, Float32Array>>()
  const baseCidOf = (round: number): string => {
    const cid = cidOf(`base-${round}`)
    if (!bases.has(cid)) bases.set(cid, initParams(model, 1000 + round))
    return cid
  }
  const identities = Array.from({ length: DIDS }, (_, i) =>
    Identity.fromKeypair(keypairFromSeed(new Uint8Array(32).fill(i + 1)))
  )
  const grants = new MemoryGrants()
  identities.forEach((who, i) => {
    const shards = [shardCids[i % 8]!, shardCids[(i + 1) % 8]!]
    grants.map.set(`grant-${i}`, {
      id: `grant-${i}`,
      dataset: cidOf('mnist'),
      shards,
      grantee: who.did,
      purpose: 'job-1',
      owner: identities[0]!.did,
      shardSizes: Object.fromEntries(shards.map((c) => [c, 1000]))
    })
  })
  const real = new MnistReexecutor(model, shardImages, bases)
  const fakeHash = (c: Pick<ReceiptClaims, 'baseCid' | 'shards' | 'seed' | 'steps'>): string =>
    sha256Hex(JSON.stringify([c.baseCid, c.shards, c.seed, c.steps]))
  const fake: Reexecutor = {
    run: async (c) => ({ resultHash: fakeHash(c), samples: c.steps * Math.min(c.hyper.batchSize, 2000) })
  }
  const inputFor = (i: number, round: number, resultHash?: string): ReceiptInput => {
    const g = grants.map.get(`grant-${i}`)!
    const claims = {
      job: 'job-1',
      round,
      baseCid: baseCidOf(round),
      shards: g.shards.map((cid) => ({ cid, grant: g.id })),
      hyper: { lr: 0.05, batchSize: REAL_BATCH, steps: REAL_STEPS, optimizer: 'sgd', momentum: 0.9 },
      seed: 7 * i + round,
      samples: REAL_STEPS * REAL_BATCH,
      steps: REAL_STEPS,
      lossBefore: 2.3,
      lossAfter: 2.0,
      ep: 'cpu',
      iat: T0 + 60 * round
    }
    return { ...claims, resultHash: resultHash ?? fakeHash(claims) }
  }

  // (a) Throughput.
  log('### Verification throughput (fake re-executor)')
  log()
  log(
    `${DIDS} DIDs × ${ROUNDS} rounds = ${DIDS * ROUNDS} receipts, 2 shards each; one process, one event loop; ` +
      `verification rows are the fastest of ${REPS} runs; CPU ms = this process's user + system time.`
  )
  log()
  const chains: string[][] = []
  const issue = await timed(async () => {
    for (let i = 0; i < DIDS; i++) {
      const chain: string[] = []
      for (let r = 0; r < ROUNDS; r++)
        chain.push(await issueReceipt(identities[i]!, inputFor(i, r), chain.at(-1) ?? null))
      chains.push(chain)
    }
  })
  const all = chains.flat()
  const n = all.length
  const bytes = all.reduce((s, j) => s + j.length, 0) / n
  const rows: Array<[string, number, Timed<unknown>]> = [['issueReceipt (sign)', n, issue]]
  const sig = await best(async () => {
    for (const jwt of all) if (!(await verifySignature(jwt)).ok) throw new Error('signature')
  })
  rows.push(['verifySignature', n, sig])
  const chain = await best(async () => {
    for (const c of chains) if (!(await verifyChain(c)).ok) throw new Error('chain')
  })
  rows.push(['verifyChain (signature + chain)', n, chain])
  const lineage = await best(async () => {
    for (const jwt of all) if (!(await verifyLineage(jwt, grants)).ok) throw new Error('lineage')
  })
  rows.push(['verifyLineage (alone)', n, lineage])
  const noReexec = await best(async () => verifyAll(all, { grants }))
  if (noReexec.value.verified.length !== n) throw new Error('verifyAll')
  rows.push(['verifyAll: signature + chain + lineage', n, noReexec])
  const withFake = await best(async () => verifyAll(all, { grants, reexec: fake, fraction: 1 }))
  if (withFake.value.verified.length !== n) throw new Error('verifyAll + fake')
  rows.push(['verifyAll + fake re-execution of every receipt', n, withFake])
  const ledger = await best(async () => computeLedger(all, { forfeited: new Set() }))
  rows.push(['computeLedger', n, ledger])
  log('| operation | receipts | seconds | receipts/s | ms/receipt | CPU ms/receipt |')
  log('|---|---:|---:|---:|---:|---:|')
  for (const [name, count, t] of rows) {
    log(
      `| ${name} | ${count} | ${fmt(t.seconds, 3)} | ${fmt(count / t.seconds)} | ` +
        `${fmt((1000 * t.seconds) / count, 2)} | ${fmt((1000 * t.cpu) / count, 2)} |`
    )
  }
  log()
  log(`Mean receipt size: ${fmt(bytes)} bytes (2 shards).`)
  log()

  // (b) Real re-execution.
  log('### Real re-execution (deterministic CPU, one thread)')
  log()
  const who = identities[0]!
  const realChain: string[] = []
  const honestRuns = await timed(async () => {
    for (let r = 0; r < REAL_RUNS; r++) {
      const input = inputFor(0, r, '0'.repeat(64))
      const { resultHash } = await real.run({
        ...input,
        kind: 'shoal.receipt/1',
        iss: who.did,
        iat: 0,
        prev: null
      } as ReceiptClaims)
      realChain.push(await issueReceipt(who, { ...input, resultHash }, realChain.at(-1) ?? null))
    }
  })
  const verifier = identities[1]!
  const verified = await timed(async () =>
    verifyAll(realChain, { grants, reexec: real, fraction: 1, verifier })
  )
  const reproducible = verified.value.verified.length === REAL_RUNS
  // A cheater: same claims, weights hash of other (e.g. random) weights.
  const liarInput = inputFor(0, REAL_RUNS, sha256Hex('random weights'))
  const liar = await issueReceipt(who, liarInput, realChain.at(-1)!)
  const caught = await verifyAll([...realChain, liar], { grants, reexec: real, fraction: 1, verifier })
  const proof = caught.fraudProofs[0]
  const proofCheck = proof === undefined ? undefined : await timed(async () => checkFraudProof(proof, real))
  await real.close()
  log(
    `MLP 784-128-10 (SGD, momentum 0.9), ${REAL_STEPS} steps × batch ${REAL_BATCH} = ${REAL_STEPS * REAL_BATCH} samples ` +
      `per receipt, 2 shards of 1,000 mnist digits each.`
  )
  log()
  log('| measure | value |')
  log('|---|---:|')
  log(`| honest training runs (the trainers' side) | ${REAL_RUNS} in ${fmt(honestRuns.seconds, 2)} s |`)
  log(
    `| verifyAll with real re-execution of every receipt | ${fmt(REAL_RUNS / verified.seconds, 1)} receipts/s ` +
      `(${fmt((1000 * verified.seconds) / REAL_RUNS)} ms each, ${fmt((1000 * verified.cpu) / REAL_RUNS)} CPU ms) |`
  )
  log(
    `| re-execution bit-identical to the trainer's run | ${reproducible ? `yes, ${REAL_RUNS}/${REAL_RUNS}` : 'NO'} |`
  )
  log(
    `| receipt with other weights: excluded, fraud proof issued | ${caught.excluded.has(who.did) && proof !== undefined ? 'yes' : 'NO'} |`
  )
  log(
    `| checkFraudProof (re-runs the round) | ${proofCheck?.value.ok === true ? 'valid' : 'INVALID'}, ${fmt((proofCheck?.seconds ?? 0) * 1000)} ms |`
  )
  log()

  // (c) Detection probability.
  log('### Detection: P(a cheater stays undetected)')
  log()
  log(
    'A cheater fakes each round with probability f; each verifier re-executes each receipt with ' +
      'probability p (independently, `shouldReexecute`). After R rounds: (1 − p·f)^R with one verifier, ' +
      '(1 − p·f)^(R·V) with V verifiers.'
  )
  log()
  const Rs = [10, 50, 100]
  const Vs = [1, 5]
  log(`| p | f | ${Vs.flatMap((V) => Rs.map((R) => `R=${R}, V=${V}`)).join(' | ')} |`)
  log(`|---:|---:|${Vs.flatMap(() => Rs.map(() => '---:')).join('|')}|`)
  for (const p of [0.05, 0.1]) {
    for (const f of [0.1, 0.5, 1]) {
      const cells = Vs.flatMap((V) => Rs.map((R) => (1 - p * f) ** (R * V)))
      log(`| ${p} | ${f} | ${cells.map((x) => (x < 1e-4 ? x.toExponential(1) : fmt(x, 4))).join(' | ')} |`)
    }
  }
  log()
  // Monte-Carlo check of the formula with the real sampling function (DID-keyed, one verifier).
  const trials = quick ? 1000 : 4000
  const R = 50
  const p = 0.1
  const f = 0.5
  let undetected = 0
  let k = 0
  for (let t = 0; t < trials; t++) {
    let caughtHere = false
    for (let r = 0; r < R; r++) {
      const hash = cidOf(`trial-${t}-round-${r}`)
      const faked = createHash('sha256').update(`fake-${t}-${r}`).digest()[0]! < 256 * f
      if (faked && shouldReexecute(hash, verifier.did, p)) caughtHere = true
      k++
    }
    if (!caughtHere) undetected++
  }
  log(
    `Monte-Carlo with \`shouldReexecute\` (p = ${p}, f = ${f}, R = ${R}, one verifier, ${fmt(trials)} cheaters, ${fmt(k)} receipts): ` +
      `${fmt((100 * undetected) / trials, 1)} % undetected; formula ${fmt(100 * (1 - p * f) ** R, 1)} %.`
  )
  log()
  writeFileSync(outFile, md.join('\n'))
  console.log(`\nwritten to ${outFile}`)
}

await main()
