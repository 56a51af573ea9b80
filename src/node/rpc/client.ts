/**
 * A small JSON-RPC client for the node's HTTP API (used by the CLI, scripts and tests).
 */
import { ShoalError, isErrorCategory } from '../../common/index.js'
import type { JsonRpcError } from './errors.js'

/**
 * Thrown when the daemon answers a call with a JSON-RPC error. `code` and `category` are the
 * daemon's ShoalError's (`data.code`, `data.category`); a protocol error without them gets
 * `RPC_<number>` and `internal`.
 */
export class RpcCallError extends ShoalError<string, { rpcCode: number; data?: unknown }> {
  constructor(err: JsonRpcError) {
    const data = err.data as { code?: string; category?: unknown } | undefined
    super(
      data?.code ?? `RPC_${err.code}`,
      err.message,
      { rpcCode: err.code, data: err.data },
      { category: isErrorCategory(data?.category) ? data.category : 'internal' }
    )
  }
}

/** Thrown when no daemon answers at the address. */
export class DaemonUnreachableError extends ShoalError<'DAEMON_UNREACHABLE', { url: string }> {
  static override readonly category = 'unavailable'
}

export class RpcClient {
  readonly url: URL
  private readonly token: string
  private nextId = 1

  constructor(url: string | URL, token: string) {
    this.url = new URL(url)
    this.token = token
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, ...extra }
  }

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const target = new URL(path, this.url)
    try {
      return await fetch(target, {
        ...init,
        headers: { ...this.headers(), ...(init.headers as Record<string, string> | undefined) }
      })
    } catch (err) {
      throw new DaemonUnreachableError(
        'DAEMON_UNREACHABLE',
        `no Shoal daemon answers at ${this.url.href}`,
        {
          url: this.url.href
        },
        { cause: err }
      )
    }
  }

  async call<T = unknown>(method: string, params: Record<string, unknown> | unknown[] = {}): Promise<T> {
    const res = await this.fetch('/rpc', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: this.nextId++, method, params })
    })
    if (res.status === 401) {
      throw new ShoalError(
        'UNAUTHORIZED',
        'the daemon refused the RPC token (is rpc.cookie from this data dir?)',
        {},
        { category: 'refused' }
      )
    }
    const body = (await res.json()) as { result?: T; error?: JsonRpcError }
    if (body.error !== undefined) throw new RpcCallError(body.error)
    return body.result as T
  }
}
