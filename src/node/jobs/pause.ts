/**
 * Whether this node's trainers should pause: paused by the user (`node_pause`), or by the duty
 * cycle between its active windows (active `dutyCycle × period`, then idle for the rest).
 * Every change calls `onChange`, which applies it to the running jobs.
 */
export class PauseControl {
  private user = false
  private duty = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private stopped = false

  constructor(private readonly onChange: () => void) {}

  get paused(): boolean {
    return this.user || this.duty
  }

  /** Whether the duty cycle's idle window pauses (whatever the user asked). */
  get dutyIdle(): boolean {
    return this.duty
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
    if (cycle >= 1) return
    this.window(true, cycle, periodMs)
  }

  stop(): void {
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
  }

  private window(active: boolean, cycle: number, periodMs: number): void {
    if (this.stopped) return
    this.duty = !active
    this.onChange()
    const ms = active ? cycle * periodMs : (1 - cycle) * periodMs
    this.timer = setTimeout(() => this.window(!active, cycle, periodMs), ms)
    this.timer.unref?.()
  }
}
