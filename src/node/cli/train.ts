/** `shoal train --local`: start the task over RPC, then poll it with a progress bar. */
import { setTimeout as sleep } from 'node:timers/promises'
import cliProgress from 'cli-progress'
import type { RpcClient } from '../rpc/index.js'

interface TaskView {
  id: string
  state: string
  epochs: number
  stepsPerEpoch: number
  epoch: number
  step: number
  history: Array<{ epoch: number; loss: number; accuracy?: number; checkpoint?: string }>
  executionProvider?: string
  samplesPerSecond?: number
  error?: { code?: string; message: string }
}

export async function trainWithProgress(
  client: RpcClient,
  params: Record<string, unknown>,
  human: boolean
): Promise<TaskView> {
  const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined))
  const { task } = await client.call<{ task: string }>('train_local', clean)
  const bar =
    human && process.stderr.isTTY === true
      ? new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: 'epoch {epoch}/{epochs} {bar} {percentage}% | loss {loss}',
            hideCursor: true
          },
          cliProgress.Presets.shades_classic
        )
      : undefined
  let printed = 0
  let view: TaskView | undefined
  const onSigint = (): void => {
    void client.call('train_cancel', { task })
  }
  process.once('SIGINT', onSigint)
  try {
    for (;;) {
      view = await client.call<TaskView>('train_status', { task })
      const total = view.epochs * view.stepsPerEpoch
      if (bar !== undefined) {
        if (printed === 0 && view.step === 0)
          bar.start(total, 0, { epoch: 1, epochs: view.epochs, loss: '-' })
        bar.update(Math.min(total, view.epoch * view.stepsPerEpoch + view.step), {
          epoch: Math.min(view.epochs, view.epoch + 1),
          epochs: view.epochs,
          loss: view.history.at(-1)?.loss.toFixed(4) ?? '-'
        })
      }
      while (human && printed < view.history.length) {
        const h = view.history[printed++]!
        const line = `epoch ${h.epoch + 1}/${view.epochs}  loss ${h.loss.toFixed(4)}${h.accuracy !== undefined ? `  held-out accuracy ${(h.accuracy * 100).toFixed(2)}%` : ''}${h.checkpoint !== undefined ? `  checkpoint ${h.checkpoint}` : ''}`
        if (bar !== undefined) bar.stop()
        console.log(line)
      }
      if (view.state !== 'running') break
      await sleep(500)
    }
  } finally {
    bar?.stop()
    process.off('SIGINT', onSigint)
  }
  if (human) {
    if (view.state === 'done') {
      console.log(`done on ${view.executionProvider ?? '?'} at ${view.samplesPerSecond ?? '?'} samples/s`)
    } else {
      console.error(`training ${view.state}: ${view.error?.message ?? ''}`)
    }
  }
  return view
}
