/**
 * The Shoal node dashboard (front end): Preact views over the node's JSON-RPC and its live event
 * stream, charts with uPlot, bundled by esbuild (../build.mjs) into dist/dashboard/ and served by
 * the daemon under /dashboard/ (src/node/dashboard). Nothing is fetched from anywhere else.
 *
 * @example
 * ```sh
 * npm run build:dashboard && npx shoal dashboard   # prints the one-time login URL
 * ```
 */
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import 'uplot/dist/uPlot.min.css'
import './style.css'
import { onStreamStatus, rpc, streamStatus } from './api.js'
import { short, useEvents } from './util.js'
import { AuditView, DataView, JobsView, NodeView, SwarmView, type NodeInfo } from './views.js'

const TABS = [
  ['node', 'Node'],
  ['jobs', 'Jobs'],
  ['data', 'Data & consent'],
  ['audit', 'Receipts & ledger'],
  ['swarm', 'Swarm']
] as const
type Tab = (typeof TABS)[number][0]

function LiveDot() {
  const [, setN] = useState(0)
  useEffect(() => onStreamStatus(() => setN((n) => n + 1)), [])
  const s = streamStatus()
  return (
    <span
      class={`live ${s.connected ? 'on' : 'off'}`}
      data-testid="live"
      data-connected={String(s.connected)}
    >
      {s.connected ? `live · ${s.received} events` : 'reconnecting…'}
    </span>
  )
}

function Ticker() {
  const events = useEvents([], 6)
  return (
    <ul class="ticker" data-testid="ticker">
      {events.map((e) => (
        <li>
          <b>{e.topic}</b> {new Date(e.data.at).toLocaleTimeString()}
        </li>
      ))}
    </ul>
  )
}

function App() {
  const initial = (location.hash.slice(1) || 'node') as Tab
  const [tab, setTab] = useState<Tab>(TABS.some((t) => t[0] === initial) ? initial : 'node')
  const [me, setMe] = useState<NodeInfo | undefined>()
  const [error, setError] = useState<string | undefined>()
  useEffect(() => {
    rpc<NodeInfo>('node_info').then(setMe, (e: Error) => setError(e.message))
    const every = setInterval(() => rpc<NodeInfo>('node_info').then(setMe, () => {}), 30_000)
    return () => clearInterval(every)
  }, [])
  const go = (t: Tab): void => {
    location.hash = t
    setTab(t)
  }
  return (
    <div class="shell">
      <header>
        <div class="brand">
          <span class="logo">◗</span> Shoal <span class="muted mono">{short(me?.did, 12)}</span>
        </div>
        <nav>
          {TABS.map(([id, label]) => (
            <a
              href={`#${id}`}
              class={tab === id ? 'active' : ''}
              data-tab={id}
              onClick={(e) => (e.preventDefault(), go(id))}
            >
              {label}
            </a>
          ))}
        </nav>
        <LiveDot />
      </header>
      {error !== undefined ? <p class="error">{error}</p> : null}
      <main>
        {tab === 'node' ? <NodeView me={me} /> : null}
        {tab === 'jobs' ? <JobsView /> : null}
        {tab === 'data' ? <DataView me={me?.did} /> : null}
        {tab === 'audit' ? <AuditView /> : null}
        {tab === 'swarm' ? <SwarmView /> : null}
      </main>
      <aside>
        <h3>Events</h3>
        <Ticker />
      </aside>
    </div>
  )
}

render(<App />, document.getElementById('app')!)
