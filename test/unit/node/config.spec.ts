import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ConfigError } from '../../../src/node/config/index.js'
import { loadConfig, configFromEnv } from '../../../src/node/config/index.js'

describe('config', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-config-'))
  })
  afterEach(async () => rm(dir, { recursive: true, force: true }))

  it('layers default ← repo config ← env ← flags', async () => {
    const repoConfigPath = join(dir, 'config.json')
    await writeFile(repoConfigPath, JSON.stringify({ rpc: { port: 6000 }, p2p: { mdns: true } }))
    const c = await loadConfig({
      repoConfigPath,
      env: { SHOAL_RPC_PORT: '6001', SHOAL_TRAINING_DEVICE: 'cpu', SHOAL_HOME: '/x' },
      sets: ['rpc.port=6002', 'p2p.bootstrap=["/ip4/127.0.0.1/tcp/1/p2p/x"]']
    })
    assert.equal(c.rpc.port, 6002)
    assert.equal(c.rpc.host, '127.0.0.1')
    assert.equal(c.p2p.mdns, true)
    assert.equal(c.training.device, 'cpu')
    assert.deepEqual(c.p2p.bootstrap, ['/ip4/127.0.0.1/tcp/1/p2p/x'])
  })

  it('maps SHOAL_SECTION_SOME_KEY to section.someKey', () => {
    assert.deepEqual(configFromEnv({ SHOAL_RPC_MAX_BODY_BYTES: '2048', SHOAL_LOG: 'debug' }), {
      rpc: { maxBodyBytes: 2048 }
    })
  })

  it('ignores SHOAL_* variables of the CLI and scripts, and still refuses unknown keys of a section', async () => {
    const scripts = {
      SHOAL_DEMO_DIR: '/tmp/demo',
      SHOAL_NODES: '2',
      SHOAL_ROUNDS: '3',
      SHOAL_H: '5',
      SHOAL_K: '1',
      SHOAL_API_TOKEN: 'secret',
      SHOAL_BENCH_SIZE_MIB: '64',
      SHOAL_PASSPHRASE: 'pw',
      SHOAL_HOME: '/x'
    }
    assert.deepEqual(configFromEnv(scripts), {})
    const c = await loadConfig({ env: { ...scripts, SHOAL_RPC_PORT: '6003' } })
    assert.equal(c.rpc.port, 6003)
    await assert.rejects(loadConfig({ env: { SHOAL_RPC_PROT: '1' } }), (err: ConfigError) => {
      assert.match(err.message, /unknown key\(s\) prot/)
      assert.equal(err.fields.path, 'rpc')
      return true
    })
  })

  it('reports a bad value by its path and refuses', async () => {
    await assert.rejects(loadConfig({ env: {}, sets: ['rpc.port=99999'] }), (err: ConfigError) => {
      assert.equal(err.code, 'CONFIG_INVALID')
      assert.equal(err.fields.path, 'rpc.port')
      return true
    })
    await assert.rejects(loadConfig({ env: { SHOAL_TRAINING_DEVICE: 'tpu' } }), (err: ConfigError) => {
      assert.equal(err.fields.path, 'training.device')
      return true
    })
    await assert.rejects(
      loadConfig({ env: {}, sets: ['training.fetchTimeoutSeconds=0'] }),
      (err: ConfigError) => {
        assert.equal(err.fields.path, 'training.fetchTimeoutSeconds')
        return true
      }
    )
    assert.equal(
      (await loadConfig({ env: {}, sets: ['training.fetchTimeoutSeconds=30'] })).training.fetchTimeoutSeconds,
      30
    )
    await assert.rejects(loadConfig({ env: {}, sets: ['rpc.prot=1'] }), (err: ConfigError) => {
      assert.match(err.message, /unknown key\(s\) prot/)
      assert.equal(err.fields.path, 'rpc')
      return true
    })
  })

  it('refuses an unparseable repo config naming the file', async () => {
    const repoConfigPath = join(dir, 'config.json')
    await writeFile(repoConfigPath, '{ "rpc": ')
    await assert.rejects(loadConfig({ repoConfigPath, env: {} }), (err: ConfigError) => {
      assert.match(err.message, /config\.json.*not valid JSON/)
      return true
    })
  })
})
