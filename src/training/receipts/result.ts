/**
 * The hash a receipt commits to: lowercase hex SHA-256 of the resulting weights in the SHOALWT1
 * encoding. The trainer that signs a receipt, the peer that checks an announced model against
 * it and the auditor that re-executes the round all call this one function: if it changed in
 * one place only, every honest round would fail audit.
 */
import { createHash } from 'node:crypto'
import { encodeWeights, type ShapeSource } from '../export/index.js'

export function resultHash(weights: ReadonlyMap<string, Float32Array>, params: ShapeSource): string {
  return createHash('sha256').update(encodeWeights(weights, params)).digest('hex')
}
