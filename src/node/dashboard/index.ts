/**
 * The web dashboard a node serves on its RPC address (127.0.0.1 by default): `shoal dashboard`
 * prints a one-time login URL (`dashboard_login`); its token is exchanged once for a session
 * cookie (HttpOnly, SameSite=Strict); every JSON-RPC call from the page carries the session's
 * CSRF token; the Host header must name the node's address; pages send a strict
 * Content-Security-Policy and load only the bundled front end (dashboard/, Preact + uPlot, built
 * by esbuild). The page reads the node over the same JSON-RPC and event stream as any client.
 *
 * @example
 * ```ts
 * import { logger } from '../../common/index.js'
 * import { DashboardGate, dashboardAssets } from './dashboard/index.js'
 * const gate = new DashboardGate({ assets: dashboardAssets(), readable: ['/api/v0/events', '/metrics'] })
 * const rpc = new RpcServer({ methods, streams, gate }, init)
 * gate.bind(await rpc.start())
 * // The CLI prints this URL; the node only logs that one was issued (the token is a secret).
 * const { url } = gate.loginUrl() // http://127.0.0.1:5001/dashboard/login?token=…
 * logger('shoal:node:dashboard').info('a one-time login URL was issued')
 * ```
 */
export {
  DashboardGate,
  CONTENT_SECURITY_POLICY,
  CSRF_HEADER,
  DASHBOARD_PATH,
  SECURITY_HEADERS,
  allowedHosts,
  cookieValue,
  indexHtml,
  type Asset,
  type DashboardGateInit
} from './gate.js'
export {
  DashboardSessions,
  LOGIN_TTL_MS,
  MAX_SESSIONS,
  SESSION_IDLE_MS,
  SESSION_MAX_AGE_MS,
  sameSecret,
  type Session,
  type SessionInit
} from './sessions.js'
export {
  DASHBOARD_BUNDLE_DIR,
  DASHBOARD_SOURCE_DIR,
  buildDashboard,
  bundleStale,
  dashboardAssets,
  readBundle
} from './assets.js'
export { dashboardMethods } from './methods.js'
