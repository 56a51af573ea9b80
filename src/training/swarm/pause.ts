/**
 * A trainer's pause: `pause()` holds local training before its next step — or, with a round,
 * before the first step of that round — until `resume()`. Training waits in `hold(r)` before
 * each step; `held` says whether it is waiting there now.
 */
import { wakeOn } from './signals.js'

export class PauseGate {
  private paused = false
  /** The round from which a pause holds (0: before the next step). */
  private from = 0
  private holding = false
  private readonly waiters = new Set<() => void>()

  /** Whether a pause is in effect. */
  get isPaused(): boolean {
    return this.paused
  }

  /** Whether training is paused and waiting (the step in progress, if any, has finished). */
  get isHeld(): boolean {
    return this.holding
  }

  /**
   * Pauses from round `fromRound` (default: the next step); pausing again replaces the round and
   * lets a held step go on when its round is now below it. Returns whether anything changed.
   */
  pause(fromRound = 0): boolean {
    const changed = !this.paused || fromRound !== this.from
    this.paused = true
    this.from = fromRound
    this.wake()
    return changed
  }

  /** Ends the pause; returns whether there was one. */
  resume(): boolean {
    const was = this.paused
    this.paused = false
    this.from = 0
    this.wake()
    return was
  }

  /** Before a step of round `r`: waits while paused for it; rejects when `signal` aborts. */
  async hold(r: number, signal: AbortSignal): Promise<void> {
    try {
      while (this.paused && r >= this.from) {
        this.holding = true
        await wakeOn(this.waiters, signal)
      }
    } finally {
      this.holding = false
    }
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake()
  }
}
