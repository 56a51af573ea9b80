/**
 * Builds the GPU check bundle: `npm run gpu-check` → `gpu-bundle/` (GPU_BUNDLE_DIR), at most
 * 64 MiB, self-contained for a machine with a GPU and no Node.js:
 *
 * - `runtime.tar.xz`: this project's Node 22 binary and onnxruntime-node (its JS and the Linux
 *   x64 native libraries: libonnxruntime.so.1 with the CPU and WebGPU providers) with
 *   onnxruntime-common, xz-compressed;
 * - `bench.mjs`: scripts/gpu-bench.ts and the training code it uses, bundled with esbuild;
 * - the Vulkan loader packages from Debian (`apt-get download libvulkan1`), which the WebGPU
 *   provider (Dawn) needs and GPU containers often lack (skip with GPU_CHECK_VULKAN=0);
 * - `run.sh`: unpacks into a temp dir, installs the loader into that dir only, samples the
 *   GPU's memory with nvidia-smi while the benchmark runs, and writes `gpu-check.json` (and
 *   `gpu-memory.txt`) to $OUT (or the bundle's out/).
 *
 * It prints the one command to run there. Environment: GPU_BUNDLE_DIR (gpu-bundle),
 * GPU_CHECK_XZ (xz preset, 6), GPU_CHECK_VULKAN (1).
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, cpSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { build } from 'esbuild'

/** What the device tool carries at most (the whole working tree). */
export const BUNDLE_LIMIT_BYTES = 64 * 1024 * 1024

const root = resolve(dirname(new URL(import.meta.url).pathname), '..')
const out = resolve(root, process.env.GPU_BUNDLE_DIR ?? 'gpu-bundle')
const preset = process.env.GPU_CHECK_XZ ?? '6'
const require = createRequire(import.meta.url)

function sizeOf(path: string): number {
  const st = statSync(path)
  if (!st.isDirectory()) return st.size
  return readdirSync(path).reduce((n, f) => n + sizeOf(join(path, f)), 0)
}

const RUN_SH = `#!/usr/bin/env bash
# Shoal's GPU check: unpack, run the benchmark on every execution provider, write the figures.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d /tmp/shoal-gpu.XXXXXX)"
out="\${OUT:-$here/out}"
mkdir -p "$out"
tar -xJf "$here/runtime.tar.xz" -C "$work"
cp "$here/bench.mjs" "$work/"
if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then
  for deb in "$here"/*.deb; do
    [ -e "$deb" ] || continue
    dpkg -x "$deb" "$work/vk"
  done
  if [ -d "$work/vk" ]; then
    export LD_LIBRARY_PATH="$work/vk/usr/lib/x86_64-linux-gnu:\${LD_LIBRARY_PATH:-}"
  fi
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "\${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; fi
peak="$out/gpu-memory.txt"
: >"$peak"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$out/gpu.txt" || true
  (while sleep 0.5; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1 >>"$peak" || true; done) &
  sampler=$!
fi
status=0
(cd "$work" && ./bin/node bench.mjs --out "$out/gpu-check.json") || status=$?
if [ -n "\${sampler:-}" ]; then kill "$sampler" 2>/dev/null || true; fi
if [ -s "$peak" ]; then echo "peak GPU memory used: $(sort -n "$peak" | tail -1) MiB (nvidia-smi, every 0.5 s)"; fi
rm -rf "$work"
exit "$status"
`

async function main(): Promise<void> {
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })

  // 1. The benchmark and the training code, one ES module (onnxruntime-node stays external).
  await build({
    entryPoints: [join(root, 'scripts/gpu-bench.ts')],
    outfile: join(out, 'bench.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    external: ['onnxruntime-node'],
    banner: {
      js: "import { createRequire as __shoalRequire } from 'node:module'; const require = __shoalRequire(import.meta.url);"
    },
    logLevel: 'warning'
  })

  // 2. Node 22 and onnxruntime-node for Linux x64, compressed.
  const stage = join(out, '.stage')
  const ortDir = dirname(require.resolve('onnxruntime-node/package.json'))
  const commonDir = [
    join(ortDir, 'node_modules/onnxruntime-common'),
    join(ortDir, '../onnxruntime-common')
  ].find((d) => statSync(d, { throwIfNoEntry: false })?.isDirectory() === true)
  if (commonDir === undefined) throw new Error(`onnxruntime-common not found beside ${ortDir}`)
  mkdirSync(join(stage, 'bin'), { recursive: true })
  cpSync(process.execPath, join(stage, 'bin/node'))
  const ortTarget = join(stage, 'node_modules/onnxruntime-node')
  cpSync(ortDir, ortTarget, {
    recursive: true,
    filter: (src) => {
      const rel = relative(ortDir, src)
      return (
        !rel.startsWith('bin') ||
        rel === 'bin' ||
        rel.startsWith(join('bin', 'napi-v6', 'linux', 'x64')) ||
        rel === join('bin', 'napi-v6') ||
        rel === join('bin', 'napi-v6', 'linux')
      )
    }
  })
  cpSync(commonDir, join(stage, 'node_modules/onnxruntime-common'), { recursive: true })
  execFileSync('tar', ['-cJf', join(out, 'runtime.tar.xz'), '-C', stage, 'bin', 'node_modules'], {
    env: { ...process.env, XZ_OPT: `-${preset} -T0` },
    stdio: 'inherit'
  })
  rmSync(stage, { recursive: true, force: true })

  // 3. The Vulkan loader (the WebGPU provider needs it), from Debian's archive.
  if (process.env.GPU_CHECK_VULKAN !== '0') {
    try {
      execFileSync('apt-get', ['download', 'libvulkan1'], { cwd: out, stdio: 'pipe' })
    } catch (err) {
      console.warn(
        `could not download libvulkan1 (${(err as Error).message.split('\n')[0]}); WebGPU needs a loader on the GPU machine`
      )
    }
  }

  // 4. The runner.
  writeFileSync(join(out, 'run.sh'), RUN_SH)
  chmodSync(join(out, 'run.sh'), 0o755)

  const total = sizeOf(out)
  const rel = relative(root, out)
  console.log(
    `bundle ${rel}/: ${(total / 2 ** 20).toFixed(1)} MiB (limit ${BUNDLE_LIMIT_BYTES / 2 ** 20} MiB)`
  )
  for (const f of readdirSync(out)) console.log(`  ${f}  ${(sizeOf(join(out, f)) / 2 ** 20).toFixed(1)} MiB`)
  if (total > BUNDLE_LIMIT_BYTES) {
    console.error('the bundle is over the limit')
    process.exit(1)
  }
  console.log(
    `\nRun it on the GPU machine (device tool): run(command="bash ${rel}/run.sh", carry=["${rel}"], timeout_s=480)`
  )
  console.log(`Here, on the CPU: GPU_CHECK_DEVICES=cpu-parallel bash ${rel}/run.sh`)
}

await main()
