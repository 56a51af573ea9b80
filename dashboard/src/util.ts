/** Small formatters and a polling hook shared by the views. */
import { useEffect, useState } from 'preact/hooks'
import { subscribe, type NodeEvent } from './api.js'

export const short = (s: string | null | undefined, n = 10): string =>
  s === null || s === undefined ? '–' : s.length <= 2 * n + 1 ? s : `${s.slice(0, n)}…${s.slice(-6)}`
export const pct = (x: number | null | undefined): string =>
  x === null || x === undefined ? '–' : `${(x * 100).toFixed(1)} %`
export const num = (x: number | null | undefined, d = 3): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d)
export const mib = (b: number | undefined): string =>
  b === undefined ? '–' : `${(b / 1048576).toFixed(1)} MiB`
export const when = (t: number | string | undefined): string =>
  t === undefined ? '–' : new Date(typeof t === 'number' && t < 1e12 ? t * 1000 : t).toLocaleString()

/**
 * Loads `load()` now, again whenever an event of `topics` arrives (debounced), and every
 * `everyMs` as a fallback. Returns the value, an error, and a reload function.
 */
export function useLive<T>(
  load: () => Promise<T>,
  topics: string[],
  everyMs = 15_000
): { value: T | undefined; error: string | undefined; reload: () => void } {
  const [value, setValue] = useState<T | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const [tick, setTick] = useState(0)
  useEffect(() => {
    let live = true
    load().then(
      (v) => live && (setValue(v), setError(undefined)),
      (e: Error) => live && setError(e.message)
    )
    return () => {
      live = false
    }
  }, [tick])
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const later = (): void => {
      if (timer === undefined) timer = setTimeout(() => ((timer = undefined), setTick((t) => t + 1)), 300)
    }
    const off = topics.length > 0 ? subscribe(topics, later) : () => {}
    const every = setInterval(() => setTick((t) => t + 1), everyMs)
    return () => {
      off()
      clearInterval(every)
      clearTimeout(timer)
    }
  }, [])
  return { value, error, reload: () => setTick((t) => t + 1) }
}

/** The events of `topics` as they arrive (newest first, at most `keep`). */
export function useEvents(topics: string[], keep = 50): NodeEvent[] {
  const [events, setEvents] = useState<NodeEvent[]>([])
  useEffect(() => subscribe(topics, (e) => setEvents((l) => [e, ...l].slice(0, keep))), [])
  return events
}
