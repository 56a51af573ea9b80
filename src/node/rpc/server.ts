/**
 * JSON-RPC 2.0 over HTTP on loopback, with a bearer token, plus plain HTTP endpoints for
 * streaming bytes (file add/get) under the same token. Batches and notifications follow
 * the spec; `rpc.discover` returns an OpenRPC document generated from the method schemas.
 */
import { timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { z } from 'zod'
import { ShoalError, logger } from '../../common/index.js'
import { asDiskFull } from '../../storage/index.js'
import {
  APPLICATION_ERROR,
  INTERNAL_ERROR,
  INVALID_PARAMS,
  INVALID_REQUEST,
  METHOD_NOT_FOUND,
  PARSE_ERROR,
  type JsonRpcError
} from './errors.js'

const log = logger('shoal:rpc')

/** One RPC method: zod schemas for params and result, and the handler. */
export interface RpcMethod<P extends z.ZodObject = z.ZodObject, R extends z.ZodType = z.ZodType> {
  name: string
  summary: string
  params: P
  result: R
  handler: (params: z.infer<P>, ctx: { signal: AbortSignal }) => Promise<z.infer<R>>
}

/** Define a method with inferred types. */
export function method<P extends z.ZodObject, R extends z.ZodType>(m: RpcMethod<P, R>): RpcMethod {
  return m as unknown as RpcMethod
}

/** A plain HTTP endpoint (streams bytes); authenticated like the RPC. */
export type StreamHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  signal: AbortSignal
) => Promise<void>

/** Default of {@link RpcServerInit.headersTimeoutMs}. */
export const RPC_HEADERS_TIMEOUT_MS = 10_000
/** Default of {@link RpcServerInit.bodyTimeoutMs}. */
export const RPC_BODY_TIMEOUT_MS = 10_000
/** Default of {@link RpcServerInit.streamIdleMs}. */
export const RPC_STREAM_IDLE_MS = 30_000

export interface RpcServerInit {
  host: string
  port: number
  token: string
  maxBodyBytes: number
  /**
   * A request's headers must arrive whole within this time, or the connection is closed
   * (slowloris). Default {@link RPC_HEADERS_TIMEOUT_MS}.
   */
  headersTimeoutMs?: number
  /**
   * A JSON-RPC request's body must arrive whole within this time after its headers, or it is
   * answered 408 and the connection closed. Default {@link RPC_BODY_TIMEOUT_MS}.
   */
  bodyTimeoutMs?: number
  /**
   * An upload to a streaming endpoint that sends no byte for this long is closed (a long
   * upload that keeps sending is not limited). Default {@link RPC_STREAM_IDLE_MS}.
   */
  streamIdleMs?: number
  /** Title/version for the OpenRPC document. */
  info?: { title: string; version: string }
}

/**
 * Another way in beside the bearer token (the dashboard's session, src/node/dashboard): it may
 * serve a request itself (its pages, its login) and may admit a request that has no token.
 */
export interface RpcGate {
  /** Serves the request (and returns true) when it is the gate's own (e.g. `/dashboard/…`). */
  serve?(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>
  /**
   * A request without a valid bearer token: `true` admits it; a string refuses it with that
   * reason (403); `false` leaves it to the usual 401.
   */
  admit?(req: IncomingMessage, url: URL): boolean | string
}

export interface RpcServerComponents {
  methods: RpcMethod[]
  /** Keyed by path, e.g. `/api/v0/add`. */
  streams?: Record<string, StreamHandler>
  gate?: RpcGate
  /** Told of each method call: its name, duration and whether it failed (RPC latency metrics). */
  onCall?: (method: string, ms: number, ok: boolean) => void
  /** Extra fields of the OpenRPC document (`x-…` extensions, e.g. the event stream's topics). */
  discoverExtra?: Record<string, unknown>
}

/** Thrown when the RPC server cannot listen (e.g. port in use). */
export class RpcListenError extends ShoalError<
  'RPC_LISTEN_FAILED',
  { host: string; port: number; reason: string }
> {
  static override readonly category = 'unavailable'
}

interface Request {
  jsonrpc?: unknown
  id?: unknown
  method?: unknown
  params?: unknown
}

class BodyTooLargeError extends Error {}
class BodyTimeoutError extends Error {}

export class RpcServer {
  private readonly methods = new Map<string, RpcMethod>()
  private readonly streams: Record<string, StreamHandler>
  private readonly components: RpcServerComponents
  private readonly init: RpcServerInit
  private server?: Server
  private readonly controller = new AbortController()
  private readonly token: Buffer

  constructor(components: RpcServerComponents, init: RpcServerInit) {
    for (const m of components.methods) this.methods.set(m.name, m)
    this.streams = components.streams ?? {}
    this.components = components
    this.init = init
    this.token = Buffer.from(init.token)
  }

  /** The OpenRPC document (also served as `rpc.discover`). */
  discover(): Record<string, unknown> {
    return {
      openrpc: '1.3.2',
      info: this.init.info ?? { title: 'Shoal node JSON-RPC', version: '0.0.0' },
      methods: [...this.methods.values()].map((m) => ({
        name: m.name,
        summary: m.summary,
        paramStructure: 'either',
        params: Object.entries(m.params.shape).map(([name, schema]) => ({
          name,
          required: !(schema as z.ZodType).safeParse(undefined).success,
          schema: z.toJSONSchema(schema as z.ZodType, { unrepresentable: 'any' })
        })),
        result: { name: 'result', schema: z.toJSONSchema(m.result, { unrepresentable: 'any' }) }
      })),
      ...this.components.discoverExtra
    }
  }

  async start(): Promise<URL> {
    if (this.server !== undefined) return this.url()
    const headersTimeout = this.init.headersTimeoutMs ?? RPC_HEADERS_TIMEOUT_MS
    const server = createServer(
      {
        headersTimeout,
        // Streams may be long: the body deadline and the upload idle limit bound slow clients.
        requestTimeout: 0,
        // How often Node checks headersTimeout (its default, 30 s, would let a slow client hold
        // a connection for up to headersTimeout + 30 s).
        connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersTimeout / 4)))
      },
      (req, res) => {
        this.handle(req, res).catch((err: unknown) => {
          log.error({ err }, 'unhandled RPC error')
          if (!res.headersSent) this.sendJson(res, 500, { error: 'internal error' })
          else res.destroy()
        })
      }
    )
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const reason =
          err.code === 'EADDRINUSE'
            ? `port ${this.init.port} on ${this.init.host} is already in use (set rpc.port, e.g. --set rpc.port=0)`
            : err.message
        reject(
          new RpcListenError('RPC_LISTEN_FAILED', `RPC server cannot listen: ${reason}`, {
            host: this.init.host,
            port: this.init.port,
            reason: err.code ?? err.message
          })
        )
      })
      server.listen(this.init.port, this.init.host, () => resolve())
    })
    this.server = server
    log.info({ url: this.url().href }, 'RPC listening')
    return this.url()
  }

  url(): URL {
    const addr = this.server?.address() as AddressInfo | null | undefined
    if (addr == null) throw new Error('RPC server not started')
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
    return new URL(`http://${host}:${addr.port}/`)
  }

  async stop(): Promise<void> {
    const server = this.server
    if (server === undefined) return
    this.server = undefined
    this.controller.abort()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private authorized(req: IncomingMessage): boolean {
    const h = req.headers.authorization
    if (h === undefined || !h.startsWith('Bearer ')) return false
    const given = Buffer.from(h.slice(7).trim())
    return given.length === this.token.length && timingSafeEqual(given, this.token)
  }

  private sendJson(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const gate = this.components.gate
    if (gate?.serve !== undefined && (await gate.serve(req, res, url))) return
    const admitted = this.authorized(req) || (gate?.admit?.(req, url) ?? false)
    if (typeof admitted === 'string') {
      log.warn({ path: url.pathname, reason: admitted }, 'RPC request refused')
      this.sendJson(res, 403, { error: admitted })
      req.resume()
      return
    }
    if (!admitted) {
      log.warn({ path: url.pathname, remote: req.socket.remoteAddress }, 'RPC request without a valid token')
      res.setHeader('www-authenticate', 'Bearer realm="shoal"')
      this.sendJson(res, 401, { error: 'missing or invalid bearer token (see rpc.cookie in the data dir)' })
      req.resume()
      return
    }
    const stream = this.streams[url.pathname]
    if (stream !== undefined) {
      if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
        // An upload: close it when the client stops sending; no limit once the body is in.
        req.setTimeout(this.init.streamIdleMs ?? RPC_STREAM_IDLE_MS, () => {
          log.warn({ path: url.pathname }, 'RPC upload idle: closing the connection')
          req.destroy()
          res.destroy()
        })
        req.once('end', () => req.setTimeout(0))
      }
      const ac = new AbortController()
      const onAbort = (): void => ac.abort()
      this.controller.signal.addEventListener('abort', onAbort)
      res.once('close', () => {
        if (!res.writableFinished) ac.abort()
      })
      try {
        await stream(req, res, url, ac.signal)
      } catch (caught) {
        const err = namedFailure(caught)
        if (!res.headersSent) this.sendJson(res, errorStatus(err), { error: toRpcError(err) })
        else res.destroy(err as Error)
      } finally {
        this.controller.signal.removeEventListener('abort', onAbort)
      }
      return
    }
    if (url.pathname !== '/' && url.pathname !== '/rpc') {
      this.sendJson(res, 404, { error: `no such endpoint ${url.pathname}` })
      req.resume()
      return
    }
    if (req.method !== 'POST') {
      this.sendJson(res, 405, { error: 'JSON-RPC requests must be POSTed' })
      req.resume()
      return
    }
    let body: Buffer
    try {
      body = await readBody(req, this.init.maxBodyBytes, this.init.bodyTimeoutMs ?? RPC_BODY_TIMEOUT_MS)
    } catch (err) {
      if (err instanceof BodyTimeoutError) {
        log.warn({ remote: req.socket.remoteAddress }, 'RPC request body too slow: closing the connection')
        res.setHeader('connection', 'close')
        this.sendJson(res, 408, {
          jsonrpc: '2.0',
          id: null,
          error: { code: INVALID_REQUEST, message: 'request body not received in time' }
        })
        req.destroy()
        return
      }
      if (err instanceof BodyTooLargeError) {
        res.setHeader('connection', 'close')
        this.sendJson(res, 413, {
          jsonrpc: '2.0',
          id: null,
          error: { code: INVALID_REQUEST, message: `request body exceeds ${this.init.maxBodyBytes} bytes` }
        })
        req.destroy()
        return
      }
      throw err
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(body.toString('utf8'))
    } catch (err) {
      this.sendJson(res, 200, {
        jsonrpc: '2.0',
        id: null,
        error: { code: PARSE_ERROR, message: `Parse error: ${(err as Error).message}` }
      })
      return
    }
    if (Array.isArray(parsed)) {
      if (parsed.length === 0) {
        this.sendJson(res, 200, {
          jsonrpc: '2.0',
          id: null,
          error: { code: INVALID_REQUEST, message: 'empty batch' }
        })
        return
      }
      const results = (await Promise.all(parsed.map(async (r) => this.dispatch(r)))).filter(
        (r) => r !== undefined
      )
      if (results.length === 0) {
        res.writeHead(204).end()
        return
      }
      this.sendJson(res, 200, results)
      return
    }
    const result = await this.dispatch(parsed)
    if (result === undefined) {
      res.writeHead(204).end()
      return
    }
    this.sendJson(res, 200, result)
  }

  /** Run one request object; `undefined` for a notification. */
  private async dispatch(raw: unknown): Promise<Record<string, unknown> | undefined> {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      return {
        jsonrpc: '2.0',
        id: null,
        error: { code: INVALID_REQUEST, message: 'request must be an object' }
      }
    }
    const r = raw as Request
    const isNotification = !('id' in r)
    const id = validId(r.id) ? r.id : null
    const reply = (
      payload: { result: unknown } | { error: JsonRpcError }
    ): Record<string, unknown> | undefined =>
      isNotification ? undefined : { jsonrpc: '2.0', id, ...payload }
    if (r.jsonrpc !== '2.0' || typeof r.method !== 'string' || (!isNotification && !validId(r.id))) {
      return { jsonrpc: '2.0', id, error: { code: INVALID_REQUEST, message: 'not a JSON-RPC 2.0 request' } }
    }
    if (r.method === 'rpc.discover') return reply({ result: this.discover() })
    const m = this.methods.get(r.method)
    if (m === undefined) {
      return reply({ error: { code: METHOD_NOT_FOUND, message: `Method not found: ${r.method}` } })
    }
    let params: unknown = r.params ?? {}
    if (Array.isArray(params)) {
      const names = Object.keys(m.params.shape)
      if (params.length > names.length) {
        return reply({
          error: {
            code: INVALID_PARAMS,
            message: `${m.name} takes at most ${names.length} params`,
            data: { names }
          }
        })
      }
      params = Object.fromEntries(params.map((v, i) => [names[i], v]))
    }
    if (typeof params !== 'object' || params === null) {
      return reply({ error: { code: INVALID_PARAMS, message: 'params must be an object or an array' } })
    }
    const checked = m.params.strict().safeParse(params)
    if (!checked.success) {
      const issue = checked.error.issues[0]!
      const param =
        issue.code === 'unrecognized_keys'
          ? issue.keys.join(', ')
          : issue.path.map(String).join('.') || '(params)'
      const reason = issue.code === 'unrecognized_keys' ? 'unknown param' : issue.message
      return reply({
        error: {
          code: INVALID_PARAMS,
          message: `Invalid params: ${param}: ${reason}`,
          data: { param, reason }
        }
      })
    }
    const began = performance.now()
    try {
      const result = await m.handler(checked.data, { signal: this.controller.signal })
      this.components.onCall?.(m.name, performance.now() - began, true)
      return reply({ result: result ?? null })
    } catch (caught) {
      this.components.onCall?.(m.name, performance.now() - began, false)
      // A full disk or a timeout is named whatever layer hit it.
      const err = namedFailure(caught)
      if (!(err instanceof ShoalError)) log.error({ err, method: m.name }, 'RPC method failed')
      else log.info({ method: m.name, code: err.code }, 'RPC method refused')
      return reply({ error: toRpcError(err) })
    }
  }
}

function validId(id: unknown): boolean {
  return typeof id === 'string' || typeof id === 'number' || id === null
}

/**
 * Thrown (answered) when a method gave up waiting: a deadline of its own passed (e.g. fetching
 * a CID that no reachable peer has), seen as the `TimeoutError` of an `AbortSignal.timeout`.
 */
export class RpcTimeoutError extends ShoalError<'TIMEOUT'> {
  static override readonly category = 'unavailable'
}

/**
 * The error a method's failure is answered with: a full disk as `DISK_FULL`, a timeout as
 * `TIMEOUT` (both named whatever layer hit them); any other error as it is.
 */
export function namedFailure(err: unknown): unknown {
  const full = asDiskFull(err)
  if (full !== undefined) return full
  if (!(err instanceof ShoalError)) {
    const e = err as { name?: unknown; message?: unknown; cause?: unknown } | null
    const timeout =
      e?.name === 'TimeoutError' || (e?.cause as { name?: unknown } | undefined)?.name === 'TimeoutError'
    if (timeout) {
      return new RpcTimeoutError(
        'TIMEOUT',
        `gave up waiting: ${String(e?.message ?? 'timeout')}`,
        {},
        { cause: err }
      )
    }
  }
  return err
}

/** A ShoalError becomes an application error carrying its fields, code and category. */
export function toRpcError(err: unknown): JsonRpcError {
  if (err instanceof ShoalError) {
    return {
      code: APPLICATION_ERROR,
      message: err.message,
      data: { ...err.fields, code: err.code, category: err.category }
    }
  }
  return { code: INTERNAL_ERROR, message: `Internal error: ${(err as Error)?.message ?? String(err)}` }
}

function errorStatus(err: unknown): number {
  if (err instanceof ShoalError) {
    if (err.code === 'NOT_FOUND') return 404
    if (err.code === 'NOT_AUTHORIZED') return 403
    if (err.code === 'DISK_FULL') return 507
    if (err.code === 'TIMEOUT') return 504
    return 400
  }
  return 500
}

/**
 * Read a request body, refusing (without buffering it whole) once it passes `limit`, or when
 * it has not arrived whole within `timeoutMs` ({@link BodyTimeoutError}; the caller answers and
 * destroys the request).
 */
async function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN)
  if (Number.isFinite(declared) && declared > limit) throw new BodyTooLargeError()
  const collect = async (): Promise<Buffer> => {
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > limit) throw new BodyTooLargeError()
      chunks.push(chunk)
    }
    return Buffer.concat(chunks)
  }
  const reading = collect()
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BodyTimeoutError()), timeoutMs)
  })
  try {
    return await Promise.race([reading, late])
  } catch (err) {
    reading.catch(() => {}) // the request is destroyed by the caller; its read then fails
    throw err
  } finally {
    clearTimeout(timer)
  }
}
