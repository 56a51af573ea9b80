import assert from 'node:assert/strict'
import { Command } from 'commander'
import { actionFromOptions, registerGovernanceCommands } from '../../../src/node/cli/commands/governance.js'
import type { CliContext } from '../../../src/node/cli/commands/index.js'
import type { RpcClient } from '../../../src/node/rpc/index.js'

describe('node/cli: proposal and governance commands', () => {
  const calls: Array<[string, unknown]> = []
  const printed: string[] = []
  const answers: Record<string, unknown> = {
    governance_propose: { proposal: 'bafkreiproposal' },
    governance_vote: { vote: 'bafkreivote' },
    governance_tally: {
      head: 'ab'.repeat(32),
      tallies: [{ hash: 'bafkreiproposal', status: 'passed', outcome: '3 yes, 0 no', title: 'admit' }]
    },
    ledger_statement: { jwt: 'a.b.c', ledger: 'cd'.repeat(32) }
  }
  const client = {
    call: async (method: string, params: unknown) => {
      calls.push([method, params])
      return answers[method]
    }
  } as unknown as RpcClient
  const ctx: CliContext = {
    globals: () => ({ home: '/nowhere' }),
    json: () => false,
    client: async () => client,
    out: (_json, _value, human) => printed.push(human())
  }
  const run = async (argv: string[]): Promise<void> => {
    const program = new Command('shoal').exitOverride()
    program.command('ledger')
    registerGovernanceCommands(program, ctx)
    await program.parseAsync(argv, { from: 'user' })
  }

  it('turns options into one action and refuses none or several', () => {
    assert.deepEqual(actionFromOptions({ admit: 'did:key:z6Mkx' }), {
      type: 'admit',
      member: 'did:key:z6Mkx'
    })
    assert.deepEqual(actionFromOptions({ remove: 'did:key:z6Mkx', reason: 'spam' }), {
      type: 'remove',
      member: 'did:key:z6Mkx',
      reason: 'spam'
    })
    assert.deepEqual(actionFromOptions({ policy: '{"aggregation":"median"}' }), {
      type: 'policy',
      changes: { aggregation: 'median' }
    })
    assert.throws(() => actionFromOptions({}), { code: 'GOVERNANCE_USAGE' })
    assert.throws(() => actionFromOptions({ job: 'j', resolution: 'x' }), { code: 'GOVERNANCE_USAGE' })
    assert.throws(() => actionFromOptions({ policy: '{nope' }), { code: 'GOVERNANCE_USAGE' })
  })

  it('calls the governance RPC methods', async () => {
    await run(['proposal', 'create', 'admit Dana', '--admit', 'did:key:z6Mkdana', '--window', '60'])
    assert.deepEqual(calls.at(-1), [
      'governance_propose',
      { title: 'admit Dana', action: { type: 'admit', member: 'did:key:z6Mkdana' }, windowSeconds: 60 }
    ])
    assert.equal(printed.at(-1), 'proposal bafkreiproposal')
    await run(['proposal', 'vote', 'bafkreiproposal', 'abstain'])
    assert.deepEqual(calls.at(-1), ['governance_vote', { proposal: 'bafkreiproposal', choice: 'abstain' }])
    await assert.rejects(run(['proposal', 'vote', 'bafkreiproposal', 'maybe']), { code: 'GOVERNANCE_USAGE' })
    await run(['proposal', 'tally'])
    assert.match(printed.at(-1)!, /passed +admit: 3 yes, 0 no\nhead abab/)
    await run(['ledger', 'statement'])
    assert.equal(printed.at(-1), 'a.b.c')
  })
})
