/**
 * IDX files (the format of the original MNIST distribution): a 4-byte magic
 * `0x00 0x00 <type> <ndim>`, then `ndim` big-endian uint32 dimensions, then the data,
 * row-major, big-endian. Labels files are `0x00000801` (ubyte, one dimension); features
 * files are ubyte (`0x08`, e.g. `0x00000803` for images) or float32 (`0x0D`) with 2 to
 * {@link IDX_MAX_DIMS} dimensions, the first being the sample count.
 *
 * Files are validated before anything is allocated for their data: the header must be
 * complete and the file size must be exactly what the header announces. The data is then
 * read straight into the result array, in chunks.
 */
import { open, writeFile, type FileHandle } from 'node:fs/promises'
import { logger } from '../../common/index.js'
import {
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  IDX_MAX_DIMS,
  IDX_TYPE_FLOAT32,
  IDX_TYPE_UBYTE,
  MAX_CLASSES
} from './constants.js'
import { assertDataset, dtypeOf, sampleSize, type Dataset } from './dataset.js'
import { DatasetArgumentError, DatasetParseError, type DatasetParseFields } from './errors.js'

const log = logger('shoal:storage:datasets')

const READ_CHUNK = 8 * 1024 * 1024

export interface ReadIdxOptions {
  /** Number of classes; labels must be below it. Default: `max(label) + 1`. */
  classes?: number
  signal?: AbortSignal
}

interface IdxFile {
  type: number
  dims: number[]
  data: Uint8Array | Float32Array
}

function parseError(
  file: string,
  reason: string,
  message: string,
  extra: Partial<DatasetParseFields> = {}
): never {
  throw new DatasetParseError('DATASET_PARSE', `${file}: ${message}`, { file, reason, ...extra })
}

const hex = (n: number): string => '0x' + n.toString(16).padStart(8, '0')

async function readExactly(
  fh: FileHandle,
  into: Uint8Array,
  position: number,
  signal?: AbortSignal
): Promise<number> {
  let done = 0
  while (done < into.length) {
    signal?.throwIfAborted()
    const len = Math.min(READ_CHUNK, into.length - done)
    const { bytesRead } = await fh.read(into, done, len, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}

async function readIdxFile(
  file: string,
  kind: 'features' | 'labels',
  signal?: AbortSignal
): Promise<IdxFile> {
  const fh = await open(file, 'r')
  try {
    const { size } = await fh.stat()
    if (size < 4) {
      parseError(file, 'truncated', `truncated: ${size} bytes, too short for the 4-byte IDX magic number`, {
        offset: size
      })
    }
    const magicBytes = new Uint8Array(4)
    await readExactly(fh, magicBytes, 0)
    const magic = new DataView(magicBytes.buffer).getUint32(0, false)
    const type = magicBytes[2]!
    const ndim = magicBytes[3]!
    if (kind === 'labels') {
      if (magic !== IDX_LABELS_MAGIC) {
        parseError(
          file,
          'bad-magic',
          `bad magic ${hex(magic)}: expected ${hex(IDX_LABELS_MAGIC)} (IDX labels: ubyte, 1 dimension)`,
          { offset: 0 }
        )
      }
    } else if (
      magicBytes[0] !== 0 ||
      magicBytes[1] !== 0 ||
      (type !== IDX_TYPE_UBYTE && type !== IDX_TYPE_FLOAT32) ||
      ndim < 2 ||
      ndim > IDX_MAX_DIMS
    ) {
      parseError(
        file,
        'bad-magic',
        `bad magic ${hex(magic)}: expected ${hex(IDX_IMAGES_MAGIC)} (IDX images: ubyte, 3 dimensions) ` +
          `or another ubyte (0x08) / float32 (0x0d) IDX file with 2 to ${IDX_MAX_DIMS} dimensions`,
        { offset: 0 }
      )
    }
    const headerBytes = 4 + 4 * ndim
    if (size < headerBytes) {
      parseError(
        file,
        'truncated',
        `truncated header: expected ${headerBytes} bytes (magic + ${ndim} dimensions), got ${size}`,
        { offset: size }
      )
    }
    const dimBytes = new Uint8Array(4 * ndim)
    await readExactly(fh, dimBytes, 4)
    const view = new DataView(dimBytes.buffer)
    const dims = Array.from({ length: ndim }, (_, i) => view.getUint32(4 * i, false))
    const zero = dims.findIndex((d) => d === 0)
    if (zero === 0) parseError(file, 'empty', 'contains no samples (dimension 0 is 0)', { offset: 4 })
    if (zero > 0) {
      parseError(file, 'bad-dims', `dimension ${zero} is 0 (dims [${dims.join(', ')}])`, {
        offset: 4 + 4 * zero
      })
    }
    const count = dims[0]!
    const elemBytes = type === IDX_TYPE_FLOAT32 ? 4 : 1
    const sampleBytes = sampleSize(dims.slice(1)) * elemBytes
    const expected = headerBytes + count * sampleBytes
    if (!Number.isSafeInteger(expected)) {
      parseError(file, 'bad-dims', `dimensions [${dims.join(', ')}] describe an impossibly large file`)
    }
    const what = kind === 'labels' ? 'labels' : 'samples'
    if (size < expected) {
      const sample = Math.floor((size - headerBytes) / sampleBytes)
      parseError(
        file,
        'truncated',
        `truncated: expected ${expected} bytes (${headerBytes}-byte header + ${count} ${what} × ${sampleBytes} bytes), ` +
          `got ${size}; the data ends at byte offset ${size}, in ${kind === 'labels' ? 'label' : 'sample'} ${sample} ` +
          `(${count - sample} of ${count} missing or incomplete)`,
        { offset: size, sample }
      )
    }
    if (size > expected) {
      parseError(
        file,
        'trailing-bytes',
        `expected ${expected} bytes (${headerBytes}-byte header + ${count} ${what} × ${sampleBytes} bytes), ` +
          `got ${size}: ${size - expected} unexpected bytes after the last sample, from byte offset ${expected}`,
        { offset: expected }
      )
    }
    const raw = new Uint8Array(count * sampleBytes)
    const got = await readExactly(fh, raw, headerBytes, signal)
    if (got !== raw.length) {
      // The file shrank while we read it.
      const sample = Math.floor(got / sampleBytes)
      parseError(
        file,
        'truncated',
        `truncated while reading: expected ${expected} bytes, got ${headerBytes + got}`,
        { offset: headerBytes + got, sample }
      )
    }
    if (type === IDX_TYPE_UBYTE) return { type, dims, data: raw }
    const floats = new Float32Array(raw.length / 4)
    const dv = new DataView(raw.buffer)
    for (let i = 0; i < floats.length; i++) floats[i] = dv.getFloat32(4 * i, false)
    return { type, dims, data: floats }
  } finally {
    await fh.close()
  }
}

/**
 * Read an IDX features file and its labels file (e.g. MNIST's `train-images-idx3-ubyte`
 * and `train-labels-idx1-ubyte`) into a `Dataset` whose per-sample shape is the features
 * file's dimensions after the first.
 *
 * Thrown `DatasetParseError` (code `DATASET_PARSE`) naming the file, with the byte offset
 * and sample index where relevant: bad magic, a zero dimension, a truncated file or bytes
 * beyond the announced size, sample counts that differ between the two files, a label at or
 * above `opts.classes`. I/O errors (ENOENT, …) pass through unchanged.
 */
export async function readIdx(
  imagesPath: string,
  labelsPath: string,
  opts: ReadIdxOptions = {}
): Promise<Dataset> {
  const images = await readIdxFile(imagesPath, 'features', opts.signal)
  const labels = await readIdxFile(labelsPath, 'labels', opts.signal)
  const count = images.dims[0]!
  const labelData = labels.data as Uint8Array
  if (labelData.length !== count) {
    parseError(
      labelsPath,
      'count-mismatch',
      `has ${labelData.length} labels but ${imagesPath} has ${count} samples`,
      { sample: Math.min(labelData.length, count) }
    )
  }
  let classes = opts.classes
  if (classes !== undefined) {
    if (!Number.isInteger(classes) || classes < 1 || classes > MAX_CLASSES) {
      throw new DatasetArgumentError(
        'DATASET_ARGUMENT',
        `classes must be an integer in [1, ${MAX_CLASSES}]`,
        {
          classes
        }
      )
    }
    for (let i = 0; i < count; i++) {
      if (labelData[i]! >= classes) {
        parseError(
          labelsPath,
          'label-out-of-range',
          `label ${labelData[i]} of sample ${i} (byte offset ${8 + i}) is not below classes ${classes}`,
          { sample: i, offset: 8 + i }
        )
      }
    }
  } else {
    classes = 0
    for (let i = 0; i < count; i++) classes = Math.max(classes, labelData[i]! + 1)
  }
  const ds: Dataset = {
    features: images.data,
    labels: labelData,
    count,
    shape: images.dims.slice(1),
    classes
  }
  assertDataset(ds)
  log.debug({ images: imagesPath, labels: labelsPath, count, shape: ds.shape, classes }, 'read IDX dataset')
  return ds
}

/**
 * Encode a dataset as an IDX pair: features (ubyte or float32, `1 + shape.length`
 * dimensions) and labels (`0x00000801`).
 *
 * Thrown `DatasetArgumentError` when the dataset has more than {@link IDX_MAX_DIMS} - 1
 * per-sample dimensions.
 */
export function encodeIdx(ds: Dataset): { images: Uint8Array; labels: Uint8Array } {
  assertDataset(ds)
  const dims = [ds.count, ...ds.shape]
  if (dims.length > IDX_MAX_DIMS) {
    throw new DatasetArgumentError(
      'DATASET_ARGUMENT',
      `IDX supports at most ${IDX_MAX_DIMS - 1} per-sample dims`
    )
  }
  const float = dtypeOf(ds) === 'float32'
  const header = 4 + 4 * dims.length
  const images = new Uint8Array(header + ds.features.length * (float ? 4 : 1))
  const iv = new DataView(images.buffer)
  iv.setUint32(0, ((float ? IDX_TYPE_FLOAT32 : IDX_TYPE_UBYTE) << 8) | dims.length, false)
  dims.forEach((d, i) => iv.setUint32(4 + 4 * i, d, false))
  if (float) {
    for (let i = 0; i < ds.features.length; i++) iv.setFloat32(header + 4 * i, ds.features[i]!, false)
  } else {
    images.set(ds.features, header)
  }
  const labels = new Uint8Array(8 + ds.count)
  const lv = new DataView(labels.buffer)
  lv.setUint32(0, IDX_LABELS_MAGIC, false)
  lv.setUint32(4, ds.count, false)
  labels.set(ds.labels, 8)
  return { images, labels }
}

/** Write a dataset as an IDX pair (see `encodeIdx`). */
export async function writeIdx(imagesPath: string, labelsPath: string, ds: Dataset): Promise<void> {
  const { images, labels } = encodeIdx(ds)
  await writeFile(imagesPath, images)
  await writeFile(labelsPath, labels)
}
