/**
 * An ordered reader of a UnixFS file's bytes with bounded read-ahead. Unlike the UnixFS
 * exporter (which pushes blocks into an unbounded queue as fast as it can read them), this
 * pulls: at most `readAhead` leaf blocks are in flight or waiting, whatever the consumer's pace.
 * It yields one buffer per leaf (for ciphertext DAGs built by ContentStore, one sealed chunk).
 */
import type { Helia } from 'helia'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { RAW_CODEC } from '../common/index.js'
import { IntegrityError, UnsupportedFormatError } from './errors.js'

const DAG_PB = 0x70
const RAW = RAW_CODEC

interface PBLink {
  Hash: CID
}
interface PBNode {
  Data?: Uint8Array
  Links: PBLink[]
}

/** Options of {@link readFile}. */
export interface ReadFileOptions {
  signal?: AbortSignal
  offline?: boolean
  /** Leaf blocks fetched ahead of the consumer (default 4). */
  readAhead?: number
}

/** Read a whole block from Helia's blockstore (which fetches it over bitswap unless offline). */
export async function getBlock(
  helia: Pick<Helia, 'blockstore'>,
  cid: CID,
  options: { signal?: AbortSignal; offline?: boolean }
): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  let n = 0
  for await (const part of helia.blockstore.get(cid, options)) {
    parts.push(part)
    n += part.byteLength
  }
  return parts.length === 1 ? parts[0]! : new Uint8Array(Buffer.concat(parts, n))
}

type Item = { kind: 'leaf'; cid: CID } | { kind: 'data'; bytes: Uint8Array }

/** The file's pieces in order: leaf CIDs to fetch, and data held inline in interior nodes. */
async function* walk(
  helia: Pick<Helia, 'blockstore' | 'getCodec'>,
  root: CID,
  options: ReadFileOptions
): AsyncGenerator<Item> {
  if (root.code !== RAW && root.code !== DAG_PB) {
    throw new UnsupportedFormatError('not a UnixFS file', { cid: root.toString(), codec: root.code })
  }
  const codec = await helia.getCodec(DAG_PB)
  // Depth-first, left to right, with an explicit stack (no recursion depth limit).
  const stack: CID[] = [root]
  while (stack.length > 0) {
    const cid = stack.pop()!
    if (cid.code === RAW) {
      yield { kind: 'leaf', cid }
      continue
    }
    if (cid.code !== DAG_PB) {
      throw new IntegrityError('unexpected codec inside a UnixFS file', {
        cid: cid.toString(),
        codec: cid.code
      })
    }
    const node = codec.decode(await getBlock(helia, cid, options)) as PBNode
    let fs: UnixFS
    try {
      fs = UnixFS.unmarshal(node.Data ?? new Uint8Array(0))
    } catch (err) {
      throw new IntegrityError('invalid UnixFS node', { cid: cid.toString() }, { cause: err })
    }
    if (fs.type !== 'file' && fs.type !== 'raw') {
      throw new UnsupportedFormatError(`not a UnixFS file (${fs.type})`, { cid: cid.toString() })
    }
    if (fs.data !== undefined && fs.data.byteLength > 0) yield { kind: 'data', bytes: fs.data }
    for (let i = node.Links.length - 1; i >= 0; i--) stack.push(node.Links[i]!.Hash)
  }
}

/** The bytes of a UnixFS file, one buffer per leaf (or inline data), in order. */
export async function* readFile(
  helia: Pick<Helia, 'blockstore' | 'getCodec'>,
  root: CID,
  options: ReadFileOptions = {}
): AsyncGenerator<Uint8Array> {
  const readAhead = Math.max(1, options.readAhead ?? 4)
  const window: Array<Promise<Uint8Array>> = []
  const items = walk(helia, root, options)
  let done = false
  try {
    for (;;) {
      while (!done && window.length < readAhead) {
        const next = await items.next()
        if (next.done === true) {
          done = true
          break
        }
        const item = next.value
        const p = item.kind === 'data' ? Promise.resolve(item.bytes) : getBlock(helia, item.cid, options)
        // Rejections are observed when the promise reaches the head of the window.
        p.catch(() => {})
        window.push(p)
      }
      const head = window.shift()
      if (head === undefined) return
      yield await head
    }
  } finally {
    await items.return(undefined)
  }
}
