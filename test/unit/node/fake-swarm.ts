/** A receipts swarm driven by hand, for the node's receipts and audit tests. */
import { swarmTopics, type ReceiptMessage, type SwarmTopics, type TopicSpec } from '../../../src/p2p/index.js'
import type { ReceiptsSwarm } from '../../../src/node/receipts.js'

type Handler = (msg: ReceiptMessage, meta: { did: string }) => void | Promise<void>

/** `enter()` calls the onEnter listeners; `deliver()` the gossip handlers; `published` keeps what the node sent. */
export class FakeSwarm implements ReceiptsSwarm {
  readonly handlers = new Set<Handler>()
  readonly published: ReceiptMessage[] = []
  topic: string | undefined
  private readonly listeners: Array<(topics: SwarmTopics) => void> = []
  readonly gossip = {
    subscribe: (spec: TopicSpec<ReceiptMessage>, handler: Handler): (() => void) => {
      this.topic = spec.topic
      this.handlers.add(handler)
      return () => this.handlers.delete(handler)
    },
    publish: async (_spec: TopicSpec<ReceiptMessage>, msg: ReceiptMessage): Promise<void> => {
      this.published.push(msg)
    }
  }

  onEnter(listener: (topics: SwarmTopics) => void): void {
    this.listeners.push(listener)
  }

  enter(swarm = 'test-swarm'): void {
    for (const l of this.listeners) l(swarmTopics(swarm))
  }

  /** Delivers receipts (JWTs) or messages to every handler, one after another. */
  async deliver(items: ReadonlyArray<string | ReceiptMessage>, from = 'did:key:z6MkRelay'): Promise<void> {
    for (const item of items) {
      const msg: ReceiptMessage = typeof item === 'string' ? { type: 'receipt', receipt: item } : item
      for (const h of this.handlers) await h(msg, { did: from })
    }
  }
}
