/** `shoal predict`: run a job's current model (or a checkpoint) on inputs. */
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import type { CliContext } from './context.js'
import { registerGenerateCommand } from './generate.js'

/** Registers `shoal predict` and `shoal generate` (a language model's) on `program`. */
export function registerPredictCommands(program: Command, ctx: CliContext): void {
  registerGenerateCommand(program, ctx)
  program
    .command('predict <inputs>')
    .description('run the current model of a job on inputs (a JSON file: an array of flattened samples)')
    .option('--job <id>', 'the job whose latest checkpoint to use')
    .option('--checkpoint <cid>', 'or a checkpoint')
    .action(async (file: string, o: { job?: string; checkpoint?: string }) => {
      const inputs = JSON.parse(await readFile(file, 'utf8')) as number[][]
      const r = await (
        await ctx.client()
      ).call<{ predictions: Array<{ label: number; probs: number[] }> }>('model_predict', {
        inputs,
        ...(o.job !== undefined ? { job: o.job } : {}),
        ...(o.checkpoint !== undefined ? { checkpoint: o.checkpoint } : {})
      })
      ctx.out(ctx.json(), r, () =>
        r.predictions
          .map((p, i) => `${i}: ${p.label} (${(Math.max(...p.probs) * 100).toFixed(1)}%)`)
          .join('\n')
      )
    })
}
