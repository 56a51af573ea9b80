/**
 * The lab setup the NAT and move tests share: a founder on a public address that serves as a
 * member relay (`p2p.relay.serve`), and two volunteers behind NAT routers of their own, each
 * a `shoal daemon` in its namespace, driven as a {@link LocalSwarm} (owner = the founder).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NetworkLab, type LabHost } from '../../../scripts/lab/index.js'
import { LocalSwarm } from '../../../scripts/lib/swarm.js'

export interface NatSwarm {
  lab: NetworkLab
  swarm: LocalSwarm
  founder: LabHost
  v1: LabHost
  v2: LabHost
  /** Stops the daemons, tears the lab down and removes the data dirs. */
  destroy(): Promise<void>
}

/** Starts it; `symmetric`: volunteer 2's NAT is symmetric; `mbit`: both volunteers' links. */
export async function natSwarm(opts: {
  name: string
  symmetric?: boolean
  mbit?: number
}): Promise<NatSwarm> {
  const lab = await NetworkLab.create()
  let swarm: LocalSwarm | undefined
  const destroy = async (): Promise<void> => {
    await swarm?.stop()
    await lab.destroy()
    if (swarm !== undefined) await rm(swarm.root, { recursive: true, force: true })
  }
  try {
    const founder = await lab.addPublicHost('founder')
    const v1 = await lab.addNatHost('v1')
    const v2 = await lab.addNatHost('v2', { symmetric: opts.symmetric === true })
    if (opts.mbit !== undefined) for (const h of [v1, v2]) await lab.limit(h, opts.mbit)
    const hosts = new Map<string, LabHost>([
      ['owner', founder],
      ['node-1', v1],
      ['node-2', v2]
    ])
    swarm = new LocalSwarm({
      root: await mkdtemp(join(tmpdir(), `shoal-lab-${opts.name}-`)),
      trainers: 2,
      launch: async (n) =>
        lab.startDaemon(
          hosts.get(n.name)!,
          n.home,
          n.name === 'owner' ? ['--set', 'p2p.relay.serve=true'] : []
        )
    })
    await swarm.start()
    return { lab, swarm, founder, v1, v2, destroy }
  } catch (err) {
    await destroy()
    throw err
  }
}
