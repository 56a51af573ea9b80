/**
 * Whether this node's trainers should pause: paused by the user (`node_pause`), or by the duty
 * cycle between its active windows (active `dutyCycle × period`, then idle for the rest).
 * Every change calls `onChange`, which applies it to the running jobs. The duty cycle can be
 * replaced while the node runs (`setDutyCycle`, RPC `node_duty_cycle`).
 */

/** The duty cycle now: the share of each period spent training, and the current window. */
export interface DutyCycleState {
  /** Share of each period this node trains, in (0, 1]; 1 = always. */
  cycle: number
  periodMs: number
  /** Whether the current window is idle (the duty cycle pauses the trainers). */
  idle: boolean
  /** When the current window ends (ms since the epoch); undefined with a cycle of 1. */
  until?: number
}

export class PauseControl {
  private user = false
  private duty = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private stopped = false
  private cycle = 1
  private periodMs = 60_000
  private until: number | undefined

  constructor(private readonly onChange: () => void) {}

  get paused(): boolean {
    return this.user || this.duty
  }

  /** Whether the duty cycle's idle window pauses (whatever the user asked). */
  get dutyIdle(): boolean {
    return this.duty
  }

  /** Whether the user paused (until `resumeUser`). */
  get userPaused(): boolean {
    return this.user
  }

  /** The duty cycle and its current window. */
  get dutyCycle(): DutyCycleState {
    return {
      cycle: this.cycle,
      periodMs: this.periodMs,
      idle: this.duty,
      ...(this.until !== undefined ? { until: this.until } : {})
    }
  }

  /** Paused by the user (until `resumeUser`), whatever the duty cycle says. */
  pauseUser(): void {
    this.user = true
    this.onChange()
  }

  resumeUser(): void {
    this.user = false
    this.onChange()
  }

  /** Alternates active (`cycle × periodMs`) and idle windows, starting active; `cycle` ≥ 1 does nothing. */
  startDutyCycle(cycle: number, periodMs: number): void {
    this.periodMs = periodMs
    if (cycle >= 1) return
    this.setDutyCycle(cycle, periodMs)
  }

  /**
   * Replaces the duty cycle now: a new period starts with an active window (a cycle of 1 ends
   * any idle window at once). The caller validates `cycle` in (0, 1] and `periodMs` > 0.
   */
  setDutyCycle(cycle: number, periodMs: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.cycle = Math.min(cycle, 1)
    this.periodMs = periodMs
    if (this.cycle >= 1) {
      this.until = undefined
      const was = this.duty
      this.duty = false
      if (was) this.onChange()
      return
    }
    this.window(true)
  }

  stop(): void {
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
  }

  private window(active: boolean): void {
    if (this.stopped) return
    this.duty = !active
    const ms = active ? this.cycle * this.periodMs : (1 - this.cycle) * this.periodMs
    this.until = Date.now() + ms
    this.onChange()
    this.timer = setTimeout(() => this.window(!active), ms)
    this.timer.unref?.()
  }
}
