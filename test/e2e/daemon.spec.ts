/**
 * The node as a user meets it: `shoal init`, `shoal daemon`, the CLI as an RPC client,
 * crash recovery, locking and clean shutdown — each in real child processes.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { shoal, startDaemon, exited, type Daemon } from '../helpers/cli.js'

describe('shoal daemon and CLI (processes)', function () {
  this.timeout(180_000)
  let home: string
  let work: string
  let daemon: Daemon | undefined

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'shoal-e2e-home-'))
    work = await mkdtemp(join(tmpdir(), 'shoal-e2e-work-'))
    await rm(home, { recursive: true })
  })
  after(async () => {
    daemon?.child.kill('SIGKILL')
    await rm(home, { recursive: true, force: true })
    await rm(work, { recursive: true, force: true })
  })

  it('a CLI command without a daemon says so and how to start one', async () => {
    const r = await shoal(home, ['pins'])
    assert.equal(r.code, 3)
    assert.match(r.stderr, /no Shoal daemon is running/)
    assert.match(r.stderr, /shoal daemon/)
  })

  it('init creates the data dir with a 0600 key and refuses to run twice without --force', async () => {
    const r = await shoal(home, ['init', '--json'])
    assert.equal(r.code, 0, r.stderr)
    const info = JSON.parse(r.stdout) as { did: string; peerId: string }
    assert.match(info.did, /^did:key:z6Mk/)
    for (const p of ['config.json', 'keystore', 'blocks', 'datastore']) await stat(join(home, p))
    const keyFiles = await readdir(join(home, 'keystore'))
    assert.ok(keyFiles.length > 0)
    for (const f of keyFiles) assert.equal((await stat(join(home, 'keystore', f))).mode & 0o777, 0o600)
    const again = await shoal(home, ['init'])
    assert.equal(again.code, 6)
    assert.match(again.stderr, /already initialised.*--force/)
  })

  it('daemon starts, serves node_info, and the CLI adds and gets a file byte for byte', async () => {
    daemon = await startDaemon(home)
    const cookie = await stat(join(home, 'rpc.cookie'))
    assert.equal(cookie.mode & 0o777, 0o600)
    const id = await shoal(home, ['id', '--json'])
    assert.equal(id.code, 0, id.stderr)
    const info = JSON.parse(id.stdout) as {
      did: string
      listenAddresses: string[]
      executionProviders: string[]
    }
    assert.match(info.did, /^did:key:z6Mk/)
    assert.ok(info.listenAddresses.every((a) => a.startsWith('/ip4/127.0.0.1/')))
    assert.ok(info.executionProviders.includes('cpu'))
    // Which providers start here, and why the others do not (a volunteer's first question).
    const probes = (
      JSON.parse(id.stdout) as { providers: Array<{ provider: string; available: boolean; detail: string }> }
    ).providers
    assert.deepEqual(
      probes.map((p) => p.provider),
      ['cpu', 'cuda', 'webgpu']
    )
    assert.equal(probes[0]!.available, true)
    assert.ok(probes.every((p) => p.detail.length > 0))
    const text = await shoal(home, ['id'])
    assert.match(text.stdout, /^provider cpu\s+works/m)
    for (const p of probes.filter((q) => !q.available)) {
      assert.ok(text.stdout.includes(`provider ${p.provider}`) && text.stdout.includes(p.detail), p.provider)
    }

    const file = join(work, 'data.bin')
    const data = randomBytes(5 * 1024 * 1024 + 17) // above WORKER_MIN_BYTES
    await writeFile(file, data)
    const add = await shoal(home, ['add', file, '--json'])
    assert.equal(add.code, 0, add.stderr)
    const { cid, encrypted } = JSON.parse(add.stdout) as { cid: string; encrypted: boolean }
    assert.equal(encrypted, true)
    const outFile = join(work, 'out.bin')
    const get = await shoal(home, ['get', cid, '-o', outFile])
    assert.equal(get.code, 0, get.stderr)
    assert.ok(data.equals(await readFile(outFile)))
    const st = await shoal(home, ['stat', cid, '--json'])
    assert.equal((JSON.parse(st.stdout) as { size: number }).size, data.length)

    // The 5 MiB add and get ran in the crypto worker thread, not on the main thread.
    const after = JSON.parse((await shoal(home, ['id', '--json'])).stdout) as {
      crypto: { worker: string; workerStreams: number; mainThreadStreams: number; error?: string }
    }
    assert.equal(after.crypto.worker, 'running', after.crypto.error)
    assert.equal(after.crypto.workerStreams, 2)
    assert.equal(after.crypto.mainThreadStreams, 0)
    assert.doesNotMatch(daemon.output(), /crypto worker failed/)
  })

  it('a second daemon on the same data dir is refused', async () => {
    const r = await shoal(home, [
      'daemon',
      '--set',
      'rpc.port=0',
      '--set',
      'p2p.listen=["/ip4/127.0.0.1/tcp/0"]'
    ])
    assert.equal(r.code, 6)
    assert.match(r.stderr, /another Shoal daemon \(pid \d+\)/)
  })

  it('content added just before a SIGKILL is served byte for byte after restart', async () => {
    const file = join(work, 'crash.bin')
    const data = randomBytes(2 * 1024 * 1024 + 5)
    await writeFile(file, data)
    const add = await shoal(home, ['add', file, '--json'])
    assert.equal(add.code, 0, add.stderr)
    const { cid } = JSON.parse(add.stdout) as { cid: string }
    daemon!.child.kill('SIGKILL')
    await exited(daemon!.child)
    daemon = await startDaemon(home) // takes over the stale repo.lock
    const outFile = join(work, 'crash.out')
    const get = await shoal(home, ['get', cid, '-o', outFile])
    assert.equal(get.code, 0, get.stderr)
    assert.ok(data.equals(await readFile(outFile)))
    const pins = await shoal(home, ['pins', '--json'])
    assert.ok((JSON.parse(pins.stdout) as Array<{ cid: string }>).some((p) => p.cid === cid))
  })

  it('bad input over the CLI: a malformed CID is a usage error', async () => {
    const r = await shoal(home, ['stat', 'not-a-cid'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /not a CID/)
  })

  it('SIGTERM stops cleanly and removes the api file', async () => {
    daemon!.child.kill('SIGTERM')
    assert.equal(await exited(daemon!.child), 0)
    daemon = undefined
    await assert.rejects(stat(join(home, 'api')))
    await assert.rejects(stat(join(home, 'repo.lock')))
  })

  it('a port in use gives a clear error and the daemon refuses to start', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    try {
      const r = await shoal(home, [
        'daemon',
        '--set',
        `rpc.port=${port}`,
        '--set',
        'p2p.listen=["/ip4/127.0.0.1/tcp/0"]'
      ])
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, /already in use/)
      await assert.rejects(stat(join(home, 'repo.lock')), 'lock released after a failed start')
    } finally {
      blocker.close()
    }
  })

  it('a bad config value is reported by its path and the node refuses to start', async () => {
    const r = await shoal(home, ['daemon', '--set', 'training.device=tpu'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /training\.device/)
  })

  it('a corrupted keystore gives a clear error and is never overwritten', async () => {
    const keyDir = join(home, 'keystore')
    const [keyFile] = await readdir(keyDir)
    const path = join(keyDir, keyFile!)
    const original = await readFile(path)
    const truncated = original.subarray(0, Math.floor(original.length / 2))
    await writeFile(path, truncated, { mode: 0o600 })
    const r = await shoal(home, [
      'daemon',
      '--set',
      'rpc.port=0',
      '--set',
      'p2p.listen=["/ip4/127.0.0.1/tcp/0"]'
    ])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /KEYSTORE_CORRUPT/)
    assert.ok(truncated.equals(await readFile(path)), 'key file untouched')
    await writeFile(path, original, { mode: 0o600 })
  })
})
