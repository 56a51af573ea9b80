/** `node_*` RPC methods. */
import * as ort from 'onnxruntime-node'
import { z } from 'zod'
import { method, type RpcMethod } from '../rpc/index.js'
import type { Identity } from '../../identity/index.js'
import type { ShoalHelia, ContentStore } from '../../storage/index.js'
import type { P2PServices } from '../../p2p/index.js'
import { probeProviders } from '../../training/index.js'

export const NodeInfo = z.object({
  did: z.string(),
  peerId: z.string(),
  version: z.string(),
  listenAddresses: z.array(z.string()),
  reachability: z.enum(['public', 'private', 'unknown']),
  observedAddresses: z.array(z.string()),
  relayAddresses: z.array(z.string()),
  addresses: z.array(z.object({ addr: z.string(), type: z.string(), verified: z.boolean() })),
  uptimeSeconds: z.number(),
  executionProviders: z.array(z.string()).describe('providers this onnxruntime build ships'),
  providers: z
    .array(z.object({ provider: z.string(), available: z.boolean(), detail: z.string() }))
    .describe('which providers start on this machine, and why the others do not'),
  home: z.string(),
  rssBytes: z.number(),
  /** Where large objects are encrypted and decrypted (the crypto worker thread, or the main thread). */
  crypto: z.object({
    worker: z.enum(['running', 'not-started', 'failed', 'disabled']),
    workerStreams: z.number(),
    mainThreadStreams: z.number(),
    error: z.string().optional()
  })
})

/** What `node_info` reports on. */
export interface NodeInfoSource {
  identity: Identity
  version: string
  home: string
  libp2p: ShoalHelia<P2PServices>['libp2p']
  store: Pick<ContentStore, 'cryptoStatus'>
  /** When the node finished starting (ms since the epoch). */
  startedAt(): number
}

export function nodeMethods(node: NodeInfoSource): RpcMethod[] {
  return [
    method({
      name: 'node_info',
      summary: "This node's identity, addresses, version, uptime and execution providers",
      params: z.object({}),
      result: NodeInfo,
      handler: async () => {
        const net = node.libp2p.services.netinfo.reachability()
        return {
          did: node.identity.did,
          peerId: node.identity.peerId.toString(),
          version: node.version,
          listenAddresses: node.libp2p.services.netinfo.advertised(),
          reachability: net.reachability,
          observedAddresses: net.observed,
          relayAddresses: net.relay,
          addresses: net.addresses,
          uptimeSeconds: Math.round((Date.now() - node.startedAt()) / 1000),
          executionProviders: ort.listSupportedBackends().map((b) => b.name),
          providers: await probeProviders(),
          home: node.home,
          rssBytes: process.memoryUsage().rss,
          crypto: node.store.cryptoStatus()
        }
      }
    })
  ]
}
