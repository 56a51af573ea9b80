import { strict as assert } from 'node:assert'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Keystore } from '../../../src/identity/index.js'
import { loadConfig } from '../../../src/node/config/index.js'
import { ShoalNode } from '../../../src/node/node.js'
import { Repo } from '../../../src/node/repo/index.js'

describe('node: the composition root', () => {
  let home: string

  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'shoal-node-'))
    const repo = new Repo(home)
    await repo.create()
    await Keystore.init(repo.keystoreDir)
  })

  afterEach(async () => {
    await rm(home, { recursive: true, force: true })
  })

  it('starts its services in dependency order and stops them in exactly the reverse order', async function () {
    this.timeout(60_000)
    const config = await loadConfig({
      repoConfigPath: new Repo(home).configPath,
      sets: ['rpc.port=0', 'p2p.listen=["/ip4/127.0.0.1/tcp/0"]']
    })
    const node = new ShoalNode({ home, config })
    await node.start()
    const started = node.lifecycle.map((e) => e.service)
    assert.ok(node.lifecycle.every((e) => e.event === 'started'))
    // The ones a reader of node.ts relies on: the lock first, the network before what uses it,
    // the data services before the jobs, the RPC and its api file last.
    const at = (s: string): number => started.indexOf(s)
    for (const s of [
      'repo lock',
      'helia',
      'swarm',
      'content store',
      'node db',
      'datasets',
      'audit',
      'receipts',
      'jobs',
      'rpc',
      'api file'
    ])
      assert.ok(at(s) >= 0, `${s} started`)
    assert.equal(at('repo lock'), 0)
    assert.ok(at('helia') < at('swarm') && at('swarm') < at('datasets'))
    assert.ok(at('node db') < at('datasets') && at('datasets') < at('jobs'))
    assert.ok(at('audit') < at('receipts') && at('receipts') < at('jobs'))
    assert.ok(at('jobs') < at('rpc') && at('rpc') < at('api file'))
    assert.equal(started.at(-1), 'api file')
    assert.ok((await readdir(home)).includes('api'))

    await node.stop()
    const stopped = node.lifecycle.filter((e) => e.event === 'stopped').map((e) => e.service)
    assert.deepEqual(stopped, [...started].reverse())
    assert.ok(!(await readdir(home)).includes('api'), 'the api file is removed')
    // Stopping again is a no-op, and the repo lock was released: a new node starts on the dir.
    await node.stop()
    const again = new ShoalNode({ home, config })
    await again.start()
    await again.stop()
  })
  it('with p2p.dht, a node in a private swarm runs a members-only DHT in server mode (from the next start)', async function () {
    this.timeout(60_000)
    const repo = new Repo(home)
    const config = await loadConfig({
      repoConfigPath: repo.configPath,
      env: {},
      sets: ['rpc.port=0', 'p2p.listen=["/ip4/127.0.0.1/tcp/0"]', 'p2p.natTraversal=false', 'p2p.dht=true']
    })
    const call = async <T>(
      node: ShoalNode,
      method: string,
      params: Record<string, unknown> = {}
    ): Promise<T> => {
      const token = (await readFile(repo.cookiePath, 'utf8')).trim()
      const res = await fetch(new URL('/rpc', node.rpcUrl), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params })
      })
      const body = (await res.json()) as { result?: T; error?: unknown }
      if (body.error !== undefined) throw new Error(JSON.stringify(body.error))
      return body.result as T
    }
    const first = new ShoalNode({ home, config })
    await first.start()
    assert.equal((await call<{ dht: unknown }>(first, 'swarm_info')).dht, null, 'no swarm yet: no DHT')
    await call(first, 'swarm_create', { name: 'dht-wiring', private: true })
    await first.stop()
    const node = new ShoalNode({ home, config })
    await node.start()
    try {
      const info = await call<{ dht: Record<string, unknown> | null }>(node, 'swarm_info')
      assert.deepEqual(info.dht, {
        mode: 'server',
        routingTable: 0,
        refusedInbound: 0,
        refusedTopology: 0,
        refusedOutbound: 0
      })
    } finally {
      await node.stop()
    }
  })
})
