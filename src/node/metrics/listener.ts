/**
 * The opt-in metrics listener (`metrics.port`): `GET /metrics` on its own address, without the
 * RPC token, for a Prometheus scraper that cannot hold the node's secret. Nothing else is
 * served there. Keep it on loopback or a private network: metrics name jobs and peers' counts.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { logger, type Logger } from '../../common/index.js'
import { METRICS_PATH, type NodeMetrics } from './metrics.js'

const log = logger('shoal:node:metrics')

export class MetricsListener {
  private server?: Server
  private readonly log: Logger

  constructor(
    private readonly metrics: Pick<NodeMetrics, 'handle'>,
    private readonly init: { host: string; port: number; log?: Logger }
  ) {
    this.log = init.log ?? log
  }

  async start(): Promise<URL> {
    if (this.server === undefined) {
      const server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
        const path = new URL(req.url ?? '/', 'http://localhost').pathname
        req.resume()
        if (path !== METRICS_PATH) {
          res.writeHead(404, { 'content-type': 'text/plain' }).end(`only ${METRICS_PATH} is served here\n`)
          return
        }
        this.metrics.handle(req, res).catch((err: unknown) => {
          this.log.warn({ err: (err as Error).message }, 'metrics scrape failed')
          if (!res.headersSent) res.writeHead(500).end()
        })
      })
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(this.init.port, this.init.host, () => resolve())
      })
      this.server = server
      if (!['127.0.0.1', '::1', 'localhost'].includes(this.init.host))
        this.log.warn(
          { host: this.init.host },
          'metrics listener is not on loopback: anyone who reaches it reads them'
        )
      this.log.info({ url: this.url().href }, 'metrics listening')
    }
    return this.url()
  }

  url(): URL {
    const a = this.server?.address() as AddressInfo | null | undefined
    if (a == null) throw new Error('metrics listener not started')
    return new URL(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}${METRICS_PATH}`)
  }

  async stop(): Promise<void> {
    const server = this.server
    this.server = undefined
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
