/**
 * Fuzzing the JSON-RPC server of a real node (started in-process on a temporary data dir):
 * the params of every method, raw request bodies (bytes, deep nesting, batches, wrong
 * envelopes), the bulk endpoints' query strings, and model_import on mutated ONNX files.
 *
 * The property: every request gets a JSON-RPC answer whose error, if any, is a standard one
 * (parse error, invalid request, unknown method, invalid params) or an application error
 * carrying a ShoalError `code` — never `-32603 Internal error` (an unnamed exception), never a
 * 5xx, never a hang.
 *
 * Methods that would start long or outside work when their params are valid (training, dataset
 * import, file reads and writes, dials) only get params that their schema refuses; their
 * valid-params paths are covered by their own specs.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import onnxProto from 'onnx-proto'
import type { z } from 'zod'
import { loadConfig } from '../../../src/node/config/index.js'
import { ShoalNode } from '../../../src/node/node.js'
import { Repo } from '../../../src/node/repo/index.js'
import { MODELS, compileModel, createJob, exportOnnx, initParams } from '../../../src/training/index.js'
import { Identity, Keystore, keypairFromSeed } from '../../../src/identity/index.js'
import { decodeJWT } from 'did-jwt'
import { honestChain } from '../training/receipts/helpers.js'
import { jobInput } from '../training/swarm/helpers.js'
import {
  anyJson,
  count,
  deepJsonText,
  expectNamed,
  fuzzParams,
  fuzzTimeout,
  mutateBytes,
  mutateJson,
  mutateString,
  nastyString,
  safeStringify
} from './arbitraries.js'

/** Methods whose valid params start long or outside work (see the module doc). */
const VALID_PARAMS_NOT_SENT = new Set([
  'train_local',
  'dataset_import',
  'storage_add',
  'storage_get',
  'model_export',
  'model_import',
  'job_join',
  'peers_connect',
  'swarm_join'
])

/** Replaced in `before` by the CID of an object the node holds (so that lookups answer at once). */
let CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const DID = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
const JWT = 'eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2ln'

/**
 * Deadline of one RPC call: above the 30 s a node waits for a CID it does not hold (the
 * network fetch of a manifest or an object), so that such a wait is not taken for a hang.
 */
const RPC_DEADLINE_MS = 35_000

/** A plausible valid params object per method (mutated by the fuzzer). */
const samples = (): Record<string, Record<string, unknown>> => ({
  storage_stat: { cid: CID },
  storage_unpin: { cid: CID },
  swarm_create: { name: 'fuzz', private: true },
  swarm_invite: { did: DID, expiresInSeconds: 60 },
  train_status: { task: 'task-1' },
  train_cancel: { task: 'task-1' },
  dataset_privacy: { dataset: CID },
  dataset_grant: { dataset: CID, did: DID, purpose: 'any', shards: [CID], epsMax: 1, delta: 1e-5 },
  dataset_grant_add: { document: JWT, dataset: CID },
  dataset_revoke: { grant: CID, reason: 'fuzz' },
  dataset_grants: { dataset: CID },
  dataset_read: { shard: CID, purpose: 'any' },
  job_create: { name: 'fuzz', dataset: CID, model: 'mlp', lr: 0.1, batchSize: 32, H: 2, k: 2, rounds: 2 },
  job_announce: { job: 'job-1' },
  job_leave: { job: 'job-1' },
  job_status: { job: 'job-1' },
  job_lineage: { job: 'job-1' },
  model_predict: { checkpoint: CID, inputs: [[0, 1, 2]] },
  receipts_list: { job: 'job-1', issuer: DID },
  receipts_get: { hash: CID },
  receipts_verify: { receipt: JWT, reexecute: false },
  receipts_check_proof: { proof: JWT },
  ledger_history: { did: DID }
})

interface RpcAnswer {
  status: number
  body: unknown
}

describe('fuzz: JSON-RPC of a real node', function () {
  this.timeout(fuzzTimeout(120_000))
  let home: string
  let node: ShoalNode
  let url: URL
  let token: string
  let methods: Map<string, { params: z.ZodObject }>

  before(async function () {
    this.timeout(60_000)
    home = await mkdtemp(join(tmpdir(), 'shoal-fuzz-rpc-'))
    const repo = new Repo(home)
    await repo.create()
    await Keystore.init(repo.keystoreDir)
    const config = await loadConfig({
      repoConfigPath: repo.configPath,
      env: {},
      sets: ['rpc.port=0', 'p2p.listen=["/ip4/127.0.0.1/tcp/0"]', 'p2p.natTraversal=false']
    })
    node = new ShoalNode({ home, config })
    await node.start()
    url = node.rpcUrl
    token = (await readFile(repo.cookiePath, 'utf8')).trim()
    await holdObject()
    methods = (node as unknown as { parts: { rpc: { methods: Map<string, { params: z.ZodObject }> } } }).parts
      .rpc.methods
  })

  after(async () => {
    await node?.stop()
    await rm(home, { recursive: true, force: true })
  })

  /** Adds an object so that CID names one the node holds (the fuzzer may unpin and gc it). */
  async function holdObject(): Promise<void> {
    const file = join(home, 'object.bin')
    await writeFile(file, new Uint8Array(1000).fill(3))
    const added = await post(
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'storage_add', params: { path: file } })
    )
    CID = (added.body as { result: { cid: string } }).result.cid
  }

  async function post(body: string | Uint8Array, path = '/rpc'): Promise<RpcAnswer> {
    const res = await fetch(new URL(path, url), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body
    })
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = text === '' ? undefined : JSON.parse(text)
    } catch {
      // kept as text: the checks below fail on it
    }
    return { status: res.status, body: parsed }
  }

  /** The property on one JSON-RPC answer object. */
  function checkAnswer(what: string, answer: unknown): void {
    assert.ok(
      typeof answer === 'object' && answer !== null,
      `${what}: not a JSON object: ${safeStringify(answer)}`
    )
    const a = answer as { jsonrpc?: unknown; error?: { code?: unknown; data?: { code?: unknown } } }
    assert.equal(a.jsonrpc, '2.0', `${what}: not JSON-RPC 2.0`)
    if (a.error === undefined) return
    const code = a.error.code
    if (code === -32700 || code === -32600 || code === -32601 || code === -32602) return
    if (code === -32000 && typeof a.error.data?.code === 'string' && a.error.data.code.length > 0) return
    throw new Error(`${what}: an unnamed error reached the client: ${safeStringify(a.error)}`)
  }

  async function call(method: string, params: unknown): Promise<void> {
    const r = await expectNamed(
      `rpc.${method}`,
      () =>
        post(safeStringify({ jsonrpc: '2.0', id: 1, method, ...(params === undefined ? {} : { params }) })),
      undefined,
      RPC_DEADLINE_MS
    )
    assert.ok(r !== undefined)
    assert.equal(r.status, 200, `${method}: HTTP ${r.status} ${safeStringify(r.body)}`)
    checkAnswer(`${method}(${safeStringify(params).slice(0, 300)})`, r.body)
  }

  /** Params for `name`: arbitrary objects over its param names, mutations of a sample, positional arrays, non-objects. */
  function paramsFor(name: string): fc.Arbitrary<unknown> {
    const names = Object.keys(methods.get(name)!.params.shape)
    const keys =
      names.length === 0 ? fc.string({ maxLength: 6 }) : fc.oneof(fc.constantFrom(...names), nastyString)
    const sample = samples()[name] ?? {}
    return fc.oneof(
      { weight: 3, arbitrary: fc.dictionary(keys, anyJson, { maxKeys: names.length + 1 }) },
      { weight: 4, arbitrary: mutateJson(sample) },
      { weight: 1, arbitrary: fc.array(anyJson, { maxLength: names.length + 1 }) },
      { weight: 1, arbitrary: fc.oneof(anyJson, fc.constant(undefined)) }
    )
  }

  it('the params of every method: a result or a named error', async () => {
    const names = [...methods.keys()].sort()
    assert.ok(names.length >= 40, `${names.length} methods`)
    const input = fc.constantFrom(...names).chain((m) => fc.tuple(fc.constant(m), paramsFor(m)))
    await fc.assert(
      fc.asyncProperty(input, async ([method, params]) => {
        if (VALID_PARAMS_NOT_SENT.has(method)) {
          const asObject = Array.isArray(params)
            ? Object.fromEntries(params.map((v, i) => [Object.keys(methods.get(method)!.params.shape)[i], v]))
            : (params ?? {})
          if (methods.get(method)!.params.strict().safeParse(asObject).success) {
            count(`skipped:rpc.${method} (valid params not sent)`)
            return
          }
        }
        await call(method, params)
      }),
      fuzzParams(1200)
    )
  })

  it('every string param of every method set to "", "%" or a non-CID, the others from the sample: a named error or a result', async () => {
    await holdObject()
    for (const [name, m] of [...methods.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      if (VALID_PARAMS_NOT_SENT.has(name)) continue
      const sample = samples()[name] ?? {}
      for (const [param, schema] of Object.entries(m.params.shape)) {
        for (const bad of ['', '%', 'not-a-cid', 'did:key:zzz']) {
          const params = { ...sample, [param]: bad }
          if (!(schema as z.ZodType).safeParse(bad).success) continue
          await call(name, params)
        }
      }
    }
  })

  it('raw bodies (bytes, deep nesting, batches, broken envelopes): a JSON-RPC answer, never a 5xx', async () => {
    const enc = new TextEncoder()
    const sample = { jsonrpc: '2.0', id: 7, method: 'node_info', params: {} }
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 128 }),
      anyJson.map((v) => enc.encode(safeStringify(v))),
      mutateJson(sample).map((v) => enc.encode(safeStringify(v))),
      mutateBytes(enc.encode(JSON.stringify(sample))),
      deepJsonText.map((t) => enc.encode(t)),
      deepJsonText.map((t) => enc.encode(`{"jsonrpc":"2.0","id":1,"method":"job_status","params":${t}}`)),
      fc.array(mutateJson(sample), { maxLength: 20 }).map((b) => enc.encode(safeStringify(b)))
    )
    await fc.assert(
      fc.asyncProperty(body, async (bytes) => {
        const r = (await expectNamed('rpc.body', () => post(bytes), undefined, RPC_DEADLINE_MS))!
        assert.ok(
          [200, 204, 413].includes(r.status),
          `HTTP ${r.status} ${safeStringify(r.body).slice(0, 300)}`
        )
        if (r.status === 204) return
        const answers = Array.isArray(r.body) ? r.body : [r.body]
        for (const a of answers) checkAnswer('body', a)
      }),
      fuzzParams(400)
    )
  })

  it('the bulk endpoints with arbitrary query strings: a 4xx with a reason, never a 5xx', async () => {
    await holdObject()
    const query = fc.oneof(nastyString, fc.constantFrom(CID, 'bafy', '', '%', '%zz', 'a'.repeat(5000)))
    await fc.assert(
      fc.asyncProperty(query, fc.constantFrom('get', 'add'), async (q, op) => {
        const r = (await expectNamed(
          `rpc.stream.${op}`,
          async () => {
            const target = new URL(`/api/v0/${op}`, url)
            target.searchParams.set(op === 'get' ? 'cid' : 'name', q)
            const res = await fetch(target, {
              method: op === 'get' ? 'GET' : 'POST',
              headers: { authorization: `Bearer ${token}` },
              ...(op === 'add' ? { body: new Uint8Array([1, 2, 3]) } : {})
            })
            const text = await res.text()
            return { status: res.status, text }
          },
          undefined,
          RPC_DEADLINE_MS
        ))!
        assert.ok(r.status < 500, `HTTP ${r.status}: ${r.text.slice(0, 300)}`)
      }),
      fuzzParams(150)
    )
  })

  it("the node's gossip handlers with schema-valid bodies carrying mutated documents: done, or a named error", async () => {
    const gossip = node.swarm.gossip as unknown as {
      handlers: Map<string, Set<(msg: unknown, meta: unknown) => unknown>>
      specs: Map<string, { schema: z.ZodType }>
    }
    // The services subscribe when the node enters a swarm.
    const created = await post(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'swarm_create',
        params: { name: 'fuzz-gossip', private: false }
      })
    )
    checkAnswer('swarm_create', created.body)
    const stranger = Identity.fromKeypair(keypairFromSeed(new Uint8Array(32).fill(77)))
    const job = await createJob(stranger, jobInput())
    const receipt = (await honestChain(stranger, 'g', [0], 1))[0]!
    const topics = [...gossip.handlers.entries()].filter(([, set]) => set.size > 0).map(([t]) => t)
    assert.ok(topics.length >= 3, `handlers on ${topics.join(', ')}`)
    const doc = fc.oneof(
      fc.constantFrom(job.jwt, receipt, JWT),
      mutateString(job.jwt),
      mutateString(receipt),
      fc
        .constantFrom(job.jwt, receipt)
        .chain((j) => mutateJson(decodeJWT(j).payload))
        .map((claims) => ({ claims }))
    )
    const body = fc.tuple(
      fc.constantFrom(...topics),
      doc,
      fc.constantFrom('job', 'receipt', 'fraud-proof', 'grant', 'revoke')
    )
    await fc.assert(
      fc.asyncProperty(body, async ([topic, d, type]) => {
        const jwt =
          typeof d === 'string'
            ? d
            : await stranger.signJwt(d.claims as Record<string, unknown>).catch(() => JWT)
        const candidates = [
          { type, jobId: job.id, jwt },
          { type, receipt: jwt },
          { type, proof: jwt },
          { type, dataset: CID, document: jwt },
          { type: 'update', job: 'job-1', round: 1, weightsCid: CID, receipt: jwt, samples: 1 }
        ]
        const spec = gossip.specs.get(topic)!
        const meta = {
          from: stranger.peerId,
          did: stranger.did,
          topic,
          receivedFrom: stranger.peerId,
          msgId: 'm'
        }
        for (const msg of candidates) {
          const parsed = spec.schema.safeParse(msg)
          if (!parsed.success) continue
          for (const handler of gossip.handlers.get(topic)!) {
            await expectNamed(`gossip-handler.${topic.split('/').at(-1)}`, async () =>
              handler(parsed.data, meta)
            )
          }
        }
      }),
      fuzzParams(150)
    )
  })

  describe('regressions found by fuzzing', () => {
    async function errorOf(
      method: string,
      params: unknown
    ): Promise<{ code: number; data?: { code?: string } }> {
      const r = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }))
      checkAnswer(method, r.body)
      const error = (r.body as { error?: { code: number; data?: { code?: string } } }).error
      assert.ok(error !== undefined, `${method} succeeded`)
      return error
    }

    it('model_import of a model whose shoal.spec or lineage is not JSON: MODEL_INVALID / ONNX_MODEL_INVALID (was -32603)', async () => {
      const compiled = compileModel(MODELS.mlp, { type: 'sgd' })
      const model = onnxProto.onnx.ModelProto.decode(exportOnnx(MODELS.mlp, initParams(compiled, 5)))
      const path = join(home, 'bad-meta.onnx')
      const withMeta = async (key: string, value: string): Promise<void> => {
        const copy = onnxProto.onnx.ModelProto.decode(onnxProto.onnx.ModelProto.encode(model).finish())
        copy.metadataProps = copy.metadataProps.filter((p) => p.key !== key)
        copy.metadataProps.push(onnxProto.onnx.StringStringEntryProto.create({ key, value }))
        await writeFile(path, onnxProto.onnx.ModelProto.encode(copy).finish())
      }
      await withMeta('shoal.spec', '{')
      assert.equal((await errorOf('model_import', { path })).data?.code, 'MODEL_INVALID')
      await withMeta('lineage', 'not json')
      assert.equal((await errorOf('model_import', { path })).data?.code, 'ONNX_MODEL_INVALID')
    })

    it('dataset_grant_add / dataset_grant with a dataset or shard that is not a CID: MANIFEST_INVALID / DATASET_BAD_CID (was -32603; found by the long run, seed 1424907569)', async () => {
      const add = await errorOf('dataset_grant_add', { document: JWT, dataset: '' })
      assert.equal(add.data?.code, 'MANIFEST_INVALID')
      const grant = await errorOf('dataset_grant', { dataset: '', did: DID })
      assert.equal(grant.data?.code, 'DATASET_BAD_CID')
      const read = await errorOf('dataset_read', { shard: '%' })
      assert.equal(read.data?.code, 'GRANT_MISSING')
    })

    it('model_import and dataset_import of files that do not exist: a named error (was -32603)', async () => {
      const missing = join(home, 'no-such-file')
      assert.ok(typeof (await errorOf('model_import', { path: missing })).data?.code === 'string')
      for (const params of [
        { source: 'idx', name: 'x', shards: 1, images: missing, labels: missing },
        { source: 'csv', name: 'x', shards: 1, csv: missing, labelColumn: 0 }
      ]) {
        assert.ok(typeof (await errorOf('dataset_import', params)).data?.code === 'string')
      }
    })
  })

  it('model_import on mutated ONNX exports: a checkpoint or a named error', async () => {
    const compiled = compileModel(MODELS.mlp, { type: 'sgd' })
    const model = exportOnnx(MODELS.mlp, initParams(compiled, 5), { job: 'job-1', lineage: ['bafy-a'] })
    const path = join(home, 'import.onnx')
    // The model with its metadata (spec, input contract, lineage, consent) replaced by fuzzed text.
    const decoded = onnxProto.onnx.ModelProto.decode(model)
    const meta = Object.fromEntries(decoded.metadataProps.map((p) => [p.key!, p.value!]))
    const text = (sample: string): fc.Arbitrary<string | undefined> =>
      fc.oneof(
        fc.constant(sample),
        fc.constant(undefined),
        nastyString,
        deepJsonText,
        mutateJson(JSON.parse(sample) as unknown).map(safeStringify),
        anyJson.map(safeStringify)
      )
    const withMeta = fc
      .record({
        'shoal.spec': text(meta['shoal.spec']!),
        'shoal.input': text(meta['shoal.input']!),
        lineage: text(meta.lineage!),
        'shoal.consent': text('[{"grant":"g","status":"active"}]')
      })
      .map((m) => {
        const copy = onnxProto.onnx.ModelProto.decode(model)
        copy.metadataProps = Object.entries(m)
          .filter(([, v]) => v !== undefined)
          .map(([key, value]) => onnxProto.onnx.StringStringEntryProto.create({ key, value }))
        return onnxProto.onnx.ModelProto.encode(copy).finish()
      })
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutateBytes(model), withMeta), async (bytes) => {
        await writeFile(path, bytes)
        await call('model_import', { path })
      }),
      fuzzParams(150)
    )
  })
})
