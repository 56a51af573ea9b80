/** Types of scripts/lab/delay.js (plain JS so that `node --import` loads it without a TypeScript loader). */
export declare function installDelay(opts: {
  /** Delay of every write to a matching peer (ms). */
  ms: number
  /** Probability that a write is also held back by one retransmission timeout, in [0, 1). */
  loss?: number
  /** That timeout (ms; default max(200, 4 × ms)). */
  rtoMs?: number
  /** Seed of the loss draws. */
  seed?: number
  match?: (address: string) => boolean
  /** Bytes held back (plus the socket's own buffer) at which `write` returns false (at least the socket's high-water mark; default that mark). */
  window?: number
  /** Counts writes and lost writes; `maxHeld` is set to the most bytes held back for one socket at once. */
  stats?: { writes: number; lost: number; maxHeld?: number }
}): () => void
