/**
 * The page's only ways to the node: JSON-RPC POSTs to `/rpc` carrying the session's CSRF token
 * (from the page's meta tag; the session itself is an HttpOnly cookie the page never sees), and
 * one EventSource on `/api/v0/events`. Same origin only (the CSP allows nothing else).
 */

export interface NodeEvent {
  id: number
  topic: string
  data: Record<string, unknown> & { at: number }
}

const csrf = (): string => document.querySelector<HTMLMetaElement>('meta[name="shoal-csrf"]')?.content ?? ''

/** Thrown when a call fails: the node's error message and its stable code, when it has one. */
export class RpcError extends Error {
  constructor(
    message: string,
    readonly code?: string
  ) {
    super(message)
  }
}

let nextId = 1

/** Calls a JSON-RPC method of the node. */
export async function rpc<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch('/rpc', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf() },
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params })
  })
  if (res.status === 401 || res.status === 403) {
    const body = (await res.json().catch(() => ({}))) as { error?: string }
    throw new RpcError(
      body.error ?? 'the session has ended: run `shoal dashboard` for a new login URL',
      'SESSION'
    )
  }
  const body = (await res.json()) as { result?: T; error?: { message: string; data?: { code?: string } } }
  if (body.error !== undefined) throw new RpcError(body.error.message, body.error.data?.code)
  return body.result as T
}

type Listener = (e: NodeEvent) => void
const listeners = new Set<Listener>()
let source: EventSource | undefined
const status = { connected: false, lastId: 0, received: 0 }
const statusListeners = new Set<() => void>()

/** The event stream's state (for the header's live dot). */
export function streamStatus(): Readonly<typeof status> {
  return status
}

export function onStreamStatus(fn: () => void): () => void {
  statusListeners.add(fn)
  return () => statusListeners.delete(fn)
}

/** Opens the page's one event stream (all topics); EventSource reconnects with Last-Event-ID. */
function open(): void {
  if (source !== undefined) return
  source = new EventSource('/api/v0/events?topics=*')
  const es = source
  const notify = (): void => {
    for (const f of statusListeners) f()
  }
  es.addEventListener('ready', (ev) => {
    status.connected = true
    // Named events: one listener per topic the stream says it carries.
    for (const topic of (JSON.parse((ev as MessageEvent<string>).data) as { topics: string[] }).topics) {
      if (attached.has(topic)) continue
      attached.add(topic)
      es.addEventListener(topic, (m) => {
        const msg = m as MessageEvent<string>
        const e: NodeEvent = { id: Number(msg.lastEventId), topic, data: JSON.parse(msg.data) }
        status.lastId = e.id
        status.received++
        for (const l of listeners) l(e)
        notify()
      })
    }
    notify()
  })
  es.onerror = () => {
    status.connected = false
    notify()
  }
}
const attached = new Set<string>()

/** Calls `fn` with every event whose topic starts with one of `prefixes` (all when empty). */
export function subscribe(prefixes: string[], fn: Listener): () => void {
  open()
  const l: Listener = (e) => {
    if (prefixes.length === 0 || prefixes.some((p) => e.topic === p || e.topic.startsWith(`${p}.`))) fn(e)
  }
  listeners.add(l)
  return () => listeners.delete(l)
}
