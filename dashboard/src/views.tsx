/** The dashboard's views: node, jobs, data & consent, receipts & ledger, swarm. */
import { useEffect, useMemo, useState } from 'preact/hooks'
import { rpc, subscribe } from './api.js'
import { RoundChart } from './chart.js'
import { mib, num, pct, short, useEvents, useLive, when } from './util.js'

/* ---------- shapes of the RPC results the views read (only the fields used) ---------- */
interface NodeInfo {
  did: string
  peerId: string
  version: string
  reachability: string
  listenAddresses: string[]
  uptimeSeconds: number
  rssBytes: number
  providers: Array<{ provider: string; available: boolean }>
}
interface Contribution {
  state: string
  rounds: number
  samples: number
  receipts: number
  bytesSent: number
  bytesReceived: number
}
interface Peer {
  peerId: string
  did: string | null
  addr: string
  member: boolean | null
  direction: string
  relayed: boolean
}
interface Ledger {
  balances: Record<string, number>
  hash: string
  receipts: number
  verified: number
  excluded: string[]
}
interface Job {
  id: string
  name: string
  creator: string
  state: string
  createdAt: string
}
interface JobStatus {
  state: string
  round: number | null
  accuracy: number | null
  loss: number | null
  peersUsed: number
  bytesSent: number
  bytesReceived: number
  receipts: number
  rejected: Array<{ round: number; from: string; reason: string }>
  history: Array<{ round: number; loss: number; accuracy?: number; peers: unknown[]; rejected: number }>
}
interface Lineage {
  epoch: string
  excluded: string[]
  grants: Array<{
    grant: string
    owner: string | null
    grantee: string | null
    status: string
    unlearned: boolean
    firstRound: number
    lastRound: number
    receipts: number
  }>
  checkpoints: Array<{ cid: string; round: number; influencedBy: string[] }>
  unlearning: Array<{
    grant: string
    how: string
    fromRound: number
    rolledBackTo: number | null
    checkpointsDropped: number
    retrain: string
    startedAt: string
  }>
}
interface Grant {
  id: string
  dataset: string
  grantee: string
  owner: string
  purpose: string
  iat: number
  exp?: number
  /** The grant's own expiry when its owner shortened it (null: none). */
  signedExp?: number | null
  revokedAt?: number
  shards: string[]
  privacy?: { epsMax: number; delta: number }
}

/** The ε spent on a grant's shards: the largest of theirs (null: unbounded, a round without noise). */
function grantEpsilon(g: Grant, report: Privacy | undefined): number | null | undefined {
  if (report === undefined) return undefined
  let worst = 0
  for (const cid of g.shards) {
    const row = report.shards.find((r) => r.cid === cid)
    if (row === undefined || row.rounds === 0) continue
    if (row.epsilon === null) return null
    worst = Math.max(worst, row.epsilon)
  }
  return worst
}
interface Dataset {
  manifestCid: string
  name: string
  count: number
  shards: unknown[]
}
interface Privacy {
  epsilon: number | null
  epsMax: number | null
  shards: Array<{ cid: string; epsilon: number | null; rounds: number }>
}

const Err = (p: { error: string | undefined }) =>
  p.error === undefined ? null : <p class="error">{p.error}</p>

function Stat(p: { label: string; value: string | number; testId?: string }) {
  return (
    <div class="stat">
      <div class="stat-value" data-testid={p.testId}>
        {p.value}
      </div>
      <div class="stat-label">{p.label}</div>
    </div>
  )
}

/* ---------- node ---------- */
/** This node in the middle, its peers around it: solid lines direct, dashed relayed; members in colour. */
function PeerGraph(p: { peers: Peer[] }) {
  const size = 260
  const c = size / 2
  const r = size / 2 - 28
  // One dot per peer (a peer may have several connections).
  const byPeer = new Map<string, Peer & { direct: boolean }>()
  for (const x of p.peers) {
    const prev = byPeer.get(x.peerId)
    byPeer.set(x.peerId, { ...x, direct: (prev?.direct ?? false) || !x.relayed })
  }
  const list = [...byPeer.values()]
  return (
    <svg
      class="peer-graph"
      viewBox={`0 0 ${size} ${size}`}
      width={size}
      height={size}
      data-testid="peer-graph"
    >
      {list.map((x, i) => {
        const a = (2 * Math.PI * i) / Math.max(1, list.length) - Math.PI / 2
        const px = c + r * Math.cos(a)
        const py = c + r * Math.sin(a)
        return (
          <g>
            <line x1={c} y1={c} x2={px} y2={py} class={x.direct ? 'edge' : 'edge relayed'} />
            <circle cx={px} cy={py} r={9} class={x.member === true ? 'peer member' : 'peer'}>
              <title>
                {x.did ?? x.peerId} — {x.direct ? 'direct' : 'relayed'},{' '}
                {x.member === true ? 'member' : 'not a member'}
              </title>
            </circle>
          </g>
        )
      })}
      <circle cx={c} cy={c} r={14} class="self">
        <title>this node</title>
      </circle>
    </svg>
  )
}

interface DutyCycle {
  cycle: number
  periodSeconds: number
  idle: boolean
  until: string | null
  paused: boolean
  /** The user paused (node_pause), whatever the duty cycle says (absent: the node does not say). */
  userPaused?: boolean
  configured: { cycle: number; periodSeconds: number }
}

/** The duty cycle (loaded by the node view): shown, and the share of each period and the period set. */
function DutyCycleCard(p: { duty: ReturnType<typeof useLive<DutyCycle>> }) {
  const duty = p.duty
  const [share, setShare] = useState('')
  const [minutes, setMinutes] = useState('')
  const [state, setState] = useState<{ busy?: boolean; error?: string }>({})
  const d = duty.value
  const save = async (e: Event): Promise<void> => {
    e.preventDefault()
    setState({ busy: true })
    try {
      await rpc('node_duty_cycle', {
        ...(share !== '' ? { cycle: Number(share) / 100 } : {}),
        ...(minutes !== '' ? { periodSeconds: Math.round(Number(minutes) * 60) } : {})
      })
      setState({})
      setShare('')
      setMinutes('')
    } catch (err) {
      setState({ error: (err as Error).message })
    } finally {
      duty.reload()
    }
  }
  const pctOf = (x: number): string => `${Number((x * 100).toFixed(1))} %`
  return (
    <div class="card" data-testid="duty-cycle">
      <h2>Duty cycle</h2>
      <Err error={duty.error ?? state.error} />
      <p data-testid="duty-now">
        {d === undefined
          ? '…'
          : d.cycle >= 1
            ? 'Always training (100 % of the time) unless paused.'
            : `Training ${pctOf(d.cycle)} of every ${d.periodSeconds / 60} min: ${d.idle ? 'idle' : 'training'} until ${when(d.until ?? undefined)}.`}
        {d !== undefined &&
        (d.configured.cycle !== d.cycle ||
          (d.cycle < 1 && d.configured.periodSeconds !== d.periodSeconds)) ? (
          <span class="muted">
            {' '}
            The config says {pctOf(d.configured.cycle)} of {d.configured.periodSeconds / 60} min, which
            applies again when the daemon restarts.
          </span>
        ) : null}
      </p>
      <form class="grant-form" onSubmit={(e) => void save(e)} data-testid="duty-form">
        <input
          type="number"
          min="1"
          max="100"
          step="any"
          placeholder={`share of each period, % (${d === undefined ? '…' : Number((d.cycle * 100).toFixed(1))})`}
          value={share}
          onInput={(e) => setShare((e.target as HTMLInputElement).value)}
          aria-label="share of each period spent training, percent"
        />
        <input
          type="number"
          min="0.1"
          max="1440"
          step="any"
          placeholder={`period, minutes (${d === undefined ? '…' : d.periodSeconds / 60})`}
          value={minutes}
          onInput={(e) => setMinutes((e.target as HTMLInputElement).value)}
          aria-label="period in minutes"
        />
        <button class="primary" disabled={state.busy === true || (share === '' && minutes === '')}>
          Set duty cycle
        </button>
        <span class="muted">A new period starts now, training first; 100 % = always.</span>
      </form>
    </div>
  )
}

export function NodeView(p: { me: NodeInfo | undefined }) {
  const contrib = useLive(
    async () => rpc<{ paused: boolean; jobs: Record<string, Contribution> }>('node_contributions'),
    ['round', 'job']
  )
  const ledger = useLive(async () => rpc<Ledger>('ledger_balances'), ['receipt', 'fraud'])
  const peers = useLive(async () => rpc<Peer[]>('peers_list'), ['peer'])
  const duty = useLive(async () => rpc<DutyCycle>('node_duty_cycle'), ['job'], 10_000)
  const [busy, setBusy] = useState(false)
  const [actionError, setActionError] = useState<string | undefined>()
  const [pausedHere, setPausedHere] = useState<boolean | undefined>()
  const jobs = Object.values(contrib.value?.jobs ?? {})
  const total = (f: keyof Contribution): number => jobs.reduce((a, j) => a + Number(j[f]), 0)
  const paused = contrib.value?.paused ?? false
  // In the duty cycle's idle window the node is paused whatever the user asked: the button
  // pauses or resumes the user's own pause (node_resume cannot end an idle window). The node
  // says whether the user paused; one that does not is known outside an idle window, and
  // inside it from this page's last click.
  const idle = duty.value?.idle === true
  const userPaused = duty.value?.userPaused ?? (idle ? (pausedHere ?? false) : paused)
  const toggle = async (): Promise<void> => {
    setBusy(true)
    try {
      await rpc(userPaused ? 'node_resume' : 'node_pause')
      setPausedHere(!userPaused)
      setActionError(undefined)
    } catch (e) {
      setActionError((e as Error).message)
    } finally {
      setBusy(false)
      contrib.reload()
      duty.reload()
    }
  }
  const me = p.me
  return (
    <section>
      <div class="card">
        <h2>This node</h2>
        <dl class="kv">
          <dt>DID</dt>
          <dd class="mono" data-testid="node-did">
            {me?.did ?? '…'}
          </dd>
          <dt>reachability</dt>
          <dd>
            <span class={`pill ${me?.reachability === 'public' ? 'ok' : 'warn'}`}>
              {me?.reachability ?? '…'}
            </span>
          </dd>
          <dt>listening</dt>
          <dd class="mono">{me?.listenAddresses.join('  ') ?? '…'}</dd>
          <dt>uptime · memory</dt>
          <dd>
            {me === undefined
              ? '…'
              : `${Math.floor(me.uptimeSeconds / 60)} min · ${mib(me.rssBytes)} RSS · v${me.version}`}
          </dd>
          <dt>providers</dt>
          <dd>
            {me?.providers.map((x) => (
              <span class={`pill ${x.available ? 'ok' : 'off'}`}>{x.provider}</span>
            ))}
          </dd>
        </dl>
      </div>
      <div class="card">
        <h2>
          Contribution{' '}
          <button
            class={userPaused ? 'primary' : ''}
            disabled={busy}
            onClick={() => void toggle()}
            data-testid="pause"
          >
            {userPaused ? 'Resume training' : 'Pause training'}
          </button>
        </h2>
        <Err error={contrib.error ?? actionError} />
        <div class="stats">
          <Stat label="rounds trained" value={total('rounds')} />
          <Stat label="samples" value={total('samples')} />
          <Stat label="receipts signed" value={total('receipts')} />
          <Stat
            label="credits"
            value={me === undefined ? '–' : (ledger.value?.balances[me.did] ?? 0)}
            testId="credits"
          />
          <Stat
            label="sent · received"
            value={`${mib(total('bytesSent'))} · ${mib(total('bytesReceived'))}`}
          />
          <Stat
            label="state"
            value={
              userPaused
                ? 'paused'
                : idle
                  ? `idle (duty cycle) until ${new Date(duty.value?.until ?? Date.now()).toLocaleTimeString()}`
                  : paused
                    ? 'paused'
                    : 'contributing'
            }
            testId="paused-state"
          />
        </div>
      </div>
      <DutyCycleCard duty={duty} />
      <div class="card">
        <h2>Peers ({new Set((peers.value ?? []).map((x) => x.peerId)).size})</h2>
        <Err error={peers.error} />
        <PeerGraph peers={peers.value ?? []} />
        <table>
          <thead>
            <tr>
              <th>DID</th>
              <th>member</th>
              <th>path</th>
              <th>address</th>
            </tr>
          </thead>
          <tbody>
            {(peers.value ?? []).map((x) => (
              <tr>
                <td class="mono">{short(x.did ?? x.peerId, 14)}</td>
                <td>{x.member === null ? '?' : x.member ? 'yes' : 'no'}</td>
                <td>
                  <span class={`pill ${x.relayed ? 'warn' : 'ok'}`}>{x.relayed ? 'relayed' : 'direct'}</span>{' '}
                  {x.direction}
                </td>
                <td class="mono">{x.addr}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}

/* ---------- jobs ---------- */
function JobDetail(p: { job: Job }) {
  const [points, setPoints] = useState<Map<number, { loss: number | null; accuracy: number | null }>>(
    new Map()
  )
  const status = useLive(
    async () => rpc<JobStatus>('job_status', { job: p.job.id }),
    ['job', 'round'],
    10_000
  )
  // Seed the chart from the kept history, then add each round as its event arrives.
  useEffect(() => {
    const h = status.value?.history
    if (h === undefined) return
    setPoints((old) => {
      const m = new Map(old)
      for (const r of h) if (!m.has(r.round)) m.set(r.round, { loss: r.loss, accuracy: r.accuracy ?? null })
      return m
    })
  }, [status.value])
  useEffect(
    () =>
      subscribe(['round.completed'], (e) => {
        if (e.data.job !== p.job.id) return
        setPoints((old) =>
          new Map(old).set(Number(e.data.round), {
            loss: (e.data.loss as number | null) ?? null,
            accuracy: (e.data.accuracy as number | null) ?? null
          })
        )
      }),
    [p.job.id]
  )
  const rounds = useMemo(() => [...points.keys()].sort((a, b) => a - b), [points])
  const s = status.value
  return (
    <div class="card">
      <h2>
        {p.job.name} <span class="pill">{s?.state ?? p.job.state}</span>
      </h2>
      <Err error={status.error} />
      <div class="stats">
        <Stat
          label="round"
          value={s?.round === null || s === undefined ? '–' : s.round + 1}
          testId="job-round"
        />
        <Stat label="loss" value={num(s?.loss)} />
        <Stat label="held-out accuracy" value={pct(s?.accuracy)} />
        <Stat label="peers aggregated" value={s?.peersUsed ?? '–'} />
        <Stat label="receipts" value={s?.receipts ?? '–'} />
        <Stat label="rejected updates" value={s?.rejected.length ?? '–'} />
      </div>
      <RoundChart
        testId="job-chart"
        x={rounds.map((r) => r + 1)}
        series={[
          { label: 'loss', color: '#f59e0b', values: rounds.map((r) => points.get(r)?.loss ?? null) },
          {
            label: 'accuracy',
            color: '#22d3ee',
            right: true,
            values: rounds.map((r) => points.get(r)?.accuracy ?? null)
          }
        ]}
      />
      {s !== undefined && s.rejected.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th>round</th>
              <th>from</th>
              <th>rejected because</th>
            </tr>
          </thead>
          <tbody>
            {s.rejected.slice(-10).map((r) => (
              <tr>
                <td>{r.round}</td>
                <td class="mono">{short(r.from)}</td>
                <td>{r.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <LineagePanel job={p.job.id} />
      <p class="muted mono">job {p.job.id}</p>
    </div>
  )
}

/** Which grants trained the job, which checkpoints they influenced, and the unlearning of ended grants. */
function LineagePanel(p: { job: string }) {
  const lineage = useLive(async () => rpc<Lineage>('job_lineage', { job: p.job }), ['grant', 'job'], 20_000)
  const l = lineage.value
  if (l === undefined) return <Err error={lineage.error} />
  return (
    <div class="lineage">
      <h3>Data lineage · epoch {short(l.epoch, 6)}</h3>
      <table data-testid="lineage">
        <thead>
          <tr>
            <th>grant</th>
            <th>owner → grantee</th>
            <th>rounds</th>
            <th>receipts</th>
            <th>status</th>
          </tr>
        </thead>
        <tbody>
          {l.grants.map((g) => (
            <tr>
              <td class="mono">{short(g.grant, 8)}</td>
              <td class="mono">
                {short(g.owner, 8)} → {short(g.grantee, 8)}
              </td>
              <td>
                {g.firstRound + 1}–{g.lastRound + 1}
              </td>
              <td>{g.receipts}</td>
              <td>
                <span class={`pill ${g.status === 'valid' ? 'ok' : 'bad'}`}>{g.status}</span>
                {g.unlearned ? <span class="pill warn">unlearned</span> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {l.unlearning.length > 0 ? (
        <ul class="feed" data-testid="unlearning">
          {l.unlearning.map((u) => (
            <li>
              <span class="pill warn">unlearning</span> grant {short(u.grant, 8)} {u.how}: rolled back to{' '}
              {u.rolledBackTo === null ? 'the start' : `round ${u.rolledBackTo + 1}`} (its data from round{' '}
              {u.fromRound + 1}), {u.checkpointsDropped} checkpoints dropped, retraining {u.retrain}
            </li>
          ))}
        </ul>
      ) : null}
      {l.checkpoints.length > 0 ? (
        <p class="muted">
          {l.checkpoints.length} checkpoints; latest round{' '}
          {Math.max(...l.checkpoints.map((c) => c.round)) + 1},{' '}
          {short(l.checkpoints.reduce((a, c) => (c.round > a.round ? c : a)).cid, 10)}
        </p>
      ) : null}
    </div>
  )
}

export function JobsView() {
  const jobs = useLive(async () => rpc<Job[]>('job_list'), ['job'])
  const list = jobs.value ?? []
  return (
    <section>
      <Err error={jobs.error} />
      {list.length === 0 ? <p class="muted">No jobs known to this node yet.</p> : null}
      {list.map((j) => (
        <JobDetail job={j} key={j.id} />
      ))}
    </section>
  )
}

/* ---------- data & consent ---------- */
function Gauge(p: { spent: number | null | undefined; max: number | undefined }) {
  if (p.max === undefined) return <span class="muted">no budget</span>
  if (p.spent === undefined) return <span class="muted">ε … / {p.max}</span>
  const share = p.spent === null ? 1 : Math.min(1, p.spent / p.max)
  const cls = share >= 1 ? 'bad' : share >= 0.8 ? 'warn' : 'ok'
  return (
    <div
      class="gauge"
      title={
        p.spent === null
          ? 'unbounded: a round on these shards was shared without DP noise'
          : `ε ${num(p.spent, 2)} spent of ${p.max}`
      }
    >
      <progress class={cls} max={1} value={share} />
      <span>
        ε {p.spent === null ? '∞' : num(p.spent, 2)} / {p.max}
      </span>
    </div>
  )
}

/** Grant a DID the keys of one of my datasets: purpose, expiry, privacy budget. */
function GrantForm(p: { datasets: Dataset[]; onDone: () => void }) {
  const [dataset, setDataset] = useState('')
  const [did, setDid] = useState('')
  const [days, setDays] = useState('')
  const [eps, setEps] = useState('')
  const [purpose, setPurpose] = useState('')
  const [state, setState] = useState<{ busy?: boolean; error?: string; done?: string }>({})
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault()
    setState({ busy: true })
    try {
      const r = await rpc<{ grant: string }>('dataset_grant', {
        dataset: dataset || p.datasets[0]!.manifestCid,
        did: did.trim(),
        ...(purpose.trim() !== '' ? { purpose: purpose.trim() } : {}),
        ...(days !== '' ? { expiresAt: Math.floor(Date.now() / 1000 + Number(days) * 86400) } : {}),
        ...(eps !== '' ? { epsMax: Number(eps) } : {})
      })
      setState({ done: `granted (${short(r.grant, 8)}); published on the swarm's consent topic` })
      setDid('')
      p.onDone()
    } catch (err) {
      setState({ error: (err as Error).message })
    }
  }
  return (
    <form class="grant-form" onSubmit={(e) => void submit(e)} data-testid="grant-form">
      <select
        value={dataset || p.datasets[0]?.manifestCid}
        onChange={(e) => setDataset((e.target as HTMLSelectElement).value)}
        aria-label="dataset"
      >
        {p.datasets.map((d) => (
          <option value={d.manifestCid}>{d.name}</option>
        ))}
      </select>
      <input
        placeholder="grantee did:key:z6Mk…"
        value={did}
        required
        pattern="did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+"
        onInput={(e) => setDid((e.target as HTMLInputElement).value)}
        aria-label="grantee DID"
      />
      <input
        placeholder="purpose: job id (any)"
        value={purpose}
        onInput={(e) => setPurpose((e.target as HTMLInputElement).value)}
        aria-label="purpose"
      />
      <input
        type="number"
        min="1"
        placeholder="expires in days"
        value={days}
        onInput={(e) => setDays((e.target as HTMLInputElement).value)}
        aria-label="expires in days"
      />
      <input
        type="number"
        min="0.01"
        step="any"
        placeholder="ε budget"
        value={eps}
        onInput={(e) => setEps((e.target as HTMLInputElement).value)}
        aria-label="epsilon budget"
      />
      <button class="primary" disabled={state.busy === true}>
        Grant
      </button>
      {state.error !== undefined ? <span class="error">{state.error}</span> : null}
      {state.done !== undefined ? <span class="muted">{state.done}</span> : null}
    </form>
  )
}

/** A datetime-local input's value for Unix seconds (local time). */
const localInput = (t: number): string => {
  const d = new Date(t * 1000)
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16)
}

/** Changes a grant's expiry: earlier shortens it (signed, takes effect then); later issues a new grant. */
function ExpiryEditor(p: { grant: Grant; onDone: () => void; onCancel: () => void }) {
  const g = p.grant
  const [value, setValue] = useState(localInput(g.exp ?? Math.floor(Date.now() / 1000) + 30 * 86_400))
  const [never, setNever] = useState(g.exp === undefined)
  const [state, setState] = useState<{ busy?: boolean; error?: string }>({})
  const at = never ? null : Math.floor(new Date(value).getTime() / 1000)
  const earlier = at !== null && (g.exp === undefined || at < g.exp)
  const save = async (e: Event): Promise<void> => {
    e.preventDefault()
    setState({ busy: true })
    try {
      await rpc('dataset_grant_expiry', {
        grant: g.id,
        expiresAt: at,
        reason: 'expiry changed from the dashboard'
      })
      p.onDone()
    } catch (err) {
      setState({ error: (err as Error).message })
    }
  }
  return (
    <form class="grant-form" onSubmit={(e) => void save(e)} data-testid="expiry-form">
      <input
        type="datetime-local"
        value={value}
        disabled={never}
        required={!never}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        aria-label="new expiry"
      />
      <label>
        <input
          type="checkbox"
          checked={never}
          onChange={(e) => setNever((e.target as HTMLInputElement).checked)}
        />{' '}
        never
      </label>
      <button class="primary" disabled={state.busy === true}>
        {earlier ? 'Shorten' : 'Extend'}
      </button>
      <button type="button" onClick={p.onCancel}>
        Cancel
      </button>
      <span class="muted" data-testid="expiry-effect">
        {earlier
          ? 'The grant ends then (signed and sent to the swarm); its keys are deleted and what it trained is unlearned then, not before.'
          : 'A signed grant cannot be extended: a new grant on the same terms is issued; this one still ends at its expiry, and what was trained under it is unlearned then.'}
      </span>
      {state.error !== undefined ? <span class="error">{state.error}</span> : null}
    </form>
  )
}

export function DataView(p: { me: string | undefined }) {
  const datasets = useLive(async () => rpc<Dataset[]>('dataset_list'), ['grant'])
  const grants = useLive(async () => rpc<Grant[]>('dataset_grants'), ['grant', 'privacy'])
  const [privacy, setPrivacy] = useState<Record<string, Privacy>>({})
  const [error, setError] = useState<string | undefined>()
  const [busy, setBusy] = useState<string | undefined>()
  const [editing, setEditing] = useState<string | undefined>()
  const withBudget = [
    ...new Set((grants.value ?? []).filter((g) => g.privacy !== undefined).map((g) => g.dataset))
  ]
  useEffect(() => {
    for (const d of withBudget) {
      rpc<Privacy>('dataset_privacy', { dataset: d }).then(
        (r) => setPrivacy((old) => ({ ...old, [d]: r })),
        () => {}
      )
    }
  }, [grants.value])
  const revoke = async (g: Grant): Promise<void> => {
    if (
      !window.confirm(
        `Revoke the grant to ${short(g.grantee, 14)}? Its keys are deleted everywhere and the swarm unlearns the data.`
      )
    )
      return
    setBusy(g.id)
    try {
      await rpc('dataset_revoke', { grant: g.id, reason: 'revoked from the dashboard' })
      setError(undefined)
    } catch (e) {
      setError((e as Error).message)
    } finally {
      setBusy(undefined)
      grants.reload()
    }
  }
  const now = Date.now() / 1000
  const statusOf = (g: Grant): string =>
    g.revokedAt !== undefined ? 'revoked' : g.exp !== undefined && g.exp <= now ? 'expired' : 'active'
  return (
    <section>
      <div class="card">
        <h2>My datasets</h2>
        <Err error={datasets.error} />
        {(datasets.value ?? []).length === 0 ? <p class="muted">This node owns no dataset.</p> : null}
        <table>
          <tbody>
            {(datasets.value ?? []).map((d) => (
              <tr>
                <td>{d.name}</td>
                <td>{d.count} records</td>
                <td>{d.shards.length} shards (encrypted)</td>
                <td class="mono">{short(d.manifestCid, 12)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="card">
        <h2>Grants</h2>
        <Err error={grants.error ?? error} />
        {(datasets.value ?? []).length > 0 ? (
          <GrantForm datasets={datasets.value!} onDone={grants.reload} />
        ) : null}
        <table data-testid="grants">
          <thead>
            <tr>
              <th>grantee</th>
              <th>purpose</th>
              <th>expires</th>
              <th>privacy budget</th>
              <th>status</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(grants.value ?? []).map((g) => {
              const st = statusOf(g)
              return (
                <tr data-grant={g.id} data-status={st}>
                  <td class="mono">
                    {short(g.grantee, 14)}
                    {g.grantee === p.me ? ' (this node)' : ''}
                  </td>
                  <td>{g.purpose === 'any' ? 'any job' : short(g.purpose)}</td>
                  <td>
                    {g.exp === undefined ? 'never' : when(g.exp)}
                    {g.signedExp !== undefined ? (
                      <span class="muted" title="shortened by its owner">
                        {' '}
                        (was {g.signedExp === null ? 'never' : when(g.signedExp)})
                      </span>
                    ) : null}
                    {editing === g.id ? (
                      <ExpiryEditor
                        grant={g}
                        onCancel={() => setEditing(undefined)}
                        onDone={() => {
                          setEditing(undefined)
                          grants.reload()
                        }}
                      />
                    ) : null}
                  </td>
                  <td>
                    <Gauge spent={grantEpsilon(g, privacy[g.dataset])} max={g.privacy?.epsMax} />
                  </td>
                  <td>
                    <span class={`pill ${st === 'active' ? 'ok' : 'bad'}`}>{st}</span>
                  </td>
                  <td>
                    {st === 'active' && g.owner === p.me && editing !== g.id ? (
                      <button onClick={() => setEditing(g.id)} data-testid="edit-expiry">
                        Expiry…
                      </button>
                    ) : null}
                    {st === 'active' && g.owner === p.me ? (
                      <button
                        class="danger"
                        disabled={busy === g.id}
                        onClick={() => void revoke(g)}
                        data-testid="revoke"
                      >
                        Revoke
                      </button>
                    ) : null}
                  </td>
                </tr>
              )
            })}
          </tbody>
        </table>
      </div>
    </section>
  )
}

/* ---------- receipts, audit, ledger ---------- */
interface Audit {
  reexecuted: number
  matched: number
  mismatched: number
  queued: number
  proofsAccepted: number
  convicted: string[]
  fraction: number
}

export function AuditView() {
  const audit = useLive(async () => rpc<Audit>('receipts_audit'), ['receipt', 'fraud'])
  const ledger = useLive(async () => rpc<Ledger>('ledger_balances'), ['receipt', 'fraud'])
  const events = useEvents(['receipt', 'fraud'], 30)
  const a = audit.value
  const l = ledger.value
  return (
    <section>
      <div class="card">
        <h2>Verification and audit</h2>
        <Err error={audit.error ?? ledger.error} />
        <div class="stats">
          <Stat label="receipts held" value={l?.receipts ?? '–'} />
          <Stat label="verified (signature, chain, lineage)" value={l?.verified ?? '–'} />
          <Stat label="re-executed here" value={a?.reexecuted ?? '–'} />
          <Stat
            label="matched · mismatched"
            value={a === undefined ? '–' : `${a.matched} · ${a.mismatched}`}
          />
          <Stat label="fraud proofs" value={a?.proofsAccepted ?? '–'} />
          <Stat label="convicted" value={a?.convicted.length ?? '–'} />
        </div>
      </div>
      <div class="card">
        <h2>Ledger</h2>
        <p class="muted mono">hash {l?.hash ?? '…'} (the same on every node that holds the same receipts)</p>
        <table>
          <tbody>
            {Object.entries(l?.balances ?? {})
              .sort((x, y) => y[1] - x[1])
              .map(([did, credits]) => (
                <tr>
                  <td class="mono">{short(did, 16)}</td>
                  <td class="num">{credits}</td>
                  <td>{l?.excluded.includes(did) ? <span class="pill bad">excluded</span> : null}</td>
                </tr>
              ))}
          </tbody>
        </table>
      </div>
      <div class="card">
        <h2>Live</h2>
        <ul class="feed">
          {events.map((e) => (
            <li>
              <span
                class={`pill ${e.topic.startsWith('fraud') || e.data.outcome === 'mismatch' ? 'bad' : 'ok'}`}
              >
                {e.topic}
              </span>{' '}
              {short(String(e.data.issuer ?? e.data.offender ?? e.data.did ?? ''))} job{' '}
              {short(String(e.data.job ?? ''), 6)} round {String(e.data.round ?? '–')}{' '}
              {e.data.outcome !== undefined ? String(e.data.outcome) : ''}
            </li>
          ))}
        </ul>
      </div>
    </section>
  )
}

/* ---------- swarm ---------- */
interface Governance {
  governed: boolean
  swarm: string | null
  members: string[]
}
interface Proposal {
  hash: string
  title: string
  status: string
  outcome: string
  yes: number
  no: number
  abstain: number
  closes: number
}

export function SwarmView() {
  const info = useLive(async () => rpc<Record<string, unknown>>('swarm_info'), ['peer'])
  const gov = useLive(async () => rpc<Governance>('governance_status'), [], 10_000)
  const proposals = useLive(async () => rpc<Proposal[]>('governance_proposals'), [], 10_000)
  const [voteState, setVoteState] = useState<{ busy?: string; error?: string; done?: string }>({})
  const vote = async (x: Proposal, choice: 'yes' | 'no' | 'abstain'): Promise<void> => {
    setVoteState({ busy: x.hash })
    try {
      await rpc('governance_vote', { proposal: x.hash, choice })
      setVoteState({ done: `voted ${choice} on “${x.title}” (signed with this node’s DID, gossiped)` })
    } catch (e) {
      setVoteState({ error: (e as Error).message })
    } finally {
      proposals.reload()
    }
  }
  const members = (info.value?.members as Array<{ did: string }> | undefined) ?? []
  const refused = (info.value?.refused as Array<{ peerId: string; reason: string }> | undefined) ?? []
  return (
    <section>
      <div class="card">
        <h2>Swarm</h2>
        <Err error={info.error} />
        <dl class="kv">
          <dt>swarm</dt>
          <dd class="mono">
            {(info.value?.swarm as { id?: string; name?: string } | null)?.name ?? ''}{' '}
            {String((info.value?.swarm as { id?: string } | null)?.id ?? 'none')}
          </dd>
          <dt>membership enforced</dt>
          <dd>
            {info.value?.enforced === true
              ? 'yes (credentials checked on every connection and message)'
              : 'no'}
          </dd>
          <dt>governed</dt>
          <dd>{gov.value?.governed === true ? 'yes' : 'no (founders decide)'}</dd>
          <dt>members</dt>
          <dd class="mono">
            {(gov.value?.governed === true ? gov.value.members : members.map((m) => m.did)).map((d) => (
              <div>{short(d, 18)}</div>
            ))}
          </dd>
          <dt>refused peers</dt>
          <dd>
            {refused.length === 0
              ? 'none'
              : refused.slice(0, 10).map((r) => (
                  <div class="mono">
                    {short(r.peerId)}: {r.reason}
                  </div>
                ))}
          </dd>
        </dl>
      </div>
      <div class="card">
        <h2>Proposals</h2>
        <Err error={proposals.error ?? voteState.error} />
        {voteState.done !== undefined ? <p class="muted">{voteState.done}</p> : null}
        {(proposals.value ?? []).length === 0 ? <p class="muted">No proposals.</p> : null}
        <table>
          <tbody>
            {(proposals.value ?? []).map((x) => (
              <tr>
                <td>{x.title}</td>
                <td>
                  <span class={`pill ${x.status === 'passed' ? 'ok' : x.status === 'failed' ? 'bad' : ''}`}>
                    {x.status}
                  </span>
                </td>
                <td>
                  yes {x.yes} · no {x.no} · abstain {x.abstain}
                </td>
                <td>closes {when(x.closes)}</td>
                <td>
                  {x.status === 'open' && gov.value?.governed === true
                    ? (['yes', 'no', 'abstain'] as const).map((c) => (
                        <button disabled={voteState.busy === x.hash} onClick={() => void vote(x, c)}>
                          {c}
                        </button>
                      ))
                    : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}

export type { NodeInfo }
