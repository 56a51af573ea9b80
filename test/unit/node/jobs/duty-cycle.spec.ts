/**
 * The duty cycle at run time: PauseControl replaces its cycle while running, and NodeJobs
 * combines it with the user's pause before telling the runner (whose own cycle is off).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeJobs, PauseControl, type JobsComponents } from '../../../../src/node/jobs/index.js'
import { logger } from '../../../../src/common/index.js'

/** A PauseControl whose changes can be awaited. */
function recorded(): { control: PauseControl; states: boolean[]; changes: (n: number) => Promise<void> } {
  const states: boolean[] = []
  let waiter: { n: number; resolve: () => void } | undefined
  const control: PauseControl = new PauseControl(() => {
    states.push(control.paused)
    if (waiter !== undefined && states.length >= waiter.n) waiter.resolve()
  })
  const changes = async (n: number): Promise<void> =>
    new Promise((resolve) => {
      if (states.length >= n) resolve()
      else waiter = { n, resolve }
    })
  return { control, states, changes }
}

describe('node/jobs: the duty cycle at run time', () => {
  it('PauseControl.setDutyCycle replaces a running cycle; a cycle of 1 ends an idle window at once', async () => {
    const { control, states, changes } = recorded()
    try {
      assert.deepEqual(control.dutyCycle, { cycle: 1, periodMs: 60_000, idle: false })
      control.startDutyCycle(0.5, 20)
      await changes(3) // active, idle, active
      assert.deepEqual(states.slice(0, 3), [false, true, false])
      // A day-long period: the new cycle starts with an active window that will not end in this test.
      control.setDutyCycle(0.25, 86_400_000)
      const d = control.dutyCycle
      assert.equal(d.cycle, 0.25)
      assert.equal(d.periodMs, 86_400_000)
      assert.equal(d.idle, false)
      assert.ok(d.until !== undefined && d.until > Date.now())
      // A tiny active share: the idle window comes next and lasts most of a day.
      const before = states.length
      control.setDutyCycle(1e-9, 86_400_000)
      await changes(before + 2) // active (new period), then idle
      assert.equal(control.dutyCycle.idle, true)
      assert.equal(control.paused, true)
      control.setDutyCycle(1, 86_400_000)
      await changes(before + 3)
      assert.equal(control.paused, false)
      assert.deepEqual(control.dutyCycle, { cycle: 1, periodMs: 86_400_000, idle: false })
    } finally {
      control.stop()
    }
  })

  describe('NodeJobs', () => {
    let dir: string
    let jobs: NodeJobs
    const training = {
      device: 'cpu',
      threads: 0,
      dutyCycle: 1,
      dutyPeriodSeconds: 60,
      verifiable: true
    } as unknown as JobsComponents['training']

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'shoal-duty-'))
      jobs = new NodeJobs({
        did: 'did:key:me',
        db: { list: async () => [] } as never,
        store: { unpin: async () => {} },
        swarm: { onEnter: () => {} } as never,
        datasets: { grants: {} as never, readShard: async () => ({}) as never, onGrantEnded: () => {} },
        catalog: { detach: () => {} } as never,
        models: {} as never,
        receipts: {} as never,
        privacy: {} as never,
        prep: {} as never,
        training,
        jobsDir: join(dir, 'jobs'),
        log: logger('shoal:test:duty')
      })
      await jobs.start()
    })

    afterEach(async () => {
      await jobs.stop()
      await rm(dir, { recursive: true, force: true })
    })

    it('reads and replaces the duty cycle; the user’s pause holds through active windows', async () => {
      assert.deepEqual(jobs.dutyCycle(), {
        cycle: 1,
        periodMs: 60_000,
        idle: false,
        paused: false,
        userPaused: false,
        configured: { cycle: 1, periodMs: 60_000 }
      })
      const d = jobs.setDutyCycle(0.5, 3_600_000)
      assert.equal(d.cycle, 0.5)
      assert.equal(d.idle, false)
      assert.equal(d.paused, false)
      assert.deepEqual(d.configured, { cycle: 1, periodMs: 60_000 }, 'the config is unchanged')
      jobs.pauseAll()
      assert.equal(jobs.isPaused, true)
      assert.equal(jobs.dutyCycle().userPaused, true)
      jobs.setDutyCycle(0.75, 3_600_000) // a new active window does not end the user's pause
      assert.equal(jobs.isPaused, true)
      jobs.resumeAll()
      assert.equal(jobs.isPaused, false)
      jobs.setDutyCycle(1, 60_000)
      assert.equal(jobs.dutyCycle().until, undefined)
    })

    it('an idle window pauses the runner; a cycle of 1 resumes it at once', async () => {
      jobs.setDutyCycle(1e-9, 86_400_000) // active for 86 µs, then idle for a day
      while (!jobs.dutyCycle().idle) await new Promise((resolve) => setImmediate(resolve))
      assert.equal(jobs.isPaused, true)
      // The page's pause button reads this: the cycle pauses the node, the user did not.
      assert.equal(jobs.dutyCycle().userPaused, false)
      assert.equal(jobs.dutyCycle().paused, true)
      jobs.setDutyCycle(1, 60_000)
      assert.equal(jobs.isPaused, false)
    })
  })
})
