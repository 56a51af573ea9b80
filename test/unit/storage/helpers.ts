/** Shared fixtures of the storage specs: temp repos, minimal libp2p options, seeded bytes. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import type { Libp2pOptions } from 'libp2p'
import { Rng } from '../../../src/common/rng.js'
import { createHeliaNode, type ShoalHelia } from '../../../src/storage/index.js'

/** TCP on loopback, noise, yamux, identify: enough for bitswap between two test nodes. */
export function testLibp2p(): Libp2pOptions<{ identify: ReturnType<ReturnType<typeof identify>> }> {
  return {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  }
}

export interface TestRepo {
  dir: string
  blocksPath: string
  datastorePath: string
  open(): Promise<ShoalHelia>
  cleanup(): Promise<void>
}

/** A temp directory holding one repo; `open()` creates a Helia node on it (again after a stop). */
export async function testRepo(): Promise<TestRepo> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-storage-'))
  const blocksPath = join(dir, 'blocks')
  const datastorePath = join(dir, 'datastore')
  return {
    dir,
    blocksPath,
    datastorePath,
    open: async () => createHeliaNode({ blocksPath, datastorePath, libp2p: testLibp2p() }),
    cleanup: async () => rm(dir, { recursive: true, force: true })
  }
}

/** `n` seeded pseudo-random bytes. */
export function seededBytes(seed: number, n: number): Uint8Array {
  const rng = new Rng(seed)
  const out = new Uint8Array(n)
  const words = new Uint32Array(out.buffer, 0, Math.floor(n / 4))
  for (let i = 0; i < words.length; i++) words[i] = rng.nextUint32()
  for (let i = words.length * 4; i < n; i++) out[i] = rng.nextUint32() & 0xff
  return out
}

/** `data` as a stream of pieces of seeded random sizes in [1, max]. */
export async function* inPieces(data: Uint8Array, seed: number, max: number): AsyncGenerator<Uint8Array> {
  const rng = new Rng(seed)
  let o = 0
  while (o < data.byteLength) {
    const n = 1 + rng.int(max)
    yield data.subarray(o, o + n)
    o += n
  }
}

/** Drain a stream; returns the bytes yielded and the error it ended with, if any. */
export async function drain(source: AsyncIterable<Uint8Array>): Promise<{ bytes: Uint8Array; err: unknown }> {
  const parts: Uint8Array[] = []
  try {
    for await (const p of source) parts.push(p)
    return { bytes: new Uint8Array(Buffer.concat(parts)), err: undefined }
  } catch (err) {
    return { bytes: new Uint8Array(Buffer.concat(parts)), err }
  }
}

export function codeOf(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code
}

/** True when `prefix` is a prefix of `of`. */
export function isPrefix(prefix: Uint8Array, of: Uint8Array): boolean {
  return prefix.byteLength <= of.byteLength && Buffer.from(of.subarray(0, prefix.byteLength)).equals(prefix)
}
