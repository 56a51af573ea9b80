/**
 * The dashboard's session, CSRF, Host and CSP rules, through a real RpcServer on loopback: the
 * one-time login URL, the session cookie, what a session may and may not reach, and the pages'
 * security headers.
 */
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { z } from 'zod'
import { RpcServer, method } from '../../../src/node/rpc/index.js'
import {
  CONTENT_SECURITY_POLICY,
  DashboardGate,
  DashboardSessions,
  allowedHosts,
  cookieValue
} from '../../../src/node/dashboard/index.js'
import { EventBus, EventStream, EVENTS_PATH } from '../../../src/node/events/index.js'

const TOKEN = 'bearer-token-for-tests'

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One HTTP request with exactly these headers (Host included); the body is read whole unless `head`. */
async function http(
  base: URL,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; head?: boolean } = {}
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: base.hostname,
        port: base.port,
        path,
        method: opts.method ?? 'GET',
        headers: { host: base.host, ...opts.headers }
      },
      (res) => {
        if (opts.head === true) {
          resolve({ status: res.statusCode!, headers: res.headers, body: '' })
          res.destroy()
          return
        }
        let body = ''
        res.on('data', (d: Buffer) => (body += d.toString()))
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
      }
    )
    req.on('error', reject)
    req.end(opts.body)
  })
}

describe('dashboard: sessions, CSRF, Host and CSP', function () {
  this.timeout(20_000)

  describe('DashboardSessions', () => {
    it('a login token opens one session, once, and only before it expires', () => {
      let now = 1_000_000
      const s = new DashboardSessions({ now: () => now, loginTtlMs: 60_000 })
      const a = s.issueLogin()
      const session = s.exchange(a.token)
      assert.ok(session !== undefined)
      assert.notEqual(session.csrf, session.id)
      assert.equal(s.exchange(a.token), undefined, 'spent')
      const b = s.issueLogin()
      now += 60_001
      assert.equal(s.exchange(b.token), undefined, 'expired')
      assert.equal(s.exchange('made-up'), undefined)
    })

    it('a session ends after its idle time and its maximum age; the oldest go first beyond the cap', () => {
      let now = 0
      const s = new DashboardSessions({ now: () => now, idleMs: 1_000, maxAgeMs: 5_000, maxSessions: 2 })
      const one = s.exchange(s.issueLogin().token)!
      now += 900
      assert.ok(s.check(one.id) !== undefined, 'used in time: still live')
      now += 1_001
      assert.equal(s.check(one.id), undefined, 'idle too long')
      const two = s.exchange(s.issueLogin().token)!
      for (let i = 0; i < 6; i++) {
        now += 900
        if (now - two.created <= 5_000) assert.ok(s.check(two.id) !== undefined)
      }
      assert.equal(s.check(two.id), undefined, 'older than maxAgeMs even though used')
      const x = s.exchange(s.issueLogin().token)!
      const y = s.exchange(s.issueLogin().token)!
      const z2 = s.exchange(s.issueLogin().token)!
      assert.equal(s.check(x.id), undefined, 'evicted')
      assert.ok(s.check(y.id) !== undefined && s.check(z2.id) !== undefined)
    })

    it('Host and cookie helpers', () => {
      assert.deepEqual([...allowedHosts(new URL('http://127.0.0.1:5001/'))].sort(), [
        '127.0.0.1:5001',
        '[::1]:5001',
        'localhost:5001'
      ])
      assert.deepEqual([...allowedHosts(new URL('http://10.0.0.2:5001/'))], ['10.0.0.2:5001'])
      assert.equal(cookieValue('a=1; shoal_session_5=xyz; b=2', 'shoal_session_5'), 'xyz')
      assert.equal(cookieValue('shoal_session_50=xyz', 'shoal_session_5'), undefined)
    })
  })

  describe('on the RPC listener', () => {
    let server: RpcServer
    let gate: DashboardGate
    let base: URL
    let counter = 0

    beforeEach(async () => {
      counter = 0
      const bus = new EventBus()
      const sse = new EventStream(bus)
      gate = new DashboardGate({
        assets: async () =>
          new Map([
            ['app.js', { body: Buffer.from('console.log(1)'), type: 'text/javascript; charset=utf-8' }],
            ['app.css', { body: Buffer.from('body{}'), type: 'text/css; charset=utf-8' }]
          ]),
        readable: [EVENTS_PATH]
      })
      server = new RpcServer(
        {
          methods: [
            method({
              name: 'test_bump',
              summary: 'changes state',
              params: z.object({}),
              result: z.number(),
              handler: async () => ++counter
            })
          ],
          streams: {
            [EVENTS_PATH]: async (req, res, url, signal) => sse.handle(req, res, url, signal),
            '/api/v0/get': async (_req, res) => void res.end('secret bytes')
          },
          gate
        },
        { host: '127.0.0.1', port: 0, token: TOKEN, maxBodyBytes: 1 << 20 }
      )
      base = await server.start()
      gate.bind(base)
    })
    afterEach(async () => server.stop())

    /** Logs in through a fresh one-time URL; returns the Cookie header and the page's CSRF token. */
    const login = async (): Promise<{ cookie: string; csrf: string }> => {
      const url = new URL(gate.loginUrl().url)
      assert.equal(url.origin, base.origin)
      const r = await http(base, url.pathname + url.search)
      assert.equal(r.status, 303)
      assert.equal(r.headers.location, '/dashboard/')
      const set = String(r.headers['set-cookie'])
      assert.match(set, /; HttpOnly/)
      assert.match(set, /; SameSite=Strict/)
      assert.match(set, /; Path=\//)
      const cookie = set.split(';')[0]!
      assert.ok(cookie.startsWith(`shoal_session_${base.port}=`))
      const page = await http(base, '/dashboard/', { headers: { cookie } })
      assert.equal(page.status, 200)
      const csrf = /<meta name="shoal-csrf" content="([^"]+)">/.exec(page.body)![1]!
      return { cookie, csrf }
    }
    const bump = async (headers: Record<string, string>): Promise<Reply> =>
      http(base, '/rpc', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'test_bump' })
      })

    it('the login URL works once; its page is served with a strict CSP and only same-origin assets', async () => {
      const noSession = await http(base, '/dashboard/')
      assert.equal(noSession.status, 401)
      assert.equal(noSession.headers['content-security-policy'], CONTENT_SECURITY_POLICY)
      const url = new URL(gate.loginUrl().url)
      const first = await http(base, url.pathname + url.search)
      assert.equal(first.status, 303)
      const again = await http(base, url.pathname + url.search)
      assert.equal(again.status, 403, 'the token is spent')
      assert.equal(again.headers['set-cookie'], undefined)

      const cookie = String(first.headers['set-cookie']).split(';')[0]!
      const page = await http(base, '/dashboard/', { headers: { cookie } })
      assert.equal(page.status, 200)
      const csp = String(page.headers['content-security-policy'])
      assert.match(csp, /default-src 'none'/)
      assert.match(csp, /script-src 'self'(;|$)/)
      assert.match(csp, /frame-ancestors 'none'/)
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/)
      assert.equal(page.headers['x-frame-options'], 'DENY')
      assert.equal(page.headers['referrer-policy'], 'no-referrer')
      assert.equal(page.headers['cache-control'], 'no-store')
      // Nothing inline, nothing from elsewhere: every src/href is a path on this origin.
      assert.doesNotMatch(page.body, /<script>|<style>|\sstyle=|\son[a-z]+=/i)
      for (const m of page.body.matchAll(/(?:src|href)="([^"]+)"/g))
        assert.match(m[1]!, /^\/dashboard\/assets\//)
      const js = await http(base, '/dashboard/assets/app.js', { headers: { cookie } })
      assert.equal(js.status, 200)
      assert.match(String(js.headers['content-type']), /^text\/javascript/)
      // Only the bundled files by name: no path reaches the file system.
      assert.equal(
        (await http(base, '/dashboard/assets/..%2f..%2fpackage.json', { headers: { cookie } })).status,
        404
      )
      assert.equal(
        (await http(base, '/dashboard/assets/../../package.json', { headers: { cookie } })).status,
        403
      )
    })

    it('a JSON-RPC call with the session needs the CSRF token (and this origin); refused ones change nothing', async () => {
      const { cookie, csrf } = await login()
      const none = await bump({ cookie })
      assert.equal(none.status, 403)
      assert.match(none.body, /CSRF/)
      const wrong = await bump({ cookie, 'x-csrf-token': csrf.slice(0, -2) + 'xx' })
      assert.equal(wrong.status, 403)
      const foreign = await bump({ cookie, 'x-csrf-token': csrf, origin: 'http://evil.example' })
      assert.equal(foreign.status, 403)
      const crossSite = await bump({ cookie, 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' })
      assert.equal(crossSite.status, 403)
      assert.equal(counter, 0, 'no refused call ran')
      const ok = await bump({ cookie, 'x-csrf-token': csrf, origin: base.origin })
      assert.equal(ok.status, 200)
      assert.equal((JSON.parse(ok.body) as { result: number }).result, 1)
      // The bearer token still works alone; neither token nor session is a 401.
      assert.equal((await bump({ authorization: `Bearer ${TOKEN}` })).status, 200)
      assert.equal((await bump({})).status, 401)
      assert.equal(
        (await bump({ cookie: `shoal_session_${base.port}=forged`, 'x-csrf-token': csrf })).status,
        401
      )
      assert.equal(counter, 2)
    })

    it('a wrong Host header is refused for the pages and for the session (DNS rebinding)', async () => {
      const { cookie, csrf } = await login()
      const evil = { host: `evil.example:${base.port}` }
      const page = await http(base, '/dashboard/', { headers: { cookie, ...evil } })
      assert.equal(page.status, 421)
      const url = new URL(gate.loginUrl().url)
      const loginElsewhere = await http(base, url.pathname + url.search, { headers: evil })
      assert.equal(loginElsewhere.status, 421)
      assert.equal(loginElsewhere.headers['set-cookie'], undefined)
      const call = await bump({ cookie, 'x-csrf-token': csrf, ...evil })
      assert.equal(call.status, 403)
      assert.match(call.body, /Host/)
      assert.equal(counter, 0)
      // localhost names the same loopback listener.
      const local = await http(base, '/dashboard/', { headers: { cookie, host: `localhost:${base.port}` } })
      assert.equal(local.status, 200)
    })

    it('the session reads the event stream, but no other endpoint; logout ends it', async () => {
      const { cookie, csrf } = await login()
      const events = await http(base, `${EVENTS_PATH}?topics=round`, { headers: { cookie }, head: true })
      assert.equal(events.status, 200)
      assert.match(String(events.headers['content-type']), /^text\/event-stream/)
      const bytes = await http(base, '/api/v0/get?cid=x', { headers: { cookie } })
      assert.equal(bytes.status, 403)
      assert.equal(
        (await http(base, '/dashboard/logout', { method: 'POST', headers: { cookie } })).status,
        403
      )
      const out = await http(base, '/dashboard/logout', {
        method: 'POST',
        headers: { cookie, 'x-csrf-token': csrf }
      })
      assert.equal(out.status, 204)
      assert.equal((await http(base, '/dashboard/', { headers: { cookie } })).status, 401)
      assert.equal((await bump({ cookie, 'x-csrf-token': csrf })).status, 401)
    })
  })
})
