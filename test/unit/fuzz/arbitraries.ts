/**
 * Shared pieces of the fuzz specs (test/unit/fuzz/*.spec.ts): arbitraries, mutators of valid
 * samples, the property every decoder must hold, and the run settings.
 *
 * The property: a decoder given any input returns a value or throws a *named* error — a
 * `ShoalError` with a non-empty `code` (or an error class the decoder documents) — never an
 * unnamed `TypeError`/`RangeError`/`SyntaxError`, never a hang (each call has a deadline), and
 * never memory beyond {@link MEMORY_BOUND_BYTES} (checked after every call).
 *
 * Runs are seeded (`FUZZ_SEED`, default 42) so that `npm run test:unit` is deterministic;
 * `FUZZ_RUNS` multiplies nothing but replaces each property's run count, and
 * `FUZZ_PROPERTY_MS` caps each property's time (scripts/fuzz.ts sets both for long runs).
 */
import fc from 'fast-check'
import { ShoalError } from '../../../src/common/index.js'

/** Heap + array buffers the process may hold after any single fuzzed call. */
export const MEMORY_BOUND_BYTES = 1536 * 1024 * 1024

/** Deadline of one fuzzed call. */
export const CALL_DEADLINE_MS = 5_000

/**
 * Inputs tried per decoder (read by scripts/fuzz.ts). Kept on `globalThis` so that the spec
 * files (loaded by mocha) and the script share one map even if they load this module twice.
 */
export const tally: Map<string, number> = ((
  globalThis as { __shoalFuzzTally?: Map<string, number> }
).__shoalFuzzTally ??= new Map<string, number>())

/** Counts one input tried by `decoder` (names starting with `skipped:` count inputs not sent). */
export function count(decoder: string): void {
  tally.set(decoder, (tally.get(decoder) ?? 0) + 1)
}

/** fast-check parameters of one property: seeded, `runs` by default. */
export function fuzzParams<T>(runs: number): fc.Parameters<T> {
  const env = process.env
  const seed = env.FUZZ_SEED === undefined ? 42 : Number(env.FUZZ_SEED)
  const numRuns = env.FUZZ_RUNS === undefined ? runs : Number(env.FUZZ_RUNS)
  const params: fc.Parameters<T> = { seed, numRuns, endOnFailure: true }
  if (env.FUZZ_PROPERTY_MS !== undefined) {
    params.interruptAfterTimeLimit = Number(env.FUZZ_PROPERTY_MS)
    params.markInterruptAsFailure = false
  }
  return params
}

/** Mocha timeout of a fuzz test: the long-run budget when set, else `ms`. */
export function fuzzTimeout(ms: number): number {
  return process.env.FUZZ_PROPERTY_MS === undefined ? ms : 0
}

/** Describes an error for a failure message. */
function describe(err: unknown): string {
  if (err instanceof Error) return `${err.constructor.name}: ${err.message}\n${err.stack ?? ''}`
  return `non-error thrown: ${String(err)}`
}

/** True when `err` is a ShoalError with a non-empty code. */
export function isNamed(err: unknown): err is ShoalError {
  return err instanceof ShoalError && typeof err.code === 'string' && err.code.length > 0
}

function checkMemory(decoder: string): void {
  const m = process.memoryUsage()
  const used = m.heapUsed + m.arrayBuffers
  if (used > MEMORY_BOUND_BYTES) {
    throw new Error(`${decoder}: memory ${Math.round(used / 2 ** 20)} MiB beyond the bound`)
  }
}

/**
 * Runs `call` (sync or async) under the fuzz property for `decoder`: returns its result, or
 * `undefined` when it threw a named error (or one that `allowed` accepts). Anything else —
 * an unnamed error, a call past {@link CALL_DEADLINE_MS}, memory past the bound — throws an
 * Error that names the decoder, so that fast-check reports and shrinks the input.
 */
export async function expectNamed<T>(
  decoder: string,
  call: () => T | Promise<T>,
  allowed: (err: unknown) => boolean = () => false,
  deadlineMs: number = CALL_DEADLINE_MS
): Promise<T | undefined> {
  count(decoder)
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${decoder}: no answer within ${deadlineMs} ms (a hang)`)),
      deadlineMs
    )
  })
  try {
    return await Promise.race([Promise.resolve().then(call), deadline])
  } catch (err) {
    if (err instanceof Error && err.message.startsWith(`${decoder}: no answer`)) throw err
    if (isNamed(err) || allowed(err)) return undefined
    throw new Error(`${decoder} threw an unnamed error: ${describe(err)}`)
  } finally {
    clearTimeout(timer)
    checkMemory(decoder)
  }
}

/** As {@link expectNamed}, for a call documented never to throw. */
export async function expectNoThrow<T>(decoder: string, call: () => Promise<T>): Promise<T> {
  const result = await expectNamed(decoder, call)
  if (result === undefined) throw new Error(`${decoder}: documented never to throw, but threw`)
  return result
}

// ---------------------------------------------------------------------------------------------
// Arbitrary values

/** `depth` levels of `[` or `{"a":` around a value: deep nesting. */
export function nested(depth: number, kind: 'array' | 'object', inner: unknown = 0): unknown {
  let v = inner
  for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : { a: v }
  return v
}

/** Strings that break naive parsers: empty, huge, control and lone-surrogate characters, keys of Object.prototype. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    '\ud800',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    'NaN',
    'Infinity',
    '-0',
    '1e400',
    'null',
    '{}',
    '[]',
    '"',
    '\\',
    '..',
    '/',
    '%00'
  ),
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.integer({ min: 1, max: 200_000 }).map((n) => 'x'.repeat(n))
)

/** Numbers at the edges: NaN, ±Infinity, -0, huge, fractional, unsafe integers. */
export const nastyNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(
    NaN,
    Infinity,
    -Infinity,
    -0,
    0,
    1,
    -1,
    0.5,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    -(2 ** 53),
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    1e308
  ),
  fc.double(),
  fc.integer()
)

/** Any JS value a JSON decoder or an RPC handler may meet (JSON-ish, plus nasty leaves). */
export const anyValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.constant(undefined),
    fc.boolean(),
    nastyNumber,
    nastyString,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(nastyString, fc.string({ maxLength: 8 })), tie('value'), { maxKeys: 5 }),
    // Deeper values would overflow fast-check's own traversals; see deepJsonText for deeper.
    fc.constantFrom(nested(200, 'array'), nested(200, 'object'))
  )
})).value

/** JSON text nested `1e3`–`1e5` levels deep (`[[[…]]]` or `{"a":{"a":…}}`): for text decoders. */
export const deepJsonText: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 1000, max: 100_000 }), fc.boolean())
  .map(([depth, array]) =>
    array ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '0' + '}'.repeat(depth)
  )

/** JSON-compatible values only (for bodies that are JSON text). */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 1, arbitrary: anyValue.map((v) => safeJsonParse(safeStringify(v))) }
)

/** JSON.stringify that never throws (undefined for unrepresentable). */
export function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(v) ?? 'null'
  } catch {
    return 'null'
  }
}

function safeJsonParse(s: string): unknown {
  try {
    return JSON.parse(s)
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// Mutators of valid samples

/** One mutation of a byte string: truncation, bit flip, byte set, insertion, deletion, a huge length, garbage tail. */
export function mutateBytes(given: Uint8Array): fc.Arbitrary<Uint8Array> {
  // A plain Uint8Array copy: Buffer#slice returns a view, and the mutators below must not
  // write into the sample.
  const sample = new Uint8Array(given)
  const n = sample.length
  const at = fc.nat({ max: Math.max(0, n - 1) })
  const one: fc.Arbitrary<(b: Uint8Array) => Uint8Array> = fc.oneof(
    fc.nat({ max: n }).map((k) => (b: Uint8Array) => b.slice(0, Math.min(k, b.length))),
    fc.tuple(at, fc.nat({ max: 7 })).map(([i, bit]) => (b: Uint8Array) => {
      const c = b.slice()
      if (i < c.length) c[i]! ^= 1 << bit
      return c
    }),
    fc.tuple(at, fc.nat({ max: 255 })).map(([i, v]) => (b: Uint8Array) => {
      const c = b.slice()
      if (i < c.length) c[i] = v
      return c
    }),
    fc.tuple(at, fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([j, ins]) => (b: Uint8Array) => {
      const i = Math.min(j, b.length)
      const c = new Uint8Array(b.length + ins.length)
      c.set(b.subarray(0, i), 0)
      c.set(ins, i)
      c.set(b.subarray(i), i + ins.length)
      return c
    }),
    fc.tuple(at, fc.nat({ max: 64 })).map(([j, k]) => (b: Uint8Array) => {
      const i = Math.min(j, b.length)
      const c = new Uint8Array(Math.max(0, b.length - Math.min(k, b.length - i)))
      c.set(b.subarray(0, i), 0)
      c.set(b.subarray(Math.min(b.length, i + k)), i)
      return c
    }),
    // A 32-bit field (a length, a count, a dimension) set to a huge or edge value.
    fc
      .tuple(at, fc.constantFrom(0xffffffff, 0x7fffffff, 0x80000000, 0, 1, 0x10000))
      .map(([i, v]) => (b: Uint8Array) => {
        const c = b.slice()
        if (i + 4 <= c.length) {
          const view = new DataView(c.buffer, c.byteOffset, c.byteLength)
          view.setUint32(i - (i % 4), v, false)
          if (i + 8 <= c.length) view.setUint32(i - (i % 4) + 4, v, true)
        }
        return c
      }),
    fc.uint8Array({ maxLength: 64 }).map((tail) => (b: Uint8Array) => {
      const c = new Uint8Array(b.length + tail.length)
      c.set(b, 0)
      c.set(tail, b.length)
      return c
    })
  )
  return fc
    .array(one, { minLength: 1, maxLength: 4 })
    .map((fs) => fs.reduce<Uint8Array>((b, f) => f(b), new Uint8Array(sample)))
}

/** Mutations of a string sample (as its UTF-8 bytes, decoded leniently), plus character-level edits. */
export function mutateString(sample: string): fc.Arbitrary<string> {
  const bytes = new TextEncoder().encode(sample)
  return fc.oneof(
    mutateBytes(bytes).map((b) => new TextDecoder().decode(b)),
    fc
      .tuple(fc.nat({ max: sample.length }), nastyString)
      .map(([i, s]) => sample.slice(0, i) + s + sample.slice(i)),
    fc.nat({ max: sample.length }).map((i) => sample.slice(0, i))
  )
}

type Path = Array<string | number>

function paths(v: unknown, prefix: Path = [], out: Path[] = [], depth = 0): Path[] {
  out.push(prefix)
  if (depth > 6 || typeof v !== 'object' || v === null) return out
  if (Array.isArray(v)) v.slice(0, 8).forEach((x, i) => paths(x, [...prefix, i], out, depth + 1))
  else for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out, depth + 1)
  return out
}

function setAt(root: unknown, path: Path, f: (old: unknown) => unknown, remove = false): unknown {
  if (path.length === 0) return f(root)
  let copy: unknown
  try {
    copy = structuredClone(root)
  } catch {
    return root // too deep to clone: leave this sample as it is
  }
  let cur: unknown = copy
  for (const k of path.slice(0, -1)) {
    if (typeof cur !== 'object' || cur === null) return copy // an earlier mutation removed the path
    cur = (cur as Record<string | number, unknown>)[k]
  }
  if (typeof cur !== 'object' || cur === null) return copy
  const obj = cur as Record<string | number, unknown>
  const last = path[path.length - 1]!
  if (remove) {
    if (Array.isArray(obj)) obj.splice(Number(last), 1)
    else delete obj[last]
  } else obj[last] = f(obj[last])
  return copy
}

/**
 * Mutations of a JSON-like sample: a value at some path replaced by a value of another type (or
 * a nasty one), deleted, duplicated into a huge array or string, nested deeply; an extra key.
 */
export function mutateJson(sample: unknown): fc.Arbitrary<unknown> {
  const all = paths(sample)
  const path = fc.constantFrom(...all)
  const one: fc.Arbitrary<(v: unknown) => unknown> = fc.oneof(
    fc.tuple(path, anyValue).map(
      ([p, x]) =>
        (v: unknown) =>
          setAt(v, p, () => x)
    ),
    path.map((p) => (v: unknown) => (p.length === 0 ? v : setAt(v, p, () => undefined, true))),
    // Huge lengths: a long array of small values, a long string.
    path.map((p) => (v: unknown) => setAt(v, p, () => Array.from({ length: 50_000 }, (_, i) => i % 7))),
    path.map(
      (p) => (v: unknown) =>
        setAt(v, p, (old) =>
          typeof old === 'string' && old.length < 1000 ? old.repeat(2000) : 'y'.repeat(300_000)
        )
    ),
    path.map((p) => (v: unknown) => setAt(v, p, (old) => nested(200, 'array', old))),
    fc.tuple(path, fc.oneof(nastyString, fc.string({ maxLength: 8 })), anyValue).map(
      ([p, k, x]) =>
        (v: unknown) =>
          setAt(v, p, (old) =>
            typeof old === 'object' && old !== null && !Array.isArray(old) ? { ...old, [k]: x } : old
          )
    ),
    path.map(
      (p) => (v: unknown) =>
        setAt(v, p, (old) => (typeof old === 'number' ? -old - 1 : typeof old === 'string' ? '' : null))
    )
  )
  return fc.array(one, { minLength: 1, maxLength: 3 }).map((fs) => fs.reduce((v, f) => f(v), sample))
}

/** Base64url of a JSON value (a JWT segment). */
export function b64json(v: unknown): string {
  return Buffer.from(safeStringify(v)).toString('base64url')
}

/**
 * Strings shaped like compact JWTs whose header and payload are arbitrary JSON (unsigned, or
 * signed by nothing): they pass the `a.b.c` form and reach the decoders' JSON and schema steps.
 */
export const jwtShaped: fc.Arbitrary<string> = fc
  .tuple(anyJson, anyJson, fc.base64String({ maxLength: 88 }))
  .map(([h, p, s]) => `${b64json(h)}.${b64json(p)}.${Buffer.from(s, 'base64').toString('base64url')}`)
