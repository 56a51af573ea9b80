/**
 * Numeric CSV files: one sample per line, one column holding an integer class label,
 * every other column a number (stored as float32). Read line by line (readline), so a
 * large file is never held in memory as text.
 *
 * Accepted: `,` (or `opts.delimiter`) separated fields, optional surrounding whitespace,
 * CRLF or LF line ends, a UTF-8 BOM, blank lines (skipped, but counted in line numbers),
 * header names in double quotes. Not supported: quoted fields containing the delimiter
 * (a numeric file has none).
 */
import { open } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { logger } from '../../common/index.js'
import { MAX_CLASSES } from './constants.js'
import { assertDataset, type Dataset } from './dataset.js'
import { DatasetArgumentError, DatasetParseError, type DatasetParseFields } from './errors.js'

const log = logger('shoal:storage:datasets')

export interface ReadCsvOptions {
  /** The label column: its header name (needs a header) or its 0-based index. */
  labelColumn: string | number
  /** Whether line 1 is a header. Default: true when `labelColumn` is a name, false when an index. */
  header?: boolean
  /** Number of classes; labels must be integers in `[0, classes)`. Default: `max(label) + 1` (at most 256). */
  classes?: number
  /** Field separator, default `,`. */
  delimiter?: string
  signal?: AbortSignal
}

function parseError(
  file: string,
  reason: string,
  message: string,
  extra: Partial<DatasetParseFields> = {}
): never {
  const where = extra.line !== undefined ? `line ${extra.line}` : ''
  const col =
    extra.column !== undefined
      ? `, column ${extra.column}${extra.columnName !== undefined ? ` ("${extra.columnName}")` : ''}`
      : ''
  throw new DatasetParseError('DATASET_PARSE', `${file}${where ? `: ${where}${col}` : ''}: ${message}`, {
    file,
    reason,
    ...extra
  })
}

const unquote = (s: string): string => {
  const t = s.trim()
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).replace(/""/g, '"') : t
}

/**
 * Read a numeric CSV file into a `Dataset` with float32 features of shape `[columns - 1]`.
 *
 * Thrown `DatasetParseError` (code `DATASET_PARSE`) naming the file, the 1-based line
 * number and the column: a row with the wrong number of columns, an empty or non-numeric
 * value, a value beyond float32 range, a label that is not an integer in range, an unknown
 * label column, or a file with no data rows. I/O errors (ENOENT, …) pass through unchanged.
 * Nothing is returned unless the whole file parsed.
 */
export async function readCsv(path: string, opts: ReadCsvOptions): Promise<Dataset> {
  const header = opts.header ?? typeof opts.labelColumn === 'string'
  const delimiter = opts.delimiter ?? ','
  const maxClasses = opts.classes ?? MAX_CLASSES
  if (!Number.isInteger(maxClasses) || maxClasses < 1 || maxClasses > MAX_CLASSES) {
    throw new DatasetArgumentError('DATASET_ARGUMENT', `classes must be an integer in [1, ${MAX_CLASSES}]`, {
      classes: opts.classes
    })
  }
  if (typeof opts.labelColumn === 'string' && !header) {
    throw new DatasetArgumentError(
      'DATASET_ARGUMENT',
      `labelColumn "${opts.labelColumn}" is a name, but header is false`
    )
  }

  const fh = await open(path, 'r')
  const stream = fh.createReadStream({ encoding: 'utf8', autoClose: false })
  const rl = createInterface({ input: stream, crlfDelay: Infinity })

  let names: string[] | undefined
  let columns = -1
  let labelIdx = -1
  let nFeatures = 0
  let count = 0
  let maxLabel = -1
  let features = new Float32Array(0)
  let labels = new Uint8Array(0)
  let lineNo = 0

  const colInfo = (c: number): { column: number; columnName?: string } =>
    names?.[c] !== undefined ? { column: c + 1, columnName: names[c] } : { column: c + 1 }

  try {
    for await (const rawLine of rl) {
      lineNo++
      if (lineNo % 4096 === 0) opts.signal?.throwIfAborted()
      const line = lineNo === 1 && rawLine.startsWith('\uFEFF') ? rawLine.slice(1) : rawLine
      if (line.trim() === '') continue
      const fields = line.split(delimiter)

      if (columns < 0) {
        columns = fields.length
        if (columns < 2) {
          parseError(
            path,
            'columns',
            `expected a label column and at least one feature column, got ${columns}`,
            {
              line: lineNo
            }
          )
        }
        if (typeof opts.labelColumn === 'string') {
          names = fields.map(unquote)
          labelIdx = names.indexOf(opts.labelColumn)
          if (labelIdx < 0) {
            parseError(path, 'label-column', `no column named "${opts.labelColumn}" in the header`, {
              line: lineNo
            })
          }
        } else {
          if (header) names = fields.map(unquote)
          labelIdx = opts.labelColumn
          if (!Number.isInteger(labelIdx) || labelIdx < 0 || labelIdx >= columns) {
            parseError(path, 'label-column', `label column index ${labelIdx} not in [0, ${columns})`, {
              line: lineNo
            })
          }
        }
        nFeatures = columns - 1
        features = new Float32Array(1024 * nFeatures)
        labels = new Uint8Array(1024)
        if (header) continue
      }

      if (fields.length !== columns) {
        parseError(path, 'columns', `expected ${columns} columns, got ${fields.length}`, {
          line: lineNo,
          ...(fields.length < columns ? colInfo(fields.length) : { column: columns + 1 })
        })
      }
      if (count === labels.length) {
        const f = new Float32Array(features.length * 2)
        f.set(features)
        features = f
        const l = new Uint8Array(labels.length * 2)
        l.set(labels)
        labels = l
      }
      let out = count * nFeatures
      for (let c = 0; c < columns; c++) {
        const text = fields[c]!.trim()
        if (text === '') parseError(path, 'empty', 'empty value', { line: lineNo, ...colInfo(c) })
        const v = Number(text)
        if (!Number.isFinite(v)) {
          parseError(path, 'non-numeric', `non-numeric value "${text.slice(0, 40)}"`, {
            line: lineNo,
            ...colInfo(c)
          })
        }
        if (c === labelIdx) {
          if (!Number.isInteger(v) || v < 0 || v >= maxClasses) {
            parseError(path, 'label-out-of-range', `label ${text} is not an integer in [0, ${maxClasses})`, {
              line: lineNo,
              ...colInfo(c)
            })
          }
          labels[count] = v
          if (v > maxLabel) maxLabel = v
        } else {
          const f = Math.fround(v)
          if (!Number.isFinite(f)) {
            parseError(path, 'out-of-range', `value ${text} is beyond float32 range`, {
              line: lineNo,
              ...colInfo(c)
            })
          }
          features[out++] = f
        }
      }
      count++
    }
  } finally {
    rl.close()
    stream.destroy()
    await fh.close()
  }
  if (count === 0) parseError(path, 'empty', 'contains no data rows')

  const ds: Dataset = {
    features: features.slice(0, count * nFeatures),
    labels: labels.slice(0, count),
    count,
    shape: [nFeatures],
    classes: opts.classes ?? maxLabel + 1
  }
  assertDataset(ds)
  log.debug({ file: path, count, features: nFeatures, classes: ds.classes }, 'read CSV dataset')
  return ds
}
