/** node_duty_cycle: reads the duty cycle, replaces it with what the caller gives, refuses bad values clearly. */
import assert from 'node:assert/strict'
import { dutyCycleMethods, type DutyCycleReport } from '../../../../src/node/methods/index.js'

describe('node/methods: node_duty_cycle', () => {
  let state: DutyCycleReport
  const calls: Array<[number, number]> = []
  const m = dutyCycleMethods({
    dutyCycle: () => state,
    setDutyCycle: (cycle, periodMs) => {
      calls.push([cycle, periodMs])
      state = { ...state, cycle, periodMs, idle: false, until: Date.parse('2030-01-01T00:00:00Z') }
      return state
    }
  })[0]!
  const call = async (params: Record<string, unknown>): Promise<Record<string, unknown>> =>
    (await m.handler(m.params.strict().parse(params), { signal: new AbortController().signal })) as Record<
      string,
      unknown
    >
  const refusal = (params: Record<string, unknown>): string => {
    const r = m.params.strict().safeParse(params)
    assert.equal(r.success, false, JSON.stringify(params))
    return r.error!.issues[0]!.message
  }

  beforeEach(() => {
    calls.length = 0
    state = {
      cycle: 1,
      periodMs: 60_000,
      idle: false,
      paused: false,
      configured: { cycle: 1, periodMs: 60_000 }
    }
  })

  it('with no params reads it, in seconds', async () => {
    assert.deepEqual(await call({}), {
      cycle: 1,
      periodSeconds: 60,
      idle: false,
      until: null,
      paused: false,
      configured: { cycle: 1, periodSeconds: 60 }
    })
    assert.equal(calls.length, 0)
  })

  it('replaces the cycle, the period or both, keeping what is not given', async () => {
    const r = await call({ cycle: 0.5 })
    assert.deepEqual(calls, [[0.5, 60_000]])
    assert.equal(r.until, '2030-01-01T00:00:00.000Z')
    await call({ periodSeconds: 600 })
    assert.deepEqual(calls.at(-1), [0.5, 600_000])
    await call({ cycle: 1, periodSeconds: 30 })
    assert.deepEqual(calls.at(-1), [1, 30_000])
  })

  it('refuses a cycle outside (0, 1] and a period outside 1 s … a day, saying why', () => {
    assert.match(refusal({ cycle: 0 }), /fraction in \(0, 1\]/)
    assert.match(refusal({ cycle: 1.5 }), /fraction in \(0, 1\]/)
    assert.match(refusal({ cycle: -0.1 }), /fraction in \(0, 1\]/)
    assert.match(refusal({ periodSeconds: 0 }), /at least 1/)
    assert.match(refusal({ periodSeconds: 90_000 }), /at most 86400/)
    assert.match(refusal({ periodSeconds: 1.5 }), /whole number/)
    assert.equal(m.params.strict().safeParse({ duty: 0.5 }).success, false)
  })

  it('says whether the user paused, apart from the duty cycle’s idle window (the page’s pause button)', async () => {
    state = { ...state, cycle: 0.5, idle: true, paused: true, userPaused: false }
    assert.deepEqual([(await call({})).paused, (await call({})).userPaused], [true, false])
    state = { ...state, userPaused: true }
    assert.equal((await call({})).userPaused, true)
  })
})
