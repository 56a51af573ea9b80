// @ts-check
/**
 * ESLint rules that keep Shoal's layers honest (ARCHITECTURE.md, "Imports point one way"):
 *
 * - `shoal/layer-order`: a file in `src/<layer>/` imports only from its own layer or an earlier
 *   one, in the order common → identity → storage → p2p → training → node.
 * - `shoal/layer-surface`: another layer is used only through its `index.ts`
 *   (`../training/index.js`, never `../training/swarm/trainer.js` nor `../training/swarm/index.js`);
 *   inside a layer, a sibling folder is used only through its `index.ts` (`../data/index.js`, not
 *   `../data/dataset.js`). Files of the importer's own folder and of the folders above it are
 *   free to use.
 *
 * Relative imports only: packages are not layers. Checked by test/unit/lint/layers.spec.ts.
 */
import { dirname, join, normalize, relative, sep } from 'node:path'

/** The layers, earliest first: a layer may import from those before it. */
export const LAYERS = ['common', 'identity', 'storage', 'p2p', 'training', 'node']

/**
 * Where a file sits: its layer and its path inside that layer, or undefined outside `src/`.
 * @param {string} file an absolute or cwd-relative path
 * @param {string} root the repository root
 * @returns {{ layer: string, parts: string[] } | undefined}
 */
function locate(file, root) {
  const parts = relative(root, file).split(sep)
  if (parts[0] !== 'src' || parts.length < 3) return undefined
  const layer = parts[1]
  if (layer === undefined || !LAYERS.includes(layer)) return undefined
  return { layer, parts: parts.slice(2) }
}

/**
 * The reason an import from `file` of `spec` breaks a layer rule, or undefined when it is fine.
 * @param {string} file the importing file
 * @param {string} spec the import specifier as written
 * @param {string} root the repository root
 * @returns {{ rule: 'order' | 'surface', message: string } | undefined}
 */
export function layerViolation(file, spec, root) {
  if (!spec.startsWith('.')) return undefined
  const from = locate(file, root)
  if (from === undefined) return undefined
  const target = normalize(join(dirname(file), spec))
  const to = locate(target, root)
  if (to === undefined) return undefined
  if (to.layer !== from.layer) {
    if (LAYERS.indexOf(to.layer) > LAYERS.indexOf(from.layer)) {
      return {
        rule: 'order',
        message: `the ${from.layer} layer must not import from the later ${to.layer} layer (imports point one way: ${LAYERS.join(' → ')})`
      }
    }
    if (to.parts.length !== 1 || to.parts[0] !== 'index.js') {
      return {
        rule: 'surface',
        message: `import the ${to.layer} layer through src/${to.layer}/index.ts, not '${spec}'`
      }
    }
    return undefined
  }
  // Same layer: the importer's own folder and the folders above it are open; any other folder
  // is used through its index.
  const fromDir = from.parts.slice(0, -1)
  const toDir = to.parts.slice(0, -1)
  const above = toDir.length <= fromDir.length && toDir.every((p, i) => p === fromDir[i])
  if (above) return undefined
  // The first folder on the way down from the common ancestor must be entered through its index.
  let common = 0
  while (common < toDir.length && common < fromDir.length && toDir[common] === fromDir[common]) common++
  const entered = toDir.slice(0, common + 1).join('/')
  if (to.parts.length === common + 2 && to.parts[common + 1] === 'index.js') return undefined
  return {
    rule: 'surface',
    message: `use src/${from.layer}/${entered}/ through its index.ts, not '${spec}'`
  }
}

/**
 * @param {'order' | 'surface'} which
 * @returns {import('eslint').Rule.RuleModule}
 */
function rule(which) {
  return {
    meta: {
      type: 'problem',
      docs: { description: `Shoal layer ${which} rule (scripts/lint/layers.js)` },
      schema: []
    },
    create(context) {
      const root = context.cwd
      /** @param {any} node */
      const check = (node) => {
        const source = node.source
        if (source === null || source === undefined || typeof source.value !== 'string') return
        const v = layerViolation(context.filename, source.value, root)
        if (v !== undefined && v.rule === which) context.report({ node: source, message: v.message })
      }
      return {
        ImportDeclaration: check,
        ExportNamedDeclaration: check,
        ExportAllDeclaration: check,
        ImportExpression: check
      }
    }
  }
}

/** The plugin: `shoal/layer-order` and `shoal/layer-surface`. */
export default {
  meta: { name: 'shoal-layers' },
  rules: { 'layer-order': rule('order'), 'layer-surface': rule('surface') }
}
