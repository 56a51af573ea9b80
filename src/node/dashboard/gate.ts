/**
 * The dashboard on the RPC listener (an `RpcGate`): its pages and bundled assets under
 * `/dashboard/`, the one-time login, and the session's way into the JSON-RPC (POST with the
 * CSRF token), the event stream and the metrics. Every dashboard request must name this node's
 * address in its Host header (no DNS rebinding); pages carry a strict Content-Security-Policy and
 * load only the bundled assets.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { logger, type Logger } from '../../common/index.js'
import { DashboardSessions, sameSecret, type Session } from './sessions.js'

const log = logger('shoal:node:dashboard')

/** The dashboard's path prefix on the RPC listener. */
export const DASHBOARD_PATH = '/dashboard/'
/** The header a session's state-changing request carries its CSRF token in. */
export const CSRF_HEADER = 'x-csrf-token'

/** Nothing but this origin's own scripts, styles and connections; no frames, no plugins. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join('; ')

/** Headers of every dashboard response. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store'
}

/** A bundled file: its bytes and content type. */
export interface Asset {
  body: Buffer
  type: string
}

export interface DashboardGateInit {
  sessions?: DashboardSessions
  /** The bundled front end by file name (`app.js`, `app.css`); undefined: not built (why). */
  assets: () => Promise<Map<string, Asset> | string>
  /** Paths a session may GET besides the dashboard's own (the event stream, the metrics). */
  readable?: readonly string[]
  log?: Logger
}

/**
 * The Host values a request to `url` may carry: its `host:port`, and `localhost:port` when it
 * listens on a loopback address.
 */
export function allowedHosts(url: URL): Set<string> {
  const hosts = new Set([url.host.toLowerCase()])
  if (['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname)) {
    for (const h of ['127.0.0.1', 'localhost', '[::1]']) hosts.add(`${h}:${url.port}`)
  }
  return hosts
}

/** The value of cookie `name` in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

export class DashboardGate {
  readonly sessions: DashboardSessions
  private readonly init: DashboardGateInit
  private readonly log: Logger
  private readonly readable: Set<string>
  private origin: URL | undefined
  private hosts = new Set<string>()

  constructor(init: DashboardGateInit) {
    this.init = init
    this.sessions = init.sessions ?? new DashboardSessions()
    this.log = init.log ?? log
    this.readable = new Set(init.readable ?? [])
  }

  /** The RPC's address, once it listens: Host checks, the origin, the cookie's name. */
  bind(url: URL): void {
    this.origin = new URL(url.origin)
    this.hosts = allowedHosts(this.origin)
  }

  /** The session cookie's name: one per port, so that nodes on one host keep their own sessions. */
  get cookieName(): string {
    return `shoal_session_${this.origin?.port ?? '0'}`
  }

  /** A one-time login URL (the token in it is spent by its first use). */
  loginUrl(): { url: string; expiresAt: number } {
    if (this.origin === undefined) throw new Error('the dashboard is not bound to an address yet')
    const { token, expiresAt } = this.sessions.issueLogin()
    return { url: new URL(`${DASHBOARD_PATH}login?token=${token}`, this.origin).href, expiresAt }
  }

  /** True when the Host header names this node's address. */
  hostAllowed(req: IncomingMessage): boolean {
    const host = req.headers.host?.toLowerCase()
    return host !== undefined && this.hosts.has(host)
  }

  /** The request's session (by its cookie), if live. */
  session(req: IncomingMessage): Session | undefined {
    return this.sessions.check(cookieValue(req.headers.cookie, this.cookieName))
  }

  /**
   * A request without the bearer token, on the RPC's own paths: admitted with a live session and
   * the right Host — a POST (every JSON-RPC call) also needs the CSRF token and, when the browser
   * names one, this origin.
   */
  admit(req: IncomingMessage, url: URL): boolean | string {
    const cookie = cookieValue(req.headers.cookie, this.cookieName)
    if (cookie === undefined) return false
    if (!this.hostAllowed(req)) return 'Host header does not name this node (DNS rebinding?)'
    const s = this.sessions.check(cookie)
    if (s === undefined) return false
    if (req.headers['sec-fetch-site'] === 'cross-site') return 'cross-site request refused'
    if (req.method === 'GET' && this.readable.has(url.pathname)) return true
    if (req.method !== 'POST' || (url.pathname !== '/' && url.pathname !== '/rpc')) {
      return 'the dashboard session does not open this endpoint'
    }
    const origin = req.headers.origin
    if (origin !== undefined && origin !== this.origin?.origin) return 'cross-origin request refused'
    const given = req.headers[CSRF_HEADER]
    if (!sameSecret(Array.isArray(given) ? given[0] : given, s.csrf)) return 'missing or wrong CSRF token'
    return true
  }

  /** Serves `/dashboard/…` (returns false for any other path). */
  async serve(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (url.pathname !== '/dashboard' && !url.pathname.startsWith(DASHBOARD_PATH)) return false
    req.resume()
    if (!this.hostAllowed(req)) {
      this.log.warn({ host: req.headers.host }, 'dashboard request with a foreign Host refused')
      this.page(res, 421, 'Wrong host', 'This node answers only to its own address.')
      return true
    }
    const sub = url.pathname === '/dashboard' ? '' : url.pathname.slice(DASHBOARD_PATH.length)
    if (sub === 'login') {
      this.login(req, res, url)
      return true
    }
    const session = this.session(req)
    if (sub === 'logout') {
      const cookie = cookieValue(req.headers.cookie, this.cookieName)
      const given = req.headers[CSRF_HEADER]
      if (
        req.method !== 'POST' ||
        session === undefined ||
        !sameSecret(Array.isArray(given) ? given[0] : given, session.csrf)
      ) {
        this.page(res, 403, 'Refused', 'Logging out needs the session and its CSRF token.')
        return true
      }
      this.sessions.end(cookie!)
      res.writeHead(204, {
        ...SECURITY_HEADERS,
        'set-cookie': `${this.cookieName}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`
      })
      res.end()
      return true
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.page(res, 405, 'Method not allowed', 'The dashboard serves pages with GET.')
      return true
    }
    if (session === undefined) {
      this.page(
        res,
        401,
        'Log in',
        'Run <code>shoal dashboard</code> on this machine and open the URL it prints.'
      )
      return true
    }
    const assets = await this.init.assets()
    if (typeof assets === 'string') {
      this.page(res, 503, 'Dashboard not built', escapeHtml(assets))
      return true
    }
    if (sub === '' || sub === 'index.html') {
      const html = indexHtml(session.csrf)
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': 'text/html; charset=utf-8',
        'content-length': Buffer.byteLength(html)
      })
      res.end(req.method === 'HEAD' ? undefined : html)
      return true
    }
    const asset = sub.startsWith('assets/') ? assets.get(sub.slice('assets/'.length)) : undefined
    if (asset === undefined) {
      this.page(res, 404, 'Not found', 'No such page.')
      return true
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': asset.type,
      'content-length': asset.body.length
    })
    res.end(req.method === 'HEAD' ? undefined : asset.body)
    return true
  }

  private login(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const t = url.searchParams.get('token')
    const session = req.method === 'GET' && t !== null ? this.sessions.exchange(t) : undefined
    if (session === undefined) {
      this.log.warn('dashboard login with an unknown, spent or expired token')
      this.page(
        res,
        403,
        'This login link is spent',
        'A login link works once and for a few minutes. Run <code>shoal dashboard</code> again for a new one.'
      )
      return
    }
    this.log.info('dashboard session opened')
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      location: DASHBOARD_PATH,
      'set-cookie': `${this.cookieName}=${session.id}; HttpOnly; SameSite=Strict; Path=/`
    })
    res.end()
  }

  private page(res: ServerResponse, status: number, title: string, html: string): void {
    const body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title} · Shoal</title></head><body><h1>${title}</h1><p>${html}</p></body></html>`
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(body)
    })
    res.end(body)
  }
}

/** The page: the CSRF token in a meta tag, the bundled script and style, nothing inline. */
export function indexHtml(csrf: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="shoal-csrf" content="${escapeHtml(csrf)}">
<title>Shoal node</title>
<link rel="icon" href="${DASHBOARD_PATH}assets/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="${DASHBOARD_PATH}assets/app.css">
<script type="module" src="${DASHBOARD_PATH}assets/app.js"></script>
</head>
<body><div id="app"></div></body>
</html>
`
}
