/**
 * A job stalled by a full disk (`DISK_FULL`) resumes by itself once space returns: how much free
 * space counts as returned, and the wait for it (the data dir's file system, polled with statfs;
 * no write is tried while it is full). See docs/training-swarm.md, "A full disk".
 */
import { statfs } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { maxModelBytes } from '../../training/index.js'

/** How often a stalled job looks at the free space. */
export const SPACE_POLL_MS = 2_000
/** Most time before a job that stalled again (no round done since) looks at the free space. */
export const SPACE_BACKOFF_MAX_MS = 60_000
/** Free inodes below which a file system counts as full (when it counts inodes at all). */
export const MIN_FREE_INODES = 64
/** Free space, beyond a few models, before a stalled job trains again (receipts, logs, the db). */
export const SPACE_MARGIN_BYTES = 8 * 1_048_576

/**
 * The free bytes a job of this parameter layout needs to go on: a round stores its shared model
 * and its checkpoint (and keeps the previous ones until the next round), so four encoded models
 * plus the margin.
 */
export function spaceNeeded(layout: ReadonlyArray<{ shape: readonly number[] }>): number {
  return 4 * maxModelBytes(layout) + SPACE_MARGIN_BYTES
}

/**
 * Bytes free for this user on the file system of `dir`: 0 when it is out of inodes (ENOSPC with
 * bytes left), Infinity when it cannot be read. A quota (EDQUOT) does not show here: the
 * back-off of {@link waitForSpace} bounds the retries.
 */
export async function freeBytes(dir: string): Promise<number> {
  try {
    const s = await statfs(dir)
    if (Number(s.files) > 0 && Number(s.ffree) < MIN_FREE_INODES) return 0
    return Number(s.bavail) * Number(s.bsize)
  } catch {
    return Infinity // not there yet: nothing to wait for, the next write tells
  }
}

/**
 * Resolves once `free(dir)` reports `bytes` or more, looking first after `everyMs` × 2^`stalls`
 * (at most {@link SPACE_BACKOFF_MAX_MS}: a job that stalls again at once, the disk still full in
 * a way statfs does not show, backs off), then every `everyMs`.
 *
 * @throws an AbortError when the signal aborts first.
 */
export async function waitForSpace(
  dir: string,
  bytes: number,
  opts: { signal: AbortSignal; free?: (dir: string) => Promise<number>; everyMs?: number; stalls?: number }
): Promise<void> {
  const free = opts.free ?? freeBytes
  const every = opts.everyMs ?? SPACE_POLL_MS
  let wait = Math.min(SPACE_BACKOFF_MAX_MS, every * 2 ** Math.min(16, opts.stalls ?? 0))
  for (;;) {
    await sleep(wait, undefined, { signal: opts.signal })
    if ((await free(dir)) >= bytes) return
    wait = every
  }
}
