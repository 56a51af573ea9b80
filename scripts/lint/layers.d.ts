/** Types of scripts/lint/layers.js (an ESLint plugin, plain JS so that eslint.config.js loads it). */
import type { ESLint } from 'eslint'

export declare const LAYERS: string[]
export declare function layerViolation(
  file: string,
  spec: string,
  root: string
): { rule: 'order' | 'surface'; message: string } | undefined
declare const plugin: ESLint.Plugin
export default plugin
