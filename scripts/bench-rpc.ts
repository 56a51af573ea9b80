/**
 * The JSON-RPC of a real daemon under load (issue #18, part 4): `shoal daemon` started from
 * bin/shoal.js on a fresh data dir, then autocannon from this process with the node's token.
 *
 *   npm run bench:rpc                          # 60 s per load phase, 50 connections
 *   BENCH_RPC_SECONDS=10 npm run bench:rpc     # shorter
 *   BENCH_RPC_CONNECTIONS=100 npm run bench:rpc
 *
 * Phases:
 * 1. `node_info` at N concurrent clients for the duration: p50/p99 latency, requests/s, and
 *    errors — connection errors, timeouts, non-2xx answers and JSON-RPC errors in the bodies.
 * 2. A write method, `storage_add` (a 4 KiB file from the daemon host: encrypted, stored, pinned),
 *    the same way.
 * 3. Body size: a body just over rpc.maxBodyBytes is answered 413; a 64 MiB body is refused
 *    without the daemon's memory growing by it.
 * 4. Slow clients: S connections trickling headers (slowloris) and S trickling a JSON-RPC body;
 *    how long until the daemon closed each, and node_info's latency meanwhile.
 *
 * Prints Markdown for BENCHMARKS.md. autocannon shares the machine's cores with the daemon.
 */
import { writeFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { exited, shoal, startDaemon, type Daemon } from './lib/processes.js'

const seconds = Number(process.env.BENCH_RPC_SECONDS ?? 60)
const connections = Number(process.env.BENCH_RPC_CONNECTIONS ?? 50)
const slowClients = Number(process.env.BENCH_RPC_SLOW_CLIENTS ?? 200)

interface Load {
  requests: number
  rps: number
  p50: number
  p99: number
  max: number
  errors: number
  timeouts: number
  non2xx: number
  rpcErrors: number
  firstRpcError?: string
}

async function load(
  url: string,
  token: string,
  body: string,
  duration: number,
  conns = connections
): Promise<Load> {
  let rpcErrors = 0
  let firstRpcError: string | undefined
  const r = await autocannon({
    url: new URL('/rpc', url).href,
    method: 'POST',
    connections: conns,
    duration,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
    setupClient: (client) => {
      client.on('body', (buf: Buffer) => {
        try {
          const answer = JSON.parse(buf.toString()) as { error?: unknown }
          if (answer.error !== undefined) {
            rpcErrors++
            firstRpcError ??= JSON.stringify(answer.error).slice(0, 200)
          }
        } catch {
          rpcErrors++
          firstRpcError ??= `not JSON: ${buf.toString().slice(0, 100)}`
        }
      })
    }
  })
  const out: Load = {
    requests: r.requests.total,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    rpcErrors
  }
  if (firstRpcError !== undefined) out.firstRpcError = firstRpcError
  return out
}

/** VmRSS of a process in MiB (Linux). */
async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024
}

/** Status line of a raw HTTP exchange, and ms until the server closed the connection. */
async function raw(
  url: URL,
  first: string | Buffer,
  trickle: { piece: string; everyMs: number; count: number } | undefined,
  giveUpMs: number
): Promise<{ status: string; closedAfterMs: number | undefined }> {
  const socket = connect(Number(url.port), url.hostname)
  const t0 = Date.now()
  let text = ''
  let closedAt: number | undefined
  socket.on('data', (d) => (text += d.toString()))
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) =>
    socket.on('close', () => {
      closedAt = Date.now()
      resolve()
    })
  )
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write(first)
  const writer = (async () => {
    for (let i = 0; trickle !== undefined && i < trickle.count && closedAt === undefined; i++) {
      await new Promise((r) => setTimeout(r, trickle.everyMs))
      if (closedAt === undefined) socket.write(trickle.piece)
    }
  })()
  await Promise.race([closed, new Promise((r) => setTimeout(r, giveUpMs))])
  socket.destroy()
  await writer
  return {
    status: text.split('\r\n')[0] ?? '',
    closedAfterMs: closedAt === undefined ? undefined : closedAt - t0
  }
}

const fmt = (l: Load): string =>
  `| ${l.requests.toLocaleString('en-US')} | ${Math.round(l.rps).toLocaleString('en-US')} | ${l.p50} | ${l.p99} | ${l.max} | ` +
  `${l.errors} / ${l.timeouts} / ${l.non2xx} / ${l.rpcErrors} |`

const root = await mkdtemp(join(tmpdir(), 'shoal-bench-rpc-'))
let daemon: Daemon | undefined
try {
  const home = join(root, 'home')
  const init = await shoal(home, ['init'])
  if (init.code !== 0) throw new Error(init.stderr)
  daemon = await startDaemon(home)
  const api = new URL(daemon.api)
  const token = (await readFile(join(home, 'rpc.cookie'), 'utf8')).trim()
  const config = JSON.parse(await readFile(join(home, 'config.json'), 'utf8').catch(() => '{}')) as {
    rpc?: { maxBodyBytes?: number }
  }
  const maxBody = config.rpc?.maxBodyBytes ?? 1_048_576
  const file = join(root, 'small.bin')
  await writeFile(file, Buffer.alloc(4096, 7))

  const nodeInfo = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'node_info', params: {} })
  const add = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'storage_add', params: { path: file } })
  const date = new Date().toISOString().slice(0, 10)
  console.log(
    `bench:rpc ${date}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}`
  )
  console.log(`${connections} connections, ${seconds} s per phase; daemon pid ${daemon.child.pid}\n`)

  await load(api.href, token, nodeInfo, 3) // warm-up
  const info = await load(api.href, token, nodeInfo, seconds)
  const write = await load(api.href, token, add, seconds)
  console.log(
    '| method | requests | req/s | p50 ms | p99 ms | max ms | errors / timeouts / non-2xx / JSON-RPC errors |'
  )
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- |')
  console.log(`| node_info | ${fmt(info).slice(2)}`)
  console.log(`| storage_add (4 KiB, encrypted) | ${fmt(write).slice(2)}`)
  for (const [name, l] of [
    ['node_info', info],
    ['storage_add', write]
  ] as const) {
    if (l.firstRpcError !== undefined) console.log(`\n${name}: first JSON-RPC error: ${l.firstRpcError}`)
  }

  // Body size.
  const over = await raw(
    api,
    `POST /rpc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${maxBody + 1}\r\n\r\n`,
    undefined,
    5_000
  )
  const rssBefore = await rssMiB(daemon.child.pid!)
  const hugeLength = 64 * 1_048_576
  const huge = await (async () => {
    const socket = connect(Number(api.port), api.hostname)
    let text = ''
    socket.on('data', (d) => (text += d.toString()))
    socket.on('error', () => {})
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    // A chunked body (no Content-Length to refuse up front): the server must stop reading it.
    socket.write(
      `POST /rpc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\n\r\n`
    )
    const chunk = Buffer.alloc(65536, 0x20)
    let sent = 0
    const t0 = Date.now()
    while (sent < hugeLength && !socket.destroyed && socket.writable) {
      const line = Buffer.concat([
        Buffer.from(`${chunk.length.toString(16)}\r\n`),
        chunk,
        Buffer.from('\r\n')
      ])
      if (!socket.write(line)) await new Promise((r) => socket.once('drain', r).once('close', r))
      sent += chunk.length
      if (Date.now() - t0 > 20_000) break
    }
    await new Promise((r) => setTimeout(r, 200))
    socket.destroy()
    return { status: text.split('\r\n')[0] ?? '', sentMiB: sent / 1_048_576 }
  })()
  const rssAfter = await rssMiB(daemon.child.pid!)
  console.log(`\n| body | answer | note |\n| --- | --- | --- |`)
  console.log(
    `| Content-Length ${maxBody + 1} (limit + 1) | ${over.status} | closed after ${over.closedAfterMs ?? '—'} ms |`
  )
  console.log(
    `| 64 MiB chunked | ${huge.status || '(none)'} | client got ${huge.sentMiB.toFixed(1)} MiB out before the server stopped reading; daemon RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB |`
  )

  // Slow clients, with node_info measured meanwhile.
  const slowHeaders = Array.from({ length: slowClients }, () =>
    raw(
      api,
      'POST /rpc HTTP/1.1\r\nHost: x\r\n',
      { piece: 'X-Slow: 1\r\n', everyMs: 1_000, count: 60 },
      60_000
    )
  )
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'node_info', params: {} })
  const slowBodies = Array.from({ length: slowClients }, () =>
    raw(
      api,
      `POST /rpc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${body.length}\r\n\r\n`,
      { piece: 'x', everyMs: 1_000, count: 60 },
      60_000
    )
  )
  const during = await load(api.href, token, nodeInfo, Math.min(10, seconds))
  const heads = await Promise.all(slowHeaders)
  const bodies = await Promise.all(slowBodies)
  const closedTimes = (xs: Array<{ closedAfterMs: number | undefined }>): string => {
    const t = xs
      .map((x) => x.closedAfterMs)
      .filter((x): x is number => x !== undefined)
      .sort((a, b) => a - b)
    const open = xs.length - t.length
    return t.length === 0
      ? `none closed in 60 s`
      : `${t.length} closed, after ${(t[0]! / 1000).toFixed(1)}–${(t.at(-1)! / 1000).toFixed(1)} s` +
          (open > 0 ? `; ${open} still open at 60 s` : '')
  }
  const statuses = (xs: Array<{ status: string }>): string =>
    [...new Set(xs.map((x) => x.status || '(no answer)'))].join(', ')
  console.log(
    `\n| slow clients (${slowClients} each, 1 byte or line a second) | closed by the daemon | answer |`
  )
  console.log(`| --- | --- | --- |`)
  console.log(`| headers trickled (slowloris) | ${closedTimes(heads)} | ${statuses(heads)} |`)
  console.log(`| JSON-RPC body trickled | ${closedTimes(bodies)} | ${statuses(bodies)} |`)
  console.log(
    `\nnode_info meanwhile (${Math.min(10, seconds)} s, ${connections} connections): p50 ${during.p50} ms, p99 ${during.p99} ms, ` +
      `${Math.round(during.rps)} req/s, errors ${during.errors} / ${during.timeouts} / ${during.non2xx} / ${during.rpcErrors}`
  )
} finally {
  if (daemon !== undefined) {
    daemon.child.kill('SIGTERM')
    await exited(daemon.child)
  }
  await rm(root, { recursive: true, force: true })
}
