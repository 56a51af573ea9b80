/**
 * `npm start`: a single Shoal node end to end, driven through its real CLI and RPC.
 * (The decentralized-training issue turns this into the local training swarm.)
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { shoal, startDaemon, exited } from '../test/helpers/cli.js'

const home = await mkdtemp(join(tmpdir(), 'shoal-start-'))
await rm(home, { recursive: true })
const work = await mkdtemp(join(tmpdir(), 'shoal-start-work-'))
const step = (s: string): void => console.log(`\n▶ ${s}`)
let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined
const cleanup = async (): Promise<void> => {
  if (daemon !== undefined && daemon.child.exitCode === null) {
    daemon.child.kill('SIGTERM')
    await exited(daemon.child)
  }
  await rm(work, { recursive: true, force: true })
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)))

try {
  step(`shoal init (data dir ${home})`)
  const init = await shoal(home, ['init'])
  if (init.code !== 0) throw new Error(init.stderr)
  console.log(init.stdout.trim())

  step('shoal daemon (RPC and libp2p on 127.0.0.1)')
  daemon = await startDaemon(home)
  console.log(daemon.output().trim())

  step('shoal id (JSON-RPC node_info)')
  console.log((await shoal(home, ['id'])).stdout.trim())

  step('shoal add: encrypt 8 MiB for this node and pin it on Helia')
  const file = join(work, 'sample.bin')
  const data = randomBytes(8 * 1024 * 1024)
  await writeFile(file, data)
  const add = await shoal(home, ['add', file, '--json'])
  if (add.code !== 0) throw new Error(add.stderr)
  const { cid } = JSON.parse(add.stdout) as { cid: string }
  console.log(`envelope CID ${cid}`)
  console.log((await shoal(home, ['stat', cid])).stdout.trim())

  step('shoal get: stream back, verify every chunk, decrypt')
  const out = join(work, 'sample.out')
  const get = await shoal(home, ['get', cid, '-o', out])
  if (get.code !== 0) throw new Error(get.stderr)
  const same = data.equals(await readFile(out))
  console.log(same ? 'round trip: identical bytes ✔' : 'round trip: MISMATCH ✘')
  if (!same) process.exitCode = 1

  step('stopping the daemon (SIGTERM → clean shutdown)')
  await cleanup()
  console.log(
    `done. The node's data dir is kept at ${home}; run \`npx shoal --home ${home} daemon\` to start it again.`
  )
} catch (err) {
  console.error(`npm start failed: ${(err as Error).message}`)
  await cleanup()
  process.exitCode = 1
}
