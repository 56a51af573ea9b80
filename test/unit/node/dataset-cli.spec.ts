/** `shoal dataset expiry <grant> <when>`: calls dataset_grant_expiry with Unix seconds, or null for "never". */
import assert from 'node:assert/strict'
import { Command } from 'commander'
import { registerDatasetCommands, type CliContext } from '../../../src/node/cli/commands/index.js'
import type { RpcClient } from '../../../src/node/rpc/index.js'

describe('node/cli: shoal dataset expiry', () => {
  const run = async (argv: string[]): Promise<{ calls: Array<[string, unknown]>; printed: unknown[] }> => {
    const calls: Array<[string, unknown]> = []
    const printed: unknown[] = []
    const client = {
      call: async (method: string, params: unknown) => {
        calls.push([method, params])
        return { how: 'shortened', grant: 'g1', note: 'grant g1 now ends at …' }
      }
    } as unknown as RpcClient
    const ctx: CliContext = {
      globals: () => ({ home: '/nowhere' }),
      json: () => false,
      client: async () => client,
      out: (asJson, value, human) => printed.push(asJson ? value : human())
    }
    const program = new Command('shoal').exitOverride()
    registerDatasetCommands(program, ctx)
    await program.parseAsync(argv, { from: 'user' })
    return { calls, printed }
  }

  it('sends the new expiry in Unix seconds, or null for never, and prints what was done', async () => {
    const { calls, printed } = await run([
      'dataset',
      'expiry',
      'g1',
      '2030-01-01T00:00:00Z',
      '--reason',
      'sooner'
    ])
    assert.deepEqual(calls, [
      ['dataset_grant_expiry', { grant: 'g1', expiresAt: 1_893_456_000, reason: 'sooner' }]
    ])
    assert.equal(printed[0], 'shortened: grant g1 now ends at …')
    assert.deepEqual((await run(['dataset', 'expiry', 'g1', 'never'])).calls, [
      ['dataset_grant_expiry', { grant: 'g1', expiresAt: null }]
    ])
    const week = (await run(['dataset', 'expiry', 'g1', '7d'])).calls[0]![1] as { expiresAt: number }
    assert.ok(week.expiresAt > Date.now() / 1000 + 6 * 86_400)
  })
})
