/**
 * The dashboard's sessions: one-time login tokens (the URL `shoal dashboard` prints, spent on
 * first use), sessions held in an HttpOnly SameSite=Strict cookie, and a CSRF token per session
 * that every state-changing request must carry. Nothing is persisted: a restarted daemon needs a
 * new login URL.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** Default of {@link SessionInit.loginTtlMs}: a login URL is valid for this long. */
export const LOGIN_TTL_MS = 10 * 60_000
/** Default of {@link SessionInit.idleMs}: a session unused for this long ends. */
export const SESSION_IDLE_MS = 12 * 3600_000
/** Default of {@link SessionInit.maxAgeMs}: a session ends this long after login, used or not. */
export const SESSION_MAX_AGE_MS = 7 * 24 * 3600_000
/** Default of {@link SessionInit.maxSessions} (and of outstanding login tokens). */
export const MAX_SESSIONS = 16

export interface SessionInit {
  loginTtlMs?: number
  idleMs?: number
  maxAgeMs?: number
  maxSessions?: number
  /** The clock (tests). */
  now?: () => number
}

export interface Session {
  id: string
  csrf: string
  created: number
  lastSeen: number
}

const token = (): string => randomBytes(32).toString('base64url')
const digest = (s: string): string => createHash('sha256').update(s).digest('base64url')

/** True when `a` and `b` are the same string, in time independent of where they differ. */
export function sameSecret(a: string | undefined, b: string): boolean {
  if (a === undefined) return false
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

export class DashboardSessions {
  /** Login tokens by their SHA-256 (the token itself is never kept), with their expiry. */
  private readonly logins = new Map<string, number>()
  /** Sessions by the SHA-256 of their id. */
  private readonly sessions = new Map<string, Session>()
  private readonly loginTtl: number
  private readonly idle: number
  private readonly maxAge: number
  private readonly max: number
  private readonly now: () => number

  constructor(init: SessionInit = {}) {
    this.loginTtl = init.loginTtlMs ?? LOGIN_TTL_MS
    this.idle = init.idleMs ?? SESSION_IDLE_MS
    this.maxAge = init.maxAgeMs ?? SESSION_MAX_AGE_MS
    this.max = init.maxSessions ?? MAX_SESSIONS
    this.now = init.now ?? Date.now
  }

  /** A new one-time login token, valid for `loginTtlMs`. */
  issueLogin(): { token: string; expiresAt: number } {
    this.sweep()
    const t = token()
    const expiresAt = this.now() + this.loginTtl
    this.logins.set(digest(t), expiresAt)
    while (this.logins.size > this.max) this.logins.delete(this.logins.keys().next().value!)
    return { token: t, expiresAt }
  }

  /** Spends a login token: a new session, or undefined when it is unknown, spent or expired. */
  exchange(loginToken: string): Session | undefined {
    const key = digest(loginToken)
    const exp = this.logins.get(key)
    this.logins.delete(key)
    if (exp === undefined || exp <= this.now()) return undefined
    this.sweep()
    const now = this.now()
    const s: Session = { id: token(), csrf: token(), created: now, lastSeen: now }
    this.sessions.set(digest(s.id), s)
    // The oldest sessions go first when there are too many.
    while (this.sessions.size > this.max) this.sessions.delete(this.sessions.keys().next().value!)
    return s
  }

  /** The live session a cookie value names (its last use updated), or undefined. */
  check(sessionId: string | undefined): Session | undefined {
    if (sessionId === undefined || sessionId === '') return undefined
    const key = digest(sessionId)
    const s = this.sessions.get(key)
    if (s === undefined) return undefined
    const now = this.now()
    if (now - s.lastSeen > this.idle || now - s.created > this.maxAge) {
      this.sessions.delete(key)
      return undefined
    }
    s.lastSeen = now
    return s
  }

  /** Ends a session (logout). */
  end(sessionId: string): void {
    this.sessions.delete(digest(sessionId))
  }

  /** Live sessions. */
  get size(): number {
    this.sweep()
    return this.sessions.size
  }

  private sweep(): void {
    const now = this.now()
    for (const [k, exp] of this.logins) if (exp <= now) this.logins.delete(k)
    for (const [k, s] of this.sessions) {
      if (now - s.lastSeen > this.idle || now - s.created > this.maxAge) this.sessions.delete(k)
    }
  }
}
