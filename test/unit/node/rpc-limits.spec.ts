/**
 * The RPC server's limits on slow and oversized clients (issue #18, RPC under load): headers
 * that trickle in (slowloris), a JSON-RPC body that trickles or never comes, an upload that
 * stops sending, a body over the size limit. Each must end with the connection closed by the
 * server (with a 408/413 answer where one can be sent), while ordinary requests still work.
 */
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { z } from 'zod'
import {
  RpcServer,
  method,
  RPC_BODY_TIMEOUT_MS,
  RPC_HEADERS_TIMEOUT_MS
} from '../../../src/node/rpc/index.js'

const TOKEN = 'limits-token'
const LIMIT_MS = 600

interface Outcome {
  /** Everything the server sent. */
  text: string
  /** ms from connect until the server closed the connection. */
  closedAfter: number
}

/**
 * Opens a raw TCP connection, writes `first`, then writes each of `trickle` every `everyMs`
 * (stopping once the server has closed); resolves when the server closes the connection.
 */
async function slowClient(url: URL, first: string, trickle: string[], everyMs: number): Promise<Outcome> {
  const socket: Socket = connect(Number(url.port), url.hostname)
  const started = Date.now()
  let text = ''
  let closed = false
  socket.on('data', (d) => (text += d.toString()))
  socket.on('error', () => {})
  const done = new Promise<Outcome>((resolve) =>
    socket.on('close', () => {
      closed = true
      resolve({ text, closedAfter: Date.now() - started })
    })
  )
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write(first)
  for (const piece of trickle) {
    await new Promise((r) => setTimeout(r, everyMs))
    if (closed) break
    socket.write(piece)
  }
  const outcome = await Promise.race([
    done,
    new Promise<Outcome>((_, reject) =>
      setTimeout(() => reject(new Error('the server kept the connection open')), 8_000)
    )
  ])
  socket.destroy()
  return outcome
}

describe('RpcServer: limits on slow and oversized clients', function () {
  this.timeout(20_000)
  let server: RpcServer
  let url: URL
  let uploaded = 0

  before(async () => {
    server = new RpcServer(
      {
        methods: [
          method({
            name: 'test_echo',
            summary: 'echo',
            params: z.object({ x: z.number() }),
            result: z.number(),
            handler: async ({ x }) => x
          }),
          method({
            name: 'test_timeout',
            summary: 'gives up like a fetch under AbortSignal.timeout',
            params: z.object({}),
            result: z.null(),
            handler: async () => {
              const signal = AbortSignal.timeout(1)
              await new Promise((r) => setTimeout(r, 20))
              signal.throwIfAborted()
              return null
            }
          }),
          method({
            name: 'test_full',
            summary: 'hits a full disk',
            params: z.object({}),
            result: z.null(),
            handler: async () => {
              throw new Error('Error: ENOSPC: no space left on device, write')
            }
          })
        ],
        streams: {
          '/api/v0/add': async (req, res) => {
            for await (const chunk of req as AsyncIterable<Buffer>) uploaded += chunk.length
            res.writeHead(200).end('ok')
          }
        }
      },
      {
        host: '127.0.0.1',
        port: 0,
        token: TOKEN,
        maxBodyBytes: 1024,
        headersTimeoutMs: LIMIT_MS,
        bodyTimeoutMs: LIMIT_MS,
        streamIdleMs: LIMIT_MS
      }
    )
    url = await server.start()
  })
  after(async () => server.stop())

  const head = (path: string, length: number, close = false): string =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${length}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`

  it('defaults: 10 s for headers and for a JSON-RPC body', () => {
    assert.equal(RPC_HEADERS_TIMEOUT_MS, 10_000)
    assert.equal(RPC_BODY_TIMEOUT_MS, 10_000)
  })

  it('headers that trickle in (slowloris) are cut off after headersTimeout', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => `X-Slow-${i}: ${i}\r\n`)
    const o = await slowClient(url, 'POST /rpc HTTP/1.1\r\nHost: x\r\n', lines, 100)
    assert.ok(o.closedAfter < LIMIT_MS + 2_500, `closed after ${o.closedAfter} ms`)
    assert.ok(!o.text.includes('200 OK'), 'no request was served')
  })

  it('a JSON-RPC body that trickles in gets 408 and the connection closed after bodyTimeout', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_echo', params: { x: 1 } })
    const o = await slowClient(url, head('/rpc', body.length), body.split(''), 100)
    assert.match(o.text, /^HTTP\/1\.1 408/)
    assert.match(o.text, /request body not received in time/)
    assert.ok(o.closedAfter < LIMIT_MS + 1_500, `closed after ${o.closedAfter} ms`)
  })

  it('a JSON-RPC request whose body never comes gets 408 and the connection closed', async () => {
    const o = await slowClient(url, head('/rpc', 100), [], 0)
    assert.match(o.text, /^HTTP\/1\.1 408/)
    assert.ok(o.closedAfter < LIMIT_MS + 1_500, `closed after ${o.closedAfter} ms`)
  })

  it('an upload that stops sending is closed after streamIdle; one that keeps sending is not limited', async () => {
    const stalled = await slowClient(url, head('/api/v0/add', 1000) + 'x'.repeat(10), [], 0)
    assert.ok(stalled.closedAfter < LIMIT_MS + 1_500, `closed after ${stalled.closedAfter} ms`)
    assert.ok(!stalled.text.includes('200 OK'))
    // 20 pieces 100 ms apart: 2 s in all, more than the idle limit, but never idle that long.
    uploaded = 0
    const steady = await slowClient(url, head('/api/v0/add', 20, true), Array(20).fill('y'), 100)
    assert.match(steady.text, /^HTTP\/1\.1 200/)
    assert.equal(uploaded, 20)
    assert.ok(steady.closedAfter >= 1_900)
  })

  it('a body over maxBodyBytes gets 413 at once', async () => {
    const o = await slowClient(url, head('/rpc', 5000), [], 0)
    assert.match(o.text, /^HTTP\/1\.1 413/)
  })

  it('a method that gave up waiting answers TIMEOUT, one that hit a full disk DISK_FULL (both were -32603)', async () => {
    for (const [name, code] of [
      ['test_timeout', 'TIMEOUT'],
      ['test_full', 'DISK_FULL']
    ] as const) {
      const res = await fetch(new URL('/rpc', url), {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: name, params: {} })
      })
      const body = (await res.json()) as { error: { code: number; data: { code: string; category: string } } }
      assert.equal(body.error.code, -32000)
      assert.equal(body.error.data.code, code)
      assert.equal(body.error.data.category, 'unavailable')
    }
  })

  it('ordinary requests are served as before', async () => {
    const res = await fetch(new URL('/rpc', url), {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_echo', params: { x: 42 } })
    })
    assert.deepEqual(await res.json(), { jsonrpc: '2.0', id: 1, result: 42 })
  })
})
