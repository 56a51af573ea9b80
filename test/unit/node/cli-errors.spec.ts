import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { ERROR_CATEGORIES, ShoalError } from '../../../src/common/index.js'
import { KeystoreError } from '../../../src/identity/index.js'
import { GrantError } from '../../../src/storage/grants/index.js'
import {
  DatasetArgumentError,
  DatasetParseError,
  ManifestError
} from '../../../src/storage/datasets/index.js'
import { IntegrityError, NotAuthorizedError, NotFoundError } from '../../../src/storage/index.js'
import { JobError, ReceiptBindingError } from '../../../src/training/swarm/errors.js'
import { CATEGORY_EXIT, EXIT, exitCodeOf, main, parseExpiry } from '../../../src/node/cli/main.js'
import { DaemonNotRunningError } from '../../../src/node/cli/connect.js'
import { EXIT_TRAINING_FAILED } from '../../../src/node/cli/commands/index.js'
import { EXIT_RECEIPT_INVALID } from '../../../src/node/cli/receipts.js'
import { ConfigError } from '../../../src/node/config/index.js'
import { DatasetRequestError } from '../../../src/node/datasets.js'
import { JobRequestError } from '../../../src/node/jobs/index.js'
import { BadRequestError } from '../../../src/node/methods/storage.js'
import { PeerDialError } from '../../../src/node/methods/p2p.js'
import { TrainingRequestError } from '../../../src/node/methods/training.js'
import { ReceiptRequestError } from '../../../src/node/receipts.js'
import { RepoError } from '../../../src/node/repo/index.js'
import {
  DaemonUnreachableError,
  RpcCallError,
  RpcServer,
  method,
  toRpcError
} from '../../../src/node/rpc/index.js'
import { SwarmError } from '../../../src/node/swarm.js'

/** A class the client side knows nothing of: only its category on the wire says what it is. */
class PeerGoneError extends ShoalError<'PEER_GONE'> {
  static override readonly category = 'unavailable'
}

function thrown(f: () => unknown): ShoalError {
  try {
    f()
  } catch (err) {
    assert.ok(err instanceof ShoalError)
    return err
  }
  assert.fail('did not throw')
}

/** The error as the CLI sees it after the daemon sent it over JSON-RPC. */
function overRpc(err: unknown): RpcCallError {
  return new RpcCallError(JSON.parse(JSON.stringify(toRpcError(err))))
}

/** Every code of the CLI's former per-code table (CODE_EXIT), with the exit code it gave. */
const FORMER_TABLE: Array<[ShoalError, number]> = [
  [new DaemonNotRunningError('DAEMON_NOT_RUNNING', 'x', { home: '/h' }), 3],
  [new NotFoundError('x'), 4],
  [new BadRequestError('BAD_CID', 'x', { value: 'v' }), 2],
  [new BadRequestError('BAD_PATH', 'x', { value: 'v' }), 2],
  [new ConfigError('CONFIG_INVALID', 'x', { path: 'rpc.port', source: 'flag', reason: 'r' }), 2],
  [new IntegrityError('x'), 5],
  [new NotAuthorizedError('x'), 6],
  [new RepoError('REPO_EXISTS', 'x', { home: '/h' }), 6],
  [new RepoError('REPO_LOCKED', 'x', { home: '/h', pid: 1 }), 6],
  [new KeystoreError('WRONG_PASSPHRASE', 'x', { path: 'k' }), 6],
  [new KeystoreError('PASSPHRASE_REQUIRED', 'x', { path: 'k' }), 6],
  [new KeystoreError('KEYSTORE_CORRUPT', 'x', { path: 'k' }), 1],
  [new SwarmError('INVITE_INVALID', 'x'), 2],
  [new PeerDialError('BAD_MULTIADDR', 'x', { addr: 'a', reason: 'r' }), 2],
  [new SwarmError('NOT_IN_SWARM', 'x'), 6],
  [new SwarmError('NOT_A_FOUNDER', 'x'), 6],
  [new TrainingRequestError('CHECKPOINT_NOT_FOUND', 'x'), 4],
  [new TrainingRequestError('TASK_NOT_FOUND', 'x'), 4],
  [new TrainingRequestError('MODEL_INVALID', 'x'), 2],
  [new TrainingRequestError('TRAINING_BUSY', 'x'), 6],
  [thrown(() => parseExpiry('next tuesday')), 2],
  [new DatasetRequestError('DATASET_NOT_FOUND', 'x'), 4],
  [new DatasetParseError('DATASET_PARSE', 'x', { file: 'f.csv', reason: 'non-numeric' }), 2],
  [new DatasetRequestError('DATASET_SOURCE', 'x'), 2],
  [new ManifestError('MANIFEST_INVALID', 'x', { reason: 'signature' }), 6],
  [new GrantError('GRANT_REVOKED', 'x'), 6],
  [new GrantError('GRANT_EXPIRED', 'x'), 6],
  [new GrantError('GRANT_MISSING', 'x'), 6],
  [new GrantError('GRANT_NOT_OWNER', 'x'), 6],
  [new JobRequestError('JOB_NOT_FOUND', 'x'), 4],
  [new JobRequestError('JOB_NO_DATA', 'x'), 6],
  [new JobRequestError('JOB_ALREADY_RUNNING', 'x'), 6],
  [new JobRequestError('JOB_NOT_RUNNING', 'x'), 6],
  [new JobError('schema', 'x'), 2],
  [new ReceiptRequestError('RECEIPT_NOT_FOUND', 'x', { receipt: 'r' }), 4]
]

describe('CLI exit codes from error categories', () => {
  it('maps the six categories to the documented exit codes', () => {
    assert.deepEqual(Object.keys(CATEGORY_EXIT).sort(), [...ERROR_CATEGORIES].sort())
    assert.deepEqual(CATEGORY_EXIT, {
      usage: 2,
      unavailable: 3,
      'not-found': 4,
      integrity: 5,
      refused: 6,
      internal: 1
    })
    // Exit codes the command modules set without an error (they do not import main.ts).
    assert.equal(EXIT_TRAINING_FAILED, EXIT.ERROR)
    assert.equal(EXIT_RECEIPT_INVALID, EXIT.REFUSED)
  })

  it('keeps the exit code of every code of the former per-code table, also over RPC', () => {
    assert.equal(FORMER_TABLE.length, 35)
    for (const [err, exit] of FORMER_TABLE) {
      assert.equal(exitCodeOf(err), exit, err.code)
      const remote = overRpc(err)
      assert.equal(remote.code, err.code)
      assert.equal(remote.category, err.category, err.code)
      assert.equal(exitCodeOf(remote), exit, `${err.code} over RPC`)
    }
  })

  it('gives codes that used to fall to 1 the exit code of their category', () => {
    const cases: Array<[ShoalError, number]> = [
      [new DatasetArgumentError('DATASET_ARGUMENT', 'alpha must be > 0'), EXIT.USAGE],
      [new JobRequestError('JOB_INIT_INVALID', 'x'), EXIT.USAGE],
      [new KeystoreError('KEYSTORE_NOT_FOUND', 'x', { path: 'k' }), EXIT.NOT_FOUND],
      [new RepoError('REPO_NOT_INITIALIZED', 'x', { home: '/h' }), EXIT.NOT_FOUND],
      [
        new DaemonUnreachableError('DAEMON_UNREACHABLE', 'x', { url: 'http://127.0.0.1:1/' }),
        EXIT.DAEMON_NOT_RUNNING
      ],
      [new BadRequestError('FILE_EXISTS', 'x', { value: 'out.bin' }), EXIT.REFUSED],
      [new GrantError('GRANT_INVALID', 'x', { reason: 'signature' }), EXIT.REFUSED],
      [new ReceiptBindingError('RESULT_MISMATCH', 'x'), EXIT.INTEGRITY],
      [new PeerGoneError('PEER_GONE', 'x'), EXIT.DAEMON_NOT_RUNNING]
    ]
    for (const [err, exit] of cases) {
      assert.equal(exitCodeOf(err), exit, err.code)
      assert.equal(exitCodeOf(overRpc(err)), exit, `${err.code} over RPC`)
    }
  })

  it('falls back to internal (exit 1) for anything else', () => {
    assert.equal(exitCodeOf(new Error('boom')), EXIT.ERROR)
    assert.equal(exitCodeOf(new ShoalError('SOMETHING', 'x')), EXIT.ERROR)
    assert.equal(exitCodeOf(overRpc(new Error('boom'))), EXIT.ERROR)
    const protocol = new RpcCallError({ code: -32602, message: 'Invalid params', data: { param: 'a' } })
    assert.equal(protocol.code, 'RPC_-32602')
    assert.equal(protocol.category, 'internal')
    const odd = new RpcCallError({ code: -32000, message: 'x', data: { code: 'X', category: 'fatal' } })
    assert.equal(odd.category, 'internal')
  })

  describe('shoal against a daemon', () => {
    const TOKEN = 'cli-errors-token'
    let server: RpcServer
    let url: URL
    let home: string
    let token: string | undefined

    before(async () => {
      home = await mkdtemp(join(tmpdir(), 'shoal-cli-errors-'))
      token = process.env.SHOAL_API_TOKEN
      process.env.SHOAL_API_TOKEN = TOKEN
      const failing = (name: string, params: z.ZodObject, err: () => unknown) =>
        method({
          name,
          summary: name,
          params,
          result: z.null(),
          handler: async () => {
            throw err()
          }
        })
      server = new RpcServer(
        {
          methods: [
            method({
              name: 'node_info',
              summary: 'info',
              params: z.object({}),
              result: z.object({}),
              handler: async () => ({})
            }),
            failing(
              'dataset_revoke',
              z.object({ grant: z.string() }),
              () => new GrantError('GRANT_REVOKED', 'revoked')
            ),
            failing(
              'job_status',
              z.object({ job: z.string() }),
              () => new JobRequestError('JOB_NOT_FOUND', 'unknown job j1')
            ),
            failing(
              'dataset_read',
              z.object({ shard: z.string(), purpose: z.string() }),
              () => new DatasetArgumentError('DATASET_ARGUMENT', 'bad shard index')
            ),
            failing('storage_stat', z.object({ cid: z.string() }), () => new IntegrityError('tag mismatch')),
            failing('pubsub_stats', z.object({}), () => new PeerGoneError('PEER_GONE', 'the peer left')),
            failing('swarm_info', z.object({}), () => new ShoalError('ODD', 'odd')),
            failing('storage_gc', z.object({}), () => new Error('disk on fire'))
          ]
        },
        { host: '127.0.0.1', port: 0, token: TOKEN, maxBodyBytes: 4096 }
      )
      url = await server.start()
    })

    after(async () => {
      await server.stop()
      if (token === undefined) delete process.env.SHOAL_API_TOKEN
      else process.env.SHOAL_API_TOKEN = token
      await rm(home, { recursive: true, force: true })
    })

    async function shoal(args: string[], api = true): Promise<{ exit: number; stderr: string }> {
      const before = process.exitCode
      const write = process.stderr.write.bind(process.stderr)
      let stderr = ''
      process.stderr.write = ((chunk: string | Uint8Array): boolean => {
        stderr += String(chunk)
        return true
      }) as typeof process.stderr.write
      process.exitCode = undefined
      try {
        await main(['node', 'shoal', '--home', home, ...(api ? ['--api', url.href] : []), ...args])
        return { exit: Number(process.exitCode ?? 0), stderr }
      } finally {
        process.stderr.write = write
        process.exitCode = before
      }
    }

    it('exits with the code of the category the daemon sent', async () => {
      const revoked = await shoal(['dataset', 'revoke', 'g1'])
      assert.equal(revoked.exit, EXIT.REFUSED)
      assert.equal(revoked.stderr, 'shoal: revoked [GRANT_REVOKED]\n')
      assert.equal((await shoal(['job', 'status', 'j1'])).exit, EXIT.NOT_FOUND)
      assert.equal((await shoal(['dataset', 'read', 'bafyshard'])).exit, EXIT.USAGE)
      assert.equal((await shoal(['stat', 'bafyx'])).exit, EXIT.INTEGRITY)
      assert.equal((await shoal(['pubsub'])).exit, EXIT.DAEMON_NOT_RUNNING)
      assert.equal((await shoal(['swarm', 'info'])).exit, EXIT.ERROR)
      assert.equal((await shoal(['gc'])).exit, EXIT.ERROR)
    })

    it('keeps the --json error shape', async () => {
      const r = await shoal(['--json', 'job', 'status', 'j1'])
      assert.equal(r.exit, EXIT.NOT_FOUND)
      assert.deepEqual(JSON.parse(r.stderr), { error: { code: 'JOB_NOT_FOUND', message: 'unknown job j1' } })
    })

    it('exits 2 for a bad option value and 3 with no daemon', async () => {
      const expiry = await shoal(['dataset', 'grant', 'bafyd', 'did:key:z6Mk', '--expires', 'someday'])
      assert.equal(expiry.exit, EXIT.USAGE)
      assert.match(expiry.stderr, /\[BAD_EXPIRY\]/)
      const none = await shoal(['id'], false)
      assert.equal(none.exit, EXIT.DAEMON_NOT_RUNNING)
      assert.match(none.stderr, /\[DAEMON_NOT_RUNNING\]/)
    })
  })
})
