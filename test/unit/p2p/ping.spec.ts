/**
 * The connection monitor's patience (PING_MIN_TIMEOUT_MS): a peer that answers pings slowly —
 * a link full of models, a busy daemon — keeps its connection, where libp2p's default (5 s)
 * aborts it and every transfer on it; a peer that stops answering is still disconnected.
 */
import assert from 'node:assert/strict'
import { byteStream } from '@libp2p/utils'
import { createLibp2p } from 'libp2p'
import { libp2pOptions } from '../../../src/p2p/index.js'
import { connect, identityOf, startNode, stopAll, waitFor, type TestNode } from './helpers.js'

const PING = '/ipfs/ping/1.0.0'

/** A node whose pings are answered `delayMs` late (never, for Infinity). */
async function slowResponder(seed: number, delayMs: number): Promise<TestNode> {
  const node = await startNode(identityOf(seed))
  await node.unhandle(PING)
  await node.handle(
    PING,
    async (stream) => {
      const bs = byteStream(stream)
      try {
        for (;;) {
          const data = await bs.read({ bytes: 32 })
          if (!Number.isFinite(delayMs)) continue
          await new Promise((r) => setTimeout(r, delayMs))
          await bs.write(data)
        }
      } catch {
        // the pinger closed or aborted the stream
      }
    },
    { maxInboundStreams: 64, runOnLimitedConnection: true }
  )
  return node
}

describe('p2p: the connection monitor', function () {
  this.timeout(60_000)
  const started: TestNode[] = []
  afterEach(async () => stopAll(started.splice(0)))

  it('keeps a connection whose pings take 7 s (libp2p’s default aborts it), and aborts one that stops answering', async () => {
    const slow = await slowResponder(201, 7_000)
    const silent = await slowResponder(202, Infinity)
    // Shoal's options, pinging every second …
    const patient = await createLibp2p(
      libp2pOptions({ privateKey: identityOf(203).libp2pPrivateKey, pingIntervalMs: 1_000 })
    )
    // … and the same with libp2p's default ping timeout (5 s floor).
    const hasty = await createLibp2p({
      ...libp2pOptions({ privateKey: identityOf(204).libp2pPrivateKey }),
      connectionMonitor: { pingInterval: 1_000 }
    })
    started.push(slow, silent, patient, hasty)
    await connect(patient, slow)
    await connect(hasty, slow)
    await connect(patient, silent)

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
  })
})
