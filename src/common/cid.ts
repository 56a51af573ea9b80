/**
 * Content ids of small documents (job JWTs, grants, receipts, raw blocks): the CIDv1 with codec
 * `raw` (0x55) and a sha2-256 multihash, base32 (`bafkrei…`) — the CID the bytes get when stored
 * as one raw block. One definition, so that every layer names the same bytes the same way.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

/** Multicodec `raw`. */
export const RAW_CODEC = 0x55
/** Multihash code of sha2-256. */
export const SHA2_256_CODE = 0x12

/** The CIDv1 (raw, sha2-256) of `bytes` (a string is taken as its UTF-8 bytes), base32. */
export function rawCid(bytes: Uint8Array | string): string {
  const hash = createHash('sha256')
  if (typeof bytes === 'string') hash.update(bytes, 'utf8')
  else hash.update(bytes)
  return CID.createV1(RAW_CODEC, Digest.create(SHA2_256_CODE, new Uint8Array(hash.digest()))).toString()
}
