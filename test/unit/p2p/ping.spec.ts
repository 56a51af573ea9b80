/**
 * The connection monitor (src/p2p/liveness.ts, in place of libp2p's): a peer that answers pings
 * slowly — a link full of models, a busy daemon — or refuses a ping stream now and then keeps its
 * connection, where libp2p's monitor aborts it and every transfer on it; a peer that stops
 * answering, or fails every ping, is still disconnected.
 */
import assert from 'node:assert/strict'
import { byteStream } from '@libp2p/utils'
import { createLibp2p } from 'libp2p'
import { libp2pOptions } from '../../../src/p2p/index.js'
import { connect, identityOf, startNode, stopAll, waitFor, type TestNode } from './helpers.js'

const PING = '/ipfs/ping/1.0.0'

interface PingCounts {
  streams: number
  open: number
  peak: number
}

/**
 * A node whose pings are answered `delayMs` late (never, for Infinity), or whose ping streams
 * are reset when `reset(n)` says so for a pinger's n-th (from 0). `of(pinger)` counts each
 * pinger's ping streams, those open at once, and their peak.
 */
async function responder(
  seed: number,
  o: { delayMs?: number; reset?: (n: number) => boolean }
): Promise<TestNode & { of: (pinger: TestNode) => PingCounts }> {
  const node = await startNode(identityOf(seed))
  const counts = new Map<string, PingCounts>()
  const of = (peer: string): PingCounts => {
    let c = counts.get(peer)
    if (c === undefined) counts.set(peer, (c = { streams: 0, open: 0, peak: 0 }))
    return c
  }
  await node.unhandle(PING)
  await node.handle(
    PING,
    async (stream, connection) => {
      const c = of(connection.remotePeer.toString())
      const n = c.streams++
      if (o.reset?.(n) === true) {
        stream.abort(new Error('refused'))
        return
      }
      c.peak = Math.max(c.peak, ++c.open)
      const bs = byteStream(stream)
      try {
        for (;;) {
          const data = await bs.read({ bytes: 32 })
          const delay = o.delayMs ?? 0
          if (!Number.isFinite(delay)) continue
          await new Promise((r) => setTimeout(r, delay))
          await bs.write(data)
        }
      } catch {
        // the pinger closed or aborted the stream
      } finally {
        c.open--
      }
    },
    { maxInboundStreams: 64, runOnLimitedConnection: true }
  )
  return Object.assign(node, { of: (pinger: TestNode) => of(pinger.peerId.toString()) })
}

/** Shoal's options, pinging every second. */
async function patientNode(seed: number): Promise<TestNode> {
  return await createLibp2p(
    libp2pOptions({ privateKey: identityOf(seed).libp2pPrivateKey, pingIntervalMs: 1_000 })
  )
}

/** The same with libp2p's own monitor (5 s floor, abort on any failure), pinging every second. */
async function hastyNode(seed: number): Promise<TestNode> {
  return await createLibp2p({
    ...libp2pOptions({ privateKey: identityOf(seed).libp2pPrivateKey }),
    connectionMonitor: { pingInterval: 1_000 }
  })
}

describe('p2p: the connection monitor', function () {
  this.timeout(60_000)
  const started: TestNode[] = []
  afterEach(async () => stopAll(started.splice(0)))

  type Behaviour = Parameters<typeof responder>[1]

  /**
   * Two responders, `kept` (Shoal's monitor should keep its connection) and `dropped`, and two
   * nodes pinging every second: `patient` (Shoal's options) connected to both, `hasty`
   * (libp2p's monitor) to `kept`.
   */
  async function scene(seed: number, kept: Behaviour, dropped: Behaviour) {
    const nodes = {
      kept: await responder(seed, kept),
      dropped: await responder(seed + 1, dropped),
      patient: await patientNode(seed + 2),
      hasty: await hastyNode(seed + 3)
    }
    started.push(...Object.values(nodes))
    await connect(nodes.patient, nodes.kept)
    await connect(nodes.hasty, nodes.kept)
    await connect(nodes.patient, nodes.dropped)
    return nodes
  }

  it('keeps a connection whose pings take 7 s (libp2p’s default aborts it), and aborts one that stops answering', async () => {
    const {
      kept: slow,
      dropped: silent,
      patient,
      hasty
    } = await scene(201, { delayMs: 7_000 }, { delayMs: Infinity })

    // The default monitor gives up on the slow peer after 5 s …
    await waitFor(() => hasty.getConnections(slow.peerId).length === 0, 15_000, 'the hasty node to drop')
    const dropped = Date.now()
    // … while Shoal's keeps it, with pings in flight the whole time (checked 3 s past the drop,
    // i.e. past 8 s of unanswered pings).
    await new Promise((r) => setTimeout(r, Math.max(0, dropped + 3_000 - Date.now())))
    assert.equal(patient.getConnections(slow.peerId).length, 1, 'the slow peer’s connection was aborted')
    // A peer that never answers is still disconnected, within the interval + the 20 s floor.
    await waitFor(() => patient.getConnections(silent.peerId).length === 0, 40_000, 'the silent peer to drop')
    assert.equal(patient.getConnections(slow.peerId).length, 1)
    // One ping at a time per connection: the slow peer never held two of Shoal's pings at once
    // (libp2p's monitor overlaps them, one a second, until a stream limit refuses one).
    const mine = slow.of(patient)
    const theirs = slow.of(hasty)
    assert.ok(mine.streams >= 2, `${mine.streams} pings`)
    assert.equal(mine.peak, 1, `${mine.peak} of Shoal's ping streams open at once`)
    assert.ok(theirs.peak >= 2, `${theirs.peak} of libp2p's ping streams open at once`)
  })

  it('keeps a connection whose peer refuses a ping stream now and then (libp2p’s monitor aborts it); aborts one after 3 failures in a row', async () => {
    // `flaky` resets every other ping stream (alive, and busy); `broken` resets every one.
    const {
      kept: flaky,
      dropped: broken,
      patient,
      hasty
    } = await scene(205, { reset: (n) => n % 2 === 0 }, { reset: () => true })
    await waitFor(() => hasty.getConnections(flaky.peerId).length === 0, 15_000, 'the hasty node to drop')
    // Shoal's monitor drops the peer that fails every ping after 3 of them …
    await waitFor(() => patient.getConnections(broken.peerId).length === 0, 15_000, 'the broken peer to drop')
    assert.equal(broken.of(patient).streams, 3, 'pings before the drop')
    // … and keeps the flaky one through many pings, half of them refused.
    const seen = flaky.of(patient).streams
    await waitFor(() => flaky.of(patient).streams >= seen + 6, 15_000, 'six more pings to the flaky peer')
    assert.equal(patient.getConnections(flaky.peerId).length, 1, 'the flaky peer’s connection was aborted')
    const stats = patient.services.liveness.stats()
    assert.ok(stats.failures >= 3 && stats.abortedFailing >= 1, JSON.stringify(stats))
  })
})
