/**
 * Hole-punching experiment in the network lab, over IPv6 (`NetworkLab.create({ ipv6: true })`:
 * a 3fff::/64 internet that libp2p does not count as private, NAT66 routers): a founder with a
 * public address serving as member relay, two volunteers behind port-preserving NAT66 routers
 * (`--symmetric`: volunteer 2's is symmetric), each a real `shoal daemon` listening on IPv6
 * only, over TCP or QUIC (`@chainsafe/libp2p-quic`). They form a private swarm by invite, reach
 * each other through the founder's relay, and then this prints, for up to `--wait` seconds,
 * whether DCUtR upgraded their connection to a direct one, what each node's AutoNAT v2 made of
 * its addresses (`node_info`), and what DCUtR and AutoNAT logged (`DEBUG=libp2p:dcutr*,…`).
 *
 * Root only (network namespaces). Usage:
 *   npx tsx scripts/lab/holepunch.ts --transport quic [--wait 60] [--symmetric] [--log all]
 * `--transport`: tcp | quic | both. Results: docs/p2p.md, "Hole punching over IPv6 and QUIC, measured".
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { LocalSwarm, type SwarmNode } from '../lib/swarm.js'
import { NetworkLab, type LabHost } from './index.js'

interface Peer {
  did: string | null
  addr: string
  relayed: boolean
  limited: boolean
  upgraded: boolean
}

interface NodeInfo {
  reachability: string
  listenAddresses?: string[]
  addresses?: Array<{ addr: string; type: string; verified: boolean }>
}

const { values } = parseArgs({
  options: {
    transport: { type: 'string', default: 'quic' },
    wait: { type: 'string', default: '60' },
    symmetric: { type: 'boolean', default: false },
    log: { type: 'string', default: 'dcutr' }
  }
})
const transport = values.transport
if (transport !== 'tcp' && transport !== 'quic' && transport !== 'both') {
  throw new Error(`--transport must be tcp, quic or both, got ${transport}`)
}
const waitMs = Number(values.wait) * 1000

function listen(h: LabHost): string[] {
  const tcp = `/ip6/${h.ip6}/tcp/4001`
  const quic = `/ip6/${h.ip6}/udp/4001/quic-v1`
  return transport === 'tcp' ? [tcp] : transport === 'quic' ? [quic] : [tcp, quic]
}

const lab = await NetworkLab.create({ ipv6: true })
const root = await mkdtemp(join(tmpdir(), 'shoal-lab-holepunch-'))
let swarm: LocalSwarm | undefined
const started = Date.now()
const t = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`
try {
  const founder = await lab.addPublicHost('founder')
  const v1 = await lab.addNatHost('v1')
  const v2 = await lab.addNatHost('v2', { symmetric: values.symmetric })
  const hosts = new Map<string, LabHost>([
    ['owner', founder],
    ['node-1', v1],
    ['node-2', v2]
  ])
  console.log(
    `lab ${lab.prefix}: founder ${founder.ip6}; v1 ${v1.ip6} behind ${v1.router!.ip6} (port-preserving); ` +
      `v2 ${v2.ip6} behind ${v2.router!.ip6} (${values.symmetric ? 'symmetric' : 'port-preserving'}); transport ${transport}`
  )
  const debug =
    values.log === 'all'
      ? 'libp2p:dcutr*,libp2p:auto-nat*,libp2p:address-manager*,libp2p:identify*,libp2p:quic*'
      : 'libp2p:dcutr*,libp2p:auto-nat*'
  swarm = new LocalSwarm({
    root,
    trainers: 2,
    launch: async (n: SwarmNode) => {
      const h = hosts.get(n.name)!
      return lab.startDaemon(
        h,
        n.home,
        [
          '--set',
          `p2p.listen=${JSON.stringify(listen(h))}`,
          ...(n.name === 'owner' ? ['--set', 'p2p.relay.serve=true'] : [])
        ],
        { DEBUG: debug }
      )
    }
  })
  await swarm.start()
  const [a, b] = swarm.trainers as [SwarmNode, SwarmNode]
  try {
    await swarm.form(240_000) // a loaded machine took 142 s
    console.log(`${t()}: swarm formed, the volunteers are connected to each other`)
  } catch (err) {
    console.log(`${t()}: ${(err as Error).message}`)
    for (const n of swarm.all) {
      const peers = await swarm.call<Peer[]>(n, 'peers_list')
      console.log(`${n.name} peers: ${peers.map((p) => `${p.did?.slice(-6)} ${p.addr}`).join(' | ')}`)
    }
  }

  const paths = async (): Promise<string[]> =>
    (await swarm!.call<Peer[]>(a, 'peers_list'))
      .filter((p) => p.did === b.did)
      .map((p) => `${p.relayed ? 'relayed' : p.upgraded ? 'direct (upgraded)' : 'direct'} ${p.addr}`)
  let last: string[] = []
  const end = Date.now() + waitMs
  while (Date.now() < end) {
    last = await paths()
    if (last.some((p) => p.startsWith('direct'))) break
    await sleep(1000)
  }
  console.log(`${t()}: v1 → v2 connections: ${last.length === 0 ? 'none' : last.join(' | ')}`)
  for (const n of swarm.all) {
    const info = await swarm.call<NodeInfo>(n, 'node_info')
    const addrs = (info.addresses ?? []).map((x) => `${x.addr} (${x.type}${x.verified ? ', verified' : ''})`)
    console.log(`${n.name}: reachability ${info.reachability}; addresses ${addrs.join(', ')}`)
  }
  for (const n of swarm.all) {
    const lines = n
      .daemon!.output()
      .split('\n')
      .filter((l) => /dcutr|auto-nat|quic|address-manager|identify/.test(l))
    console.log(`--- ${n.name}: ${lines.length} log lines from dcutr/autonat (last 60)`)
    for (const l of lines.slice(-60)) console.log(`  ${l.slice(0, 400)}`)
  }
} finally {
  await swarm?.stop()
  await lab.destroy()
  await rm(root, { recursive: true, force: true })
}
