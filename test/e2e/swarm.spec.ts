/**
 * Private swarms across OS processes, driven through the CLI and RPC: a founder creates a
 * swarm and invites one node; the invited node joins with one command; an uninvited node is
 * refused at the connection level.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { shoal, startDaemon, type Daemon } from '../helpers/cli.js'

async function json<T>(home: string, args: string[]): Promise<T> {
  const r = await shoal(home, [...args, '--json'])
  assert.equal(r.code, 0, `shoal ${args.join(' ')}: ${r.stderr}`)
  return JSON.parse(r.stdout) as T
}

describe('private swarm (processes)', function () {
  this.timeout(240_000)
  const homes: string[] = []
  const daemons: Daemon[] = []

  before(async () => {
    const root = await mkdtemp(join(tmpdir(), 'shoal-swarm-'))
    for (const n of ['founder', 'member', 'outsider']) homes.push(join(root, n))
    await Promise.all(homes.map(async (h) => assert.equal((await shoal(h, ['init'])).code, 0)))
    for (const h of homes) daemons.push(await startDaemon(h))
  })
  after(async () => {
    for (const d of daemons) d.child.kill('SIGKILL')
    await rm(join(homes[0]!, '..'), { recursive: true, force: true })
  })

  it('a founder invites a DID, which joins with one command; a non-member is refused', async () => {
    const [founder, member, outsider] = homes as [string, string, string]
    const swarm = await json<{ id: string; private: boolean }>(founder, ['swarm', 'create', 'e2e'])
    assert.equal(swarm.private, true)
    const memberInfo = await json<{ did: string }>(member, ['id'])
    const { invite } = await json<{ invite: string }>(founder, ['swarm', 'invite', memberInfo.did])
    assert.match(invite, /^shoal-invite:/)

    // An invite for someone else is refused by the node it is not for.
    const stolen = await shoal(outsider, ['join', invite])
    assert.equal(stolen.code, 2)
    assert.match(stolen.stderr, /not valid for this node/)

    const joined = await json<{ id: string }>(member, ['join', invite])
    assert.equal(joined.id, swarm.id)
    let peers: Array<{ did: string | null; member: boolean | null }> = []
    for (let i = 0; i < 100; i++) {
      peers = await json(member, ['peers'])
      if (peers.some((p) => p.member === true)) break
      await sleep(200)
    }
    const founderInfo = await json<{ did: string; listenAddresses: string[]; peerId: string }>(founder, [
      'id'
    ])
    assert.ok(
      peers.some((p) => p.did === founderInfo.did && p.member === true),
      JSON.stringify(peers)
    )

    // The outsider dials the founder: the handshake fails and the founder refuses it.
    const addr = founderInfo.listenAddresses[0]!
    assert.ok(addr.endsWith(`/p2p/${founderInfo.peerId}`), addr)
    const dial = await shoal(outsider, ['peers', 'connect', addr])
    assert.equal(dial.code, 0, dial.stderr)
    let info: { refused: Array<{ peerId: string; reason: string }> } = { refused: [] }
    const outsiderInfo = await json<{ peerId: string }>(outsider, ['id'])
    for (let i = 0; i < 100; i++) {
      info = await json(founder, ['swarm', 'info'])
      if (info.refused.some((r) => r.peerId === outsiderInfo.peerId)) break
      await sleep(200)
    }
    assert.ok(
      info.refused.some((r) => r.peerId === outsiderInfo.peerId),
      JSON.stringify(info)
    )
    const founderPeers = await json<Array<{ peerId: string }>>(founder, ['peers'])
    assert.ok(!founderPeers.some((p) => p.peerId === outsiderInfo.peerId), 'the outsider is disconnected')
    // A second dial is refused by the connection gater.
    const again = await shoal(outsider, ['peers', 'connect', addr])
    const later = await json<Array<{ peerId: string }>>(founder, ['peers'])
    assert.ok(again.code !== 0 || !later.some((p) => p.peerId === outsiderInfo.peerId))
  })
  it('an owner imports MNIST, grants a member who decrypts over bitswap; revoke and expiry refuse', async () => {
    const [founder, member] = homes as [string, string, string]
    const memberInfo = await json<{ did: string }>(member, ['id'])
    const ds = await json<{ manifestCid: string; shards: Array<{ cid: string; count: number }> }>(founder, [
      'dataset',
      'import',
      '--name',
      'mnist-e2e',
      '--shards',
      '4',
      '--split',
      'dirichlet',
      '--alpha',
      '0.5'
    ])
    assert.equal(ds.shards.length, 4)
    const shard = ds.shards[0]!
    // Before any grant: the member cannot decrypt.
    const before = await shoal(member, ['dataset', 'read', shard.cid])
    assert.equal(before.code, 6, before.stderr)
    assert.match(before.stderr, /GRANT_MISSING/)

    const { grant } = await json<{ grant: string }>(founder, [
      'dataset',
      'grant',
      ds.manifestCid,
      memberInfo.did
    ])
    // The grant travels on the consent topic; the member's node stores it.
    let read: { code: number | null; stdout: string; stderr: string } = { code: null, stdout: '', stderr: '' }
    for (let i = 0; i < 60; i++) {
      read = await shoal(member, ['dataset', 'read', shard.cid, '--json'])
      if (read.code === 0) break
      await sleep(500)
    }
    assert.equal(read.code, 0, read.stderr)
    assert.equal((JSON.parse(read.stdout) as { count: number }).count, shard.count)

    await json(founder, ['dataset', 'revoke', grant])
    let refused = ''
    for (let i = 0; i < 60; i++) {
      const r = await shoal(member, ['dataset', 'read', shard.cid])
      if (r.code !== 0) {
        refused = r.stderr
        break
      }
      await sleep(500)
    }
    assert.match(refused, /GRANT_REVOKED/)
    assert.ok(refused.includes(grant), 'the refusal names the grant')

    // A grant that expires: usable, then refused once expired.
    const issuedAfter = Date.now()
    const short = await json<{ grant: string }>(founder, [
      'dataset',
      'grant',
      ds.manifestCid,
      memberInfo.did,
      '--expires',
      '30s'
    ])
    const expiresAt = Date.now() + 30_000
    let ok = false
    while (!ok && Date.now() < expiresAt - 1000) {
      ok = (await shoal(member, ['dataset', 'read', shard.cid])).code === 0
      if (!ok) await sleep(300)
    }
    assert.ok(ok, 'the short grant works before it expires')
    // Then poll until the member refuses it; it must not refuse before the expiry.
    let expired = await shoal(member, ['dataset', 'read', shard.cid])
    while (expired.code === 0 && Date.now() < expiresAt + 60_000) {
      await sleep(500)
      expired = await shoal(member, ['dataset', 'read', shard.cid])
    }
    // exp is whole seconds from the founder's clock, taken after `issuedAfter`.
    assert.ok(Date.now() >= issuedAfter + 29_000, 'refused only once expired')
    assert.equal(expired.code, 6)
    assert.match(expired.stderr, /GRANT_EXPIRED/)
    assert.ok(expired.stderr.includes(short.grant))
  })
})
