/**
 * The web dashboard in a real browser (Debian's headless Chromium, driven by playwright-core
 * with `executablePath`; nothing is downloaded): a small swarm (an owner and 2 trainers) trains
 * while a trainer's page charts its rounds as their events arrive; the owner revokes a grant
 * from its page and the grantee's node reports it; requests without the session, with a wrong
 * Host or without the CSRF token are refused. The second test, on the same daemons, works the
 * controls: the duty cycle and pause/resume on a trainer's node view, and a grant's expiry
 * (shortened, then lifted by a new grant) on the owner's data & consent view, each checked
 * through the node's RPC and on the page. Waits on conditions and events, never on fixed
 * sleeps. Screenshots go to the test's temp dir (SHOAL_DASHBOARD_SCREENSHOT=path also copies the
 * jobs view there, e.g. docs/dashboard.png).
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { LocalSwarm, until, type SwarmNode } from '../../scripts/lib/swarm.js'

const CHROMIUM = [
  process.env.SHOAL_CHROMIUM,
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome'
].find((p): p is string => p !== undefined && p !== '' && existsSync(p))

/** Opens a node's event stream (bearer token) and collects its events until `stop()`. */
function eventLog(
  node: SwarmNode,
  token: string,
  topics: string
): {
  events: Array<{ event: string; data: Record<string, unknown> }>
  ready: Promise<void>
  stop: () => void
} {
  const events: Array<{ event: string; data: Record<string, unknown> }> = []
  const ac = new AbortController()
  let ready!: () => void
  const isReady = new Promise<void>((resolve) => (ready = resolve))
  void (async () => {
    const res = await fetch(new URL(`api/v0/events?topics=${topics}`, node.daemon!.api), {
      headers: { authorization: `Bearer ${token}` },
      signal: ac.signal
    })
    const reader = res.body!.getReader()
    const dec = new TextDecoder()
    let buf = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      buf += dec.decode(value, { stream: true })
      let i: number
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i)
        buf = buf.slice(i + 2)
        const event = /^event: (.*)$/m.exec(block)?.[1]
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (event === 'ready') ready()
        else if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) })
      }
    }
  })().catch(() => {})
  return { events, ready: isReady, stop: () => ac.abort() }
}

/** The page's document, as much of it as the predicates use (they run in the page: no DOM types here). */
interface PageDoc {
  querySelector(s: string): { getAttribute(n: string): string | null; textContent: string | null } | null
}

/**
 * Page predicates, passed as functions (the page's CSP forbids evaluating strings): the job
 * chart holds at least `n` points; an element's text.
 */
const points = (n: number): boolean =>
  Number(
    (globalThis as unknown as { document: PageDoc }).document
      .querySelector('[data-testid="job-chart"]')
      ?.getAttribute('data-points') ?? 0
  ) >= n
const textAtLeast = ({ sel, n }: { sel: string; n: number }): boolean =>
  Number((globalThis as unknown as { document: PageDoc }).document.querySelector(sel)?.textContent) >= n
const textStarts = ({ sel, prefix }: { sel: string; prefix: string }): boolean =>
  (
    (globalThis as unknown as { document: PageDoc }).document.querySelector(sel)?.textContent ?? ''
  ).startsWith(prefix)

/** A raw request with exactly these headers (Host included). */
async function raw(
  api: string,
  path: string,
  headers: Record<string, string>,
  body?: string
): Promise<number> {
  const u = new URL(api)
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path, method: body === undefined ? 'GET' : 'POST', headers },
      (res) => {
        res.resume()
        resolve(res.statusCode!)
      }
    )
    req.on('error', reject)
    req.end(body)
  })
}

describe('web dashboard in headless Chromium (a small swarm)', function () {
  this.timeout(600_000)
  let swarm: LocalSwarm
  let browser: Browser | undefined
  let shots: string
  const pageErrors: string[] = []

  before(async function () {
    // A prerequisite, like the lab's root and iptables: missing, the test fails and says what to install.
    assert.ok(
      CHROMIUM !== undefined,
      'no Chromium: `apt-get install -y chromium` (as .ci/run does) or set SHOAL_CHROMIUM to a Chromium binary'
    )
    shots = await mkdtemp(join(tmpdir(), 'shoal-e2e-dashboard-'))
    swarm = new LocalSwarm({ root: join(shots, 'swarm'), trainers: 2 })
    await swarm.start()
    await swarm.form()
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu']
    })
  })
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && swarm !== undefined) console.log(swarm.output())
  })
  after(async () => {
    await browser?.close()
    await swarm?.stop()
    if (shots !== undefined) console.log(`    screenshots: ${shots}`)
    if (process.env.SHOAL_KEEP_E2E !== '1' && shots !== undefined)
      await rm(join(shots, 'swarm'), { recursive: true, force: true })
  })

  /** Logs a new browser context into `node`'s dashboard through a one-time URL. */
  const login = async (node: SwarmNode): Promise<{ context: BrowserContext; page: Page; url: string }> => {
    const { url } = await swarm.call<{ url: string }>(node, 'dashboard_login')
    const context = await browser!.newContext({ viewport: { width: 1360, height: 900 } })
    const page = await context.newPage()
    page.on('pageerror', (e) => pageErrors.push(`${node.name}: ${e.message}`))
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(`${node.name}: ${m.text()}`)
    })
    page.on('dialog', (d) => void d.accept())
    await page.goto(url)
    assert.ok(page.url().endsWith('/dashboard/'), page.url())
    await page.waitForSelector('[data-testid="live"][data-connected="true"]')
    return { context, page, url }
  }

  it('logs in once, charts a trainer’s rounds live, revokes a grant from the page, and refuses forged requests', async () => {
    const [t1, t2] = swarm.trainers as [SwarmNode, SwarmNode]
    const tokenOf = async (n: SwarmNode): Promise<string> =>
      (await readFile(join(n.home, 'rpc.cookie'), 'utf8')).trim()
    const ds = await swarm.importAndGrant({ alpha: 0.5, seed: 7 })
    const trainerView = await login(t1)
    // The login URL is spent: a second visit gets no session.
    const again = await browser!.newContext()
    const againPage = await again.newPage()
    const second = await againPage.goto(trainerView.url)
    assert.equal(second?.status(), 403)
    await again.close()

    await trainerView.page.click('[data-tab="jobs"]')
    const job = await swarm.createJob({
      name: 'e2e-dashboard',
      dataset: ds.manifestCid,
      model: 'mlp',
      rounds: 6,
      H: 15,
      k: 1,
      lr: 0.05,
      batchSize: 32,
      aggregation: 'mean',
      compression: 'none',
      seed: 1
    })
    // The chart gains points as round.completed events arrive (no reload).
    const chart = trainerView.page.locator('[data-testid="job-chart"]')
    await chart.waitFor()
    await trainerView.page.waitForFunction(points, 1, { timeout: 300_000 })
    const first = Number(await chart.getAttribute('data-points'))
    await trainerView.page.waitForFunction(points, first + 1, { timeout: 300_000 })
    // The round tile follows the job's status, reloaded on the same events.
    await trainerView.page.waitForFunction(textAtLeast, { sel: '[data-testid="job-round"]', n: first + 1 })
    assert.ok((await trainerView.page.locator('.chart canvas').count()) >= 1, 'uPlot drew on a canvas')
    await trainerView.page.screenshot({ path: join(shots, 'dashboard-jobs.png'), fullPage: true })

    // The owner revokes trainer 2's grant from its page while the job runs; trainer 2's node reports
    // it. (A revocation halting a round in flight once crashed the trainers' daemons with an escaped
    // AbortError, found by this test; the daemon now logs such an abort and keeps running.)
    const t2events = eventLog(t2, await tokenOf(t2), 'grant.revoked,job.state')
    await t2events.ready
    const ownerView = await login(swarm.owner)
    await ownerView.page.click('[data-tab="data"]')
    const grants = await swarm.call<Array<{ id: string; grantee: string }>>(swarm.owner, 'dataset_grants')
    const g2 = grants.find((g) => g.grantee === t2.did)!
    const row = ownerView.page.locator(`tr[data-grant="${g2.id}"]`)
    await row.locator('[data-testid="revoke"]').click()
    await ownerView.page.waitForSelector(`tr[data-grant="${g2.id}"][data-status="revoked"]`)
    // A new grant from the page, with an expiry and an ε budget: it appears as active with its gauge.
    const form = ownerView.page.locator('[data-testid="grant-form"]')
    await form.locator('input[aria-label="grantee DID"]').fill(t2.did!)
    await form.locator('input[aria-label="expires in days"]').fill('30')
    await form.locator('input[aria-label="epsilon budget"]').fill('4')
    await form.locator('button').click()
    const fresh2 = ownerView.page.locator('tr[data-status="active"]', { hasText: 'ε' })
    await fresh2.waitFor()
    const issued = (
      await swarm.call<Array<{ grantee: string; exp?: number; privacy?: { epsMax: number } }>>(
        swarm.owner,
        'dataset_grants'
      )
    ).filter((g) => g.grantee === t2.did && g.privacy?.epsMax === 4)
    assert.equal(issued.length, 1, 'the page issued one grant with ε_max 4')
    assert.ok(Math.abs(issued[0]!.exp! - (Date.now() / 1000 + 30 * 86400)) < 3600, 'expiring in 30 days')
    await ownerView.page.screenshot({ path: join(shots, 'dashboard-consent.png'), fullPage: true })
    await until(
      'trainer 2 to report the revocation',
      async () =>
        t2events.events.some((e) => e.event === 'grant.revoked' && e.data.grant === g2.id) ? true : undefined,
      120_000
    )
    const t2grant = (await swarm.call<Array<{ id: string; revokedAt?: number }>>(t2, 'dataset_grants')).find(
      (g) => g.id === g2.id
    )
    assert.ok(t2grant?.revokedAt !== undefined, 'the grantee holds the revocation')
    t2events.stop()

    // Refused: no session, a wrong Host, no CSRF token.
    const api = swarm.owner.daemon!.api
    const fresh = await browser!.newContext()
    const anon = await fresh.newPage()
    assert.equal((await anon.goto(new URL('dashboard/', api).href))?.status(), 401)
    await fresh.close()
    const noCsrf = await ownerView.page.evaluate(
      async () =>
        (
          await fetch('/rpc', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'node_pause' })
          })
        ).status
    )
    assert.equal(noCsrf, 403)
    const cookie = (await ownerView.context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
    const csrf = String(
      await ownerView.page.evaluate(() =>
        (globalThis as unknown as { document: PageDoc }).document
          .querySelector('meta[name="shoal-csrf"]')
          ?.getAttribute('content')
      )
    )
    const port = new URL(api).port
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'node_info' })
    const json = { 'content-type': 'application/json' }
    assert.equal(
      await raw(api, '/rpc', { ...json, host: `127.0.0.1:${port}`, cookie, 'x-csrf-token': csrf }, body),
      200
    )
    assert.equal(
      await raw(
        api,
        '/rpc',
        { ...json, host: `rebound.example:${port}`, cookie, 'x-csrf-token': csrf },
        body
      ),
      403
    )
    assert.equal(await raw(api, '/dashboard/', { host: `rebound.example:${port}`, cookie }), 421)
    assert.equal(await raw(api, '/rpc', { ...json, host: `127.0.0.1:${port}`, cookie }, body), 403)
    assert.equal(await raw(api, '/rpc', { ...json, host: `127.0.0.1:${port}` }, body), 401)

    // The other views render against the live node without errors.
    for (const tab of ['node', 'audit', 'swarm', 'jobs']) {
      await trainerView.page.click(`[data-tab="${tab}"]`)
      await trainerView.page.waitForSelector('.card')
    }
    await trainerView.page.click('[data-tab="node"]')
    await trainerView.page.waitForFunction(textStarts, {
      sel: '[data-testid="node-did"]',
      prefix: 'did:key:'
    })
    assert.equal(await trainerView.page.textContent('[data-testid="node-did"]'), t1.did)
    // The peers graph: the owner and trainer 2, both members.
    await trainerView.page.waitForSelector('[data-testid="peer-graph"] circle.peer.member')
    await trainerView.page.screenshot({ path: join(shots, 'dashboard-node.png'), fullPage: true })
    await trainerView.page.click('[data-tab="jobs"]')
    await trainerView.page.waitForFunction(points, 2)
    await trainerView.page.screenshot({ path: join(shots, 'dashboard.png') })

    // Governance: the owner founds its swarm's governance and proposes; it votes from its page.
    await swarm.call(swarm.owner, 'governance_found', {})
    const { proposal } = await swarm.call<{ proposal: string }>(swarm.owner, 'governance_propose', {
      title: 'Publish the model under CC-BY',
      action: { type: 'resolution', text: 'The swarm publishes its models under CC-BY 4.0.' }
    })
    await ownerView.page.click('[data-tab="swarm"]')
    const proposalRow = ownerView.page.locator('tr', { hasText: 'Publish the model under CC-BY' })
    await proposalRow.locator('button', { hasText: 'yes' }).click()
    await ownerView.page.waitForSelector('text=voted yes')
    const tally = (
      await swarm.call<Array<{ hash: string; yes: number; no: number }>>(swarm.owner, 'governance_proposals')
    ).find((x) => x.hash === proposal)
    assert.equal(tally?.yes, 1, 'the page signed and counted the owner’s vote')
    await ownerView.page.screenshot({ path: join(shots, 'dashboard-swarm.png'), fullPage: true })
    if (process.env.SHOAL_DASHBOARD_SCREENSHOT !== undefined)
      await copyFile(join(shots, 'dashboard-jobs.png'), process.env.SHOAL_DASHBOARD_SCREENSHOT)
    assert.deepEqual(
      pageErrors.filter((e) => !/status of 403/.test(e) || !e.startsWith(`${swarm.owner.name}:`)),
      [],
      'no script errors or CSP violations on the pages'
    )
    assert.ok(job.length > 0)
  })

  it('sets the duty cycle, pauses and resumes, and changes a grant’s expiry from the page', async () => {
    const t1 = swarm.trainers[0]!
    const errorsBefore = pageErrors.length
    // The stream and the RPC document describe every topic the dashboard and developers rely on.
    const discover = await swarm.call<{ 'x-shoal-events'?: { path: string; topics: string[] } }>(
      t1,
      'rpc.discover'
    )
    assert.equal(discover['x-shoal-events']?.path, '/api/v0/events')
    for (const topic of [
      'round.completed',
      'receipt.accepted',
      'fraud.proof',
      'grant.issued',
      'grant.revoked',
      'peer.joined',
      'peer.left',
      'privacy.budget'
    ])
      assert.ok(discover['x-shoal-events']!.topics.includes(topic), `rpc.discover lists ${topic}`)

    // Node view: the duty cycle, set from the page, is the node's (node_duty_cycle) and shown.
    const { page } = await login(t1)
    await page.click('[data-tab="node"]')
    const duty = page.locator('[data-testid="duty-form"]')
    await duty.locator('input[aria-label="share of each period spent training, percent"]').fill('50')
    await duty.locator('input[aria-label="period in minutes"]').fill('10')
    await duty.locator('button').click()
    await page.waitForFunction(textStarts, {
      sel: '[data-testid="duty-now"]',
      prefix: 'Training 50 % of every 10 min: training until'
    })
    const half = await swarm.call<{ cycle: number; periodSeconds: number; idle: boolean; until: string }>(
      t1,
      'node_duty_cycle'
    )
    assert.deepEqual([half.cycle, half.periodSeconds, half.idle], [0.5, 600, false])
    const activeLeft = Date.parse(half.until) - Date.now()
    assert.ok(activeLeft > 0 && activeLeft <= 300_000, `a new period, training first (${activeLeft} ms left)`)
    assert.match((await page.textContent('[data-testid="duty-now"]'))!, /The config says 100 %/)
    await duty.locator('input[aria-label="share of each period spent training, percent"]').fill('100')
    await duty.locator('button').click()
    await page.waitForFunction(textStarts, { sel: '[data-testid="duty-now"]', prefix: 'Always training' })
    assert.equal((await swarm.call<{ cycle: number }>(t1, 'node_duty_cycle')).cycle, 1)

    // Pause and resume: the node's state (node_contributions) and the page's follow the button.
    const pausedOn = async (): Promise<boolean> =>
      (await swarm.call<{ paused: boolean }>(t1, 'node_contributions')).paused
    assert.equal(await pausedOn(), false)
    await page.click('[data-testid="pause"]')
    await page.waitForFunction(textStarts, { sel: '[data-testid="paused-state"]', prefix: 'paused' })
    assert.equal(await pausedOn(), true)
    assert.equal((await swarm.call<{ paused: boolean }>(t1, 'node_duty_cycle')).paused, true)
    assert.equal(await page.textContent('[data-testid="pause"]'), 'Resume training')
    await page.click('[data-testid="pause"]')
    await page.waitForFunction(textStarts, { sel: '[data-testid="paused-state"]', prefix: 'contributing' })
    assert.equal(await pausedOn(), false)
    // In the duty cycle's idle window the cycle pauses the node, not the user: the page says so,
    // and its button pauses the user's own pause, which outlasts the window. (The page once showed
    // "paused" with a Resume button that could not end the window.)
    await swarm.call(t1, 'node_duty_cycle', { cycle: 0.01, periodSeconds: 100 }) // 1 s on, 99 s idle
    await until(
      'the duty cycle’s idle window',
      async () => (await swarm.call<{ idle: boolean }>(t1, 'node_duty_cycle')).idle || undefined,
      30_000
    )
    await page.click('[data-tab="jobs"]')
    await page.click('[data-tab="node"]')
    await page.waitForFunction(textStarts, {
      sel: '[data-testid="paused-state"]',
      prefix: 'idle (duty cycle) until'
    })
    assert.equal(await page.textContent('[data-testid="pause"]'), 'Pause training')
    await page.click('[data-testid="pause"]')
    await page.waitForFunction(textStarts, { sel: '[data-testid="paused-state"]', prefix: 'paused' })
    assert.equal(await page.textContent('[data-testid="pause"]'), 'Resume training')
    await swarm.call(t1, 'node_duty_cycle', { cycle: 1 })
    assert.equal(await pausedOn(), true, 'the user’s pause holds after the idle window')
    await page.click('[data-testid="pause"]')
    await page.waitForFunction(textStarts, { sel: '[data-testid="paused-state"]', prefix: 'contributing' })
    assert.equal(await pausedOn(), false)

    // Data & consent view: shorten an active grant's expiry, then lift it (a new grant is issued).
    type G = {
      id: string
      grantee: string
      owner: string
      exp?: number
      signedExp?: number | null
      revokedAt?: number
    }
    const ownerGrants = async (): Promise<G[]> => swarm.call<G[]>(swarm.owner, 'dataset_grants')
    const active = (g: G): boolean =>
      g.owner === swarm.owner.did &&
      g.revokedAt === undefined &&
      (g.exp ?? Infinity) > Date.now() / 1000 + 86_400
    // Run alone, the test issues its own grants.
    if ((await ownerGrants()).find(active) === undefined) await swarm.importAndGrant({ seed: 9 })
    const before = await ownerGrants()
    const g = before.find((x) => active(x) && x.grantee === t1.did) ?? before.find(active)!
    const owner = await login(swarm.owner)
    await owner.page.click('[data-tab="data"]')
    const row = owner.page.locator(`tr[data-grant="${g.id}"]`)
    await row.locator('[data-testid="edit-expiry"]').click()
    // Earlier than now + its expiry: 20 days from now, to the minute, in the page's local time.
    const target = Math.floor(Date.now() / 60_000 + 20 * 1440) * 60
    const local = new Date(target * 1000 - new Date(target * 1000).getTimezoneOffset() * 60_000)
      .toISOString()
      .slice(0, 16)
    const form = row.locator('[data-testid="expiry-form"]')
    // A grant without an expiry opens with "never" ticked (its date disabled).
    await form.locator('input[type="checkbox"]').uncheck()
    await form.locator('input[aria-label="new expiry"]').fill(local)
    await form.locator('button.primary', { hasText: 'Shorten' }).click()
    // The row now shows the shortened expiry beside the signed one; the node holds it.
    await row.locator('span[title="shortened by its owner"]').waitFor()
    await row.locator('[data-testid="expiry-form"]').waitFor({ state: 'detached' })
    const shortened = (await ownerGrants()).find((x) => x.id === g.id)!
    assert.equal(shortened.exp, target, 'the grant now ends at the chosen minute')
    assert.equal(shortened.signedExp, g.exp ?? null, 'the signed expiry is kept beside it')
    // The grantee's node hears of it (the signed shortening travels on the consent topic).
    await until(
      'the grantee to hold the new expiry',
      async () =>
        (
          await swarm.call<G[]>(
            swarm.all.find((n) => n.did === g.grantee)!,
            'dataset_grants'
          )
        ).find((x) => x.id === g.id && x.exp === target),
      60_000
    )
    // Later (no expiry at all): a signed grant cannot be extended, so a new one is issued.
    await row.locator('[data-testid="edit-expiry"]').click()
    await form.locator('input[type="checkbox"]').check()
    await form.locator('button.primary', { hasText: 'Extend' }).click()
    await row.locator('[data-testid="expiry-form"]').waitFor({ state: 'detached' })
    const after = await ownerGrants()
    const issued = after.filter((x) => !before.some((y) => y.id === x.id))
    assert.equal(issued.length, 1, 'one new grant')
    assert.equal(issued[0]!.grantee, g.grantee)
    assert.equal(issued[0]!.exp, undefined, 'the new grant never expires')
    assert.equal(after.find((x) => x.id === g.id)!.exp, target, 'the old grant still ends at its expiry')
    await owner.page.waitForSelector(`tr[data-grant="${issued[0]!.id}"][data-status="active"]`)
    await owner.page.screenshot({ path: join(shots, 'dashboard-expiry.png'), fullPage: true })
    assert.deepEqual(pageErrors.slice(errorsBefore), [], 'no script errors on the pages')
  })
})
