/** `shoal train --local` and `shoal model list|export|import`. */
import { resolve as resolvePath } from 'node:path'
import type { Command } from 'commander'
import type { CliContext } from './context.js'

/** Exit code of `shoal train` when the run does not end `done` (EXIT.ERROR in main.ts). */
export const EXIT_TRAINING_FAILED = 1

/** Registers `shoal train` and `shoal model` on `program`. */
export function registerTrainingCommands(program: Command, ctx: CliContext): void {
  program
    .command('train')
    .description('train a model; --local runs the centralized baseline on MNIST in the daemon')
    .requiredOption('--local', 'train on this node alone (the centralized baseline)')
    .option('--model <name>', 'mlp or cnn', 'mlp')
    .option('--epochs <n>', 'epochs', (v) => Number.parseInt(v, 10))
    .option('--batch-size <n>', 'batch size', (v) => Number.parseInt(v, 10))
    .option('--lr <rate>', 'peak learning rate (cosine schedule)', Number.parseFloat)
    .option('--seed <n>', 'seed of the split, the initial weights and the shuffles', (v) =>
      Number.parseInt(v, 10)
    )
    .option(
      '--samples <n>',
      'training samples drawn from the 10,000 digits (default 8000; 2000 are held out)',
      (v) => Number.parseInt(v, 10)
    )
    .option('--from <checkpoint>', 'start from this checkpoint (e.g. an imported model)')
    .option('--dataset <manifest>', 'train on a dataset this node owns (a personal model on your own data)')
    .option('--deterministic', 'CPU, one thread: bit-reproducible')
    .action(
      async (opts: {
        model: string
        epochs?: number
        batchSize?: number
        lr?: number
        seed?: number
        samples?: number
        from?: string
        dataset?: string
        deterministic?: boolean
      }) => {
        const { trainWithProgress } = await import('../train.js')
        const r = await trainWithProgress(
          await ctx.client(),
          {
            model: opts.model,
            epochs: opts.epochs,
            batchSize: opts.batchSize,
            lr: opts.lr,
            seed: opts.seed,
            trainSamples: opts.samples,
            initialCheckpoint: opts.from,
            dataset: opts.dataset,
            deterministic: opts.deterministic
          },
          !ctx.json()
        )
        if (ctx.json()) ctx.out(true, r, () => '')
        else if (r.state !== 'done') process.exitCode = EXIT_TRAINING_FAILED
      }
    )

  const modelCmd = program.command('model').description('checkpoints: list, export as ONNX, import')
  modelCmd
    .command('list')
    .description('checkpoints held by this node')
    .action(async () => {
      const r = await (
        await ctx.client()
      ).call<Array<{ cid: string; source: string; epoch?: number; accuracy?: number }>>('model_list')
      ctx.out(ctx.json(), r, () =>
        r
          .map(
            (m) =>
              `${m.cid}  ${m.source}${m.epoch !== undefined ? ` epoch ${m.epoch}` : ''}${m.accuracy !== undefined ? `  acc ${(m.accuracy * 100).toFixed(2)}%` : ''}`
          )
          .join('\n')
      )
    })
  modelCmd
    .command('export <checkpoint>')
    .description('write a checkpoint as a standard ONNX model')
    .requiredOption('-o, --output <file>', 'where to write the .onnx file')
    .action(async (cid: string, opts: { output: string }) => {
      const r = await (
        await ctx.client()
      ).call<{ path: string; bytes: number }>('model_export', {
        checkpoint: cid,
        path: resolvePath(opts.output)
      })
      ctx.out(ctx.json(), r, () => `wrote ${r.path} (${r.bytes} bytes)`)
    })
  modelCmd
    .command('import <file>')
    .description('import an ONNX model exported by Shoal as a checkpoint')
    .action(async (file: string) => {
      const r = await (
        await ctx.client()
      ).call<{ checkpoint: string; consent: Array<{ grant: string; status: string }>; warnings: string[] }>(
        'model_import',
        { path: resolvePath(file) }
      )
      ctx.out(ctx.json(), r, () =>
        [
          `imported as checkpoint ${r.checkpoint}`,
          ...(r.consent.length > 0
            ? [
                `trained on data of ${r.consent.length} grant(s): ${r.consent.map((c) => `${c.grant} (${c.status})`).join(', ')}`
              ]
            : []),
          ...r.warnings.map((w) => `warning: ${w}`)
        ].join('\n')
      )
    })
}
