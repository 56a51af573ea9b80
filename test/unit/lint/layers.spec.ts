import { strict as assert } from 'node:assert'
import { join } from 'node:path'
import { ESLint } from 'eslint'
import { layerViolation } from '../../../scripts/lint/layers.js'

const root = process.cwd()
const at = (p: string): string => join(root, p)

describe('lint: the layer rules (scripts/lint/layers.js)', () => {
  it('lets a layer import an earlier layer through its index, and nothing deeper', () => {
    assert.equal(layerViolation(at('src/node/jobs/runner.ts'), '../../training/index.js', root), undefined)
    assert.equal(layerViolation(at('src/training/graph/init.ts'), '../../common/index.js', root), undefined)
    const deep = layerViolation(at('src/node/jobs/runner.ts'), '../../training/swarm/index.js', root)
    assert.equal(deep?.rule, 'surface')
    assert.match(deep.message, /src\/training\/index\.ts/)
    assert.equal(
      layerViolation(at('src/training/graph/init.ts'), '../../common/rng.js', root)?.rule,
      'surface'
    )
  })

  it('refuses an import from a later layer, whatever the path', () => {
    const v = layerViolation(at('src/storage/content-store.ts'), '../training/index.js', root)
    assert.equal(v?.rule, 'order')
    assert.match(v.message, /storage layer must not import from the later training layer/)
    assert.equal(layerViolation(at('src/common/rng.ts'), '../identity/index.js', root)?.rule, 'order')
  })

  it('inside a layer: own folder and folders above are free; a sibling folder only through its index', () => {
    assert.equal(layerViolation(at('src/node/jobs/runner.ts'), './catalog.js', root), undefined)
    assert.equal(layerViolation(at('src/node/jobs/runner.ts'), '../records.js', root), undefined)
    assert.equal(layerViolation(at('src/node/node.ts'), './jobs/index.js', root), undefined)
    assert.equal(layerViolation(at('src/node/node.ts'), './jobs/runner.js', root)?.rule, 'surface')
    assert.equal(
      layerViolation(at('src/training/runtime/loop.ts'), '../data/dataset.js', root)?.rule,
      'surface'
    )
    assert.equal(layerViolation(at('src/training/runtime/loop.ts'), '../data/index.js', root), undefined)
  })

  it('ignores packages, node: modules and files outside src/', () => {
    assert.equal(layerViolation(at('src/node/node.ts'), 'libp2p', root), undefined)
    assert.equal(layerViolation(at('src/node/node.ts'), 'node:path', root), undefined)
    assert.equal(layerViolation(at('scripts/start.ts'), '../src/node/jobs/runner.js', root), undefined)
  })

  it('the repository’s ESLint config applies both rules to src/ (npm run lint checks every file)', async function () {
    this.timeout(120_000)
    const eslint = new ESLint({ cwd: root })
    const [bad] = await eslint.lintText(
      "import { Rng } from '../common/rng.js'\nimport { ShoalNode } from '../node/index.js'\nexport { Rng, ShoalNode }\n",
      { filePath: at('src/identity/probe.ts') }
    )
    const rules = bad!.messages.map((m) => m.ruleId).sort()
    assert.deepEqual(rules, ['shoal/layer-order', 'shoal/layer-surface'])
  })
})
