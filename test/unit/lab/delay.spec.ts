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
