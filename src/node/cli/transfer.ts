/** Streaming add/get over the daemon's plain HTTP endpoints, with an optional progress bar. */
import { createReadStream, createWriteStream } from 'node:fs'
import { rename, rm, stat } from 'node:fs/promises'
import { request } from 'node:http'
import { Transform, type Readable, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import cliProgress from 'cli-progress'
import { ShoalError, isErrorCategory } from '../../common/index.js'
import type { RpcClient } from '../rpc/index.js'
import { ADD_PATH, GET_PATH, INTEGRITY_TRAILER } from '../constants.js'

const PROGRESS_MIN_BYTES = 8 * 1024 * 1024

function progress(total: number | undefined): { meter: Transform; done: () => void } {
  const show = process.stderr.isTTY === true && (total === undefined || total >= PROGRESS_MIN_BYTES)
  const bar = show
    ? new cliProgress.SingleBar(
        { stream: process.stderr, format: '{bar} {percentage}% | {value}/{total} MiB', hideCursor: true },
        cliProgress.Presets.shades_classic
      )
    : undefined
  const mib = (n: number): number => Math.round(n / 1048576)
  bar?.start(mib(total ?? 0), 0)
  let seen = 0
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length
      if (total === undefined) bar?.setTotal(mib(seen))
      bar?.update(mib(seen))
      cb(null, chunk)
    }
  })
  return { meter, done: () => bar?.stop() }
}

function errorFromBody(status: number, text: string): ShoalError {
  try {
    const j = JSON.parse(text) as {
      error?: { message?: string; data?: { code?: string; category?: unknown } } | string
    }
    if (typeof j.error === 'object' && j.error !== null) {
      const category = j.error.data?.category
      return new ShoalError(j.error.data?.code ?? `HTTP_${status}`, j.error.message ?? text, undefined, {
        category: isErrorCategory(category) ? category : 'internal'
      })
    }
    return new ShoalError(`HTTP_${status}`, String(j.error ?? text))
  } catch {
    return new ShoalError(`HTTP_${status}`, text)
  }
}

export async function addFile(
  client: RpcClient,
  path: string,
  opts: { plain?: boolean; name?: string }
): Promise<{ cid: string; size: number; encrypted: boolean }> {
  const st = await stat(path)
  const url = new URL(ADD_PATH, client.url)
  if (opts.plain === true) url.searchParams.set('plain', 'true')
  if (opts.name !== undefined) url.searchParams.set('name', opts.name)
  const { meter, done } = progress(st.size)
  try {
    return await new Promise((resolve, reject) => {
      const req = request(url, {
        method: 'POST',
        headers: client.headers({
          'content-type': 'application/octet-stream',
          'content-length': String(st.size)
        })
      })
      req.on('response', (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          if (res.statusCode === 200)
            resolve(JSON.parse(text) as { cid: string; size: number; encrypted: boolean })
          else reject(errorFromBody(res.statusCode ?? 0, text))
        })
        res.on('error', reject)
      })
      req.on('error', reject)
      pipeline(createReadStream(path), meter, req).catch(reject)
    })
  } finally {
    done()
  }
}

/** Stream a CID's plaintext to `out` (a path: written to a temp file, renamed when verified). */
export async function getFile(client: RpcClient, cid: string, out: string | Writable): Promise<number> {
  const url = new URL(GET_PATH, client.url)
  url.searchParams.set('cid', cid)
  const res = await new Promise<
    Readable & { statusCode?: number; headers: Record<string, unknown>; trailers: Record<string, string> }
  >((resolve, reject) => {
    const req = request(url, { method: 'GET', headers: client.headers() })
    req.on('response', resolve)
    req.on('error', reject)
    req.end()
  })
  if (res.statusCode !== 200) {
    const chunks: Buffer[] = []
    for await (const c of res) chunks.push(c as Buffer)
    throw errorFromBody(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))
  }
  const size = Number(res.headers['x-shoal-size'])
  const { meter, done } = progress(Number.isFinite(size) ? size : undefined)
  const tmp = typeof out === 'string' ? `${out}.shoal-partial` : undefined
  let written = 0
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      written += chunk.length
      cb(null, chunk)
    }
  })
  try {
    const sink = tmp !== undefined ? createWriteStream(tmp, { mode: 0o600 }) : (out as Writable)
    await pipeline(res, meter, count, sink, { end: tmp !== undefined })
    if (res.trailers[INTEGRITY_TRAILER] !== 'ok') {
      throw new ShoalError(
        'INTEGRITY',
        'the daemon did not confirm the integrity of the stream (transfer cut short)',
        {},
        { category: 'integrity' }
      )
    }
    if (tmp !== undefined) await rename(tmp, out as string)
    return written
  } catch (err) {
    if (tmp !== undefined) await rm(tmp, { force: true })
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as Error).message === 'aborted') {
      throw new ShoalError(
        'INTEGRITY',
        'the daemon aborted the stream: the content failed verification or the daemon stopped',
        {},
        { category: 'integrity' }
      )
    }
    throw err
  } finally {
    done()
  }
}
