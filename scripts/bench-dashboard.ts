/**
 * The dashboard's goals (issue #17): page load ≤ 1 s on loopback with a 20-round job, an event
 * reaches the page ≤ 500 ms after the node publishes it, and the daemon's RSS grows by ≤ 20 MiB
 * with the dashboard open for an hour. A local swarm (an owner and N trainers) trains a job while
 * Debian's headless Chromium (playwright-core, executablePath) shows trainer 1's jobs view.
 *
 *   npm run bench:dashboard                               # 2 trainers, 20 rounds, 60 min open
 *   BENCH_DASHBOARD_MINUTES=10 npm run bench:dashboard    # shorter soak
 *   BENCH_DASHBOARD_SCREENSHOT=docs/dashboard.png npm run bench:dashboard
 *
 * Measured:
 * 1. event latency: every event's `at` (the node's clock, when published) against its arrival
 *    in the page (an EventSource in the page, same machine clock), and for `round.completed`
 *    against the moment the jobs view's chart gained the point (a MutationObserver);
 * 2. page load, after the 20 rounds: navigation to `load` (Navigation Timing) and to the chart
 *    drawn with every round, median and max of 10 loads in the logged-in browser;
 * 3. the daemon's RSS (`shoal_process_resident_memory_bytes` from its /metrics) every 10 s while
 *    the page stays open on the jobs view for the soak, its event stream connected.
 *
 * Prints Markdown for BENCHMARKS.md and writes benchmarks/dashboard.md.
 */
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { LocalSwarm } from './lib/swarm.js'

const TRAINERS = Number(process.env.BENCH_DASHBOARD_NODES ?? 2)
const ROUNDS = Number(process.env.BENCH_DASHBOARD_ROUNDS ?? 20)
const MINUTES = Number(process.env.BENCH_DASHBOARD_MINUTES ?? 60)
const CHROMIUM = [process.env.SHOAL_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p): p is string => p !== undefined && p !== '' && existsSync(p)
)
if (CHROMIUM === undefined) {
  console.error('bench:dashboard needs Chromium: apt-get install -y chromium (or set SHOAL_CHROMIUM)')
  process.exit(2)
}

/** The page's document and window, as much as the in-page functions use (no DOM types here). */
interface PageGlobals {
  document: {
    querySelector(s: string): { getAttribute(n: string): string | null } | null
  }
  MutationObserver: new (cb: () => void) => { observe(el: unknown, o: Record<string, unknown>): void }
  EventSource: new (url: string) => {
    addEventListener(t: string, f: (e: { data: string }) => void): void
  }
  performance: {
    getEntriesByType(t: string): Array<{ loadEventEnd: number; domContentLoadedEventEnd: number }>
  }
  __bench: {
    delivery: number[]
    chart: Array<{ at: number; points: number }>
    rounds: Array<{ round: number; at: number }>
  }
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!
}
const ms = (x: number): string => `${x.toFixed(0)} ms`
const loadNow = (): string =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join('/')

const root = await mkdtemp(join(tmpdir(), 'shoal-bench-dashboard-'))
const swarm = new LocalSwarm({ root, trainers: TRAINERS })
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--no-sandbox', '--disable-dev-shm-usage']
})
const started = new Date()
try {
  console.log(
    `bench:dashboard: ${TRAINERS} trainers, ${ROUNDS} rounds, soak ${MINUTES} min (data in ${root})`
  )
  await swarm.start()
  await swarm.form()
  const ds = await swarm.importAndGrant({ alpha: 0.5, seed: 42 })
  const t1 = swarm.trainers[0]!
  const token = (await readFile(join(t1.home, 'rpc.cookie'), 'utf8')).trim()
  const rss = async (): Promise<number> => {
    const text = await (
      await fetch(new URL('metrics', t1.daemon!.api), { headers: { authorization: `Bearer ${token}` } })
    ).text()
    return Number(/^shoal_process_resident_memory_bytes (\d+)/m.exec(text)![1])
  }
  const { url } = await swarm.call<{ url: string }>(t1, 'dashboard_login')
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } })
  const page = await context.newPage()
  await page.goto(url)
  await page.click('[data-tab="jobs"]')
  // In the page: an EventSource of its own (delivery latency), and the chart's growth.
  await page.evaluate(() => {
    const g = globalThis as unknown as PageGlobals
    g.__bench = { delivery: [], chart: [], rounds: [] }
    const es = new g.EventSource('/api/v0/events?topics=*')
    for (const t of ['round.completed', 'receipt.accepted', 'job.state', 'peer.joined', 'peer.left'])
      es.addEventListener(t, (e) => {
        const d = JSON.parse(e.data) as { at: number; round?: number }
        g.__bench.delivery.push(Date.now() - d.at)
        if (t === 'round.completed') g.__bench.rounds.push({ round: d.round!, at: d.at })
      })
    // (No named inner functions: the page gets this function's source as written.)
    const timer = setInterval(() => {
      const el = g.document.querySelector('[data-testid="job-chart"]')
      if (el === null) return
      clearInterval(timer)
      new g.MutationObserver(() =>
        g.__bench.chart.push({ at: Date.now(), points: Number(el.getAttribute('data-points')) })
      ).observe(el, { attributes: true, attributeFilter: ['data-points'] })
    }, 50)
  })
  const rssBefore = await rss()
  const job = await swarm.createJob({
    name: 'bench-dashboard',
    dataset: ds.manifestCid,
    model: 'mlp',
    rounds: ROUNDS,
    H: 40,
    k: Math.min(3, TRAINERS - 1),
    lr: 0.05,
    batchSize: 32,
    aggregation: 'mean',
    compression: 'none',
    seed: 1
  })
  await swarm.waitDone(job)
  const loadAfterJob = loadNow()
  console.log(`bench:dashboard: job done (load ${loadAfterJob})`)
  const b = (await page.evaluate(
    () => (globalThis as unknown as PageGlobals).__bench
  )) as PageGlobals['__bench']
  // A round's point is on the chart when the chart first shows that many points or more.
  const render: number[] = []
  const seen = new Set<number>()
  for (const r of b.rounds) {
    if (seen.has(r.round)) continue
    seen.add(r.round)
    const shown = b.chart.find((c) => c.points >= seen.size && c.at >= r.at)
    if (shown !== undefined) render.push(shown.at - r.at)
  }
  if (process.env.BENCH_DASHBOARD_SCREENSHOT !== undefined) {
    await page.screenshot({ path: process.env.BENCH_DASHBOARD_SCREENSHOT })
  }

  // Page load with the finished 20-round job: 10 loads in the logged-in browser. A trainer that
  // caught up with its peers skipped rounds: the chart shows the rounds it trained.
  const trained = (await swarm.status(t1, job)).history.length
  const loads: number[] = []
  const ready: number[] = []
  for (let i = 0; i < 10; i++) {
    const t0 = Date.now()
    await page.goto(new URL(`dashboard/?load=${i}#jobs`, t1.daemon!.api).href)
    await page.waitForFunction(
      (n) =>
        Number(
          (globalThis as unknown as PageGlobals).document
            .querySelector('[data-testid="job-chart"]')
            ?.getAttribute('data-points') ?? 0
        ) >= n,
      trained
    )
    ready.push(Date.now() - t0)
    loads.push(
      await page.evaluate(
        () =>
          (globalThis as unknown as PageGlobals).performance.getEntriesByType('navigation')[0]!.loadEventEnd
      )
    )
  }

  // Soak: the page stays open on the jobs view (event stream connected, views refreshing).
  const samples: Array<{ t: number; rss: number }> = [{ t: 0, rss: await rss() }]
  const soakStart = Date.now()
  while (Date.now() - soakStart < MINUTES * 60_000) {
    await new Promise((resolve) => setTimeout(resolve, 10_000))
    samples.push({ t: (Date.now() - soakStart) / 1000, rss: await rss() })
    if (samples.length % 30 === 1) {
      const s = samples.at(-1)!
      console.log(
        `bench:dashboard: soak ${(s.t / 60).toFixed(0)} min, RSS ${(s.rss / 1048576).toFixed(1)} MiB, load ${loadNow()}`
      )
    }
  }
  const mib = (x: number): string => `${(x / 1048576).toFixed(1)} MiB`
  const first = samples[0]!.rss
  const last = samples.at(-1)!.rss
  const peak = Math.max(...samples.map((s) => s.rss))
  // Growth without the start-up transient: the median of the last 5 samples against the first 5.
  const med = (xs: number[]): number => pct(xs, 50)
  const growth = med(samples.slice(-5).map((s) => s.rss)) - med(samples.slice(0, 5).map((s) => s.rss))
  // Growth rate: the least-squares slope of RSS over time, in bytes per hour, over the whole soak
  // and over its second half (after the fall that follows the job's end has settled).
  const slope = (xs: Array<{ t: number; rss: number }>): number => {
    if (xs.length < 2) return NaN
    const mt = xs.reduce((a, x) => a + x.t, 0) / xs.length
    const mr = xs.reduce((a, x) => a + x.rss, 0) / xs.length
    const num = xs.reduce((a, x) => a + (x.t - mt) * (x.rss - mr), 0)
    const den = xs.reduce((a, x) => a + (x.t - mt) ** 2, 0)
    return (num / den) * 3600
  }
  const half = samples.at(-1)!.t / 2
  const slopeAll = slope(samples)
  const slopeLate = slope(samples.filter((s) => s.t >= half))
  // The rise from the soak's lowest sample to its end (the median of the last 5).
  const low = Math.min(...samples.map((s) => s.rss))
  const fromLow = med(samples.slice(-5).map((s) => s.rss)) - low
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load ${loadAfterJob} when the job ended, ${loadNow()} at the soak's end`
  const md = [
    `## Dashboard — \`npm run bench:dashboard\` ([benchmarks/dashboard.md](benchmarks/dashboard.md))`,
    '',
    `${started.toISOString().slice(0, 10)}, ${machine}; ${TRAINERS} trainers + owner, ${ROUNDS} rounds × 40 steps; Chromium ${browser.version()} headless on the same machine.`,
    '',
    '| measure | goal | result |',
    '| --- | --- | ---: |',
    `| page load, navigation → \`load\` (median / max of 10) | ≤ 1 s | **${ms(pct(loads, 50))}** / ${ms(Math.max(...loads))} |`,
    `| page load → chart drawn with all ${trained} rounds trained (median / max) | ≤ 1 s | **${ms(pct(ready, 50))}** / ${ms(Math.max(...ready))} |`,
    `| event delivery, node publish → page (p50 / p99 / max of ${b.delivery.length}) | ≤ 500 ms | **${ms(pct(b.delivery, 50))}** / ${ms(pct(b.delivery, 99))} / ${ms(Math.max(...b.delivery))} |`,
    `| round.completed → point on the chart (p50 / max of ${render.length}) | ≤ 500 ms | **${ms(pct(render, 50))}** / ${ms(Math.max(...render))} |`,
    `| daemon RSS with the page open ${MINUTES} min (first → last, peak) | ≤ 20 MiB growth per hour | ${mib(first)} → ${mib(last)}, peak ${mib(peak)}; **growth ${mib(growth)}** (median of last 5 vs first 5 samples) |`,
    `| daemon RSS growth rate over the ${MINUTES} min (least-squares slope: whole soak / second half; rise from the lowest sample to the end) | ≤ 20 MiB per hour | ${mib(slopeAll)}/h / **${mib(slopeLate)}/h**; low ${mib(low)} → end ${mib(low + fromLow)}, **+${mib(fromLow)}** |`,
    '',
    `RSS of trainer 1 before the job: ${mib(rssBefore)}.`
  ].join('\n')
  console.log(`\n${md}\n`)
  await mkdir('benchmarks', { recursive: true })
  await writeFile(
    join('benchmarks', 'dashboard.md'),
    `${md}\n\nRSS samples (s, MiB):\n\n${samples.map((s) => `${s.t.toFixed(0)} ${(s.rss / 1048576).toFixed(1)}`).join('\n')}\n`
  )
} finally {
  await browser.close()
  await swarm.stop()
  await rm(root, { recursive: true, force: true })
}
