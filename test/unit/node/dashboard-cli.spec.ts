/** `shoal dashboard`: asks the daemon for a one-time login URL and prints it (or its JSON); `--open` opens it. */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { registerDashboardCommands, type CliContext } from '../../../src/node/cli/commands/index.js'
import { browserCommand } from '../../../src/node/cli/commands/dashboard.js'
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

  it('--open runs $BROWSER with the URL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-open-'))
    const saved = { BROWSER: process.env.BROWSER, SHOAL_TEST_FIFO: process.env.SHOAL_TEST_FIFO }
    try {
      // The "browser" writes the URL it was given into a FIFO; reading it waits for that write.
      const fifo = join(dir, 'opened')
      assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo')
      const browser = join(dir, 'browser.sh')
      await writeFile(browser, '#!/bin/sh\nprintf \'%s\\n\' "$@" > "$SHOAL_TEST_FIFO"\n')
      await chmod(browser, 0o755)
      process.env.BROWSER = browser
      process.env.SHOAL_TEST_FIFO = fifo
      const opened = readFile(fifo, 'utf8')
      const { calls } = await run(['dashboard', '--open'], false)
      assert.deepEqual(calls, ['dashboard_login'])
      assert.equal(await opened, 'http://127.0.0.1:5420/dashboard/login?token=abc\n')
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('reads $BROWSER as xdg-open does; else the platform’s opener', () => {
    const url = 'http://127.0.0.1:1/dashboard/login?token=t'
    assert.deepEqual(browserCommand(url, { BROWSER: 'firefox' }), { cmd: 'firefox', args: [url] })
    assert.deepEqual(browserCommand(url, { BROWSER: 'chromium --new-window %s:firefox' }), {
      cmd: 'chromium',
      args: ['--new-window', url]
    })
    assert.deepEqual(browserCommand(url, {}, 'linux'), { cmd: 'xdg-open', args: [url] })
    assert.deepEqual(browserCommand(url, { BROWSER: '' }, 'darwin'), { cmd: 'open', args: [url] })
  })
})
