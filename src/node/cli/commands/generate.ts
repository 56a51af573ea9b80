/** `shoal generate`: continue a prompt with a language model (a gpt job's latest model, or a checkpoint). */
import type { Command } from 'commander'
import { ShoalError } from '../../../common/index.js'
import type { CliContext } from './context.js'

/** Thrown for a `shoal generate` command line that names no model or a bad number. */
export class GenerateUsageError extends ShoalError<'GENERATE_USAGE'> {
  static override readonly category = 'usage'
}

function number(name: string, integer: boolean): (v: string) => number {
  return (v) => {
    const n = Number(v)
    if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new GenerateUsageError(
        'GENERATE_USAGE',
        `${name} takes ${integer ? 'an integer' : 'a number'}, got '${v}'`,
        {
          [name]: v
        }
      )
    }
    return n
  }
}

/** Registers `shoal generate` on `program`. */
export function registerGenerateCommand(program: Command, ctx: CliContext): void {
  program
    .command('generate')
    .description('continue a prompt with a language model: the latest model of a gpt job, or a checkpoint')
    .option('--job <id>', 'the job whose latest checkpoint to use')
    .option('--checkpoint <cid>', 'or a checkpoint')
    .requiredOption('--prompt <text>', 'the text to continue (its UTF-8 bytes are the tokens)')
    .option('--tokens <n>', 'tokens (bytes) to generate (default 200)', number('--tokens', true))
    .option(
      '--temperature <t>',
      'sampling temperature (default 0.8; 0: greedy)',
      number('--temperature', false)
    )
    .option('--seed <n>', 'sampling seed (default 1)', number('--seed', true))
    .action(
      async (o: {
        job?: string
        checkpoint?: string
        prompt: string
        tokens?: number
        temperature?: number
        seed?: number
      }) => {
        if ((o.job === undefined) === (o.checkpoint === undefined)) {
          throw new GenerateUsageError('GENERATE_USAGE', 'name exactly one of --job and --checkpoint', {})
        }
        const { prompt, job, checkpoint, tokens, temperature, seed } = o
        const params = Object.fromEntries(
          Object.entries({ prompt, job, checkpoint, tokens, temperature, seed }).filter(
            ([, v]) => v !== undefined
          )
        )
        const r = await (
          await ctx.client()
        ).call<{ checkpoint: string; text: string; completion: string }>('model_generate', params)
        ctx.out(ctx.json(), r, () => r.text)
      }
    )
}
