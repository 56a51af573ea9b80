/**
 * The node's event bus and its Server-Sent Events endpoint, through a real RpcServer on
 * loopback: topic filters, the token, `Last-Event-ID` replay, heartbeats, and a slow client
 * dropped without blocking the publisher or the other clients.
 */
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { setImmediate as yieldIo } from 'node:timers/promises'
import { RpcServer } from '../../../src/node/rpc/index.js'
import { EventBus, EventStream, EVENTS_PATH, topicFilter } from '../../../src/node/events/index.js'

const TOKEN = 'test-token-0123456789'

/** Reads SSE frames from `GET path` until `until` says stop; returns the parsed frames. */
async function readEvents(
  base: URL,
  path: string,
  until: (frames: Array<{ id?: string; event?: string; data?: string }>) => boolean,
  headers: Record<string, string> = {},
  onOpen?: () => void
): Promise<Array<{ id?: string; event?: string; data?: string }>> {
  const ac = new AbortController()
  const res = await fetch(new URL(path, base), {
    headers: { authorization: `Bearer ${TOKEN}`, ...headers },
    signal: ac.signal
  })
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
  const frames: Array<{ id?: string; event?: string; data?: string }> = []
  const decoder = new TextDecoder()
  let buf = ''
  const reader = res.body!.getReader()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    buf += decoder.decode(value, { stream: true })
    let i: number
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i)
      buf = buf.slice(i + 2)
      const f: { id?: string; event?: string; data?: string; comment?: string } = {}
      for (const line of block.split('\n')) {
        const m = /^([a-z]*): ?(.*)$/.exec(line)
        if (m === null) continue
        if (m[1] === '') f.comment = m[2]
        else (f as Record<string, string>)[m[1]!] = m[2]!
      }
      if (f.event === undefined && f.data === undefined && f.comment === undefined) continue
      frames.push(f)
      if (f.event === 'ready') onOpen?.()
    }
    if (until(frames)) break
  }
  ac.abort()
  return frames
}

describe('node events: the bus and /api/v0/events (SSE)', function () {
  this.timeout(30_000)
  let bus: EventBus
  let sse: EventStream
  let server: RpcServer
  let base: URL

  const start = async (init: ConstructorParameters<typeof EventStream>[1] = {}): Promise<void> => {
    bus = new EventBus()
    sse = new EventStream(bus, init)
    server = new RpcServer(
      {
        methods: [],
        streams: { [EVENTS_PATH]: async (req, res, url, signal) => sse.handle(req, res, url, signal) }
      },
      { host: '127.0.0.1', port: 0, token: TOKEN, maxBodyBytes: 1 << 20 }
    )
    base = await server.start()
  }
  afterEach(async () => server?.stop())

  it('topic filters select exact topics and prefixes, and name the unknown ones', () => {
    const f = topicFilter(['grant', 'round.completed'])
    assert.ok(f.match('grant.issued') && f.match('grant.revoked') && f.match('round.completed'))
    assert.ok(!f.match('peer.joined') && !f.match('receipt.accepted'))
    assert.deepEqual(topicFilter(['gran', 'round.completed', 'nope.x']).unknown, ['gran', 'nope.x'])
    assert.ok(topicFilter([]).match('peer.left') && topicFilter(['*']).match('job.state'))
  })

  it('a subscriber that throws does not stop the others; since() replays kept events', () => {
    const b = new EventBus({ history: 3 })
    const seen: number[] = []
    b.subscribe(
      () => true,
      () => {
        throw new Error('boom')
      }
    )
    b.on('peer.joined', (e) => seen.push(e.id))
    for (let i = 0; i < 5; i++) b.publish('peer.joined', { peerId: `p${i}`, did: '' })
    assert.deepEqual(seen, [1, 2, 3, 4, 5])
    assert.deepEqual(
      b.since(1, () => true).map((e) => e.id),
      [3, 4, 5],
      'only the last 3 are kept'
    )
  })

  it('streams the chosen topics in order with ids, after a ready event; refuses no token and unknown topics', async () => {
    await start()
    const noToken = await fetch(new URL(`${EVENTS_PATH}?topics=round`, base))
    assert.equal(noToken.status, 401)
    const bad = await fetch(new URL(`${EVENTS_PATH}?topics=rounds`, base), {
      headers: { authorization: `Bearer ${TOKEN}` }
    })
    assert.equal(bad.status, 400)
    assert.equal(
      ((await bad.json()) as { error: { data: { code: string } } }).error.data.code,
      'EVENT_TOPIC_UNKNOWN'
    )

    const frames = await readEvents(
      base,
      `${EVENTS_PATH}?topics=round,grant.revoked`,
      (f) => f.filter((x) => x.event !== 'ready' && x.event !== undefined).length >= 3,
      {},
      () => {
        bus.publish('peer.joined', { peerId: 'p', did: 'd' }) // not subscribed
        bus.publish('round.completed', { job: 'j', round: 0, loss: 1.5, accuracy: 0.5, checkpoint: 'c0' })
        bus.publish('grant.issued', {
          grant: 'g',
          dataset: 'd',
          grantee: 'x',
          owner: 'o',
          purpose: 'any',
          exp: null,
          mine: false
        })
        bus.publish('grant.revoked', { grant: 'g', dataset: 'd', grantee: 'x', how: 'revoked' })
        bus.publish('round.completed', { job: 'j', round: 1, loss: 0.7, accuracy: 0.8, checkpoint: 'c1' })
      }
    )
    const ready = frames.find((f) => f.event === 'ready')!
    assert.deepEqual((JSON.parse(ready.data!) as { topics: string[] }).topics, [
      'round.completed',
      'grant.revoked'
    ])
    const evs = frames.filter((f) => f.event !== 'ready' && f.event !== undefined)
    assert.deepEqual(
      evs.map((f) => f.event),
      ['round.completed', 'grant.revoked', 'round.completed']
    )
    assert.deepEqual(
      evs.map((f) => Number(f.id)),
      [2, 4, 5]
    )
    const last = JSON.parse(evs[2]!.data!) as { round: number; loss: number; at: number }
    assert.equal(last.round, 1)
    assert.equal(last.loss, 0.7)
    assert.ok(Math.abs(last.at - Date.now()) < 10_000)
    assert.equal(sse.stats.opened, 1)
  })

  it('a reconnecting client gets the events after its Last-Event-ID, and heartbeats keep the stream alive', async () => {
    await start({ heartbeatMs: 50 })
    for (let r = 0; r < 4; r++)
      bus.publish('round.completed', { job: 'j', round: r, loss: 1, accuracy: null, checkpoint: `c${r}` })
    const frames = await readEvents(
      base,
      `${EVENTS_PATH}?topics=round.completed`,
      (f) =>
        f.some((x) => 'comment' in x && String((x as { comment: string }).comment).startsWith('heartbeat')),
      { 'last-event-id': '2' }
    )
    assert.deepEqual(
      frames.filter((f) => f.event === 'round.completed').map((f) => Number(f.id)),
      [3, 4]
    )
  })

  it('drops a client that does not read, without blocking the publisher or the other clients', async () => {
    await start({ maxBufferedBytes: 64 * 1024, heartbeatMs: 60_000 })
    // A client that sends its request and then never reads a byte.
    const slow: Socket = connect(Number(base.port), '127.0.0.1')
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()))
    const closed = new Promise<void>((resolve) => slow.once('close', () => resolve()))
    slow.on('error', () => {})
    slow.write(
      `GET ${EVENTS_PATH}?topics=round HTTP/1.1\r\nhost: ${base.host}\r\nauthorization: Bearer ${TOKEN}\r\n\r\n`
    )
    slow.pause()
    // A reader of another topic: it must still get its event after the slow one is dropped.
    let readyFast!: () => void
    const fastReady = new Promise<void>((resolve) => (readyFast = resolve))
    const fast = readEvents(
      base,
      `${EVENTS_PATH}?topics=peer`,
      (f) => f.some((x) => x.event === 'peer.left'),
      {},
      () => readyFast()
    )
    await fastReady
    while (sse.stats.clients < 2) await yieldIo()
    const payload = 'x'.repeat(16 * 1024)
    let published = 0
    let longest = 0
    while (sse.stats.dropped === 0 && published < 5000) {
      const t0 = performance.now()
      bus.publish('round.completed', {
        job: payload,
        round: published,
        loss: 0,
        accuracy: 0,
        checkpoint: 'c'
      })
      longest = Math.max(longest, performance.now() - t0)
      published++
      if (published % 32 === 0) await yieldIo()
    }
    assert.equal(sse.stats.dropped, 1, `dropped after ${published} events`)
    assert.ok(longest < 50, `a publish took ${longest.toFixed(1)} ms`)
    slow.resume() // reading again, it finds its connection closed by the server
    await closed
    bus.publish('peer.left', { peerId: 'p', did: 'd' })
    const frames = await fast
    assert.ok(frames.some((f) => f.event === 'peer.left'))
    while (sse.stats.clients > 0) await yieldIo() // the fast client hung up: nothing left subscribed
    assert.equal(bus.subscribers, 0)
  })
})
