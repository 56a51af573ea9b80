/**
 * A daemon whose data dir fills up (issue #18, chaos): the data dir is on a small tmpfs the test
 * mounts (needs root; skipped otherwise), filled with a ballast file until a little space is
 * left. Then an add, a dataset import and a local training run hit the full disk mid-write:
 * each must fail with `DISK_FULL` (not an internal error), the daemon must keep serving, what
 * was stored before must read back intact (also after a restart), and once the ballast is gone
 * the same operations must succeed.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, statfs, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RpcCallError, RpcClient } from '../../src/node/rpc/index.js'
import { exited, shoal, startDaemon, type Daemon } from '../helpers/cli.js'

const MiB = 1_048_576

function canMount(dir: string): boolean {
  if (process.getuid?.() !== 0) return false
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' })
    execFileSync('umount', [dir], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof RpcCallError, `not an RPC error: ${String(err)}`)
    const data = (err.fields as { data?: { code?: unknown } }).data
    return String(data?.code ?? err.code)
  }
  return 'ok'
}

describe('a full disk under a running daemon', function () {
  this.timeout(240_000)
  let root: string
  let mnt: string
  let home: string
  let daemon: Daemon | undefined
  let rpc: RpcClient

  before(async function () {
    root = await mkdtemp(join(tmpdir(), 'shoal-diskfull-'))
    mnt = join(root, 'mnt')
    await mkdir(mnt)
    // A prerequisite, like the lab's: the test makes its own small file system, which needs root.
    assert.ok(canMount(mnt), 'mounting a tmpfs failed: this test needs root (CI runs as root)')
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', mnt])
    home = join(mnt, 'home')
    const init = await shoal(home, ['init'])
    assert.equal(init.code, 0, init.stderr)
  })

  after(async () => {
    if (daemon !== undefined) {
      daemon.child.kill('SIGTERM')
      await exited(daemon.child)
    }
    try {
      execFileSync('umount', ['-l', mnt], { stdio: 'ignore' })
    } catch {
      // not mounted (skipped)
    }
    await rm(root, { recursive: true, force: true })
  })

  async function start(): Promise<void> {
    daemon = await startDaemon(home)
    rpc = new RpcClient(daemon.api, (await readFile(join(home, 'rpc.cookie'), 'utf8')).trim())
  }

  async function get(cid: string): Promise<Buffer> {
    const token = (await readFile(join(home, 'rpc.cookie'), 'utf8')).trim()
    const res = await fetch(new URL(`/api/v0/get?cid=${cid}`, daemon!.api), {
      headers: { authorization: `Bearer ${token}` }
    })
    assert.equal(res.status, 200)
    return Buffer.from(await res.arrayBuffer())
  }

  const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

  it('refuses writes with DISK_FULL, keeps serving and stored data intact, and recovers when space returns', async () => {
    await start()
    const before = Buffer.alloc(300_000)
    for (let i = 0; i < before.length; i++) before[i] = (i * 7919) & 0xff
    const beforeFile = join(root, 'before.bin')
    await writeFile(beforeFile, before)
    const stored = await rpc.call<{ cid: string }>('storage_add', { path: beforeFile })
    assert.equal(sha(await get(stored.cid)), sha(before))

    // Leave ~1 MiB free.
    const fs = await statfs(mnt)
    const ballast = join(mnt, 'ballast')
    await writeFile(ballast, Buffer.alloc(Number(fs.bavail) * fs.bsize - MiB))
    const big = join(root, 'big.bin')
    await writeFile(big, Buffer.alloc(8 * MiB, 5))

    // Mid-add, mid-import, mid-training.
    assert.equal(await codeOf(rpc.call('storage_add', { path: big })), 'DISK_FULL')
    assert.equal(
      await codeOf(rpc.call('dataset_import', { source: 'mnist', name: 'digits', shards: 2 })),
      'DISK_FULL'
    )
    const { task } = await rpc.call<{ task: string }>('train_local', {
      epochs: 2,
      trainSamples: 2000,
      seed: 1
    })
    let status: { state: string; error?: { code?: string } }
    const deadline = Date.now() + 120_000
    do {
      await new Promise((r) => setTimeout(r, 500))
      status = await rpc.call('train_status', { task })
    } while (status.state === 'running' && Date.now() < deadline)
    assert.equal(status.state, 'failed')
    assert.equal(status.error?.code, 'DISK_FULL')

    // Still serving; what was stored reads back intact.
    const info = await rpc.call<{ did: string }>('node_info')
    assert.match(info.did, /^did:key:z6Mk/)
    assert.equal(sha(await get(stored.cid)), sha(before))
    assert.ok(Array.isArray(await rpc.call('storage_pins')))

    // Space returns: the same writes succeed.
    await rm(ballast)
    const added = await rpc.call<{ cid: string }>('storage_add', { path: big })
    assert.equal(sha(await get(added.cid)), sha(await readFile(big)))

    // A restart finds the data dir consistent.
    daemon!.child.kill('SIGTERM')
    await exited(daemon!.child)
    daemon = undefined
    await start()
    assert.equal(sha(await get(stored.cid)), sha(before))
    assert.equal(sha(await get(added.cid)), sha(await readFile(big)))
  })
})
