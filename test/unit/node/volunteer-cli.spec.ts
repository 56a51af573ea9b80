/** `shoal duty-cycle`: shows the duty cycle, or sets it (share and period) through `node_duty_cycle`. */
import assert from 'node:assert/strict'
import { Command } from 'commander'
import { registerVolunteerCommands, type CliContext } from '../../../src/node/cli/commands/index.js'
import { parsePeriod, parseShare, renderDutyCycle } from '../../../src/node/cli/commands/volunteer.js'
import type { RpcClient } from '../../../src/node/rpc/index.js'

describe('node/cli: shoal duty-cycle', () => {
  const answer = {
    cycle: 0.5,
    periodSeconds: 600,
    idle: false,
    until: '2030-01-01T00:05:00.000Z',
    paused: false,
    configured: { cycle: 1, periodSeconds: 60 }
  }
  const run = async (
    argv: string[],
    json = false
  ): Promise<{ calls: Array<[string, unknown]>; printed: unknown[] }> => {
    const calls: Array<[string, unknown]> = []
    const printed: unknown[] = []
    const client = {
      call: async (method: string, params: unknown) => {
        calls.push([method, params])
        return answer
      }
    } as unknown as RpcClient
    const ctx: CliContext = {
      globals: () => ({ home: '/nowhere' }),
      json: () => json,
      client: async () => client,
      out: (asJson, value, human) => printed.push(asJson ? value : human())
    }
    const program = new Command('shoal').exitOverride().configureOutput({ writeErr: () => {} })
    registerVolunteerCommands(program, ctx)
    await program.parseAsync(argv, { from: 'user' })
    return { calls, printed }
  }

  it('with no argument reads it', async () => {
    const { calls, printed } = await run(['duty-cycle'])
    assert.deepEqual(calls, [['node_duty_cycle', {}]])
    assert.equal(
      printed[0],
      'duty cycle 50% of 600 s (training until 2030-01-01T00:05:00.000Z)\n' +
        'config: 100% of 60 s (applies again when the daemon restarts)'
    )
  })

  it('sets the share and the period', async () => {
    assert.deepEqual((await run(['duty-cycle', '50%', '--period', '10m'])).calls, [
      ['node_duty_cycle', { cycle: 0.5, periodSeconds: 600 }]
    ])
    assert.deepEqual((await run(['duty-cycle', '0.25'])).calls, [['node_duty_cycle', { cycle: 0.25 }]])
    assert.deepEqual((await run(['duty-cycle', '--period', '90'], true)).printed, [answer])
  })

  it('refuses a share outside (0, 1] and a period outside 1 s … 24 h before calling the daemon', async () => {
    for (const bad of ['0', '150%', '-0.5', 'half', '1.01']) {
      assert.throws(() => parseShare(bad), /\(0, 1\]/)
      await assert.rejects(run(['duty-cycle', bad]), (err: { code?: string }) => {
        assert.equal(err.code, 'commander.invalidArgument')
        return true
      })
    }
    for (const bad of ['0', '25h', '1.5m', 'soon']) assert.throws(() => parsePeriod(bad), /--period/)
    assert.equal(parseShare('100%'), 1)
    assert.equal(parsePeriod('1h'), 3600)
  })

  it('says when the user’s pause holds and the cycle is always on', () => {
    assert.equal(
      renderDutyCycle({ ...answer, cycle: 1, paused: true, configured: { cycle: 1, periodSeconds: 60 } }),
      'duty cycle 100% (always training)\npaused by the user (shoal resume)'
    )
  })
})
