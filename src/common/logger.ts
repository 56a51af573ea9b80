/**
 * Structured, namespaced logging (pino). Silent unless `SHOAL_LOG` sets a level
 * (`info`, `debug`, …) or a caller configures one. `SHOAL_LOG_FORMAT=json|pretty`.
 * Secrets never go to logs: known secret-bearing keys are redacted.
 */
import { pino, type Logger as PinoLogger } from 'pino'

export type Logger = PinoLogger

const REDACT = [
  'token',
  'secret',
  'passphrase',
  'privateKey',
  'contentKey',
  'key',
  '*.token',
  '*.secret',
  '*.passphrase',
  '*.privateKey',
  '*.contentKey',
  'headers.authorization'
]

let root: Logger | undefined

export interface LoggerOptions {
  level?: string
  format?: 'json' | 'pretty'
  destination?: NodeJS.WritableStream
}

/** Configure the process-wide root logger (the daemon does this once at start). */
export function configureLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? process.env.SHOAL_LOG ?? 'silent'
  const format = opts.format ?? (process.env.SHOAL_LOG_FORMAT === 'pretty' ? 'pretty' : 'json')
  if (format === 'pretty' && opts.destination === undefined) {
    root = pino({
      level,
      redact: { paths: REDACT, censor: '[redacted]' },
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: process.stderr.isTTY } }
    })
  } else {
    root = pino(
      { level, redact: { paths: REDACT, censor: '[redacted]' } },
      (opts.destination as pino.DestinationStream | undefined) ?? pino.destination(2)
    )
  }
  return root
}

/**
 * A child logger for one component, e.g. `logger('shoal:storage')`; `bindings` go on every
 * line (the node hands its services `logger(component, { node })`, so that nodes sharing a
 * process — tests, benchmarks — can be told apart).
 */
export function logger(component: string, bindings: Record<string, string> = {}): Logger {
  root ??= configureLogger()
  return root.child({ ...bindings, component })
}
