/**
 * Fuzzing the node's configuration: the data dir's config.json (any bytes, any JSON, deep
 * nesting, mutations of the default config), `SHOAL_*` environment variables and `--set`
 * flags. The property: a valid config or `CONFIG_INVALID`, and nothing else changes — in
 * particular no input may write to `Object.prototype`.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { ConfigError, loadConfig } from '../../../src/node/config/index.js'
import {
  anyJson,
  deepJsonText,
  expectNamed,
  fuzzParams,
  fuzzTimeout,
  mutateBytes,
  mutateJson,
  nastyString,
  safeStringify
} from './arbitraries.js'

const SECTIONS = ['rpc', 'p2p', 'storage', 'training', 'log', 'node', 'privacy']

/** Keys of Object.prototype's own properties, to detect pollution. */
function prototypeKeys(): string[] {
  return Object.getOwnPropertyNames(Object.prototype).sort()
}

describe('fuzz: config files, environment and flags', function () {
  this.timeout(fuzzTimeout(60_000))
  let dir: string
  let defaults: unknown

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-fuzz-config-'))
    defaults = JSON.parse(await readFile(new URL('../../../config/default.json', import.meta.url), 'utf8'))
  })
  after(async () => rm(dir, { recursive: true, force: true }))

  it('config.json: a config or CONFIG_INVALID, Object.prototype untouched', async () => {
    const enc = new TextEncoder()
    const path = join(dir, 'config.json')
    const protoBefore = prototypeKeys()
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          anyJson.map((v) => enc.encode(safeStringify(v))),
          mutateJson(defaults).map((v) => enc.encode(safeStringify(v))),
          mutateBytes(enc.encode(JSON.stringify(defaults))),
          deepJsonText.map((t) => enc.encode(`{"rpc":${t}}`)),
          fc
            .constantFrom('{"__proto__":{"polluted":1}}', '{"rpc":{"__proto__":{"port":1}}}')
            .map((t) => enc.encode(t))
        ),
        async (bytes) => {
          await writeFile(path, bytes)
          const config = await expectNamed('config.file', () => loadConfig({ repoConfigPath: path, env: {} }))
          if (config !== undefined) assert.equal(typeof config.rpc.port, 'number')
          assert.deepEqual(prototypeKeys(), protoBefore, 'Object.prototype was modified')
        }
      ),
      fuzzParams(300)
    )
  })

  it('SHOAL_* variables and --set flags: a config or CONFIG_INVALID, Object.prototype untouched', async () => {
    const protoBefore = prototypeKeys()
    const key = fc.oneof(
      fc.constantFrom(...SECTIONS),
      fc.constantFrom('__proto__', 'constructor', 'prototype', ''),
      fc.string({ maxLength: 8 })
    )
    const flagPath = fc.array(key, { minLength: 1, maxLength: 4 }).map((ks) => ks.join('.'))
    const value = fc.oneof(nastyString, anyJson.map(safeStringify))
    const flags = fc.array(
      fc.oneof(
        fc.tuple(flagPath, value).map(([p, v]) => `${p}=${v}`),
        nastyString
      ),
      { maxLength: 4 }
    )
    const envName = fc
      .array(fc.oneof(key, fc.constantFrom('PORT', 'MAX_BODY_BYTES', '_', 'PROTO')), {
        minLength: 1,
        maxLength: 4
      })
      .map((ks) => 'SHOAL_' + ks.join('_').toUpperCase())
    const env = fc.dictionary(envName, value, { maxKeys: 4 })
    await fc.assert(
      fc.asyncProperty(flags, env, async (sets, vars) => {
        const config = await expectNamed('config.flags', () => loadConfig({ env: vars, sets }))
        if (config !== undefined) assert.equal(typeof config.rpc.port, 'number')
        assert.deepEqual(prototypeKeys(), protoBefore, 'Object.prototype was modified')
      }),
      fuzzParams(400)
    )
  })

  it('regression: --set __proto__.x=1 is CONFIG_INVALID and leaves Object.prototype alone (it polluted it)', async () => {
    for (const sets of [
      ['__proto__.pc0sZ .log.='],
      ['rpc.__proto__.polluted=1'],
      ['constructor.prototype.x=1']
    ]) {
      await assert.rejects(
        loadConfig({ env: {}, sets }),
        (err: unknown) =>
          err instanceof ConfigError && err.code === 'CONFIG_INVALID' && /reserved key/.test(err.message)
      )
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    assert.equal(({} as Record<string, unknown>)['pc0sZ '], undefined)
  })

  it('a config.json with "__proto__" keys changes no setting', async () => {
    const path = join(dir, 'proto.json')
    await writeFile(path, '{"__proto__":{"rpc":{"port":1}},"rpc":{"__proto__":{"port":2}}}')
    const config = await loadConfig({ repoConfigPath: path, env: {} })
    assert.equal(config.rpc.port, (defaults as { rpc: { port: number } }).rpc.port)
  })
})
