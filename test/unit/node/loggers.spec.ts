import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { configureLogger, logger } from '../../../src/common/index.js'
import { Identity, keypairFromSeed } from '../../../src/identity/index.js'
import { GrantStore } from '../../../src/storage/grants/index.js'

function identityOf(seed: number): Identity {
  const bytes = new Uint8Array(32).fill(seed)
  bytes[0] = 0x6a
  return Identity.fromKeypair(keypairFromSeed(bytes))
}

describe('node loggers', () => {
  let dir: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-loggers-'))
  })

  afterEach(async () => {
    configureLogger({ level: 'silent' })
    await rm(dir, { recursive: true, force: true })
  })

  it('components built with different node loggers write lines with their own node binding', async () => {
    const raw: string[] = []
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        raw.push(...chunk.toString().split('\n').filter(Boolean))
        cb()
      }
    })
    configureLogger({ level: 'info', format: 'json', destination: sink })
    // What the node does: `const log = (component) => logger(component, { node })`.
    const nodeLog = (node: string) => (component: string) => logger(component, { node })
    const a = new GrantStore(
      { identity: identityOf(1), log: nodeLog('nodeAAAA')('shoal:storage:grants') },
      { path: join(dir, 'a') }
    )
    const b = new GrantStore(
      { identity: identityOf(2), log: nodeLog('nodeBBBB')('shoal:storage:grants') },
      { path: join(dir, 'b') }
    )
    await a.start()
    await b.start()
    await a.stop()
    await b.stop()

    const lines = raw.map(
      (l) => JSON.parse(l) as { node?: string; component?: string; msg?: string; path?: string }
    )
    const started = lines.filter((l) => l.msg === 'grant store started')
    assert.deepEqual(
      started.map((l) => [l.node, l.path]),
      [
        ['nodeAAAA', join(dir, 'a')],
        ['nodeBBBB', join(dir, 'b')]
      ]
    )
    const stopped = lines.filter((l) => l.msg === 'grant store stopped')
    assert.deepEqual(
      stopped.map((l) => l.node),
      ['nodeAAAA', 'nodeBBBB']
    )
    for (const l of [...started, ...stopped]) assert.equal(l.component, 'shoal:storage:grants')
    // Each key appears once in the JSON line (pino does not dedupe child bindings).
    for (const line of raw) {
      assert.equal(line.match(/"component":/g)?.length, 1, line)
      assert.equal(line.match(/"node":/g)?.length, 1, line)
    }
  })
})
