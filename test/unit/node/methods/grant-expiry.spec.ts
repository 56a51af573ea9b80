/**
 * dataset_grant_expiry: an earlier expiry is a signed shortening of the same grant (nothing ends
 * before it); a later one is a new grant on the same terms; refusals say what to do instead.
 */
import assert from 'node:assert/strict'
import type { NodeDatasets } from '../../../../src/node/datasets.js'
import { datasetMethods } from '../../../../src/node/methods/index.js'
import type { NodePrivacy } from '../../../../src/node/privacy.js'
import type { GrantInfo } from '../../../../src/storage/index.js'

const OWNER = 'did:key:z6MkOwner'
const now = (): number => Math.floor(Date.now() / 1000)

describe('node/methods: dataset_grant_expiry', () => {
  let grants: Map<string, GrantInfo>
  const shortened: Array<[string, number]> = []
  const issued: unknown[] = []
  const ds = {
    did: OWNER,
    grants: { find: async (id: string) => grants.get(id) },
    shorten: async (id: string, endsAt: number) => {
      shortened.push([id, endsAt])
      return { grant: id, document: 'revocation.jwt', shortened: true }
    },
    grant: async (req: unknown) => {
      issued.push(req)
      return { grant: 'g-new', document: 'grant.jwt' }
    }
  } as unknown as NodeDatasets
  const m = datasetMethods(ds, {} as NodePrivacy).find((x) => x.name === 'dataset_grant_expiry')!
  const call = async (params: Record<string, unknown>): Promise<Record<string, unknown>> =>
    (await m.handler(m.params.strict().parse(params), { signal: new AbortController().signal })) as Record<
      string,
      unknown
    >
  const refused = async (params: Record<string, unknown>, code: string, message: RegExp): Promise<void> => {
    await assert.rejects(call(params), (err: { code?: string; message: string }) => {
      assert.equal(err.code, code)
      assert.match(err.message, message)
      return true
    })
  }

  beforeEach(() => {
    shortened.length = 0
    issued.length = 0
    const base = {
      dataset: 'ds',
      shards: ['s1', 's2'],
      grantee: 'did:key:z6MkGrantee',
      purpose: 'job-1',
      iat: now() - 60,
      owner: OWNER
    }
    grants = new Map<string, GrantInfo>([
      ['g1', { ...base, id: 'g1', exp: now() + 86_400, privacy: { epsMax: 8, delta: 1e-5 } }],
      ['g-open', { ...base, id: 'g-open' }],
      ['g-theirs', { ...base, id: 'g-theirs', owner: 'did:key:z6MkSomeoneElse' }],
      ['g-revoked', { ...base, id: 'g-revoked', revokedAt: now() - 1 }]
    ])
  })

  it('an earlier expiry shortens the same grant with a signed revocation that ends it then', async () => {
    const at = now() + 3600
    const r = await call({ grant: 'g1', expiresAt: at })
    assert.deepEqual(shortened, [['g1', at]])
    assert.equal(issued.length, 0)
    assert.deepEqual(
      [r.how, r.grant, r.previous, r.expiresAt, r.document],
      ['shortened', 'g1', 'g1', at, 'revocation.jwt']
    )
    // A grant with no expiry gets one the same way.
    await call({ grant: 'g-open', expiresAt: at })
    assert.deepEqual(shortened.at(-1), ['g-open', at])
  })

  it('a later expiry (or none) is a new grant on the same terms; the old one still ends at its own', async () => {
    const at = now() + 7 * 86_400
    const r = await call({ grant: 'g1', expiresAt: at })
    assert.deepEqual(issued, [
      {
        dataset: 'ds',
        grantee: 'did:key:z6MkGrantee',
        purpose: 'job-1',
        shards: ['s1', 's2'],
        expiresAt: at,
        privacy: { epsMax: 8, delta: 1e-5 }
      }
    ])
    assert.deepEqual([r.how, r.grant, r.previous], ['extended', 'g-new', 'g1'])
    assert.match(String(r.note), /g1 still ends at .* unlearned then/)
    await call({ grant: 'g1', expiresAt: null })
    assert.equal((issued.at(-1) as { expiresAt?: number }).expiresAt, undefined)
    assert.equal(shortened.length, 0)
  })

  it('refuses: unknown grant, someone else’s, ended, a time not in the future, the same expiry', async () => {
    await refused({ grant: 'nope', expiresAt: null }, 'GRANT_NOT_FOUND', /no grant nope/)
    await refused({ grant: 'g-theirs', expiresAt: null }, 'GRANT_NOT_OWNER', /only its owner/)
    await refused({ grant: 'g-revoked', expiresAt: null }, 'GRANT_ENDED', /revoked: grant again/)
    await refused(
      { grant: 'g1', expiresAt: now() - 10 },
      'EXPIRY_INVALID',
      /not in the future: to end the grant now, revoke it/
    )
    await refused({ grant: 'g-open', expiresAt: null }, 'EXPIRY_INVALID', /already has no expiry/)
    assert.equal(m.params.strict().safeParse({ grant: 'g1', expiresAt: 1.5 }).success, false)
    assert.equal(
      m.params.strict().safeParse({ grant: 'g1' }).success,
      false,
      'expiresAt is required (null: none)'
    )
    assert.deepEqual([shortened.length, issued.length], [0, 0])
  })
})
