/** Test helpers that drive the real `shoal` CLI in child processes (shared with scripts/). */
export * from '../../scripts/lib/processes.js'
