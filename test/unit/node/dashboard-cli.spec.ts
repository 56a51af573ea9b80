/** `shoal dashboard`: asks the daemon for a one-time login URL and prints it (or its JSON). */
import assert from 'node:assert/strict'
import { Command } from 'commander'
import { registerDashboardCommands, type CliContext } from '../../../src/node/cli/commands/index.js'
import type { RpcClient } from '../../../src/node/rpc/index.js'

describe('node/cli: shoal dashboard', () => {
  const run = async (argv: string[], json: boolean): Promise<{ calls: string[]; printed: unknown[] }> => {
    const calls: string[] = []
    const printed: unknown[] = []
    const answer = {
      url: 'http://127.0.0.1:5420/dashboard/login?token=abc',
      expiresAt: '2026-12-06T16:00:00.000Z'
    }
    const client = {
      call: async (method: string) => {
        calls.push(method)
        return answer
      }
    } as unknown as RpcClient
    const ctx: CliContext = {
      globals: () => ({ home: '/nowhere' }),
      json: () => json,
      client: async () => client,
      out: (asJson, value, human) => printed.push(asJson ? value : human())
    }
    const program = new Command('shoal').exitOverride()
    registerDashboardCommands(program, ctx)
    await program.parseAsync(argv, { from: 'user' })
    return { calls, printed }
  }

  it('prints the login URL the daemon issues', async () => {
    const { calls, printed } = await run(['dashboard'], false)
    assert.deepEqual(calls, ['dashboard_login'])
    assert.match(String(printed[0]), /works once/)
    assert.match(String(printed[0]), /^ {2}http:\/\/127\.0\.0\.1:5420\/dashboard\/login\?token=abc$/m)
  })

  it('--json prints the URL and its expiry', async () => {
    const { printed } = await run(['dashboard'], true)
    assert.deepEqual(printed[0], {
      url: 'http://127.0.0.1:5420/dashboard/login?token=abc',
      expiresAt: '2026-12-06T16:00:00.000Z'
    })
  })
})
