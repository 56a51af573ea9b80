/** A line chart over rounds (uPlot): one or two series, redrawn in place when data grows. */
import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'

export interface Series {
  label: string
  color: string
  /** Values by x (null: a gap). */
  values: Array<number | null>
  /** Plot on the right-hand axis (0–1 scale), e.g. accuracy beside a loss. */
  right?: boolean
}

export function RoundChart(props: { x: number[]; series: Series[]; height?: number; testId?: string }) {
  const host = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const data = (): uPlot.AlignedData => [props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData

  useEffect(() => {
    const el = host.current!
    const opts: uPlot.Options = {
      width: Math.max(320, el.clientWidth),
      height: props.height ?? 240,
      scales: { x: { time: false }, r: { range: [0, 1] } },
      axes: [
        { label: 'round', stroke: '#9aa7b8', grid: { stroke: '#243040' }, ticks: { stroke: '#243040' } },
        { label: 'loss', stroke: '#9aa7b8', grid: { stroke: '#243040' }, ticks: { stroke: '#243040' } },
        { scale: 'r', side: 1, label: 'accuracy', stroke: '#9aa7b8', grid: { show: false } }
      ],
      series: [
        { label: 'round' },
        ...props.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          points: { show: true, size: 5 },
          ...(s.right === true ? { scale: 'r' } : {})
        }))
      ]
    }
    plot.current = new uPlot(opts, data(), el)
    const resize = new ResizeObserver(() =>
      plot.current?.setSize({ width: Math.max(320, el.clientWidth), height: opts.height })
    )
    resize.observe(el)
    return () => {
      resize.disconnect()
      plot.current?.destroy()
      plot.current = null
    }
  }, [props.series.length])

  useEffect(() => {
    plot.current?.setData(data())
  })

  return <div class="chart" ref={host} data-testid={props.testId} data-points={props.x.length} />
}
