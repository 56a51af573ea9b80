import assert from 'node:assert/strict'
import { request } from 'node:http'
import { z } from 'zod'
import {
  RpcServer,
  method,
  RpcClient,
  RpcCallError,
  DaemonUnreachableError
} from '../../../src/node/rpc/index.js'
import { ShoalError } from '../../../src/common/index.js'

const TOKEN = 'test-token-123'

describe('RpcServer', () => {
  let server: RpcServer
  let url: URL
  let calls = 0

  before(async () => {
    server = new RpcServer(
      {
        methods: [
          method({
            name: 'test_add',
            summary: 'Adds two numbers',
            params: z.object({ a: z.number(), b: z.number().optional() }),
            result: z.number(),
            handler: async ({ a, b }) => {
              calls++
              return a + (b ?? 0)
            }
          }),
          method({
            name: 'test_fail',
            summary: 'Always fails',
            params: z.object({}),
            result: z.null(),
            handler: async () => {
              throw new ShoalError('NOT_FOUND', 'nothing here', { cid: 'bafy' })
            }
          })
        ]
      },
      { host: '127.0.0.1', port: 0, token: TOKEN, maxBodyBytes: 4096 }
    )
    url = await server.start()
  })
  after(async () => server.stop())

  async function post(
    body: string,
    token: string | null = TOKEN
  ): Promise<{ status: number; json: unknown }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (token !== null) headers.authorization = `Bearer ${token}`
    const res = await fetch(new URL('/rpc', url), { method: 'POST', headers, body })
    const text = await res.text()
    return { status: res.status, json: text === '' ? undefined : JSON.parse(text) }
  }

  it('answers a call with params by name and by position', async () => {
    const c = new RpcClient(url, TOKEN)
    assert.equal(await c.call('test_add', { a: 2, b: 3 }), 5)
    assert.equal(await c.call('test_add', [4, 5]), 9)
  })

  it('refuses a missing or wrong token with 401 and runs nothing', async () => {
    const before = calls
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_add', params: { a: 1 } })
    assert.equal((await post(body, null)).status, 401)
    assert.equal((await post(body, 'wrong-token-123')).status, 401)
    assert.equal((await post(body, 'x')).status, 401)
    assert.equal(calls, before)
  })

  it('answers malformed JSON with -32700', async () => {
    const { json } = await post('{"jsonrpc": "2.0", "id": 1, "method"')
    assert.equal((json as { error: { code: number } }).error.code, -32700)
  })

  it('answers an unknown method with -32601', async () => {
    const { json } = await post(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'nope_nope' }))
    assert.deepEqual((json as { id: number }).id, 7)
    assert.equal((json as { error: { code: number } }).error.code, -32601)
  })

  it('answers wrong params with -32602 naming the param', async () => {
    const { json } = await post(
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_add', params: { a: 'x' } })
    )
    const err = (json as { error: { code: number; message: string; data: { param: string } } }).error
    assert.equal(err.code, -32602)
    assert.equal(err.data.param, 'a')
    assert.match(err.message, /\ba\b/)
    const { json: j2 } = await post(
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_add', params: { a: 1, zzz: 2 } })
    )
    assert.equal((j2 as { error: { data: { param: string } } }).error.data.param, 'zzz')
  })

  it('rejects an invalid request object with -32600', async () => {
    const { json } = await post(JSON.stringify({ id: 1, method: 'test_add' }))
    assert.equal((json as { error: { code: number } }).error.code, -32600)
  })

  it('handles batches and notifications per the spec', async () => {
    const before = calls
    const { json } = await post(
      JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'test_add', params: { a: 1, b: 1 } },
        { jsonrpc: '2.0', method: 'test_add', params: { a: 1 } },
        { jsonrpc: '2.0', id: 2, method: 'nope' },
        42
      ])
    )
    const arr = json as Array<{ id: unknown; result?: unknown; error?: { code: number } }>
    assert.equal(arr.length, 3)
    assert.equal(arr.find((r) => r.id === 1)?.result, 2)
    assert.equal(arr.find((r) => r.id === 2)?.error?.code, -32601)
    assert.equal(arr.find((r) => r.id === null)?.error?.code, -32600)
    assert.equal(calls, before + 2, 'the notification ran too')
    const note = await post(JSON.stringify({ jsonrpc: '2.0', method: 'test_add', params: { a: 1 } }))
    assert.equal(note.status, 204)
    assert.equal(note.json, undefined)
  })

  it('maps a ShoalError to an application error with its code', async () => {
    const c = new RpcClient(url, TOKEN)
    await assert.rejects(c.call('test_fail'), (err: unknown) => {
      assert.ok(err instanceof RpcCallError)
      assert.equal(err.code, 'NOT_FOUND')
      return true
    })
  })

  it('rejects a body over the limit without reading it whole', async () => {
    // A chunked body (no content-length) that would be 10 MiB: the server must answer 413
    // and close the connection long before we finish sending.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(new URL('/rpc', url), {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }
      })
      req.on('response', (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', reject)
      let sent = 0
      const chunk = Buffer.alloc(16 * 1024, 0x20)
      const pump = (): void => {
        while (sent < 10 * 1024 * 1024) {
          sent += chunk.length
          if (!req.write(chunk)) {
            req.once('drain', pump)
            return
          }
        }
        req.end()
      }
      pump()
    })
    assert.equal(status, 413)
    const big = await post(
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_add', params: { a: 1, pad: 'x'.repeat(5000) } })
    )
    assert.equal(big.status, 413)
  })

  it('serves an OpenRPC document listing every method with params and result', async () => {
    const c = new RpcClient(url, TOKEN)
    const doc = await c.call<{
      openrpc: string
      methods: Array<{ name: string; params: Array<{ name: string; required: boolean }>; result: unknown }>
    }>('rpc.discover')
    assert.match(doc.openrpc, /^1\./)
    const add = doc.methods.find((m) => m.name === 'test_add')
    assert.ok(add)
    assert.deepEqual(
      add.params.map((p) => [p.name, p.required]),
      [
        ['a', true],
        ['b', false]
      ]
    )
    assert.ok(add.result)
  })

  it('a client with no daemon says so', async () => {
    const c = new RpcClient('http://127.0.0.1:1/', TOKEN)
    await assert.rejects(c.call('test_add', { a: 1 }), DaemonUnreachableError)
  })

  it('a port in use gives a clear error', async () => {
    const other = new RpcServer(
      { methods: [] },
      { host: '127.0.0.1', port: Number(url.port), token: TOKEN, maxBodyBytes: 1024 }
    )
    await assert.rejects(
      other.start(),
      (err: ShoalError) => err.code === 'RPC_LISTEN_FAILED' && /in use/.test(err.message)
    )
  })
})
