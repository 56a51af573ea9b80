import assert from 'node:assert/strict'
import { once } from 'node:events'
import { Socket, createServer, connect, type AddressInfo } from 'node:net'
import { installDelay } from '../../../scripts/lab/delay.js'

/** Round trip of one small message through an echo server on 127.0.0.1 (ms). */
async function roundTrip(port: number): Promise<number> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const start = performance.now()
  socket.write('ping')
  const [data] = (await once(socket, 'data')) as [Buffer]
  const ms = performance.now() - start
  assert.equal(data.toString(), 'ping')
  socket.end()
  return ms
}

describe('lab: user-space delay (scripts/lab/delay.js)', () => {
  it('holds back every write to a matching peer by the delay, in order, both ways; others are untouched', async () => {
    const server = createServer((s: Socket) => s.on('data', (d) => s.write(d)))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    const original = Socket.prototype.write
    const uninstall = installDelay({ ms: 150, match: (a) => a === '127.0.0.1' })
    assert.notEqual(Socket.prototype.write, original)
    try {
      // The client's write and the server's echo are both delayed: at least 2 × 150 ms.
      assert.ok((await roundTrip(port)) >= 295)
      // Writes keep their order and end() comes after them.
      const socket = connect(port, '127.0.0.1')
      await once(socket, 'connect')
      let got = ''
      socket.on('data', (d: Buffer) => (got += d.toString()))
      for (const part of ['a', 'b', 'c', 'd']) socket.write(part)
      await new Promise((r) => setTimeout(r, 10))
      assert.equal(got, '', 'nothing arrived before the delay')
      while (got.length < 4) await once(socket, 'data')
      assert.equal(got, 'abcd')
      socket.end()
    } finally {
      uninstall()
    }
    // Undone: the socket methods are the originals again.
    assert.equal(Socket.prototype.write, original)
    server.close()
  })
})

describe('lab: user-space loss (scripts/lab/delay.js)', () => {
  it('holds a lost write back by one RTO, never reorders, and loses about the share asked for', async () => {
    const server = createServer((s: Socket) => s.on('data', (d) => s.write(d)))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    // Every write lost: a round trip costs two delays and two RTOs.
    const stats = { writes: 0, lost: 0 }
    let uninstall = installDelay({
      ms: 20,
      loss: 0.999999,
      rtoMs: 120,
      match: (a) => a === '127.0.0.1',
      stats
    })
    try {
      assert.ok((await roundTrip(port)) >= 2 * (20 + 120) - 5)
      assert.deepEqual(stats, { writes: 2, lost: 2 })
    } finally {
      uninstall()
    }
    // A quarter lost, seeded: 400 writes arrive in order, and the share lost is near 0.25.
    const seen = { writes: 0, lost: 0 }
    uninstall = installDelay({
      ms: 1,
      loss: 0.25,
      rtoMs: 30,
      seed: 7,
      match: (a) => a === '127.0.0.1',
      stats: seen
    })
    try {
      const socket = connect(port, '127.0.0.1')
      await once(socket, 'connect')
      let got = ''
      socket.on('data', (d: Buffer) => (got += d.toString()))
      const sent = Array.from({ length: 400 }, (_, i) => `${i},`).join('')
      for (let i = 0; i < 400; i++) socket.write(`${i},`)
      while (got.length < sent.length) await once(socket, 'data')
      assert.equal(got, sent)
      socket.end()
      // The client's 400 writes and the server's echoes (however the kernel cut them).
      assert.ok(seen.writes >= 401, JSON.stringify(seen))
      const share = seen.lost / seen.writes
      assert.ok(share > 0.15 && share < 0.35, `lost ${seen.lost} of ${seen.writes}`)
    } finally {
      uninstall()
    }
    assert.throws(() => installDelay({ ms: 10, loss: 1 }), RangeError)
    server.close()
  })
})
