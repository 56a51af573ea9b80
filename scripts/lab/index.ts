/**
 * A network lab in Linux network namespaces (root only; needs `ip` from iproute2 and
 * `iptables`): a "public internet" (a bridge in a namespace of its own), hosts with public
 * addresses on it, and hosts behind NAT routers (iptables MASQUERADE: port-preserving by
 * default, `--random-fully` for a symmetric NAT), with optional bandwidth limits (tc tbf).
 *
 * - Addresses only inside 198.18.0.0/15 (RFC 2544 benchmarking): the internet is
 *   198.18.0.0/24, the LAN behind NAT router k is 198.19.k.0/24. Nothing is created in the root
 *   namespace (veth pairs are made directly inside the lab's namespaces), so no lab address is
 *   ever routed to a real interface.
 * - IPv6 (`NetworkLab.create({ ipv6: true })`): every host and router gets an IPv6 address as
 *   well, the internet 3fff::/64 (RFC 9637, the IPv6 documentation prefix: reserved, never
 *   routed, and unlike 198.18.0.0/15 not in libp2p's private list, so AutoNAT and DCUtR consider
 *   these addresses), the LAN behind router k fd00:0:0:k::/64 (ULA, private as a home LAN is),
 *   and the routers run NAT66 (ip6tables MASQUERADE, port-preserving or `--random-fully`, and the
 *   same inbound filter). Without the option the lab is IPv4 only, exactly as before.
 * - Every run has a unique prefix `shl<pid base36>x<random>`; `cleanupLeftovers()` removes the
 *   namespaces of earlier runs whose process is gone. A lab tears itself down on `destroy()`,
 *   and on SIGINT/SIGTERM/exit of the process that made it.
 * - tc netem does not exist in this kernel (/work/shared/facts.md): bandwidth comes from tc tbf
 *   (`limit`), and delay from user space: a daemon started with `SHOAL_LAB_DELAY_MS` in its env
 *   loads delay.js, which holds back what it writes to lab addresses by that long (see there for
 *   what that emulates). No loss emulation.
 * - A daemon started in a host namespace listens for RPC on that namespace's 127.0.0.1; the
 *   lab bridges it to this process's 127.0.0.1 through a Unix socket in the node's home (Unix
 *   sockets belong to the file system, not to a network namespace).
 *
 * @example
 * ```ts
 * const lab = await NetworkLab.create()
 * try {
 *   const founder = await lab.addPublicHost('founder')
 *   const volunteer = await lab.addNatHost('v1', { symmetric: true })
 *   await lab.exec(volunteer, ['ping', '-c1', founder.ip])
 * } finally {
 *   await lab.destroy()
 * }
 * ```
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, rm } from 'node:fs/promises'
import { createConnection, createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { SHOAL_BIN, type Daemon } from '../lib/processes.js'

const run = promisify(execFile)

/** scripts/lab/delay.js: loaded into a lab daemon given `SHOAL_LAB_DELAY_MS` (see startDaemon). */
const DELAY_MODULE = fileURLToPath(new URL('./delay.js', import.meta.url))

/** Thrown when a lab command fails (`code`: LAB_COMMAND_FAILED) or the lab cannot run (LAB_UNAVAILABLE). */
export class LabError extends Error {
  static readonly codes = ['LAB_COMMAND_FAILED', 'LAB_UNAVAILABLE'] as const
  constructor(
    readonly code: (typeof LabError.codes)[number],
    message: string,
    readonly fields: Record<string, unknown> = {}
  ) {
    super(message)
    this.name = 'LabError'
  }
}

/** A host in the lab: its namespace and its address. */
export interface LabHost {
  name: string
  ns: string
  /** The host's own address (public, or on its NAT's LAN). */
  ip: string
  /** Its IPv6 address (a lab made with `ipv6: true`): public 3fff::, or ULA behind a NAT. */
  ip6?: string
  /** Behind a NAT: the router's namespace and public address (`ip6`: its public IPv6 one). */
  router?: { ns: string; ip: string; ip6?: string; symmetric: boolean }
}

const PREFIX_RE = /^shl([0-9a-z]+)x[0-9a-f]{4}-/
const INTERNET = '198.18.0'
/** The lab's IPv6 internet (RFC 9637 documentation prefix) and the LANs behind its routers (ULA). */
const INTERNET6 = '3fff::'
const LAN6 = (k: number): string => `fd00:0:0:${k.toString(16)}::`
/** The iptables chain that holds a host's partition rules. */
const PARTITION_CHAIN = 'SHOAL_PARTITION'

async function sh(cmd: string, args: string[]): Promise<string> {
  try {
    return (await run(cmd, args, { maxBuffer: 4 * 1024 * 1024 })).stdout
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new LabError('LAB_COMMAND_FAILED', `${cmd} ${args.join(' ')}: ${e.stderr ?? e.message}`, {
      cmd,
      args
    })
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A NAT router as the lab builds it (`lan`: its IPv4 LAN's first three octets; `lan6`: its IPv6 LAN prefix). */
interface Router {
  ns: string
  wanIp: string
  wanIp6?: string
  lan: string
  lan6?: string
  symmetric: boolean
}

function routerOf(r: Router): NonNullable<LabHost['router']> {
  return {
    ns: r.ns,
    ip: r.wanIp,
    ...(r.wanIp6 !== undefined ? { ip6: r.wanIp6 } : {}),
    symmetric: r.symmetric
  }
}

/** See the module doc. */
export class NetworkLab {
  readonly prefix: string
  private readonly namespaces: string[] = []
  private readonly children = new Set<ChildProcess>()
  private readonly servers = new Set<Server>()
  private readonly partitioned = new Set<LabHost>()
  private readonly chains = new Set<string>()
  private nextPublic = 2
  private nextLan = 1
  private inetPort = 0
  private destroyed = false
  /** Whether hosts and routers get IPv6 addresses and NAT66 too. */
  readonly ipv6: boolean
  private readonly onSignal: (signal: NodeJS.Signals) => void
  private readonly onExit: () => void

  private constructor(ipv6: boolean) {
    this.ipv6 = ipv6
    this.prefix = `shl${process.pid.toString(36)}x${randomBytes(2).toString('hex')}`
    this.onExit = () => this.destroySync()
    this.onSignal = (signal) => {
      this.destroySync()
      process.kill(process.pid, signal)
    }
  }

  /** Whether this machine can run the lab (root, ip, iptables). */
  static async available(opts: { ipv6?: boolean } = {}): Promise<{ ok: boolean; reason?: string }> {
    if (process.getuid?.() !== 0) return { ok: false, reason: 'the lab needs root (network namespaces)' }
    for (const [cmd, args] of [
      ['ip', ['-V']],
      ['iptables', ['--version']],
      ['tc', ['-V']],
      ...(opts.ipv6 === true ? ([['ip6tables', ['--version']]] as const) : [])
    ] as const) {
      try {
        await run(cmd, [...args])
      } catch {
        return { ok: false, reason: `${cmd} is missing (apt-get install -y iproute2 iptables)` }
      }
    }
    return { ok: true }
  }

  /** Removes namespaces of earlier lab runs whose process has exited. */
  static async cleanupLeftovers(): Promise<string[]> {
    const removed: string[] = []
    for (const line of (await sh('ip', ['netns', 'list'])).split('\n')) {
      const name = line.split(' ')[0] ?? ''
      const m = PREFIX_RE.exec(name)
      if (m === null) continue
      if (alive(parseInt(m[1]!, 36))) continue
      await sh('ip', ['netns', 'delete', name]).catch(() => undefined)
      removed.push(name)
    }
    return removed
  }

  /**
   * A new lab with its internet namespace (a bridge); earlier leftovers are removed first.
   * `ipv6`: hosts and routers get IPv6 addresses and NAT66 as well (see the module doc).
   */
  static async create(opts: { ipv6?: boolean } = {}): Promise<NetworkLab> {
    const ok = await NetworkLab.available(opts)
    if (!ok.ok) throw new LabError('LAB_UNAVAILABLE', ok.reason!)
    await NetworkLab.cleanupLeftovers()
    const lab = new NetworkLab(opts.ipv6 === true)
    process.once('exit', lab.onExit)
    process.once('SIGINT', lab.onSignal)
    process.once('SIGTERM', lab.onSignal)
    try {
      const inet = await lab.namespace('inet')
      await lab.nsRun(inet, ['ip', 'link', 'add', 'br0', 'type', 'bridge'])
      await lab.nsRun(inet, ['ip', 'link', 'set', 'br0', 'up'])
    } catch (err) {
      await lab.destroy()
      throw err
    }
    return lab
  }

  private get inet(): string {
    return `${this.prefix}-inet`
  }

  private async namespace(name: string): Promise<string> {
    const ns = `${this.prefix}-${name}`
    await sh('ip', ['netns', 'add', ns])
    this.namespaces.push(ns)
    await this.nsRun(ns, ['ip', 'link', 'set', 'lo', 'up'])
    return ns
  }

  private async nsRun(ns: string, cmd: string[]): Promise<string> {
    return sh('ip', ['netns', 'exec', ns, ...cmd])
  }

  /** Plugs `ns` into the internet bridge as `ifname` with the next public address(es). */
  private async plugInternet(ns: string, ifname: string): Promise<{ ip: string; ip6?: string }> {
    const port = `p${++this.inetPort}`
    await sh('ip', [
      'link',
      'add',
      ifname,
      'netns',
      ns,
      'type',
      'veth',
      'peer',
      'name',
      port,
      'netns',
      this.inet
    ])
    await this.nsRun(this.inet, ['ip', 'link', 'set', port, 'master', 'br0'])
    await this.nsRun(this.inet, ['ip', 'link', 'set', port, 'up'])
    const n = this.nextPublic++
    const ip = `${INTERNET}.${n}`
    await this.nsRun(ns, ['ip', 'addr', 'add', `${ip}/24`, 'dev', ifname])
    // nodad: usable at once (duplicate address detection would hold it "tentative" for ~2 s)
    const ip6 = this.ipv6 ? `${INTERNET6}${n.toString(16)}` : undefined
    if (ip6 !== undefined)
      await this.nsRun(ns, ['ip', '-6', 'addr', 'add', `${ip6}/64`, 'dev', ifname, 'nodad'])
    await this.nsRun(ns, ['ip', 'link', 'set', ifname, 'up'])
    return ip6 !== undefined ? { ip, ip6 } : { ip }
  }

  /** A host with a public address on the internet bridge. */
  async addPublicHost(name: string): Promise<LabHost> {
    const ns = await this.namespace(name)
    return { name, ns, ...(await this.plugInternet(ns, 'eth0')) }
  }

  /**
   * A host behind its own NAT router: the router has a public address (`wan`) and the LAN
   * 198.19.k.0/24 (`lan`, .1); the host is 198.19.k.2. `symmetric` maps each connection to a
   * random source port (`--random-fully`), so an address seen by one peer is useless to another.
   */
  async addNatHost(name: string, opts: { symmetric?: boolean } = {}): Promise<LabHost> {
    const router = await this.natRouter(`${name}-r`, opts.symmetric === true)
    const ns = await this.namespace(name)
    return { name, ns, ...(await this.attach(ns, router)), router: routerOf(router) }
  }

  /**
   * Moves a host behind a NAT to a new NAT router (a laptop taken to another network): its
   * link to the old router is cut, and it comes up on a new LAN with a new address behind a
   * router with a new public address. Processes in the host keep running; their connections
   * die with the old link. Returns the host as it is now (the same object, updated).
   */
  async moveHost(host: LabHost, opts: { symmetric?: boolean } = {}): Promise<LabHost> {
    if (host.router === undefined) throw new LabError('LAB_UNAVAILABLE', `${host.name} is not behind a NAT`)
    const router = await this.natRouter(`${host.name}-r${this.nextLan}`, opts.symmetric === true)
    // Deleting one end of a veth pair deletes both: the old LAN link is gone.
    await this.nsRun(host.ns, ['ip', 'link', 'del', 'eth0'])
    const { ip, ip6 } = await this.attach(host.ns, router)
    host.ip = ip
    if (ip6 !== undefined) host.ip6 = ip6
    host.router = routerOf(router)
    return host
  }

  /**
   * A NAT router: a public address (`wan`) and the next LAN 198.19.k.0/24 (`lan` side made by
   * {@link attach}); `symmetric` maps each connection to a random source port
   * (`--random-fully`), so an address seen by one peer is useless to another.
   */
  private async natRouter(name: string, symmetric: boolean): Promise<Router> {
    const k = this.nextLan++
    const ns = await this.namespace(name)
    const wan = await this.plugInternet(ns, 'wan')
    await this.nsRun(ns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
    if (this.ipv6) await this.nsRun(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1'])
    for (const iptables of this.ipv6 ? ['iptables', 'ip6tables'] : ['iptables'])
      await this.natRules(ns, iptables, symmetric)
    return {
      ns,
      wanIp: wan.ip,
      ...(wan.ip6 !== undefined ? { wanIp6: wan.ip6, lan6: LAN6(k) } : {}),
      lan: `198.19.${k}`,
      symmetric
    }
  }

  /** A router's NAT (MASQUERADE on `wan`) and its inbound filter, for `iptables` or `ip6tables`. */
  private async natRules(ns: string, iptables: string, symmetric: boolean): Promise<void> {
    await this.nsRun(ns, [
      iptables,
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      '-o',
      'wan',
      '-j',
      'MASQUERADE',
      ...(symmetric ? ['--random-fully'] : [])
    ])
    // Nothing from the internet reaches the LAN unless it belongs to a connection from inside.
    await this.nsRun(ns, [
      iptables,
      '-A',
      'FORWARD',
      '-i',
      'wan',
      '-m',
      'conntrack',
      '!',
      '--ctstate',
      'ESTABLISHED,RELATED',
      '-j',
      'DROP'
    ])
  }

  /** Links a host's namespace to a router's LAN (router .1 / ::1, host .2 / ::2); returns the host's addresses. */
  private async attach(ns: string, router: Router): Promise<{ ip: string; ip6?: string }> {
    await sh('ip', [
      'link',
      'add',
      'lan',
      'netns',
      router.ns,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      ns
    ])
    await this.nsRun(router.ns, ['ip', 'addr', 'add', `${router.lan}.1/24`, 'dev', 'lan'])
    await this.nsRun(router.ns, ['ip', 'link', 'set', 'lan', 'up'])
    await this.nsRun(ns, ['ip', 'addr', 'add', `${router.lan}.2/24`, 'dev', 'eth0'])
    await this.nsRun(ns, ['ip', 'link', 'set', 'eth0', 'up'])
    await this.nsRun(ns, ['ip', 'route', 'add', 'default', 'via', `${router.lan}.1`])
    if (router.lan6 === undefined) return { ip: `${router.lan}.2` }
    await this.nsRun(router.ns, ['ip', '-6', 'addr', 'add', `${router.lan6}1/64`, 'dev', 'lan', 'nodad'])
    await this.nsRun(ns, ['ip', '-6', 'addr', 'add', `${router.lan6}2/64`, 'dev', 'eth0', 'nodad'])
    await this.nsRun(ns, ['ip', '-6', 'route', 'add', 'default', 'via', `${router.lan6}1`])
    return { ip: `${router.lan}.2`, ip6: `${router.lan6}2` }
  }

  /** Limits a host's uplink and downlink to `mbit` Mbit/s (tc tbf on its interface, and on its router's LAN side). */
  async limit(host: LabHost, mbit: number): Promise<void> {
    const tbf = ['root', 'tbf', 'rate', `${mbit}mbit`, 'burst', '64kb', 'latency', '200ms']
    await this.nsRun(host.ns, ['tc', 'qdisc', 'replace', 'dev', 'eth0', ...tbf])
    if (host.router !== undefined)
      await this.nsRun(host.router.ns, ['tc', 'qdisc', 'replace', 'dev', 'lan', ...tbf])
  }

  /**
   * Cuts every host of `a` off from every host of `b`, both ways, as a broken link between two
   * regions would: packets are dropped (not refused), so open connections stall until their
   * peers give up on them (libp2p's connection monitor pings every 10 s). Rules live in a chain
   * of their own in each host's namespace; {@link heal} flushes them. A host behind a NAT is
   * known to the others by its router's address, so both its own and its router's are cut.
   */
  async partition(a: readonly LabHost[], b: readonly LabHost[]): Promise<void> {
    const addrs = (h: LabHost): string[] =>
      [h.ip, h.router?.ip, h.ip6, h.router?.ip6].filter((x): x is string => x !== undefined)
    const cut = async (host: LabHost, others: readonly LabHost[]): Promise<void> => {
      await this.partitionChain(host)
      for (const ip of others.flatMap(addrs)) {
        const iptables = ip.includes(':') ? 'ip6tables' : 'iptables'
        await this.nsRun(host.ns, [iptables, '-A', PARTITION_CHAIN, '-s', ip, '-j', 'DROP'])
        await this.nsRun(host.ns, [iptables, '-A', PARTITION_CHAIN, '-d', ip, '-j', 'DROP'])
      }
      this.partitioned.add(host)
    }
    for (const h of a) await cut(h, b)
    for (const h of b) await cut(h, a)
  }

  /** Ends every partition: each cut host's partition chain is flushed. */
  async heal(): Promise<void> {
    for (const h of this.partitioned)
      for (const iptables of this.ipv6 ? ['iptables', 'ip6tables'] : ['iptables'])
        await this.nsRun(h.ns, [iptables, '-F', PARTITION_CHAIN])
    this.partitioned.clear()
  }

  /** The host's partition chain, created and hooked into INPUT and OUTPUT once. */
  private async partitionChain(host: LabHost): Promise<void> {
    if (this.chains.has(host.ns)) return
    for (const iptables of this.ipv6 ? ['iptables', 'ip6tables'] : ['iptables']) {
      await this.nsRun(host.ns, [iptables, '-N', PARTITION_CHAIN])
      await this.nsRun(host.ns, [iptables, '-I', 'INPUT', '-j', PARTITION_CHAIN])
      await this.nsRun(host.ns, [iptables, '-I', 'OUTPUT', '-j', PARTITION_CHAIN])
    }
    this.chains.add(host.ns)
  }

  /** Runs a command in a host's namespace to completion; resolves with its stdout. */
  async exec(host: LabHost, cmd: string[]): Promise<string> {
    return this.nsRun(host.ns, cmd)
  }

  /** Starts a long-running command in a host's namespace; the lab kills it on destroy. */
  spawn(host: LabHost, cmd: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', host.ns, ...cmd], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    this.children.add(child)
    child.once('exit', () => this.children.delete(child))
    return child
  }

  /**
   * Starts `shoal daemon` for `home` in the host's namespace, listening for libp2p on the
   * host's address, and returns it with an RPC URL on this process's 127.0.0.1 (bridged).
   * `env.SHOAL_LAB_DELAY_MS`: every write to a lab address is delayed by that long;
   * `env.SHOAL_LAB_LOSS`: and with that probability by one retransmission timeout more (delay.js).
   */
  async startDaemon(
    host: LabHost,
    home: string,
    sets: string[] = [],
    env: NodeJS.ProcessEnv = {}
  ): Promise<Daemon> {
    // A one-way delay on what the daemon sends to lab addresses (user space: no netem here).
    const delay =
      env.SHOAL_LAB_DELAY_MS !== undefined || env.SHOAL_LAB_LOSS !== undefined
        ? ['--import', DELAY_MODULE]
        : []
    const child = this.spawn(
      host,
      [
        process.execPath,
        ...delay,
        SHOAL_BIN,
        '--home',
        home,
        'daemon',
        '--set',
        'rpc.port=0',
        '--set',
        `p2p.listen=["/ip4/${host.ip}/tcp/4001"]`,
        ...sets
      ],
      { SHOAL_LOG: 'warn', ...env }
    )
    let output = ''
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()))
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (output.includes('ready')) {
          cleanup()
          resolve()
        }
      }
      const onExit = (code: number | null): void => {
        cleanup()
        reject(new LabError('LAB_COMMAND_FAILED', `daemon in ${host.ns} exited with ${code}: ${output}`))
      }
      const cleanup = (): void => {
        child.stdout!.off('data', check)
        child.stderr!.off('data', check)
        child.off('exit', onExit)
      }
      child.stdout!.on('data', check)
      child.stderr!.on('data', check)
      child.once('exit', onExit)
    })
    const inner = new URL((await readFile(join(home, 'api'), 'utf8')).trim())
    const api = await this.bridge(host, join(home, 'rpc.sock'), Number(inner.port))
    return { child, output: () => output, api }
  }

  /** Bridges 127.0.0.1:`port` inside the host's namespace to a new 127.0.0.1 port here. */
  private async bridge(host: LabHost, socket: string, port: number): Promise<string> {
    await rm(socket, { force: true })
    const code = [
      'const net = require("node:net")',
      'const [sock, port] = process.argv.slice(1)',
      'net.createServer((c) => { const u = net.connect(Number(port), "127.0.0.1");',
      'c.pipe(u); u.pipe(c); c.on("error", () => u.destroy()); u.on("error", () => c.destroy()) })',
      '.listen(sock, () => console.log("listening"))'
    ].join('\n')
    const fwd = this.spawn(host, [process.execPath, '-e', code, socket, String(port)])
    await new Promise<void>((resolve, reject) => {
      fwd.stdout!.once('data', () => resolve())
      fwd.once('exit', (c) => reject(new LabError('LAB_COMMAND_FAILED', `RPC bridge exited with ${c}`)))
    })
    const server = createServer((c) => {
      const u = createConnection(socket)
      c.pipe(u)
      u.pipe(c)
      c.on('error', () => u.destroy())
      u.on('error', () => c.destroy())
    })
    this.servers.add(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const addr = server.address()
    if (addr === null || typeof addr === 'string') throw new LabError('LAB_COMMAND_FAILED', 'no bridge port')
    return `http://127.0.0.1:${addr.port}/`
  }

  /** Kills what the lab started and deletes its namespaces. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return
    this.destroyed = true
    process.off('exit', this.onExit)
    process.off('SIGINT', this.onSignal)
    process.off('SIGTERM', this.onSignal)
    for (const s of this.servers) s.close()
    await Promise.all(
      [...this.children].map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return
        const gone = new Promise((r) => c.once('exit', r))
        c.kill('SIGTERM')
        await Promise.race([gone, sleep(10_000).then(() => c.kill('SIGKILL'))])
      })
    )
    for (const ns of [...this.namespaces].reverse())
      await sh('ip', ['netns', 'delete', ns]).catch(() => undefined)
  }

  private destroySync(): void {
    if (this.destroyed) return
    this.destroyed = true
    for (const c of this.children) c.kill('SIGKILL')
    for (const ns of this.namespaces) {
      try {
        execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' })
      } catch {
        // already gone
      }
    }
  }
}
