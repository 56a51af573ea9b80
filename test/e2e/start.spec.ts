/**
 * The main job's launcher (`npm start` = scripts/start.ts) with every variable the README
 * documents set: a small swarm in a data-dir root of our choosing (SHOAL_DEMO_DIR), with the
 * trainer count, rounds, local steps and peers taken from SHOAL_NODES, SHOAL_ROUNDS, SHOAL_H
 * and SHOAL_K. The daemons it starts inherit these variables, so this also checks that the node's
 * config loader leaves the launcher's variables alone.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const ROOT = join(import.meta.dirname, '..', '..')

async function launch(env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  const child = spawn(
    process.execPath,
    ['--import', './bin/check-node.js', '--import', 'tsx', 'scripts/start.ts'],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }
  )
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, output }
}

describe('npm start (the main job’s launcher)', function () {
  this.timeout(600_000)
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-e2e-start-'))
  })
  after(async () => rm(dir, { recursive: true, force: true }))

  it('honours SHOAL_NODES, SHOAL_ROUNDS, SHOAL_H, SHOAL_K and SHOAL_DEMO_DIR', async () => {
    const demo = join(dir, 'demo')
    const r = await launch({
      SHOAL_NODES: '2',
      SHOAL_ROUNDS: '2',
      SHOAL_H: '5',
      SHOAL_K: '1',
      SHOAL_DEMO_DIR: demo
    })
    assert.equal(r.code, 0, r.output)
    assert.doesNotMatch(r.output, /CONFIG_INVALID|unknown key/)
    assert.match(r.output, new RegExp(`a private swarm of 2 trainers .*data dirs in ${demo}`))
    assert.match(r.output, /2 rounds × 5 local steps, k=1 peers/)
    assert.match(r.output, /node-2: \d+\.\d+%/)
    assert.doesNotMatch(r.output, /node-3/)
    assert.match(r.output, /identical ledger hash on all 3 nodes/)
    // The owner's dashboard URL is printed while the swarm trains (a one-time login, docs/dashboard.md).
    assert.match(
      r.output,
      /the owner's dashboard .*\n\s+http:\/\/127\.0\.0\.1:\d+\/dashboard\/login\?token=[\w-]{43}\n/
    )
    const entries = (await readdir(demo)).sort()
    for (const d of ['node-1', 'node-2', 'owner']) assert.ok(entries.includes(d), `${d} in ${entries}`)
    assert.ok((await stat(join(demo, 'mnist-mlp.onnx'))).size > 0)
  })

  it('refuses a malformed value with the variable’s name', async () => {
    const r = await launch({ SHOAL_NODES: 'many', SHOAL_DEMO_DIR: join(dir, 'bad') })
    assert.equal(r.code, 2)
    assert.match(r.output, /SHOAL_NODES must be a whole number from 2 to 32, got "many"/)
  })
})
