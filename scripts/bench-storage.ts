/**
 * Storage throughput: add and get of the same generated stream through ContentStore, encrypted
 * and plain, each on a fresh temporary repo (blockstore-fs + datastore-level). Prints a Markdown
 * table to stdout: MiB/s of add and get, the encrypted/plain ratio, and the peak RSS of each
 * phase above that phase's idle baseline.
 *
 * The plain object is also read back with @helia/unixfs `cat`, Helia's own reader, for
 * reference (ContentStore reads plain UnixFS with its own bounded reader, see dag.ts).
 *
 * Each phase runs in its own child process (add, then get on the same repo), so that one
 * phase's heap and allocator state do not show up in the next one's RSS. The baseline is the
 * child's RSS with the Helia node started and idle, after a full GC.
 *
 *   npm run bench                                       # 1 GiB (or SHOAL_BENCH_SIZE_MIB)
 *   npm run bench -- --size 256 --runs 3                # MiB; best of 3, modes interleaved
 *   npx node --import tsx scripts/bench-storage.ts --size 256 --piece 65536
 *
 * Options: --size MiB, --piece bytes per source piece (default 262144), --chunk plaintext
 * chunk size (default 1 MiB), --alg AES-256-GCM|CHACHA20-POLY1305, --runs N (best of N),
 * --only encrypted|plain, --worker off (crypto on the main thread), --dir parent of the temp
 * repos (default os.tmpdir()).
 */
import { spawn } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { unixfs } from '@helia/unixfs'
import { CID } from 'multiformats/cid'
import { Identity, keypairFromSeed } from '../src/identity/index.js'
import { ContentStore, createHeliaNode, type AeadAlgorithm } from '../src/storage/index.js'

const MiB = 1_048_576

const { values } = parseArgs({
  options: {
    size: { type: 'string' },
    piece: { type: 'string', default: '262144' },
    chunk: { type: 'string' },
    alg: { type: 'string' },
    runs: { type: 'string', default: '1' },
    only: { type: 'string' },
    dir: { type: 'string' },
    worker: { type: 'string' },
    // Internal: run one phase in this process.
    child: { type: 'string' },
    mode: { type: 'string' },
    repo: { type: 'string' },
    cid: { type: 'string' }
  }
})
const sizeMiB = Number(values.size ?? process.env.SHOAL_BENCH_SIZE_MIB ?? 1024)
const pieceBytes = Number(values.piece)
const totalBytes = Math.round(sizeMiB * MiB)
if (!(totalBytes > 0) || !(pieceBytes > 0)) throw new Error('--size and --piece must be positive')

type Mode = 'encrypted' | 'plain'
/** `cat`: the plain object read back with @helia/unixfs `cat` (Helia's own reader), for reference. */
type Phase = 'add' | 'get' | 'cat'

interface PhaseResult {
  seconds: number
  /** CPU time of the process (all threads, user + system), seconds. */
  cpuSeconds: number
  /** CPU time of the main thread alone, seconds. */
  mainCpuSeconds: number
  /** Peak RSS during the phase minus the idle baseline, MiB. */
  rssOverMiB: number
  idleMiB: number
  cid?: string
}

/**
 * A deterministic stream of `total` bytes in fresh `piece`-sized buffers: a random template with
 * a running counter in the first 8 bytes of every piece, so no two pieces (and no two UnixFS
 * leaves) are equal and plain storage cannot deduplicate.
 */
async function* generate(total: number, piece: number): AsyncGenerator<Uint8Array> {
  const template = Buffer.alloc(piece)
  randomFillSync(template)
  let sent = 0
  let counter = 0
  while (sent < total) {
    const n = Math.min(piece, total - sent)
    const b = Buffer.allocUnsafe(n)
    template.copy(b, 0, 0, n)
    if (n >= 8) b.writeDoubleLE(counter++, 0)
    sent += n
    yield b
  }
}

/** Samples RSS every 10 ms (and on demand); `peak()` is the highest value seen. */
class RssSampler {
  private max = 0
  private readonly timer: NodeJS.Timeout
  constructor() {
    this.sample()
    this.timer = setInterval(() => this.sample(), 10)
    this.timer.unref()
  }
  sample(): void {
    const r = process.memoryUsage.rss()
    if (r > this.max) this.max = r
  }
  peak(): number {
    this.sample()
    clearInterval(this.timer)
    return this.max
  }
}

/** Run one phase in this process and print its result as JSON. */
async function child(phase: Phase, mode: Mode, repo: string): Promise<void> {
  const helia = await createHeliaNode({
    blocksPath: join(repo, 'blocks'),
    datastorePath: join(repo, 'datastore'),
    libp2p: {
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify() }
    }
  })
  try {
    const identity = Identity.fromKeypair(keypairFromSeed(new Uint8Array(32).fill(7)))
    const store = new ContentStore(
      { helia, identity },
      {
        chunkSize: values.chunk !== undefined ? Number(values.chunk) : undefined,
        algorithm: values.alg as AeadAlgorithm | undefined,
        offline: true,
        worker: values.worker !== 'off'
      }
    )
    // As a node does at startup: the crypto worker is running before the first add or get.
    await store.start()
    const gc = (globalThis as { gc?: () => void }).gc
    gc?.()
    gc?.()
    await new Promise((resolve) => setTimeout(resolve, 50))
    const idle = process.memoryUsage.rss()
    const sampler = new RssSampler()
    const cpu0 = process.cpuUsage()
    const main0 = process.threadCpuUsage()
    const t = performance.now()
    let cid: string | undefined
    if (phase === 'add') {
      const added = await store.add(generate(totalBytes, pieceBytes), { plain: mode === 'plain' })
      if (added.size !== totalBytes) throw new Error(`added ${added.size} bytes, expected ${totalBytes}`)
      cid = added.cid.toString()
    } else {
      const cid = CID.parse(values.cid!)
      const source = phase === 'cat' ? unixfs(helia).cat(cid, { offline: true }) : store.get(cid)
      let got = 0
      for await (const b of source) got += b.byteLength
      if (got !== totalBytes) throw new Error(`read ${got} bytes, expected ${totalBytes}`)
    }
    const seconds = (performance.now() - t) / 1000
    const cpu = process.cpuUsage(cpu0)
    const mainCpu = process.threadCpuUsage(main0)
    const peak = sampler.peak()
    const result: PhaseResult = {
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      mainCpuSeconds: (mainCpu.user + mainCpu.system) / 1e6,
      rssOverMiB: (peak - idle) / MiB,
      idleMiB: idle / MiB
    }
    if (cid !== undefined) result.cid = cid
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
    await store.stop()
  } finally {
    await helia.stop()
  }
}

/** Spawn this script for one phase; returns its result. */
async function runChild(phase: Phase, mode: Mode, repo: string, cid?: string): Promise<PhaseResult> {
  const args = [
    ...process.execArgv.filter((a) => a !== '--expose-gc'),
    '--expose-gc',
    fileURLToPath(import.meta.url),
    '--child',
    phase,
    '--mode',
    mode,
    '--repo',
    repo,
    '--size',
    String(sizeMiB),
    '--piece',
    String(pieceBytes)
  ]
  if (values.chunk !== undefined) args.push('--chunk', values.chunk)
  if (values.alg !== undefined) args.push('--alg', values.alg)
  if (values.worker !== undefined) args.push('--worker', values.worker)
  if (cid !== undefined) args.push('--cid', cid)
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  const code = await new Promise<number | null>((resolve) => proc.on('close', resolve))
  const line = out.split('\n').find((l) => l.startsWith('RESULT '))
  if (code !== 0 || line === undefined) throw new Error(`${phase} ${mode} failed (exit ${code}): ${out}`)
  return JSON.parse(line.slice('RESULT '.length)) as PhaseResult
}

interface ModeResult {
  add: PhaseResult
  get: PhaseResult
  cat?: PhaseResult
}

async function main(): Promise<void> {
  const runs = Math.max(1, Number(values.runs))
  const modes: Mode[] = values.only !== undefined ? [values.only as Mode] : ['plain', 'encrypted']
  const all: Record<Mode, ModeResult[]> = { plain: [], encrypted: [] }
  for (let r = 0; r < runs; r++) {
    // Alternate the order so that neither mode always runs on a warmer (or dirtier) disk.
    const order = r % 2 === 0 ? modes : [...modes].reverse()
    for (const mode of order) {
      const repo = await mkdtemp(join(values.dir ?? tmpdir(), `shoal-bench-${mode}-`))
      try {
        const add = await runChild('add', mode, repo)
        const get = await runChild('get', mode, repo, add.cid)
        const cat = mode === 'plain' ? await runChild('cat', mode, repo, add.cid) : undefined
        all[mode].push(cat !== undefined ? { add, get, cat } : { add, get })
        const cpu = (x: PhaseResult): string =>
          `${x.cpuSeconds.toFixed(2)} s CPU, ${x.mainCpuSeconds.toFixed(2)} s main thread`
        console.error(
          `run ${r + 1}/${runs} ${mode}: add ${(sizeMiB / add.seconds).toFixed(0)} MiB/s (${cpu(add)}), ` +
            `get ${(sizeMiB / get.seconds).toFixed(0)} MiB/s (${cpu(get)})` +
            (cat !== undefined
              ? `, unixfs cat ${(sizeMiB / cat.seconds).toFixed(0)} MiB/s (${cpu(cat)})`
              : '')
        )
      } finally {
        await rm(repo, { recursive: true, force: true })
      }
    }
  }

  const bestOf = (list: PhaseResult[]): PhaseResult => list.reduce((a, b) => (b.seconds < a.seconds ? b : a))
  const best: Partial<Record<Mode, ModeResult>> = {}
  for (const mode of modes) {
    best[mode] = { add: bestOf(all[mode].map((m) => m.add)), get: bestOf(all[mode].map((m) => m.get)) }
    const cats = all[mode].flatMap((m) => (m.cat !== undefined ? [m.cat] : []))
    if (cats.length > 0) best[mode].cat = bestOf(cats)
  }
  const rate = (p: PhaseResult): number => sizeMiB / p.seconds
  const f = (x: number): string => x.toFixed(1)
  const cpuCell = (x: PhaseResult): string => `${x.cpuSeconds.toFixed(2)} (${x.mainCpuSeconds.toFixed(2)})`
  const lines = [
    `Storage benchmark: ${sizeMiB} MiB generated stream in ${pieceBytes}-byte pieces, best of ${runs}, ` +
      `Node ${process.version}, ${process.platform}/${process.arch}`,
    '',
    '| mode | add MiB/s | add s | add CPU s (main) | add peak RSS over idle (MiB) | get MiB/s | get s | get CPU s (main) | get peak RSS over idle (MiB) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
  ]
  for (const mode of modes) {
    const m = best[mode]!
    const peakAdd = Math.max(...all[mode].map((x) => x.add.rssOverMiB))
    const peakGet = Math.max(...all[mode].map((x) => x.get.rssOverMiB))
    lines.push(
      `| ${mode} | ${f(rate(m.add))} | ${m.add.seconds.toFixed(2)} | ${cpuCell(m.add)} | ` +
        `${f(peakAdd)} | ${f(rate(m.get))} | ${m.get.seconds.toFixed(2)} | ${cpuCell(m.get)} | ` +
        `${f(peakGet)} |`
    )
  }
  const pc = best.plain?.cat
  if (pc !== undefined) {
    const peakCat = Math.max(...all.plain.flatMap((x) => (x.cat !== undefined ? [x.cat.rssOverMiB] : [])))
    lines.push(
      `| plain, read with @helia/unixfs cat | | | | | ${f(rate(pc))} | ${pc.seconds.toFixed(2)} | ` +
        `${cpuCell(pc)} | ${f(peakCat)} |`
    )
  }
  const cpuRatio = (a: PhaseResult, b: PhaseResult): string =>
    `${(a.cpuSeconds / b.cpuSeconds).toFixed(2)}× (${(a.mainCpuSeconds / b.mainCpuSeconds).toFixed(2)}×)`
  const e = best.encrypted
  const p = best.plain
  if (e !== undefined && p !== undefined) {
    lines.push(
      `| encrypted / plain | ${(rate(e.add) / rate(p.add)).toFixed(2)}× | | ${cpuRatio(e.add, p.add)} | | ` +
        `${(rate(e.get) / rate(p.get)).toFixed(2)}× | | ${cpuRatio(e.get, p.get)} | |`
    )
    if (p.cat !== undefined) {
      lines.push(
        `| encrypted / plain read with unixfs cat | | | | | ${(rate(e.get) / rate(p.cat)).toFixed(2)}× | | ` +
          `${cpuRatio(e.get, p.cat)} | |`
      )
    }
  }
  lines.push(
    '',
    'Rates and CPU: the fastest run of each phase. RSS: the highest peak over all runs, each phase ' +
      'in a fresh process. CPU: user + system seconds of all threads of the process, and (in ' +
      'parentheses) of the main thread alone; the rest is the crypto worker and libuv threads.'
  )
  console.log(lines.join('\n'))
  const outDir = join(fileURLToPath(new URL('..', import.meta.url)), 'benchmarks')
  await mkdir(outDir, { recursive: true })
  await writeFile(join(outDir, 'storage.md'), lines.join('\n') + '\n')
}

const entry =
  values.child !== undefined ? child(values.child as Phase, values.mode as Mode, values.repo!) : main()
entry.catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
