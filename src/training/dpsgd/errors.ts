import { ShoalError } from '../../common/index.js'

/** Thrown when a model holds a layer the DP-SGD graph has no per-example gradient rule for. */
export class DpsgdGraphError extends ShoalError<'DPSGD_GRAPH_UNSUPPORTED'> {
  static override readonly category = 'refused'

  constructor(message: string, fields: Record<string, unknown> = {}) {
    super('DPSGD_GRAPH_UNSUPPORTED', message, fields)
  }
}
