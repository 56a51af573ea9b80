import assert from 'node:assert/strict'
import { once } from 'node:events'
import { Socket, createServer, connect, type AddressInfo, type Server } from 'node:net'
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

/**
 * A server on 127.0.0.1 that keeps what a connection sends: `next()` resolves with every byte of
 * the next connection once its sender has ended it (call it before connecting).
 */
async function collector(): Promise<{ server: Server; port: number; next: () => Promise<Buffer> }> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const next = async (): Promise<Buffer> => {
    const [s] = (await once(server, 'connection')) as [Socket]
    const chunks: Buffer[] = []
    s.on('data', (d: Buffer) => chunks.push(d))
    await once(s, 'end')
    s.end()
    return Buffer.concat(chunks)
  }
  return { server, port, next }
}

/** `n` bytes that show any loss or reordering: a 32-bit counter every 4 bytes. */
function counting(n: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE(i / 4, i)
  return b
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
      assert.deepEqual(stats, { writes: 2, lost: 2, maxHeld: 4 })
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

describe('lab: user-space backpressure (scripts/lab/delay.js)', () => {
  type Stats = { writes: number; lost: number; maxHeld: number }

  /**
   * Runs `body` with the shim installed (`opts`, for 127.0.0.1, counting into `stats`) and a
   * socket connected through it to a collector; `received` resolves with every byte the socket
   * sent once it ends.
   */
  async function throughShim(
    opts: { ms: number; window?: number },
    body: (t: { socket: Socket; received: Promise<Buffer>; stats: Stats }) => Promise<void>
  ): Promise<void> {
    const { server, port, next } = await collector()
    const stats: Stats = { writes: 0, lost: 0, maxHeld: 0 }
    const uninstall = installDelay({ ...opts, match: (a) => a === '127.0.0.1', stats })
    try {
      const received = next()
      const socket = connect(port, '127.0.0.1')
      await once(socket, 'connect')
      await body({ socket, received, stats })
    } finally {
      uninstall()
      server.close()
    }
  }

  it('write returns false once a high-water mark is held back; drain comes after the delay, once; every byte arrives in order', async () => {
    await throughShim({ ms: 100 }, async ({ socket, received, stats }) => {
      let drains = 0
      socket.on('drain', () => drains++)
      const hwm = socket.writableHighWaterMark
      const payload = counting(hwm + 16 * 1024 * 1024)
      // Small writes: true until one high-water mark is held back, then false.
      const start = performance.now()
      let sent = 0
      let ok = true
      while (ok && sent < payload.length) {
        ok = socket.write(payload.subarray(sent, sent + 4096))
        sent += 4096
      }
      assert.equal(ok, false, 'write never returned false')
      assert.equal(sent, hwm)
      // The shim's own 'drain': the socket took every held byte (each write below its mark).
      await once(socket, 'drain')
      assert.ok(performance.now() - start >= 95, 'drain came before the delay')
      assert.ok(socket.writableLength < hwm)
      assert.equal(drains, 1)
      // One write of 16 MiB, more than the kernel takes at once (the reader runs in this
      // process): the socket's own write returns false too when it is due, and its own 'drain'
      // is the one that comes (not lost, not doubled).
      assert.equal(socket.write(payload.subarray(sent)), false)
      await once(socket, 'drain')
      assert.ok(socket.writableLength < hwm, 'drain came while the socket still held a mark')
      socket.end()
      assert.ok((await received).equals(payload), 'bytes lost or reordered')
      assert.equal(drains, 2)
      assert.equal(stats.maxHeld, payload.length - hwm)
    })
  })

  it('holds at most one high-water mark and one chunk for a writer that waits for drain; 8 MiB arrive intact', async () => {
    const payload = counting(8 * 1024 * 1024)
    // Chunks of one mark (each write returns false) and smaller ones (a mark's worth of them).
    for (const chunk of [64 * 1024, 4 * 1024]) {
      await throughShim({ ms: 2 }, async ({ socket, received, stats }) => {
        let drains = 0
        socket.on('drain', () => drains++)
        let falses = 0
        for (let at = 0; at < payload.length; at += chunk) {
          if (!socket.write(payload.subarray(at, at + chunk))) {
            falses++
            await once(socket, 'drain')
          }
        }
        socket.end()
        assert.ok((await received).equals(payload), `chunk ${chunk}: bytes lost or reordered`)
        const hwm = socket.writableHighWaterMark
        assert.ok(falses > 0, `chunk ${chunk}: write never returned false`)
        assert.equal(drains, falses, `chunk ${chunk}: one drain per false`)
        assert.ok(
          stats.maxHeld >= hwm && stats.maxHeld <= hwm + chunk,
          `chunk ${chunk}: held ${stats.maxHeld}`
        )
      })
    }
  })

  it('with a window (the lab daemons’ 4 MiB), write returns false at the window, not at the socket’s mark', async () => {
    const window = 1024 * 1024
    await throughShim({ ms: 20, window }, async ({ socket, received, stats }) => {
      assert.ok(socket.writableHighWaterMark < window)
      let sent = 0
      let ok = true
      while (ok) {
        ok = socket.write(counting(64 * 1024))
        sent += 64 * 1024
      }
      assert.equal(sent, window)
      assert.equal(stats.maxHeld, window)
      await once(socket, 'drain')
      socket.end()
      assert.equal((await received).length, window)
    })
  })

  it('counts strings by their bytes in their encoding, Buffers and Uint8Arrays by length', async () => {
    await throughShim({ ms: 20 }, async ({ socket, received, stats }) => {
      const hwm = socket.writableHighWaterMark
      assert.equal(socket.write('é'.repeat(100)), true) // 200 bytes in UTF-8
      assert.equal(socket.write('ff'.repeat(100), 'hex'), true) // 100 bytes
      assert.equal(socket.write(new Uint8Array(300)), true)
      assert.equal(stats.maxHeld, 600)
      // Half a mark in two-byte characters reaches the mark with what is held already.
      assert.equal(socket.write('é'.repeat(hwm / 2 - 300)), false)
      assert.equal(stats.maxHeld, hwm)
      await once(socket, 'drain')
      socket.end()
      assert.equal((await received).length, hwm)
    })
  })

  it('calls back a write whose socket was destroyed before it was due, and throws nothing', async () => {
    await throughShim({ ms: 50 }, async ({ socket }) => {
      const done = new Promise<Error | null | undefined>((resolve) => socket.write('late', resolve))
      socket.destroy()
      const err = await done
      assert.equal((err as NodeJS.ErrnoException | undefined)?.code, 'ERR_STREAM_DESTROYED')
    })
  })
})
