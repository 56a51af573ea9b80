/**
 * A long fuzz run: the same properties as `test/unit/fuzz/*.spec.ts` (run by mocha in this
 * process), with more inputs, then the count of inputs tried per decoder.
 *
 *   npm run fuzz                              # FUZZ_SECONDS=600 spread over the properties
 *   FUZZ_SECONDS=3600 npm run fuzz            # an hour
 *   FUZZ_RUNS=20000 npm run fuzz              # 20,000 inputs per property, no time limit
 *   FUZZ_SEED=7 npm run fuzz                  # another seed (default: random, printed)
 *   npm run fuzz -- --grep gossip             # only the properties whose title matches
 *
 * Each property stops at FUZZ_RUNS inputs or at its share of FUZZ_SECONDS, whichever comes
 * first. Exits 1 when a property fails (mocha prints the counterexample and its seed).
 * Prints a Markdown table of inputs per decoder and the total, for BENCHMARKS.md.
 */
import { cpus } from 'node:os'
import { readdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Mocha from 'mocha'
import { tally } from '../test/unit/fuzz/arbitraries.js'

const { values } = parseArgs({ options: { grep: { type: 'string' } } })
const dir = fileURLToPath(new URL('../test/unit/fuzz/', import.meta.url))
const seconds = Number(process.env.FUZZ_SECONDS ?? (process.env.FUZZ_RUNS === undefined ? 600 : 0))
process.env.FUZZ_SEED ??= String(Math.floor(Math.random() * 2 ** 31))
process.env.FUZZ_RUNS ??= String(1e9)
process.env.SHOAL_LOG ??= 'silent'

const mocha = new Mocha({ timeout: 0, reporter: 'spec' })
if (values.grep !== undefined) mocha.grep(values.grep)
for (const f of (await readdir(dir)).filter((f) => f.endsWith('.spec.ts')).sort()) mocha.addFile(join(dir, f))
await mocha.loadFilesAsync()

// The properties are the tests that call fc.assert: every test but the regressions and checks.
let properties = 0
const walk = (suite: Mocha.Suite): void => {
  for (const t of suite.tests) {
    if (values.grep !== undefined && !new RegExp(values.grep).test(t.fullTitle())) continue
    if (!/regression|named errors|errors are/i.test(t.title)) properties++
  }
  suite.suites.forEach(walk)
}
walk(mocha.suite)
if (seconds > 0) process.env.FUZZ_PROPERTY_MS = String(Math.floor((seconds * 1000) / Math.max(1, properties)))

const started = Date.now()
console.log(
  `fuzz: seed ${process.env.FUZZ_SEED}, ${properties} properties, ` +
    (seconds > 0 ? `${seconds} s in all (${process.env.FUZZ_PROPERTY_MS} ms each)` : '') +
    (process.env.FUZZ_RUNS === String(1e9) ? '' : `, at most ${process.env.FUZZ_RUNS} inputs each`) +
    `, ${cpus().length} cores`
)
const failures = await new Promise<number>((resolve) => mocha.run(resolve))

const rows = [...tally.entries()]
  .filter(([k]) => !k.startsWith('skipped:'))
  .sort(([a], [b]) => a.localeCompare(b))
const total = rows.reduce((n, [, c]) => n + c, 0)
console.log(`\n| decoder | inputs |\n| --- | ---: |`)
for (const [k, c] of rows) console.log(`| ${k} | ${c.toLocaleString('en-US')} |`)
console.log(`| **total** | **${total.toLocaleString('en-US')}** |`)
const skipped = [...tally.entries()].filter(([k]) => k.startsWith('skipped:'))
if (skipped.length > 0) {
  console.log(`\nnot sent (valid params of methods that would start long or outside work):`)
  for (const [k, c] of skipped) console.log(`  ${k.slice('skipped:'.length)}: ${c}`)
}
console.log(
  `\n${total.toLocaleString('en-US')} inputs in ${Math.round((Date.now() - started) / 1000)} s, ` +
    `seed ${process.env.FUZZ_SEED}, ${failures} failing propert${failures === 1 ? 'y' : 'ies'}`
)
process.exit(failures > 0 ? 1 : 0)
