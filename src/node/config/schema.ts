/**
 * The node's configuration schema (zod). Every key has a default in config/default.json;
 * a bad value is reported by its dotted path and the node refuses to start.
 */
import { z } from 'zod'

const multiaddr = z
  .string()
  .regex(/^\/(ip4|ip6|dns|dns4|dns6)\//, 'must be a multiaddr such as /ip4/127.0.0.1/tcp/4420')

export const ConfigSchema = z
  .object({
    rpc: z
      .object({
        host: z.string().min(1).describe('Address the JSON-RPC server binds to (keep it on loopback)'),
        port: z.number().int().min(0).max(65535).describe('JSON-RPC port; 0 picks a free one'),
        maxBodyBytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .describe('Largest JSON-RPC request body accepted')
      })
      .strict(),
    p2p: z
      .object({
        listen: z.array(multiaddr).describe('libp2p listen addresses'),
        announce: z.array(multiaddr).describe('Addresses announced to peers instead of the listen ones'),
        bootstrap: z
          .array(z.string().startsWith('/'))
          .describe('Peers to dial at start (multiaddrs with /p2p/)'),
        mdns: z.boolean().describe('Discover peers on the local network by mDNS'),
        relay: z
          .object({
            serve: z
              .boolean()
              .describe(
                'Run a circuit relay v2 server for the members of this private swarm (publicly reachable nodes), limits lifted'
              ),
            reserve: z.boolean().describe('Listen on /p2p-circuit: take a reservation on member relays'),
            maxReservations: z.number().int().min(1).max(10_000).describe('Reservations a relay server holds')
          })
          .strict(),
        natTraversal: z.boolean().describe('DCUtR hole punching and AutoNAT v2'),
        upnp: z.boolean().describe('Map the listen port on the home router by UPnP / NAT-PMP'),
        dht: z
          .boolean()
          .describe("kad-dht under the swarm's own protocol prefix (from the next start after a join)"),
        allowPrivateAddresses: z.boolean().describe("Dial members' private (LAN) addresses on a shared /16")
      })
      .strict(),
    storage: z
      .object({
        chunkSize: z
          .number()
          .int()
          .min(4096)
          .max(16 * 1024 * 1024)
          .describe('Plaintext bytes per encrypted chunk')
      })
      .strict(),
    training: z
      .object({
        device: z.enum(['auto', 'cuda', 'webgpu', 'cpu']).describe('Execution provider'),
        threads: z.number().int().min(0).max(1024).describe('Intra-op threads; 0 lets onnxruntime decide'),
        dutyCycle: z
          .number()
          .gt(0)
          .max(1)
          .describe('Share of each period this node trains (volunteers: 0.5 = half the time); 1 = always'),
        dutyPeriodSeconds: z.number().int().min(1).max(86_400).describe('Length of a duty-cycle period'),
        fetchTimeoutSeconds: z
          .number()
          .gt(0)
          .max(3_600)
          .describe(
            'Deadline of fetching one round’s peer models, all together; a model not here by then is left out of that round (slow links and busy member relays need more)'
          ),
        verifiable: z
          .boolean()
          .describe(
            'Train on CPU in deterministic mode (one thread) so that peers can re-execute this node’s receipts bit for bit; otherwise rounds are checked within a tolerance (docs/receipts.md); ignored on a GPU device'
          )
      })
      .strict(),
    receipts: z
      .object({
        reexecFraction: z
          .number()
          .min(0)
          .max(1)
          .describe(
            'Share of the peers’ receipts this node re-executes when it can read their data; 0 = none'
          ),
        auditQueue: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .describe('Receipts waiting for re-execution at most; further ones are skipped and counted'),
        unverifiable: z
          .enum(['credit', 'no-credit', 'exclude'])
          .describe(
            'What rounds nobody can re-execute earn, for the jobs this node creates (the job document carries it, so every node computes the same ledger)'
          )
      })
      .strict(),
    metrics: z
      .object({
        host: z
          .string()
          .min(1)
          .describe('Address of the separate metrics listener (when metrics.port is set)'),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .nullable()
          .describe(
            'Opt-in: serve GET /metrics on its own listener without the RPC token (for a Prometheus scraper); null = only on the RPC listener, with the token'
          )
      })
      .strict(),
    log: z
      .object({
        level: z.enum(['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace']),
        format: z.enum(['json', 'pretty'])
      })
      .strict()
  })
  .strict()

export type ShoalConfig = z.infer<typeof ConfigSchema>
