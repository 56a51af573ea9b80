/** Helpers for end-to-end tests that drive the real `shoal` CLI in child processes. */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

export const SHOAL_BIN = join(import.meta.dirname, '..', '..', 'bin', 'shoal.js')

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Run `shoal <args>` to completion. */
export async function shoal(home: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [SHOAL_BIN, '--home', home, ...args], {
    env: { ...process.env, SHOAL_LOG: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, stdout, stderr }
}

/** Loopback-only settings with free ports, for daemons started by tests. */
export const LOOPBACK_SETS = ['--set', 'rpc.port=0', '--set', 'p2p.listen=["/ip4/127.0.0.1/tcp/0"]']

export interface Daemon {
  child: ChildProcess
  output: () => string
  api: string
}

/** Start `shoal daemon` and wait until its api file names a live RPC address. */
export async function startDaemon(
  home: string,
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {}
): Promise<Daemon> {
  const child = spawn(process.execPath, [SHOAL_BIN, '--home', home, 'daemon', ...LOOPBACK_SETS, ...extra], {
    env: { ...process.env, SHOAL_LOG: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  // Waits for the daemon's own word — its ready line, or its exit — not for a time: on a loaded
  // machine five daemons starting at once took over a minute. The bound only catches a daemon
  // that hangs (the test's own timeout is usually shorter).
  const started = new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      output += d.toString()
      if (output.includes('ready')) resolve()
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('exit', (code, signal) => reject(new Error(`daemon exited with ${code ?? signal}: ${output}`)))
  })
  let timer: ReturnType<typeof setTimeout> | undefined
  const hung = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`daemon did not start within 10 minutes: ${output}`)), 600_000)
  })
  try {
    await Promise.race([started, hung])
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  } finally {
    clearTimeout(timer)
  }
  const api = (await readFile(join(home, 'api'), 'utf8')).trim()
  return { child, output: () => output, api }
}

export async function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}
