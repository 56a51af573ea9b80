/**
 * Seeded pseudo-random numbers (sfc32 seeded by splitmix32). Deterministic across
 * processes and platforms: shuffles, splits, initialisation and DP noise all use it
 * so that a seed reproduces a run bit for bit.
 */

/** Layers of the ziggurat of {@link Rng.fillGaussianZiggurat} (NumPy's float32 layout). */
const ZIG_LAYERS = 256
/** Right edge of the base layer's rectangle: where the tail begins. */
const ZIG_R = 3.6541528853610088
/** Area of every layer (the base layer's rectangle plus the tail beyond ZIG_R). */
const ZIG_V = 4.928673233974655e-3
/** A draw's magnitude has 23 bits: the rest of a 32-bit word after 8 layer bits and a sign bit. */
const ZIG_SCALE = 2 ** -23
/** 2⁻³²: a word as a uniform in (0, 1), (w + ½)·2⁻³². */
const ZIG_UNIT = 2 ** -32

/**
 * The ziggurat's tables, computed once with `Math.exp`, `Math.log` and `Math.sqrt` (V8's fdlibm ports: the
 * same bits on every platform). Layer 0 is the base (the rectangle [0, X₀] × [0, f(R)], X₀ = V / f(R), plus the
 * tail beyond R); layer i ≥ 1 is the rectangle [0, Xᵢ] × [f(Xᵢ), f(Xᵢ₊₁)], with X₁ = R,
 * Xᵢ₊₁ = f⁻¹(V / Xᵢ + f(Xᵢ)) and X₂₅₆ = 0, where f(x) = exp(−x²/2). Every layer has area V.
 */
const ZIG = (() => {
  const f = (x: number): number => Math.exp(-0.5 * x * x)
  const x = new Float64Array(ZIG_LAYERS + 1)
  x[0] = ZIG_V / f(ZIG_R)
  x[1] = ZIG_R
  for (let i = 1; i < ZIG_LAYERS - 1; i++) x[i + 1] = Math.sqrt(-2 * Math.log(ZIG_V / x[i]! + f(x[i]!)))
  x[ZIG_LAYERS] = 0
  /** Indexed by the word's low 9 bits (layer, then sign): ±Xᵢ / 2²³, so a magnitude m draws ±m·Xᵢ / 2²³. */
  const signed = new Float64Array(2 * ZIG_LAYERS)
  /**
   * Indexed as `signed`: the least m with m·Xᵢ / 2²³ ≥ Xᵢ₊₁ (R for the base): a draw with a smaller magnitude
   * lies inside its layer's inner rectangle, under the curve, and is accepted at once.
   */
  const inner = new Int32Array(2 * ZIG_LAYERS)
  /** f(Xᵢ), and f(X₂₅₆) = 1 (fx[0] is unused: the base has no wedge). */
  const fx = new Float64Array(ZIG_LAYERS + 1)
  for (let i = 0; i < ZIG_LAYERS; i++) {
    const w = x[i]! * ZIG_SCALE
    signed[i] = w
    signed[i + ZIG_LAYERS] = -w
    const edge = x[i + 1]!
    let k = Math.ceil(edge / w)
    while (k > 0 && (k - 1) * w >= edge) k--
    while (k * w < edge) k++
    inner[i] = k
    inner[i + ZIG_LAYERS] = k
    fx[i] = f(x[i]!)
  }
  fx[ZIG_LAYERS] = 1
  return { signed, inner, fx }
})()

export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number
  private spare: number | undefined

  constructor(seed: number) {
    let s = seed >>> 0
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = next()
    this.b = next()
    this.c = next()
    this.d = next()
    for (let i = 0; i < 12; i++) this.nextUint32()
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) >>> 0
    return t
  }

  /** Uniform in [0, 1) with 53 bits of precision. */
  next(): number {
    const hi = this.nextUint32() >>> 5
    const lo = this.nextUint32() >>> 6
    return (hi * 67108864 + lo) / 9007199254740992
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** Standard normal (Box–Muller, polar form). */
  gaussian(): number {
    if (this.spare !== undefined) {
      const s = this.spare
      this.spare = undefined
      return s
    }
    let u: number, v: number, s: number
    do {
      u = this.next() * 2 - 1
      v = this.next() * 2 - 1
      s = u * u + v * v
    } while (s >= 1 || s === 0)
    const m = Math.sqrt((-2 * Math.log(s)) / s)
    this.spare = v * m
    return u * m
  }

  /**
   * Fill `out` with standard normal draws: the polar method on 53-bit uniforms, as {@link Rng.gaussian}, with
   * the generator inlined (several times faster for the ~10⁵ draws a DP-SGD step needs). Deterministic: the same
   * state gives the same values, and the state advances as if the uniforms had been drawn by `next()`. A pending
   * spare of `gaussian()` is dropped.
   */
  fillGaussian(out: Float32Array | Float64Array): void {
    let a = this.a | 0
    let b = this.b | 0
    let c = this.c | 0
    let d = this.d | 0
    const n = out.length
    let i = 0
    while (i < n) {
      let u: number, v: number, s: number
      do {
        let t = (a + b + d) | 0
        d = (d + 1) | 0
        a = b ^ (b >>> 9)
        b = (c + (c << 3)) | 0
        c = (c << 21) | (c >>> 11)
        c = (c + t) | 0
        const h1 = t >>> 5
        t = (a + b + d) | 0
        d = (d + 1) | 0
        a = b ^ (b >>> 9)
        b = (c + (c << 3)) | 0
        c = (c << 21) | (c >>> 11)
        c = (c + t) | 0
        u = ((h1 * 67108864 + (t >>> 6)) / 9007199254740992) * 2 - 1
        t = (a + b + d) | 0
        d = (d + 1) | 0
        a = b ^ (b >>> 9)
        b = (c + (c << 3)) | 0
        c = (c << 21) | (c >>> 11)
        c = (c + t) | 0
        const h2 = t >>> 5
        t = (a + b + d) | 0
        d = (d + 1) | 0
        a = b ^ (b >>> 9)
        b = (c + (c << 3)) | 0
        c = (c << 21) | (c >>> 11)
        c = (c + t) | 0
        v = ((h2 * 67108864 + (t >>> 6)) / 9007199254740992) * 2 - 1
        s = u * u + v * v
      } while (s >= 1 || s === 0)
      const m = Math.sqrt((-2 * Math.log(s)) / s)
      out[i++] = u * m
      if (i < n) out[i++] = v * m
    }
    this.a = a
    this.b = b
    this.c = c
    this.d = d
    this.spare = undefined
  }

  /**
   * Fill `out` with standard normal draws by a 256-layer ziggurat (Marsaglia & Tsang 2000) in the float32 layout
   * of NumPy's `random_standard_normal_f`: one 32-bit word per draw — its low 8 bits pick the layer, the next
   * its sign and the top 23 its magnitude — accepted at once 98.5 % of the time; the rest are exact rejection
   * steps: in a wedge, one more word for the height (a rejected draw starts over with a new word), beyond
   * 3.654 the tail method on two 53-bit uniforms. About four times faster than
   * {@link Rng.fillGaussian} (the polar method), and a different sequence for the same state. Deterministic: the
   * same state gives the same values on every platform, and the state advances as if the words had been drawn
   * by `nextUint32()` and `next()`. A draw's grid is its layer's width / 2²³ (≤ 4.7e-7). A pending spare of
   * `gaussian()` is dropped.
   */
  fillGaussianZiggurat(out: Float32Array | Float64Array): void {
    const { signed: W, inner: INNER, fx: FX } = ZIG
    // sfc32 in int32 arithmetic (the same bits as nextUint32): V8 keeps int32 loop variables in registers,
    // where uint32 values above 2³¹ would become doubles.
    let a = this.a | 0
    let b = this.b | 0
    let c = this.c | 0
    let d = this.d | 0
    const n = out.length
    for (let i = 0; i < n; i++) {
      const t = (a + b + d) | 0
      d = (d + 1) | 0
      a = b ^ (b >>> 9)
      b = (c + (c << 3)) | 0
      c = (c << 21) | (c >>> 11)
      c = (c + t) | 0
      const k = t & 0x1ff
      const m = t >>> 9
      if (m < INNER[k]!) {
        out[i] = m * W[k]!
        continue
      }
      const layer = t & 0xff
      if (layer !== 0) {
        // A wedge (1.5 % of draws): keep x if a uniform height in the layer, from one more word, falls under
        // the curve; otherwise draw this value again from a new word.
        const x = m * W[k]!
        const u = (a + b + d) | 0
        d = (d + 1) | 0
        a = b ^ (b >>> 9)
        b = (c + (c << 3)) | 0
        c = (c << 21) | (c >>> 11)
        c = (c + u) | 0
        const lo = FX[layer]!
        if (lo + ((u >>> 0) + 0.5) * ZIG_UNIT * (FX[layer + 1]! - lo) < Math.exp(-0.5 * x * x)) out[i] = x
        else i--
        continue
      }
      // The tail beyond R (0.026 % of draws), with the generator's state handed over and back.
      this.a = a
      this.b = b
      this.c = c
      this.d = d
      out[i] = (t & 0x100) === 0 ? this.zigguratTail() : -this.zigguratTail()
      a = this.a | 0
      b = this.b | 0
      c = this.c | 0
      d = this.d | 0
    }
    this.a = a
    this.b = b
    this.c = c
    this.d = d
    this.spare = undefined
  }

  /** A draw from the normal tail beyond R (Marsaglia 1964): R + e for exponentials e, e′ with 2e′ > (R·e)². */
  private zigguratTail(): number {
    for (;;) {
      const e = -Math.log(1 - this.next()) / ZIG_R
      const y = -Math.log(1 - this.next())
      if (y + y > e * e) return ZIG_R + e
    }
  }

  /** Gamma(shape, 1) by Marsaglia–Tsang (shape < 1 boosted). */
  gamma(shape: number): number {
    if (!(shape > 0)) throw new RangeError(`gamma shape must be > 0, got ${shape}`)
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.next() || Number.MIN_VALUE, 1 / shape)
    const d = shape - 1 / 3
    const c = 1 / Math.sqrt(9 * d)
    for (;;) {
      let x: number, v: number
      do {
        x = this.gaussian()
        v = 1 + c * x
      } while (v <= 0)
      v = v * v * v
      const u = this.next()
      if (u < 1 - 0.0331 * x * x * x * x) return d * v
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v
    }
  }

  /** A sample of Dirichlet(alpha, …, alpha) over k categories. */
  dirichlet(alpha: number, k: number): number[] {
    const g = Array.from({ length: k }, () => this.gamma(alpha))
    const sum = g.reduce((a, b) => a + b, 0)
    return g.map((x) => x / sum)
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(arr: T[] | Uint32Array | Int32Array): typeof arr {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const t = arr[i]!
      arr[i] = arr[j]!
      arr[j] = t
    }
    return arr
  }
}

// Run both fills once at load, wedges and tail included, so that V8 optimizes them with type feedback for the
// code after their loops: otherwise the first long call is compiled mid-loop (on-stack replacement), and that
// code deoptimizes at the loop's end on every call (measured: 255 deoptimizations in 400 calls, 2–5× slower).
// (Seed 36 draws from the tail at its 56th draw.)
new Rng(36).fillGaussianZiggurat(new Float32Array(1024))
new Rng(36).fillGaussian(new Float32Array(1024))
