/**
 * Fuzzing the ItemSync frames (src/p2p/sync.ts, the anti-entropy of receipts, jobs and
 * governance documents): arbitrary and mutated length-prefixed JSON frames — truncated, bit
 * flipped, huge length prefixes, wrong types, deep nesting — sent on a real libp2p stream (a
 * `streamPair`) to both sides of the protocol: the responder (`digests` then `want` frames) and
 * the asker (`ids` then `items` frames). The property, per exchange: the side under test settles
 * within its deadline (no hang), never throws or leaves an unhandled rejection, stays under the
 * memory bound, and either completes a valid exchange (the responder served; the asker kept only
 * items it asked for) or refuses the frame as `SyncFrameError` (code `SYNC_MALFORMED`, a reason
 * counted in `stats().malformed`) or meets the stream's end; whatever it writes back is a valid
 * frame.
 */
import assert from 'node:assert/strict'
import type { Connection, Stream, StreamHandler } from '@libp2p/interface'
import { streamPair } from '@libp2p/utils'
import fc from 'fast-check'
import type { Logger } from '../../../src/common/index.js'
import {
  ItemSync,
  groupDigest,
  type GroupDigest,
  type ItemSource,
  type SyncNode
} from '../../../src/p2p/index.js'
import { identityOf } from '../p2p/helpers.js'
import {
  MEMORY_BOUND_BYTES,
  anyValue,
  count,
  fuzzParams,
  fuzzTimeout,
  mutateBytes,
  mutateJson,
  nested
} from './arbitraries.js'

const PROTOCOL = '/shoal/1/fuzz-sync/1.0.0'
const PEER = identityOf(141).peerId
const ME = identityOf(142).peerId
/** A pass's deadline in the fuzzed ItemSync: an exchange that waits for a frame never sent ends by it. */
const PASS_MS = 1_000

const enc = new TextEncoder()
const GROUPS: Record<string, string[]> = { 'did:a': ['a:1', 'a:2'], 'did:b': ['b:1'] }

/** Items `payload(<id>)`; `accept` keeps those of well-formed ids it lacks. */
class Source implements ItemSource {
  readonly items = new Map<string, string>()
  accepted: string[] = []
  /** Calls of `ids` (one per group an answer lists: the asker's work per frame). */
  idsCalls = 0

  constructor(ids: string[]) {
    for (const id of ids) this.items.set(id, `payload(${id})`)
  }

  async digests(): Promise<Map<string, GroupDigest>> {
    const out = new Map<string, GroupDigest>()
    for (const [g, ids] of Object.entries(GROUPS)) {
      const mine = ids.filter((id) => this.items.has(id))
      if (mine.length > 0) out.set(g, groupDigest(mine))
    }
    return out
  }

  async ids(group: string): Promise<string[]> {
    this.idsCalls++
    return (Object.hasOwn(GROUPS, group) ? GROUPS[group]! : []).filter((id) => this.items.has(id))
  }

  async get(ids: readonly string[]): Promise<string[]> {
    return ids.flatMap((id) => (this.items.has(id) ? [this.items.get(id)!] : []))
  }

  async accept(items: string[]): Promise<number> {
    this.accepted.push(...items)
    return items.filter((i) => !this.items.has(this.idOf(i))).length
  }

  idOf(item: string): string {
    return /^payload\((.*)\)$/.exec(item)?.[1] ?? item
  }
}

/** What the fuzzed ItemSync logged: refusals (info) and other failures (debug). */
interface Logged {
  refused: Array<{ reason: string; err: string }>
  failed: string[]
}

function capture(): { log: Logger; logged: Logged } {
  const logged: Logged = { refused: [], failed: [] }
  const log = {
    info: (obj: { reason?: string; err?: string }) => {
      if (obj.reason !== undefined) logged.refused.push({ reason: obj.reason, err: obj.err ?? '' })
    },
    debug: (obj: { err?: string }) => {
      if (obj.err !== undefined) logged.failed.push(obj.err)
    },
    warn: () => {},
    error: () => {},
    trace: () => {},
    fatal: () => {},
    child: () => log
  }
  return { log: log as unknown as Logger, logged }
}

/** An ItemSync on a fake libp2p node: its handler is captured; a dial returns `dial()`'s stream. */
async function fuzzedSync(
  source: Source,
  dial: () => Promise<Stream>
): Promise<{ sync: ItemSync; handler: StreamHandler; logged: Logged }> {
  let handler: StreamHandler | undefined
  const node = {
    peerId: ME,
    handle: async (_p: string, h: StreamHandler) => {
      handler = h
    },
    unhandle: async () => {},
    getConnections: () => [],
    dialProtocol: async () => dial(),
    peerStore: { get: async () => ({ protocols: [] }) },
    addEventListener: () => {},
    removeEventListener: () => {}
  } as unknown as SyncNode
  const { log, logged } = capture()
  const sync = new ItemSync({ node, source, log }, { protocol: PROTOCOL, intervalMs: 0, timeoutMs: PASS_MS })
  await sync.start()
  return { sync, handler: handler!, logged }
}

/** An unsigned LEB128 varint (the length prefix of libp2p's length-prefixed streams). */
function uvarint(n: number): Uint8Array {
  const out: number[] = []
  let v = n
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return Uint8Array.from(out)
}

/** A length-prefixed frame of `payload` (the protocol's framing: an unsigned varint, then the bytes). */
function lp(payload: Uint8Array): Uint8Array {
  const prefix = uvarint(payload.byteLength)
  const out = new Uint8Array(prefix.byteLength + payload.byteLength)
  out.set(prefix, 0)
  out.set(payload, prefix.byteLength)
  return out
}

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

/**
 * The wire bytes of one frame: a mutation of `sample` (as a value, as JSON text, or raw), any
 * value, a deeply nested one, or a framing attack (a huge or unterminated length prefix, a
 * prefix longer than what follows).
 */
function frameOf(sample: unknown, entry?: unknown): fc.Arbitrary<Uint8Array> {
  const json = (v: unknown): Uint8Array => {
    try {
      return enc.encode(JSON.stringify(v) ?? 'null')
    } catch {
      return enc.encode('null') // too deep for JSON.stringify
    }
  }
  const text = json(sample)
  // A record frame (digests, ids) with a key that names an Object.prototype member.
  const protoKeys = fc
    .constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf')
    .map((k) =>
      lp(enc.encode(new TextDecoder().decode(text).replace(/:\{"/, `:{"${k}":${JSON.stringify(entry)},"`)))
    )
  return fc.oneof(
    { weight: entry === undefined ? 0 : 1, arbitrary: protoKeys },
    { weight: 2, arbitrary: fc.constant(lp(text)) },
    { weight: 4, arbitrary: mutateJson(sample).map((v) => lp(json(v))) },
    { weight: 4, arbitrary: mutateBytes(text).map(lp) },
    { weight: 2, arbitrary: mutateBytes(lp(text)) },
    { weight: 1, arbitrary: anyValue.map((v) => lp(json(v))) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: 100, max: 20_000 }), fc.constantFrom('array', 'object'))
        .map(([d, k]) => lp(json(nested(d, k as 'array' | 'object'))))
    },
    {
      weight: 2,
      arbitrary: fc.oneof(
        // A length beyond every cap, with or without bytes after it.
        fc
          .constantFrom(2 ** 22, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER)
          .chain((n) => fc.uint8Array({ maxLength: 32 }).map((tail) => concat([uvarint(n), tail]))),
        // An unterminated or over-long varint.
        fc.uint8Array({ minLength: 1, maxLength: 12 }).map((b) => b.map((x) => x | 0x80)),
        // A length longer than what follows.
        fc.nat({ max: 4096 }).map((k) => concat([uvarint(text.byteLength + 1 + k), text]))
      )
    }
  )
}

const validDigests = { v: 1, digests: { 'did:a': groupDigest(['a:1']), 'did:c': groupDigest(['c:9']) } }
const validWant = { want: ['a:2', 'b:1'] }
const validIds = { ids: { 'did:a': ['a:1', 'a:2'], 'did:b': ['b:1'] } }
const validItems = { items: ['payload(a:2)', 'payload(b:1)'] }

/** Reads every frame the side under test writes back (and checks its framing). */
function collect(stream: Stream): Uint8Array[] {
  const chunks: Uint8Array[] = []
  stream.addEventListener('message', (evt) => {
    chunks.push(evt.data.subarray())
  })
  return chunks
}

/** The frames in `chunks` (length-prefixed JSON), parsed. */
function framesIn(chunks: Uint8Array[]): unknown[] {
  const all = concat(chunks)
  const out: unknown[] = []
  let at = 0
  while (at < all.byteLength) {
    let n = 0
    for (let shift = 1; ; shift *= 0x80) {
      const b = all[at++]!
      n += (b & 0x7f) * shift
      if (b < 0x80) break
    }
    out.push(JSON.parse(new TextDecoder().decode(all.subarray(at, at + n))))
    at += n
  }
  return out
}

/** Failures that are the stream's end or reset (the fuzzed peer closed it early), not the decoder's. */
const STREAM_END = /^unexpected eof - stream closed|stream (?:reset|aborted)|^closing$|aborted/i

/** Within the deadline, or an Error naming `what` (a hang). */
async function settles<T>(what: string, p: Promise<T>, ms = PASS_MS * 5): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms (a hang)`)), ms)
      })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** The outcome must be a served exchange, a counted SYNC_MALFORMED refusal, or the stream's end. */
function checkOutcome(what: string, logged: Logged, done: boolean, malformed: Record<string, number>): void {
  const reasons = new Set(['oversized', 'not-json', 'schema', 'unrequested'])
  for (const r of logged.refused) assert.ok(reasons.has(r.reason), `${what}: refused for ${r.reason}`)
  const counted = Object.values(malformed).reduce((n, x) => n + x, 0)
  assert.equal(counted, logged.refused.length, `${what}: every refusal counted`)
  for (const f of logged.failed)
    assert.match(f, STREAM_END, `${what}: a failure that is neither a refusal nor the stream's end: ${f}`)
  assert.equal(
    done,
    logged.refused.length === 0 && logged.failed.length === 0,
    `${what}: completed XOR refused`
  )
  const m = process.memoryUsage()
  assert.ok(m.heapUsed + m.arrayBuffers <= MEMORY_BOUND_BYTES, `${what}: memory beyond the bound`)
}

describe('fuzz: ItemSync frames', function () {
  this.timeout(fuzzTimeout(120_000))
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => void unhandled.push(err)
  before(() => process.on('unhandledRejection', onUnhandled))
  after(() => process.off('unhandledRejection', onUnhandled))
  afterEach(() => assert.deepEqual(unhandled, [], 'unhandled rejections'))

  it('the responder: any digests and want frames are served or refused (SYNC_MALFORMED), never a crash or hang', async () => {
    await fc.assert(
      fc.asyncProperty(
        frameOf(validDigests, groupDigest(['x:1'])),
        frameOf(validWant),
        fc.boolean(),
        async (digests, want, together) => {
          count('sync.responder')
          const { sync, handler, logged } = await fuzzedSync(new Source(['a:1', 'a:2', 'b:1']), async () => {
            throw new Error('not dialing')
          })
          const [asker, responder] = await streamPair({ delay: 0 })
          const answers = collect(asker)
          const answered = settles(
            'responder',
            Promise.resolve(handler(responder, { remotePeer: PEER } as unknown as Connection))
          )
          asker.send(together ? concat([digests, want]) : digests)
          if (!together) asker.send(want)
          await asker.close().catch(() => {})
          await answered
          await sync.stop()
          const s = sync.stats()
          checkOutcome('responder', logged, s.served === 1, s.malformed)
          // What it wrote back is valid framing and JSON (ids, then items when served).
          const frames = framesIn(answers)
          if (s.served === 1) {
            assert.equal(frames.length, 2)
            const items = (frames[1] as { items: string[] }).items
            assert.ok(Array.isArray(items) && items.every((i) => /^payload\([ab]:\d\)$/.test(i)))
          }
        }
      ),
      fuzzParams(200)
    )
  })

  it('the asker: any ids and items frames are taken or refused (SYNC_MALFORMED), never a crash or hang', async () => {
    await fc.assert(
      fc.asyncProperty(frameOf(validIds, ['a:2']), frameOf(validItems), async (ids, items) => {
        count('sync.asker')
        const source = new Source(['a:1'])
        let requests: Uint8Array[] | undefined
        const { sync, logged } = await fuzzedSync(source, async () => {
          const [asker, remote] = await streamPair({ delay: 0 })
          requests = collect(remote)
          remote.send(concat([ids, items]))
          void remote.close().catch(() => {})
          return asker
        })
        const result = await settles('asker', sync.syncWith(PEER))
        await sync.stop()
        const s = sync.stats()
        checkOutcome('asker', logged, result.ok, s.malformed)
        // What it sent is valid framing; only items it asked for reach the source.
        const sent = framesIn(requests ?? [])
        const want = new Set((sent[1] as { want?: string[] } | undefined)?.want ?? [])
        for (const item of source.accepted) assert.ok(want.has(source.idOf(item)), `took ${item} unasked`)
      }),
      fuzzParams(200)
    )
  })
  it('regression: an ids frame of empty groups is refused before any lookup (was one source.ids call per group)', async () => {
    // ~7 bytes a group: a 1 MiB frame listed ~150,000 groups, each a lookup in the item store
    // (for jobs, a scan of every job record): work for the asker far beyond the frame's size.
    const groups = Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`g${i}`, []]))
    const source = new Source(['a:1'])
    const { sync } = await fuzzedSync(source, async () => {
      const [asker, remote] = await streamPair({ delay: 0 })
      collect(remote)
      remote.send(lp(enc.encode(JSON.stringify({ ids: groups }))))
      void remote.close().catch(() => {})
      return asker
    })
    const result = await settles('asker', sync.syncWith(PEER))
    await sync.stop()
    assert.equal(result.ok, false)
    assert.deepEqual(sync.stats().malformed, { schema: 1 })
    assert.equal(source.idsCalls, 0)
  })
})
