import assert from 'node:assert/strict'
import { LAB_BYZANTINE_ENV, labFromEnv } from '../../../../src/node/jobs/index.js'

const loopback = { listen: ['/ip4/127.0.0.1/tcp/0'], announce: [] }

describe('node: lab-only Byzantine trainers (SHOAL_LAB_BYZANTINE)', () => {
  it('is off unless the variable is set', () => {
    assert.equal(labFromEnv({}, loopback), undefined)
    assert.equal(labFromEnv({ [LAB_BYZANTINE_ENV]: '' }, loopback), undefined)
  })

  it('parses the attack on a loopback-only node', () => {
    assert.deepEqual(labFromEnv({ [LAB_BYZANTINE_ENV]: 'scale:5' }, loopback), {
      byzantine: { kind: 'scale', param: 5 }
    })
    assert.deepEqual(
      labFromEnv({ [LAB_BYZANTINE_ENV]: 'withhold' }, { listen: ['/ip6/::1/tcp/4420'], announce: [] }),
      { byzantine: { kind: 'withhold' } }
    )
  })

  it('is refused with CONFIG_INVALID on a node reachable beyond loopback, or for an unknown attack', () => {
    const env = { [LAB_BYZANTINE_ENV]: 'sign-flip' }
    for (const p2p of [
      { listen: ['/ip4/0.0.0.0/tcp/4420'], announce: [] },
      { listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/10.0.0.2/tcp/4420'], announce: [] },
      { listen: ['/ip4/127.0.0.1/tcp/0'], announce: ['/ip4/203.0.113.7/tcp/4420'] },
      { listen: ['/ip4/127.0.0.1.evil/tcp/0'], announce: [] }
    ]) {
      assert.throws(
        () => labFromEnv(env, p2p),
        { name: 'ConfigError', code: 'CONFIG_INVALID' },
        JSON.stringify(p2p)
      )
    }
    assert.throws(() => labFromEnv({ [LAB_BYZANTINE_ENV]: 'nonsense' }, loopback), {
      code: 'CONFIG_INVALID',
      message: /SHOAL_LAB_BYZANTINE: unknown Byzantine attack/
    })
  })
})
