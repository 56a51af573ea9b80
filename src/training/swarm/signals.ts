/**
 * Abort-aware waiting for the swarm's parts: race a promise against a signal (`raceAbort`)
 * and sleep until woken, timed out or aborted (`wakeOn`).
 */

/** `promise`, or the signal's reason as soon as it aborts (even if `promise` never settles). */
export async function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
  })
  promise.catch(() => {}) // a late rejection after the abort is not unhandled
  try {
    return await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort!)
  }
}

/** Resolve when a callback in `waiters` is called (or after `ms`); reject when `signal` aborts. */
export async function wakeOn(waiters: Set<() => void>, signal: AbortSignal, ms?: number): Promise<void> {
  signal.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      if (timer !== undefined) clearTimeout(timer)
      waiters.delete(wake)
      signal.removeEventListener('abort', onAbort)
    }
    const wake = (): void => {
      done()
      resolve()
    }
    const onAbort = (): void => {
      done()
      reject(signal.reason as Error)
    }
    const timer = ms === undefined ? undefined : setTimeout(wake, ms)
    waiters.add(wake)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
