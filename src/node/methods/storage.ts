/**
 * Storage RPC methods and the byte-streaming endpoints beside them.
 * Bytes never travel as base64 inside JSON: `storage_add`/`storage_get` take paths on the
 * daemon's machine, and `POST /api/v0/add` / `GET /api/v0/get?cid=` stream request/response bodies.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { rename, rm, stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { CID } from 'multiformats/cid'
import { z } from 'zod'
import { ShoalError, type ErrorCategory } from '../../common/index.js'
import type { ContentStore } from '../../storage/index.js'
import { method, type RpcMethod, type StreamHandler } from '../rpc/index.js'
import { ADD_PATH, GET_PATH, INTEGRITY_TRAILER } from '../constants.js'

/** Thrown when a request names a bad CID or path. */
export class BadRequestError extends ShoalError<'BAD_CID' | 'BAD_PATH' | 'FILE_EXISTS', { value: string }> {
  static override readonly categories: Record<BadRequestError['code'], ErrorCategory> = {
    BAD_CID: 'usage',
    BAD_PATH: 'usage',
    FILE_EXISTS: 'refused'
  }
}

export function parseCid(value: string): CID {
  try {
    return CID.parse(value)
  } catch {
    throw new BadRequestError('BAD_CID', `not a CID: ${value}`, { value })
  }
}

const cidString = z.string().min(1).describe('A CID (bafy…)')
const AddResult = z.object({ cid: z.string(), size: z.number(), encrypted: z.boolean() })
const Stat = z.object({
  cid: z.string(),
  encrypted: z.boolean(),
  size: z.number(),
  pinned: z.boolean(),
  name: z.string().optional(),
  ciphertextCid: z.string().optional(),
  chunkSize: z.number().optional()
})

export function storageMethods(store: ContentStore): RpcMethod[] {
  return [
    method({
      name: 'storage_add',
      summary: 'Add a file from the daemon host (encrypted for this node unless plain)',
      params: z.object({
        path: z.string().min(1).describe('Absolute path of a file on the daemon host'),
        plain: z.boolean().optional().describe('Store unencrypted (public data)'),
        name: z.string().max(255).optional()
      }),
      result: AddResult,
      handler: async ({ path, plain, name }, { signal }) => {
        const st = await stat(path).catch(() => undefined)
        if (st === undefined || !st.isFile())
          throw new BadRequestError('BAD_PATH', `no such file: ${path}`, { value: path })
        const r = await store.add(createReadStream(path), { plain: plain === true, name, signal })
        return { cid: r.cid.toString(), size: r.size, encrypted: r.encrypted }
      }
    }),
    method({
      name: 'storage_get',
      summary: 'Write the plaintext of a CID to a file on the daemon host',
      params: z.object({
        cid: cidString,
        path: z.string().min(1).describe('Absolute path to write; refused if it exists unless overwrite'),
        overwrite: z.boolean().optional()
      }),
      result: z.object({ cid: z.string(), path: z.string(), size: z.number() }),
      handler: async ({ cid, path, overwrite }, { signal }) => {
        if (overwrite !== true && (await stat(path).catch(() => undefined)) !== undefined) {
          throw new BadRequestError('FILE_EXISTS', `${path} exists (pass overwrite: true)`, { value: path })
        }
        // Write to a temp file and rename only once every chunk verified: no partial output on failure.
        const tmp = `${path}.shoal-partial`
        let size = 0
        try {
          await pipeline(
            Readable.from(
              (async function* () {
                for await (const chunk of store.get(parseCid(cid), { signal })) {
                  size += chunk.length
                  yield chunk
                }
              })()
            ),
            createWriteStream(tmp, { mode: 0o600 })
          )
          await rename(tmp, path)
        } catch (err) {
          await rm(tmp, { force: true })
          throw err
        }
        return { cid, path, size }
      }
    }),
    method({
      name: 'storage_stat',
      summary: 'Describe a stored object (encrypted or plain, size, pin state)',
      params: z.object({ cid: cidString }),
      result: Stat,
      handler: async ({ cid }) => {
        const s = await store.stat(parseCid(cid))
        return { ...s, cid: s.cid.toString(), ciphertextCid: s.ciphertextCid?.toString() }
      }
    }),
    method({
      name: 'storage_pins',
      summary: 'List pinned objects',
      params: z.object({}),
      result: z.array(z.object({ cid: z.string() })),
      handler: async () => {
        const out: Array<{ cid: string }> = []
        for await (const p of store.pins()) out.push({ cid: p.cid.toString() })
        return out
      }
    }),
    method({
      name: 'storage_unpin',
      summary: 'Unpin an object (its blocks go at the next gc)',
      params: z.object({ cid: cidString }),
      result: z.object({ cid: z.string() }),
      handler: async ({ cid }) => {
        await store.unpin(parseCid(cid))
        return { cid }
      }
    }),
    method({
      name: 'storage_gc',
      summary: 'Delete blocks that no pin references',
      params: z.object({}),
      result: z.object({ ok: z.boolean() }),
      handler: async (_p, { signal }) => {
        await store.gc({ signal })
        return { ok: true }
      }
    })
  ]
}

export function storageStreams(store: ContentStore): Record<string, StreamHandler> {
  return {
    [ADD_PATH]: async (req, res, url, signal) => {
      if (req.method !== 'POST')
        throw new BadRequestError('BAD_PATH', 'POST the file bytes', { value: req.method ?? '' })
      const plain = url.searchParams.get('plain') === 'true'
      const name = url.searchParams.get('name') ?? undefined
      const r = await store.add(req as AsyncIterable<Uint8Array>, { plain, name, signal })
      const body = JSON.stringify({ cid: r.cid.toString(), size: r.size, encrypted: r.encrypted })
      res.writeHead(200, { 'content-type': 'application/json' }).end(body)
    },
    [GET_PATH]: async (_req, res, url, signal) => {
      const cid = parseCid(url.searchParams.get('cid') ?? '')
      const s = await store.stat(cid)
      const it = store.get(cid, { signal })[Symbol.asyncIterator]()
      // Pull the first chunk before sending headers, so early failures get a proper status.
      let next = await it.next()
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'x-shoal-size': String(s.size),
        trailer: INTEGRITY_TRAILER
      })
      while (next.done !== true) {
        if (!res.write(next.value)) await new Promise<void>((resolve) => res.once('drain', resolve))
        next = await it.next()
      }
      res.addTrailers({ [INTEGRITY_TRAILER]: 'ok' })
      res.end()
    }
  }
}
